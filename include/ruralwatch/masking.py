"""Masking wherever a person who is not an engineer reads (feeds.md): reports, samples, logs."""
from __future__ import annotations

import re

_ID_LIKE = re.compile(r"(?<![0-9])([0-9]{6})([0-9]{4,8})([0-9]{3}[0-9Xx])(?![0-9])")


def mask_resident_id(value: str | None) -> str | None:
    """`610102199001011234` → `610102********1234`."""
    if value is None:
        return None
    text = str(value)
    if len(text) > 10:
        return text[:6] + "*" * (len(text) - 10) + text[-4:]
    return "*" * len(text)


def mask_phone(value: str | None) -> str | None:
    """`13812345678` → `138****5678`."""
    if value is None:
        return None
    text = str(value)
    if len(text) >= 7:
        return text[:3] + "*" * (len(text) - 7) + text[-4:]
    return "*" * len(text)


def mask_name(value: str | None) -> str | None:
    """`张三丰` → `张**`: the family name only."""
    if value is None or value == "":
        return value
    return str(value)[0] + "**"


MASKERS = {"resident_id": mask_resident_id, "phone": mask_phone, "name": mask_name}


def mask_ids_in_text(text: str) -> str:
    """Mask anything that looks like a 15- or 18-character resident ID inside free text."""
    return _ID_LIKE.sub(lambda m: mask_resident_id(m.group(0)), text)
