"""Resident ID numbers (GB 11643-1999): building valid ones in bulk, and the ways exports damage them."""
from __future__ import annotations

import datetime as dt
import re

import numpy as np

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_CHECK_BYTES = np.frombuffer(CHECK_CHARS.encode(), dtype="S1")
_FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
_ID18 = re.compile(r"^\d{17}[\dX]$")


def check_char(body17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(body17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def is_valid_id(value: str) -> bool:
    """True for an 18-character ID with a real birth date and the right check character."""
    if not _ID18.match(value):
        return False
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return value[17] == check_char(value[:17])


def make_ids(county6: np.ndarray, birth_ymd: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Vectorised: 18-byte IDs (dtype S18) from address code, yyyymmdd birth date and 3-digit sequence."""
    body = county6.astype(np.int64) * 10**11 + birth_ymd.astype(np.int64) * 1000 + seq.astype(np.int64)
    total = np.zeros(len(body), dtype=np.int64)
    rest = body.copy()
    for weight in reversed(WEIGHTS):
        total += (rest % 10) * weight
        rest //= 10
    check = _CHECK_BYTES[total % 11]
    return np.char.add(body.astype("S17"), check)


def to_legacy15(id18: str) -> str:
    """The 15-digit form an ID had before 1999: no century, no check character."""
    return id18[:6] + id18[8:17]


def upgrade15(id15: str) -> str:
    body = id15[:6] + "19" + id15[6:]
    return body + check_char(body)


def wrong_check(id18: str, pick: int) -> str:
    """The same ID with a check character that fails (pick chooses which wrong one)."""
    wrong = [c for c in CHECK_CHARS if c != id18[17].upper()]
    return id18[:17] + wrong[pick % len(wrong)]


def fullwidth(id18: str) -> str:
    return id18.translate(_FULLWIDTH)


def scientific(id18: str) -> str:
    """What Excel shows after reading an 18-digit ID as a number: 6 significant digits, e.g. 6.10102E+17."""
    return f"{int(id18[:17] + '0'):.5E}"


def as_number(id18: str) -> float:
    """An 18-digit ID stored in a numeric cell: a double keeps about 15 significant digits."""
    return float(int(id18))


def partial(id18: str, pick: int) -> str:
    """How callers give IDs on the phone: masked in the middle, or only the first digits."""
    if pick % 2:
        return id18[:6] + "********" + id18[-4:]
    return id18[: 10 + pick % 5]
