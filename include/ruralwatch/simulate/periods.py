"""Data months, period ends and due days. A month is an int: year * 12 + (month - 1)."""
from __future__ import annotations

import calendar
import datetime as dt
import re

import numpy as np

# Arrival times are wall-clock times in the city (China Standard Time, no daylight saving).
CST = dt.timezone(dt.timedelta(hours=8), "CST")
DUE_DAY = 5


def month_of(year: int, month: int) -> int:
    return year * 12 + month - 1


def year_month(m: int) -> tuple[int, int]:
    return m // 12, m % 12 + 1


def label(m: int) -> str:
    """YYYYMM, as in file names."""
    y, mo = year_month(m)
    return f"{y:04d}{mo:02d}"


def iso(m: int) -> str:
    y, mo = year_month(m)
    return f"{y:04d}-{mo:02d}"


def first_day(m: int) -> dt.date:
    y, mo = year_month(m)
    return dt.date(y, mo, 1)


def last_day(m: int) -> dt.date:
    y, mo = year_month(m)
    return dt.date(y, mo, calendar.monthrange(y, mo)[1])


def days_in(m: int) -> int:
    y, mo = year_month(m)
    return calendar.monthrange(y, mo)[1]


def due(m: int) -> dt.datetime:
    """The last instant a delivery of month m is on time: the end of the 5th of the following month."""
    nxt = first_day(m + 1)
    return dt.datetime(nxt.year, nxt.month, DUE_DAY, 23, 59, 59, tzinfo=CST)


_MONTH = re.compile(r"^(\d{4})-?(\d{2})$")


def parse_month(text: str) -> int:
    """`2026-11` or `202611`."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"not a month: {text!r} (expected YYYY-MM or YYYYMM)")
    return month_of(int(match.group(1)), int(match.group(2)))


def parse_range(text: str) -> list[int]:
    """`2026-09:2026-11` (inclusive) or a single month."""
    start, _, end = text.partition(":")
    first = parse_month(start)
    last = parse_month(end) if end else first
    if last < first:
        raise ValueError(f"month range runs backwards: {text!r}")
    return list(range(first, last + 1))


def age_at(birth: dt.date, on: dt.date) -> int:
    """Completed years on a date; someone born on 29 February turns a year older on 1 March."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# Dates inside the simulator are int days since 1970-01-01 (numpy's datetime64[D] epoch).
EPOCH = dt.date(1970, 1, 1)


def to_days(day: dt.date) -> int:
    return (day - EPOCH).days


def from_days(days: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(days))


def ymd(days):
    """Vectorised (year, month, day) arrays from an array of epoch days."""
    as_date = np.asarray(days, dtype="int64").astype("datetime64[D]")
    years = as_date.astype("datetime64[Y]")
    months = as_date.astype("datetime64[M]")
    y = years.astype(np.int64) + 1970
    m = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    d = (as_date - months.astype("datetime64[D]")).astype(np.int64) + 1
    return y, m, d


def ages(birth_days, on: dt.date):
    """Vectorised completed years on a date (see age_at)."""
    y, m, d = ymd(birth_days)
    return on.year - y - ((on.month * 100 + on.day) < (m * 100 + d))
