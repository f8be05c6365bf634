"""How departments spell values: every accepted form of the spec, rendered in bulk.

Canonical values come in as numpy arrays (dates as epoch days, months as month indices, amounts as
hundredths of the unit, yes/no as 1/0); NULL marks a missing number or date, -1 a missing month or
yes/no, and None/"" a missing text. Out come the cells of one column as they appear in a file: str
for CSV, and for XLSX also native numbers and date cells.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import periods

NULL = np.iinfo(np.int64).min          # a missing amount, count or date (dates before 1970 are negative)
EXCEL_EPOCH_OFFSET = 25_569            # Excel serial of 1970-01-01 (epoch 1899-12-30)

DATE_FORMS = ("iso", "slash", "compact", "cn")
XLSX_DATE_FORMS = ("cell", "serial")
MONTH_FORMS = ("iso", "compact", "cn")
AMOUNT_FORMS = ("plain", "fixed", "comma", "yuan")
YESNO_FORMS = (("是", "否"), ("Y", "N"), ("y", "n"), ("1", "0"))
NULL_FORMS = ("", "NULL", "null", "Null", "无", "/", "-")
SCHOOL_YEAR_FORMS = ("span", "start")


@dataclass(frozen=True)
class XlDate:
    """A date stored as a date-formatted cell in an XLSX file."""
    days: int


def dates(days: np.ndarray, form: str) -> list:
    """Render epoch days; NULL gives None (the caller spells nulls)."""
    days = np.asarray(days)
    unique, inverse = np.unique(days, return_inverse=True)
    rendered = [None if d == NULL else date_text(int(d), form) for d in unique.tolist()]
    table = np.array(rendered + [None], dtype=object)[:-1]
    return table[inverse].tolist()


def date_text(days: int, form: str):
    if form == "cell":
        return XlDate(days)
    if form == "serial":
        return days + EXCEL_EPOCH_OFFSET
    day = periods.from_days(days)
    if form == "iso":
        return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    if form == "slash":
        return f"{day.year}/{day.month}/{day.day}"
    if form == "compact":
        return f"{day.year:04d}{day.month:02d}{day.day:02d}"
    if form == "cn":
        return f"{day.year}年{day.month}月{day.day}日"
    raise ValueError(form)


def month_text(month: int, form: str) -> str:
    y, m = periods.year_month(month)
    if form == "iso":
        return f"{y:04d}-{m:02d}"
    if form == "compact":
        return f"{y:04d}{m:02d}"
    if form == "cn":
        return f"{y}年{m}月"
    raise ValueError(form)


def months(values: np.ndarray, form: str) -> list:
    values = np.asarray(values)
    unique, inverse = np.unique(values, return_inverse=True)
    table = np.array([None if v < 0 else month_text(int(v), form) for v in unique.tolist()] + [None],
                     dtype=object)[:-1]
    return table[inverse].tolist()


def amount_text(hundredths: int, form: str):
    value = hundredths / 100
    if form == "number":
        return value
    if form == "plain":
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    if form == "fixed":
        return f"{value:.2f}"
    if form == "comma":
        return f"{value:,.2f}"
    if form == "yuan":
        return f"{value:.2f}元"
    raise ValueError(form)


def amounts(values: np.ndarray, form: str) -> list:
    values = np.asarray(values, dtype=np.int64)
    null = values == NULL
    if form == "plain":
        out = [f"{v / 100:.2f}".rstrip("0").rstrip(".") for v in values.tolist()]
    elif form == "fixed":
        out = [f"{v / 100:.2f}" for v in values.tolist()]
    elif form == "comma":
        out = [f"{v / 100:,.2f}" for v in values.tolist()]
    elif form == "yuan":
        out = [f"{v / 100:.2f}元" for v in values.tolist()]
    elif form == "number":
        out = (values / 100).tolist()
    else:
        raise ValueError(form)
    if null.any():
        for i in np.flatnonzero(null).tolist():
            out[i] = None
    return out


def integers(values: np.ndarray, native: bool = False) -> list:
    values = np.asarray(values, dtype=np.int64)
    out = values.tolist() if native else values.astype(str).tolist()
    for i in np.flatnonzero(values == NULL).tolist():
        out[i] = None
    return out


def yesno(values: np.ndarray, form: tuple[str, str]) -> list:
    table = np.array([form[1], form[0], None], dtype=object)
    values = np.asarray(values, dtype=np.int64)
    return table[np.where(values < 0, 2, values)].tolist()


def school_year(start: np.ndarray, form: str) -> list:
    return [None if s < 0 else (f"{s}-{s + 1}" if form == "span" else str(s)) for s in np.asarray(start).tolist()]


def area_codes(values: np.ndarray) -> list:
    values = np.asarray(values, dtype=np.int64)
    out = values.astype(str).tolist()
    for i in np.flatnonzero(values <= 0).tolist():
        out[i] = None
    return out


def ids(values) -> list:
    """IDs as text; b'' / '' / None is null."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "S":
        out = values.astype("U18").tolist()
    else:
        out = list(values)
    return [v if v else None for v in out]
