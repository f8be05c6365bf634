"""Header matching and delivery file names, exactly as the exchange spec settles them."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# One trailing parenthesised part, ASCII or full-width: `计划投资(万元)` and `计划投资（万元）` are `计划投资`.
_TRAILING_PARENS = re.compile(r"[(（][^()（）]*[)）]$")
_SPACES = re.compile(r"[\s\u3000]+")


def normalise_header(header: str) -> str:
    text = _SPACES.sub("", header.replace("\ufeff", ""))
    return _TRAILING_PARENS.sub("", text)


def header_unit(header: str) -> str | None:
    """The unit a header names (`计划投资（万元）` → 万元), if any."""
    text = _SPACES.sub("", header)
    match = _TRAILING_PARENS.search(text)
    return match.group(0)[1:-1] if match else None


class DeliveryNameError(ValueError):
    pass


@dataclass(frozen=True)
class DeliveryName:
    feed: str
    data_month: date
    version: int
    suffix: str | None  # lead_feedback's 12-digit town code
    extension: str

    @property
    def slot(self) -> str:
        """Deliveries in one slot supersede each other: the month, and for town files the town."""
        month = self.data_month.strftime("%Y%m")
        return f"{month}_{self.suffix}" if self.suffix else month


_NAME = re.compile(
    r"^(?P<feed>[a-z][a-z0-9_]*?)_(?P<month>\d{6})(?:_(?P<suffix>\d{12}))?(?:_v(?P<version>\d+))?"
    r"\.(?P<ext>csv|xlsx)$",
    re.IGNORECASE,
)


def parse_delivery_name(file_name: str, folder_feed: str, allow_town_suffix: bool = False) -> DeliveryName:
    """Parse `<feed>_<YYYYMM>[_<town>][_v<N>].<ext>`; the folder names the feed a second time.

    Only feeds that towns deliver (lead_feedback) carry a 12-digit town code in the name.
    """
    match = _NAME.match(file_name)
    if not match:
        raise DeliveryNameError(
            f"file name {file_name!r} does not parse: expected {folder_feed}_<YYYYMM>.csv|xlsx, "
            f"or {folder_feed}_<YYYYMM>_v<N>.<ext> for a corrected re-delivery"
        )
    feed = match.group("feed").lower()
    if feed != folder_feed:
        raise DeliveryNameError(
            f"file {file_name!r} names feed {feed!r} but lies in the folder of feed {folder_feed!r}; "
            "the folder and the name must agree"
        )
    month_text = match.group("month")
    year, month = int(month_text[:4]), int(month_text[4:])
    if not 1 <= month <= 12 or year < 2000:
        raise DeliveryNameError(f"file name {file_name!r}: {month_text} is not a month (YYYYMM)")
    if match.group("suffix") and not allow_town_suffix:
        raise DeliveryNameError(
            f"file name {file_name!r}: only town-delivered feeds carry a town code; expected "
            f"{folder_feed}_<YYYYMM>.<ext>")
    version = int(match.group("version") or 1)
    if match.group("version") is not None and version < 2:
        raise DeliveryNameError(f"file name {file_name!r}: re-deliveries are numbered from _v2")
    return DeliveryName(feed, date(year, month, 1), version, match.group("suffix"), match.group("ext").lower())
