"""A reader that follows feeds.md to the letter: the simulator's own, independent reading of what it wrote.

The truth in the manifest is computed from what this reader gets out of the delivered files, not from
the simulator's internal state, so it is what a correct warehouse must compute from the same files.
Every value it cannot accept is flagged with the defect class the generator claims to have planted
there; the tests hold the two lists against each other cell by cell.

Resident IDs become int64 keys: the first 17 digits of the normalised ID (the check character follows
from them), -1 when null or invalid. Dates are epoch days (NO_DAY when null; birth dates before 1970
are negative), months month indices (-1 when null); an invalid value is null too, and flagged.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import periods
from .geography import geography
from .ids import CHECK_CHARS, WEIGHTS
from .schema import FEEDS, Column, Feed

READ_CHUNK = 50_000
NO_DAY = np.iinfo(np.int64).min
NAME = re.compile(r"^(?P<feed>[a-z_]+)_(?P<month>\d{6})(?:_(?P<town>\d{12}))?(?:_v(?P<version>\d+))?\.(?P<ext>csv|xlsx)$")
_SPACES = re.compile(r"\s+")
_UNIT = re.compile(r"^(?P<name>.*?)[(（](?P<unit>[^()（）]*)[)）]$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")
_NULLS = {"", "无", "/", "-"}
_YES = {"是": 1, "Y": 1, "y": 1, "1": 1, "否": 0, "N": 0, "n": 0, "0": 0}
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_TO_EPOCH_DAYS = (periods.EPOCH - _EXCEL_EPOCH).days


class Rejected(Exception):
    """A structural break: the whole delivery is rejected."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Name:
    feed: str
    month: int
    version: int
    town: int | None
    ext: str


def parse_name(path: Path) -> Name | None:
    match = NAME.match(path.name)
    if not match or match.group("feed") not in FEEDS:
        return None
    y, m = int(match.group("month")[:4]), int(match.group("month")[4:])
    if not 1 <= m <= 12:
        return None
    town = match.group("town")
    if (town is not None) != (match.group("feed") == "lead_feedback"):
        return None
    return Name(match.group("feed"), periods.month_of(y, m), int(match.group("version") or 1),
                int(town) if town else None, match.group("ext"))


@dataclass
class Parsed:
    feed: Feed
    header_row: int                      # physical row of the header (0 for JSON lines)
    columns: dict[str, np.ndarray]       # normalised values of every known column present
    rows: int
    flags: list[tuple[int, str | None, str]] = field(default_factory=list)  # (data_row, column, class)
    notes: list[tuple[int, str, str]] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    uncheckable: set[int] = field(default_factory=set)  # data rows a cross-feed check could not reach
    usable: np.ndarray | None = None     # rows that take part in indicators and rules
    spoiled: np.ndarray | None = None    # rows that count against the 2% gate: a bad resident ID or a repeated key

    @property
    def unusable(self) -> int:
        return int(self.spoiled.sum()) if self.spoiled is not None else 0


def header_name(text: Any) -> tuple[str, str]:
    """(column name, unit) of a header cell: spaces removed, one trailing (unit) dropped."""
    name = _SPACES.sub("", str(text or ""))
    match = _UNIT.match(name)
    if match:
        return match.group("name"), match.group("unit")
    return name, ""


# -- raw reading: chunks of columns (numpy object arrays), cells as the file holds them --------------------
Columns = list[np.ndarray]


def _encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK); neither: the file is undecodable."""
    for name in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(name)()
        try:
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
            return name
        except UnicodeDecodeError:
            continue
    raise Rejected("undecodable_file", "neither UTF-8 nor GB18030")


def _read_csv(path: Path) -> tuple[int, list[str], Iterator[Columns]]:
    encoding = _encoding(path)
    with path.open(encoding=encoding, newline="") as handle:
        header = next(csv.reader(handle), None)
    if header is None:
        raise Rejected("empty_file")

    def chunks() -> Iterator[Columns]:
        reader = pd.read_csv(path, encoding=encoding, dtype=str, keep_default_na=False, na_filter=False,
                             header=None, skiprows=1, names=list(range(len(header))), chunksize=READ_CHUNK,
                             skip_blank_lines=True)
        for frame in reader:
            yield [frame[k].to_numpy(dtype=object) for k in range(len(header))]

    return 1, header, chunks()


def _read_xlsx(path: Path, feed: Feed) -> tuple[int, list[str], Iterator[Columns]]:
    """The first sheet; the header is the first of the top three rows naming two known columns."""
    import python_calamine

    try:
        sheet = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        rows = sheet.iter_rows()
        top = [next(rows, None) for _ in range(3)]
    except Exception as error:  # noqa: BLE001 - whatever stops the package from opening is the same break
        raise Rejected("unreadable_file", type(error).__name__) from None
    known = {c.name for c in feed.columns}
    header_at = next((k for k, row in enumerate(top) if row is not None
                      and sum(header_name(v)[0] in known for v in row if v not in (None, "")) >= 2), None)
    if header_at is None:
        raise Rejected("missing_required_column", "no header row among the first three rows")
    header = ["" if v is None else str(v) for v in top[header_at]]
    width = len(header)
    pending = [r for r in top[header_at + 1:] if r is not None]

    def columns(batch: list[list]) -> Columns:
        out = []
        for column in zip(*batch, strict=True):
            array = np.empty(len(column), dtype=object)
            array[:] = column
            out.append(array)
        return out

    def chunks() -> Iterator[Columns]:
        batch: list[list] = []
        for row in [*pending, *rows]:
            cells = list(row[:width]) + [""] * (width - len(row))
            if all(v in ("", None) for v in cells):
                continue
            batch.append(cells)
            if len(batch) >= READ_CHUNK:
                yield columns(batch)
                batch = []
        if batch:
            yield columns(batch)

    return header_at + 1, header, chunks()


def _read_jsonl(path: Path, feed: Feed) -> tuple[int, list[str], Iterator[Columns]]:
    header = [c.name for c in feed.columns]

    def chunks() -> Iterator[Columns]:
        batch: list[dict] = []
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    batch.append(json.loads(line))
                if len(batch) >= READ_CHUNK:
                    yield _json_columns(batch, header)
                    batch = []
        if batch:
            yield _json_columns(batch, header)

    return 0, header, chunks()


def _json_columns(batch: list[dict], header: list[str]) -> Columns:
    out = []
    for name in header:
        array = np.empty(len(batch), dtype=object)
        array[:] = [item.get(name) for item in batch]
        out.append(array)
    return out


# -- value normalisation: each distinct cell value is parsed once -------------------------------------------
def _is_null(value: Any) -> bool:
    """Blank, `null` in any letter case, `无`, `/` and a lone `-` are null (so is an empty XLSX cell)."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    if isinstance(value, str):
        text = value.strip()
        return text in _NULLS or text.lower() == "null"
    return False


def _by_value(values: np.ndarray, parse, dtype, null) -> tuple[np.ndarray, np.ndarray]:
    """Apply parse(value) -> (normalised, reason) to each distinct value and spread the results."""
    codes, uniques = pd.factorize(values)
    results = [parse(u) for u in uniques]
    normalised = np.empty(len(results) + 1, dtype=dtype)
    normalised[:-1] = [r[0] for r in results]
    normalised[-1] = null
    reasons = np.array([r[1] for r in results] + ["null"], dtype=object)
    return normalised[codes], reasons[codes]


_ID18 = re.compile(r"^\d{17}[\dX]$")
_ID15 = re.compile(r"^\d{15}$")
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+?\d+$")
_PARTIAL = re.compile(r"^[\dX*]{4,18}$")
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_CHECK_CODES = np.array([ord(c) for c in CHECK_CHARS])
_POWERS17 = 10 ** np.arange(16, -1, -1, dtype=np.int64)


def _id_one(value: Any, partial_ok: bool) -> tuple[int, str]:
    if _is_null(value):
        return -1, "null"
    if not isinstance(value, str):
        return -1, "id_numeric_cell"  # a number has kept 15 significant digits: unrecoverable
    text = value.strip().translate(_FULLWIDTH).upper()
    if _ID18.match(text):
        return _checked(text[:17], text[17])
    if _ID15.match(text):
        body = text[:6] + "19" + text[6:]
        key, reason = _checked(body, None)
        return key, ("id_15_digit" if key >= 0 else "id_malformed")
    if _SCIENTIFIC.match(text):
        return -1, "id_scientific"
    if _PARTIAL.match(text):
        return -1, "id_partial" if partial_ok else "id_malformed"
    return -1, "id_malformed"


def _checked(body: str, given: str | None) -> tuple[int, str]:
    try:
        dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return -1, "id_malformed"
    expected = CHECK_CHARS[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]
    if given is not None and given != expected:
        return -1, "id_bad_check"
    return int(body), ""


def parse_ids(raw: np.ndarray, partial_ok: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(int64 key or -1, reason). Plain 18-digit IDs are checked in bulk; the rest one by one."""
    n = len(raw)
    plain = np.array([v if type(v) is str and len(v) == 18 else "" for v in raw], dtype="U18")
    points = plain.view(np.uint32).reshape(n, 18) if n else np.zeros((0, 18), np.uint32)
    digits = points[:, :17].astype(np.int64) - 48
    last = points[:, 17].astype(np.int64)
    last = np.where(last == ord("x"), ord("X"), last)
    shaped = (digits >= 0).all(axis=1) & (digits <= 9).all(axis=1) & (((last >= 48) & (last <= 57)) | (last == 88))
    y = digits[:, 6:10] @ np.array([1000, 100, 10, 1])
    m = digits[:, 10:12] @ np.array([10, 1])
    d = digits[:, 12:14] @ np.array([10, 1])
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    month_days = _MONTH_DAYS[np.clip(m, 0, 12)] + ((m == 2) & leap)
    dated = (m >= 1) & (m <= 12) & (d >= 1) & (d <= month_days)
    expected = _CHECK_CODES[(digits @ np.array(WEIGHTS)) % 11]
    fast = shaped & dated
    key = np.where(fast & (expected == last), digits @ _POWERS17, -1)
    reason = np.full(n, "", dtype=object)
    reason[fast & (expected != last)] = "id_bad_check"
    for i in np.flatnonzero(~fast).tolist():
        key[i], reason[i] = _id_one(raw[i], partial_ok)
    return key.astype(np.int64), reason


_DATE = re.compile(r"^(\d{4})(?:-|/|年)(\d{1,2})(?:-|/|月)(\d{1,2})日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def _date_one(value: Any, xlsx: bool) -> tuple[int, str]:
    if _is_null(value):
        return NO_DAY, "null"
    if isinstance(value, dt.datetime):
        return periods.to_days(value.date()), ""
    if isinstance(value, dt.date):
        return periods.to_days(value), ""
    if isinstance(value, (int, float)):
        if xlsx:  # an Excel serial number: only a spreadsheet cell can carry one
            return int(value) - _EXCEL_TO_EPOCH_DAYS, ""
        return NO_DAY, "date_impossible"
    text = str(value).strip()
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if not match:
        return NO_DAY, "date_impossible"
    try:
        return periods.to_days(dt.date(*(int(g) for g in match.groups()))), ""
    except ValueError:
        return NO_DAY, "date_impossible"


_MONTH = re.compile(r"^(\d{4})(?:-|年)?(\d{1,2})月?$")


def _month_one(value: Any) -> tuple[int, str]:
    if _is_null(value):
        return -1, "null"
    match = _MONTH.match(str(value).strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or (len(match.group(2)) == 1 and "年" not in str(value)):
        return -1, "month_impossible"
    return periods.month_of(int(match.group(1)), int(match.group(2))), ""


_AMOUNT = re.compile(r"^-?\d+(\.\d+)?$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_INTEGER = re.compile(r"^-?\d+$")


def _number_one(value: Any, integer: bool) -> tuple[float, str]:
    if _is_null(value):
        return np.nan, "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), ""
    text = str(value).strip()
    if not integer:
        text = text.removesuffix("元").strip()
        if _THOUSANDS.match(text):
            text = text.replace(",", "")
    if (_INTEGER if integer else _AMOUNT).match(text):
        return float(text), ""
    return np.nan, "not_a_number"


def _yesno_one(value: Any) -> tuple[int, str]:
    if _is_null(value):
        return -1, "null"
    if isinstance(value, str):
        answer = _YES.get(value.strip())
    else:
        answer = {1: 1, 0: 0}.get(value) if isinstance(value, (int, float)) else None
    return (answer, "") if answer is not None else (-1, "not_yes_no")


def _text_one(value: Any) -> tuple[Any, str]:
    if _is_null(value):
        return None, "null"
    return (value.strip() if isinstance(value, str) else value), ""


def _school_year_one(value: Any) -> tuple[Any, str]:
    if _is_null(value):
        return None, "null"
    text = str(value).strip()
    return (text, "") if re.fullmatch(r"\d{4}(-\d{4})?", text) else (None, "not_a_school_year")


@dataclass
class AreaBook:
    levels: dict[int, str]

    @classmethod
    def load(cls) -> AreaBook:
        return cls(geography().levels())

    def one(self, value: Any, village_required: bool) -> tuple[int, str]:
        """The 12-digit code, or 0 with the reason it cannot be placed."""
        if _is_null(value):
            return 0, "null"
        text = value.strip() if isinstance(value, str) else str(value)
        if not text.isdigit():
            return 0, "area_malformed"
        if len(text) in (6, 9) and village_required:
            return 0, "area_wrong_level"
        if len(text) != 12:
            return 0, "area_malformed"
        code = int(text)
        if code not in self.levels:
            return 0, "area_unknown"
        if village_required and self.levels[code] != "村":
            return 0, "area_wrong_level"
        return code, ""


# -- one delivery ----------------------------------------------------------------------------------------
# The columns the feed-level consistency rules read (besides the key and the resident ID columns).
CONSISTENCY_COLUMNS = {
    "rural_roster": ("户编号", "与户主关系", "家庭人口数", "家庭年纯收入", "出生日期", "性别"),
    "health_medical_claims": ("医疗总费用", "基本医保支付", "大病保险支付", "医疗救助支付", "个人自付", "就诊日期", "出院日期"),
    "housing_village_environment": ("卫生厕所户数", "总户数"),
    "water_supply": ("自来水入户户数", "总户数", "本月断水天数"),
    "housing_safety": ("鉴定等级", "改造状态"),
}


def read_delivery(path: Path, feed: Feed, month: int, areas: AreaBook, keep: Collection[str] | None = None) -> Parsed:
    """Read and normalise one delivery; raises Rejected for a structural break. Every cell is checked;
    with `keep`, only those columns stay in Parsed.columns, and the others are not even held while the
    file is read (a roster's 姓名 alone is a million strings)."""
    if path.suffix == ".xlsx":
        header_row, header, chunks = _read_xlsx(path, feed)
    elif path.suffix == ".jsonl":
        header_row, header, chunks = _read_jsonl(path, feed)
    else:
        header_row, header, chunks = _read_csv(path)
    known = {c.name: c for c in feed.columns}
    position: dict[str, int] = {}
    units: dict[str, str] = {}
    extra: list[str] = []
    for k, cell in enumerate(header):
        name, unit = header_name(cell)
        if name in known and name not in position:
            position[name] = k
            if known[name].kind == "amount":
                units[name] = unit if unit in ("元", "万元") else known[name].unit
        elif name:
            extra.append(name)
    missing = [c for c in feed.required if c not in position]
    if missing:
        raise Rejected("missing_required_column", ", ".join(missing))
    period_end = periods.to_days(periods.last_day(month))
    parsed = Parsed(feed=feed, header_row=header_row, columns={}, rows=0, extra_columns=extra, units=units)
    held = set(position)
    if keep is not None:
        held &= {*keep, *feed.key, *feed.id_columns, *CONSISTENCY_COLUMNS.get(feed.name, ())}
    pieces: dict[str, list[np.ndarray]] = {name: [] for name in position if name in held}
    offset = 0
    xlsx = path.suffix == ".xlsx"
    for columns in chunks:
        for name, k in position.items():
            column = known[name]
            value, reason = _normalise(columns[k], column, feed, areas, units, xlsx, period_end)
            if name in held:
                pieces[name].append(value)
            del value
            for i in np.flatnonzero(reason != "").tolist():
                r = reason[i]
                if r == "null":
                    if column.required and name not in feed.key and column.kind == "text":
                        parsed.flags.append((offset + i + 1, name, "required_value_missing"))
                elif r == "id_15_digit":
                    parsed.notes.append((offset + i + 1, name, r))
                else:
                    parsed.flags.append((offset + i + 1, name, r))
        offset += len(columns[0]) if columns else 0
    parsed.rows = offset
    if offset == 0 and not feed.event:
        raise Rejected("header_only_snapshot", "a snapshot with a header and no rows")
    for name in list(pieces):
        parts = pieces.pop(name)  # each column's chunks go as soon as they are joined
        parsed.columns[name] = np.concatenate(parts) if parts else np.array([], dtype=object)
        del parts
    _usable(parsed)
    consistency(parsed, month)
    if keep is not None:
        parsed.columns = {name: values for name, values in parsed.columns.items() if name in keep}
    return parsed


def _normalise(raw: np.ndarray, column: Column, feed: Feed, areas: AreaBook, units: dict[str, str], xlsx: bool,
               period_end: int) -> tuple[np.ndarray, np.ndarray]:
    kind = column.kind
    if kind == "id":
        return parse_ids(raw, partial_ok=column.name == "诉求人身份证号")
    if kind == "date":
        days, reason = _by_value(raw, lambda v: _date_one(v, xlsx), np.int64, NO_DAY)
        if column.event:
            future = (days != NO_DAY) & (days > period_end)
            reason[future] = "date_future"
            days[future] = NO_DAY
        return days, reason
    if kind == "month":
        return _by_value(raw, _month_one, np.int64, -1)
    if kind in ("amount", "int", "year"):
        values, reason = _by_value(raw, lambda v: _number_one(v, kind != "amount"), np.float64, np.nan)
        if kind == "amount":
            if units.get(column.name, column.unit) != column.unit:  # convert to the spec's unit
                values = values / 10_000 if column.unit == "万元" else values * 10_000
            negative = values < 0
            reason[negative] = "amount_negative"
            values[negative] = np.nan
        return values, reason
    if kind == "yesno":
        return _by_value(raw, _yesno_one, np.int8, -1)
    if kind == "area":
        village = feed.area_level == "village"
        return _by_value(raw, lambda v: areas.one(v, village), np.int64, 0)
    if kind == "school_year":
        return _by_value(raw, _school_year_one, object, None)
    return _by_value(raw, _text_one, object, None)


def _usable(parsed: Parsed) -> None:
    """Rows take part in indicators and rules only when every resident ID column is valid and the key
    is valid and does not repeat another row's (all rows sharing a repeated key are out)."""
    feed = parsed.feed
    bad_id = np.zeros(parsed.rows, dtype=bool)
    for name in feed.id_columns:
        if name in parsed.columns:
            bad_id |= parsed.columns[name] < 0
    keyed = np.ones(parsed.rows, dtype=bool)
    parts = {}
    for k, name in enumerate(feed.key):
        values = parsed.columns[name]
        kind = feed.column(name).kind
        if kind == "id":
            keyed &= values >= 0
        elif kind == "area":
            keyed &= values > 0
        else:
            keyed &= pd.notna(values)
        parts[k] = pd.Series(values)
    repeated = pd.DataFrame(parts).duplicated(keep=False).to_numpy() & keyed
    for i in np.flatnonzero(repeated).tolist():
        parsed.flags.append((i + 1, None, "duplicate_key"))
    parsed.spoiled = bad_id | repeated
    parsed.usable = ~bad_id & keyed & ~repeated


def consistency(parsed: Parsed, month: int) -> None:
    """The feed-level consistency rules of feeds.md; values that break a range become null."""
    name = parsed.feed.name
    cols = parsed.columns
    flag = parsed.flags.append
    if name == "rural_roster":
        household = pd.Series(cols["户编号"])
        relation = pd.Series(cols["与户主关系"])
        head = relation.eq("户主")
        for i in np.flatnonzero((head & head.groupby(household).cumsum().gt(1)).to_numpy()).tolist():
            flag((i + 1, "与户主关系", "two_heads"))
        count = household.map(household.value_counts()).to_numpy()
        size = cols["家庭人口数"]
        for i in np.flatnonzero(~np.isnan(size) & (size != count)).tolist():
            flag((i + 1, "家庭人口数", "household_size_mismatch"))
        income = pd.Series(cols["家庭年纯收入"])
        reference = income.to_numpy()[reference_rows(household, head.to_numpy())]
        differs = income.notna().to_numpy() & ~np.isnan(reference) & (income.to_numpy() != reference)
        for i in np.flatnonzero(differs).tolist():
            flag((i + 1, "家庭年纯收入", "household_income_inconsistent"))
        key = cols["身份证号"]
        valid = key >= 0
        if "出生日期" in cols:
            birth = cols["出生日期"]
            ymd = (key // 1000) % 10**8
            known = birth != NO_DAY
            y, m, d = periods.ymd(np.where(known, birth, 0))
            mismatch = valid & known & (ymd != y * 10000 + m * 100 + d)
            for i in np.flatnonzero(mismatch).tolist():
                flag((i + 1, "出生日期", "id_birth_mismatch"))
        if "性别" in cols:
            sex = pd.Series(cols["性别"])
            male = (key % 10) % 2 == 1
            wrong = valid & ((sex.eq("男").to_numpy() & ~male) | (sex.eq("女").to_numpy() & male))
            for i in np.flatnonzero(wrong).tolist():
                flag((i + 1, "性别", "gender_mismatch"))
    elif name == "health_medical_claims":
        total = cols["医疗总费用"]
        parts = (cols["基本医保支付"] + np.nan_to_num(cols.get("大病保险支付", 0.0))
                 + np.nan_to_num(cols.get("医疗救助支付", 0.0)) + cols["个人自付"])
        off = ~np.isnan(total) & ~np.isnan(parts) & (np.abs(total - parts) > 0.01 + 1e-9)
        for i in np.flatnonzero(off).tolist():
            flag((i + 1, "医疗总费用", "claim_total_mismatch"))
        if "出院日期" in cols:
            visit, out = cols["就诊日期"], cols["出院日期"]
            for i in np.flatnonzero((visit != NO_DAY) & (out != NO_DAY) & (out < visit)).tolist():
                flag((i + 1, "出院日期", "discharge_before_admission"))
    elif name == "housing_village_environment":
        over = cols["卫生厕所户数"] > cols["总户数"]
        for i in np.flatnonzero(over).tolist():
            flag((i + 1, "卫生厕所户数", "toilets_exceed_households"))
    elif name == "water_supply":
        for i in np.flatnonzero(cols["自来水入户户数"] > cols["总户数"]).tolist():
            flag((i + 1, "自来水入户户数", "tap_exceeds_households"))
        outage = cols["本月断水天数"]
        bad = (outage < 0) | (outage > periods.days_in(month))
        for i in np.flatnonzero(bad).tolist():
            flag((i + 1, "本月断水天数", "outage_days_out_of_range"))
        outage[bad] = np.nan
    elif name == "housing_safety":
        odd = pd.Series(cols["鉴定等级"]).isin(["C", "D"]).to_numpy() & pd.Series(cols["改造状态"]).eq("无需改造").to_numpy()
        for i in np.flatnonzero(odd).tolist():
            flag((i + 1, "改造状态", "cd_house_no_rebuild_needed"))


def reference_rows(household: pd.Series, is_head: np.ndarray) -> np.ndarray:
    """For each row, the row that speaks for its household: the first 户主 row, else the first row."""
    n = len(household)
    index = pd.Series(np.arange(n))
    first = index.groupby(household.to_numpy()).transform("min").to_numpy()
    heads = pd.Series(np.where(is_head, np.arange(n), n)).groupby(household.to_numpy()).transform("min").to_numpy()
    return np.where(heads < n, heads, first)
