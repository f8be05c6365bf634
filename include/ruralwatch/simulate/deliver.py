"""Turning canonical rows into one delivered file: spellings, planted defects, accepted variants.

A feed builder yields Chunks of canonical columns; a Renderer spells them in the delivery's Style, plants
cell-level defects and variants, inserts duplicate rows, and records every planted thing with the row
number a spreadsheet would show (header and title rows counted) and its index among the data rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import ids as idlib
from . import periods, spellings
from .defects import Preset
from .schema import Column, Feed
from .spellings import NULL, XlDate

EXTRA_COLUMNS = ("备注", "数据来源", "更新时间", "经办人")


@dataclass
class Mark:
    """A planted defect or variant, at a row of a chunk (before the row's final position is known)."""
    index: int
    column: str | None
    cls: str
    detail: dict[str, Any] | None = None


@dataclass
class Chunk:
    data: dict[str, Any]                      # canonical columns by Chinese name
    n: int
    group: np.ndarray | None = None           # rows of one group (a household) get at most one defect
    plant: dict[str, np.ndarray] = field(default_factory=dict)  # per column: rows value defects may hit
    taken: np.ndarray | None = None           # rows that already carry a feed-specific defect
    marks: list[Mark] = field(default_factory=list)      # feed-specific defects already applied
    variants: list[Mark] = field(default_factory=list)   # feed-specific accepted variants
    unusable: int = 0                         # rows the feed itself already made unusable


@dataclass
class Style:
    fmt: str                                  # csv, xlsx or jsonl
    encoding: str | None
    title_rows: list[str]
    columns: list[str]                        # output order; may include an extra column, may lack one
    headers: dict[str, str]                   # column -> header text as written
    units: dict[str, str]                     # amount column -> unit its values are in
    date_form: str = "iso"
    month_form: str = "iso"
    amount_form: str = "fixed"
    yesno_form: tuple[str, str] = ("是", "否")
    null_form: str = ""
    school_year_form: str = "span"
    x_lower: bool = False
    zero_blank: bool = False                  # claims: a zero 大病保险支付/医疗救助支付 left blank

    def forms(self) -> dict[str, Any]:
        return {
            "date": self.date_form, "month": self.month_form, "amount": self.amount_form,
            "yesno": "/".join(self.yesno_form), "null": self.null_form, "school_year": self.school_year_form,
            "id_check_x": "x" if self.x_lower else "X", "zero_parts_blank": self.zero_blank,
        }


def choose_style(feed: Feed, fmt: str, encoding: str | None, rng: np.random.Generator, month: int,
                 drift: bool) -> Style:
    """How this delivery spells things: one convention per file, as exports from one system do."""
    xlsx = fmt == "xlsx"
    y, m = periods.year_month(month)
    titles: list[str] = []
    if xlsx:
        n_titles = int(rng.choice([0, 1, 2], p=[0.25, 0.5, 0.25]))
        titles = [feed.title.format(y=y, m=m), f"填报单位：示范市{feed.department}"][:n_titles]
    columns = [c.name for c in feed.columns]
    if rng.random() < 0.35:
        for _ in range(int(rng.integers(1, 4))):
            a, b = rng.integers(0, len(columns), 2)
            columns[a], columns[b] = columns[b], columns[a]
    if drift:
        columns.insert(int(rng.integers(0, len(columns) + 1)), EXTRA_COLUMNS[int(rng.integers(len(EXTRA_COLUMNS)))])
    unit_style = int(rng.choice(3, p=[0.4, 0.35, 0.25]))
    in_yuan = rng.random() < 0.15  # a 万元 column delivered in 元, its header saying so
    headers: dict[str, str] = {}
    units: dict[str, str] = {}
    for name in columns:
        header = name
        column = _column(feed, name)
        if column is not None and column.kind == "amount":
            unit = "元" if (column.unit == "万元" and in_yuan) else column.unit
            units[name] = unit
            if unit != column.unit or unit_style == 1:
                header = f"{name}({unit})"
            elif unit_style == 2:
                header = f"{name}（{unit}）"
        headers[name] = header
    if rng.random() < 0.05:
        spaced = columns[int(rng.integers(len(columns)))]
        headers[spaced] = " " + headers[spaced][0] + " " + headers[spaced][1:] + " "
    date_forms = spellings.DATE_FORMS + (spellings.XLSX_DATE_FORMS if xlsx else ())
    amount_forms = spellings.AMOUNT_FORMS + (("number", "number") if xlsx else ())
    return Style(
        fmt=fmt, encoding=encoding, title_rows=titles, columns=columns, headers=headers, units=units,
        date_form=str(rng.choice(date_forms)), month_form=str(rng.choice(spellings.MONTH_FORMS)),
        amount_form=str(rng.choice(amount_forms)),
        yesno_form=spellings.YESNO_FORMS[int(rng.choice(4, p=[0.6, 0.15, 0.1, 0.15]))],
        null_form=str(rng.choice(spellings.NULL_FORMS, p=[0.55, 0.05, 0.05, 0.03, 0.12, 0.1, 0.1])),
        school_year_form=str(rng.choice(spellings.SCHOOL_YEAR_FORMS, p=[0.7, 0.3])),
        x_lower=bool(rng.random() < 0.15), zero_blank=bool(rng.random() < 0.5),
    )


def api_style(feed: Feed, rng: np.random.Generator) -> Style:
    """The data-sharing platform serves typed JSON: numbers as numbers, nulls as null."""
    names = [c.name for c in feed.columns]
    return Style(fmt="jsonl", encoding="utf-8", title_rows=[], columns=names, headers={n: n for n in names},
                 units={c.name: c.unit for c in feed.columns if c.kind == "amount"}, date_form="iso",
                 month_form=str(rng.choice(["iso", "compact"])), amount_form="number", null_form="")


def _column(feed: Feed, name: str) -> Column | None:
    return next((c for c in feed.columns if c.name == name), None)


class Renderer:
    """Spells and damages the chunks of one delivery, and keeps the record of what it planted."""

    def __init__(self, feed: Feed, style: Style, preset: Preset, rng: np.random.Generator, month: int,
                 header_row: int) -> None:
        self.feed = feed
        self.style = style
        self.preset = preset
        self.rng = rng
        self.month = month
        self.period_end = periods.to_days(periods.last_day(month))
        self.header_row = header_row          # physical row of the header (0 for JSON lines)
        self.data_rows = 0
        self.defects: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.unusable_rows = 0

    # -- public -------------------------------------------------------------------------------
    def render(self, chunk: Chunk) -> list[list]:
        style = self.style
        cells = {name: self._spell(name, chunk) for name in style.columns}
        n = chunk.n
        taken = np.zeros(n, bool) if chunk.taken is None else chunk.taken.copy()
        groups_taken: set[int] = set()
        if chunk.group is not None and taken.any():
            groups_taken.update(np.unique(chunk.group[taken]).tolist())
        # A feed-specific mark on a column this delivery left out (missing_required_column) is gone with it.
        marks = [m for m in chunk.marks if m.column is None or m.column in style.columns]
        hit: set[tuple[int, str]] = {(m.index, m.column) for m in marks if m.column}
        budget = None
        if self.preset.unusable_cap is not None:
            budget = int(self.preset.unusable_cap * n) - chunk.unusable
        picker = _Picker(self.rng, taken, chunk.group, groups_taken, budget)
        marks += self._plant(chunk, cells, picker, hit)
        variants = [m for m in chunk.variants if m.column in style.columns] + self._variants(chunk, cells, hit)
        nulls = self._spell_nulls(cells, hit, variants)
        order, dup_marks = self._duplicates(chunk, picker)
        marks += dup_marks
        rows = list(zip(*[cells[name] for name in style.columns], strict=True))
        if len(order) != n:
            rows = [rows[i] for i in order]
        # Copies sit right after their originals, so order never decreases: the first occurrence of
        # chunk row i is where searchsorted puts it.
        position = np.searchsorted(np.asarray(order), np.arange(n))
        for mark in marks:
            detail = dict(mark.detail or {})
            pos = int(position[mark.index])
            if detail.pop("copy", False):
                detail["duplicate_of_row"] = self.header_row + self.data_rows + pos + 1
                pos += 1
            if "duplicate_of_index" in detail:
                detail["duplicate_of_row"] = (self.header_row + self.data_rows
                                              + int(position[detail.pop("duplicate_of_index")]) + 1)
            self._record(self.defects, pos, mark.column, mark.cls, rows, detail)
        copied = {int(i) for i in np.asarray(order)[np.flatnonzero(np.diff(np.r_[-1, order]) == 0)]}
        for mark in variants + nulls:
            pos = int(position[mark.index])
            self._record(self.accepted, pos, mark.column, mark.cls, rows, mark.detail)
            if mark.index in copied:  # the exported-twice row repeats its spellings too
                self._record(self.accepted, pos + 1, mark.column, mark.cls, rows, mark.detail)
        self.unusable_rows += picker.unusable + chunk.unusable
        self.data_rows += len(rows)
        return rows

    # -- spelling -----------------------------------------------------------------------------
    def _spell(self, name: str, chunk: Chunk) -> list:
        style = self.style
        column = _column(self.feed, name)
        n = chunk.n
        if column is None:  # schema drift: an export added a column of its own
            return [("系统导出" if name == "数据来源" else None) for _ in range(n)]
        values = chunk.data[name]
        kind = column.kind
        native = style.fmt in ("xlsx", "jsonl")
        if kind == "id":
            out = spellings.ids(values)
            if style.x_lower:
                out = [v[:-1] + "x" if v and v.endswith("X") else v for v in out]
            return out
        if kind in ("text", "enum", "phone"):
            return [v if v else None for v in values]
        if kind == "area":
            return spellings.area_codes(values)
        if kind == "date":
            return spellings.dates(values, style.date_form)
        if kind == "month":
            return spellings.months(values, style.month_form)
        if kind in ("year", "int"):
            return spellings.integers(values, native=native)
        if kind == "school_year":
            return spellings.school_year(values, style.school_year_form)
        if kind == "yesno":
            return spellings.yesno(values, style.yesno_form)
        if kind == "amount":
            values = np.asarray(values, dtype=np.int64)
            if style.units.get(name) != column.unit:  # delivered in 元 though the spec's unit is 万元
                values = np.where(values == NULL, NULL, values * 10_000)
            out = spellings.amounts(values, style.amount_form)
            if style.zero_blank and name in ("大病保险支付", "医疗救助支付"):
                out = [None if v in ("0", "0.00", "0.00元", 0.0) else v for v in out]
            return out
        raise ValueError(f"unknown column kind {kind!r}")

    def _spell_nulls(self, cells: dict[str, list], hit: set[tuple[int, str]], variants: list[Mark]) -> list[Mark]:
        """Nulls in the file's null spelling, with a few cells spelt another accepted way."""
        style = self.style
        token = None if (style.fmt != "csv" and style.null_form == "") or style.fmt == "jsonl" else style.null_form
        rate = self.preset.variants.get("null_form", 0.0) if style.fmt != "jsonl" else 0.0
        marks: list[Mark] = []
        others = [f for f in spellings.NULL_FORMS if f != style.null_form]
        for name, values in cells.items():
            nulls = [i for i, v in enumerate(values) if v is None]
            if not nulls:
                continue
            for i in nulls:
                values[i] = token
            if rate and _column(self.feed, name) is not None:
                mask = np.zeros(len(values), bool)
                mask[nulls] = True
                for i in self._sample(mask, rate, name, hit):
                    if (i, name) in hit:
                        continue
                    form = others[int(self.rng.integers(len(others)))]
                    values[i] = form if form or style.fmt == "csv" else None
                    marks.append(Mark(i, name, "null_form", {"form": form or "blank"}))
        return marks

    # -- accepted variants --------------------------------------------------------------------
    def _variants(self, chunk: Chunk, cells: dict[str, list], hit: set[tuple[int, str]]) -> list[Mark]:
        rates = self.preset.variants
        style = self.style
        marks: list[Mark] = []
        for name in style.columns:
            column = _column(self.feed, name)
            if column is None or column.kind not in ("id", "date", "month", "amount", "yesno"):
                continue
            values = cells[name]
            raw = chunk.data[name]
            if column.kind == "id":
                marks += self._id_variants(name, values, _id_bytes(raw), hit, rates)
                continue
            if style.fmt == "jsonl" and column.kind != "month":
                continue
            raw = np.asarray(raw, dtype=np.int64)
            present = (raw != NULL) if column.kind in ("amount", "date") else (raw >= 0)
            if column.kind == "date":
                forms = [f for f in spellings.DATE_FORMS + (spellings.XLSX_DATE_FORMS if style.fmt == "xlsx" else ())
                         if f != style.date_form]
                for i in self._sample(present, rates.get("date_form", 0.0), name, hit):
                    form = forms[int(self.rng.integers(len(forms)))]
                    values[i] = spellings.date_text(int(raw[i]), form)
                    marks.append(Mark(i, name, "date_form", {"form": form}))
            elif column.kind == "month":
                forms = [f for f in spellings.MONTH_FORMS if f != style.month_form]
                for i in self._sample(present, rates.get("month_form", 0.0), name, hit):
                    form = forms[int(self.rng.integers(len(forms)))]
                    values[i] = spellings.month_text(int(raw[i]), form)
                    marks.append(Mark(i, name, "month_form", {"form": form}))
            elif column.kind == "amount":
                forms = [f for f in spellings.AMOUNT_FORMS if f != style.amount_form]
                scale = 10_000 if style.units.get(name) != column.unit else 1
                present &= np.array([v is not None for v in values], dtype=bool)  # zero parts left blank
                for i in self._sample(present, rates.get("amount_form", 0.0), name, hit):
                    form = forms[int(self.rng.integers(len(forms)))]
                    values[i] = spellings.amount_text(int(raw[i]) * scale, form)
                    marks.append(Mark(i, name, "amount_form", {"form": form}))
            else:
                forms = [f for f in spellings.YESNO_FORMS if f != style.yesno_form]
                for i in self._sample(present, rates.get("yesno_form", 0.0), name, hit):
                    form = forms[int(self.rng.integers(len(forms)))]
                    values[i] = form[0] if raw[i] == 1 else form[1]
                    marks.append(Mark(i, name, "yesno_form", {"form": "/".join(form)}))
        return marks

    def _id_variants(self, name: str, values: list, raw: np.ndarray, hit: set[tuple[int, str]],
                     rates: dict[str, float]) -> list[Mark]:
        """Accepted ID spellings, only on canonical 18-character IDs (not on partial caller IDs)."""
        marks: list[Mark] = []
        valid = (np.char.str_len(raw) == 18) & (np.char.find(raw, b"*") < 0)
        ends_x = valid & np.char.endswith(raw, b"X")
        born_1900s = valid & np.char.endswith(raw.astype("S8"), b"19")
        used = np.zeros(len(raw), bool)
        if not self.style.x_lower:
            for i in self._sample(ends_x, rates.get("id_lower_x", 0.0), name, hit):
                values[i] = values[i][:-1] + "x"
                used[i] = True
                marks.append(Mark(i, name, "id_lower_x"))
        for i in self._sample(born_1900s & ~used, rates.get("id_15_digit", 0.0), name, hit):
            values[i] = idlib.to_legacy15(values[i])
            used[i] = True
            marks.append(Mark(i, name, "id_15_digit", {"note": "usable: upgraded to 18 digits and flagged as a note"}))
        if self.style.fmt == "jsonl":
            return marks
        for i in self._sample(valid & ~used, rates.get("id_fullwidth", 0.0), name, hit):
            values[i] = idlib.fullwidth(values[i].upper())
            used[i] = True
            marks.append(Mark(i, name, "id_fullwidth"))
        for i in self._sample(valid & ~used, rates.get("id_spaces", 0.0), name, hit):
            pad = int(self.rng.integers(1, 4))
            values[i] = " " * pad + values[i] + (" " if pad != 2 else "")
            marks.append(Mark(i, name, "id_spaces"))
        return marks

    # -- defects ------------------------------------------------------------------------------
    def _plant(self, chunk: Chunk, cells: dict[str, list], picker: _Picker,
               hit: set[tuple[int, str]]) -> list[Mark]:
        feed, style, preset = self.feed, self.style, self.preset
        marks: list[Mark] = []
        for name in style.columns:
            column = _column(feed, name)
            if column is None or (column.kind != "id" and not column.plant):
                continue
            values = cells[name]
            present = np.array([v is not None for v in values], dtype=bool)
            allowed = present & chunk.plant.get(name, np.ones(chunk.n, bool))
            if column.kind == "id":
                marks += self._plant_ids(name, values, allowed, picker)
            elif column.kind == "area":
                for i in picker.pick(allowed, preset.rate("area_unknown")):
                    values[i] = _unknown_area(values[i], self.rng)
                    marks.append(Mark(i, name, "area_unknown"))
                if feed.area_level == "village":
                    for i in picker.pick(allowed, preset.rate("area_wrong_level")):
                        values[i] = values[i][:6] if self.rng.random() < 0.5 else values[i][:9]
                        marks.append(Mark(i, name, "area_wrong_level"))
            elif column.kind == "date":
                for i in picker.pick(allowed, preset.rate("date_impossible")):
                    values[i] = _impossible_date(self.rng, self.month, style.date_form)
                    marks.append(Mark(i, name, "date_impossible"))
                if column.event:
                    days = np.asarray(chunk.data[name])
                    for i in picker.pick(allowed, preset.rate("date_future")):
                        future = self.period_end + int(self.rng.integers(1, 60))
                        values[i] = spellings.date_text(future, style.date_form)
                        marks.append(Mark(i, name, "date_future", {"true_value": periods.from_days(int(days[i])).isoformat()}))
            elif column.kind == "month":
                for i in picker.pick(allowed, preset.rate("month_impossible")):
                    y = periods.year_month(self.month)[0]
                    values[i] = {"iso": f"{y}-13", "compact": f"{y}13", "cn": f"{y}年13月"}[style.month_form]
                    marks.append(Mark(i, name, "month_impossible"))
            elif column.kind == "amount":
                raw = np.asarray(chunk.data[name], dtype=np.int64)
                for i in picker.pick(allowed & (raw > 0), preset.rate("amount_negative")):
                    scale = 10_000 if style.units.get(name) != column.unit else 1
                    values[i] = spellings.amount_text(-int(raw[i]) * scale, style.amount_form)
                    marks.append(Mark(i, name, "amount_negative"))
            elif column.kind == "text" and column.required and name not in feed.key:
                for i in picker.pick(allowed, preset.rate("required_value_missing")):
                    values[i] = None
                    marks.append(Mark(i, name, "required_value_missing"))
        hit.update((m.index, m.column) for m in marks if m.column)
        return marks

    def _plant_ids(self, name: str, values: list, allowed: np.ndarray, picker: _Picker) -> list[Mark]:
        preset, style = self.preset, self.style
        marks: list[Mark] = []
        spoils = name in self.feed.id_columns
        digits = np.array([bool(v) and v[-1].isdigit() for v in values], dtype=bool)
        plans = [("id_bad_check", allowed)]
        if style.fmt == "csv":
            plans.append(("id_scientific", allowed & digits))
        elif style.fmt == "xlsx":
            plans.append(("id_numeric_cell", allowed & digits))
        for cls, mask in plans:
            for i in picker.pick(mask, preset.rate(cls), spoils_row=spoils):
                true = values[i]
                if cls == "id_bad_check":
                    values[i] = idlib.wrong_check(true, int(self.rng.integers(10)))
                elif cls == "id_scientific":
                    values[i] = idlib.scientific(true)
                else:
                    values[i] = idlib.as_number(true)
                marks.append(Mark(i, name, cls, {"true_value": true}))
        return marks

    def _duplicates(self, chunk: Chunk, picker: _Picker) -> tuple[list[int], list[Mark]]:
        """A few rows exported twice (the copy right after the original); both rows are unusable."""
        order = list(range(chunk.n))
        if self.feed.name == "rural_roster":  # the roster's duplicates are planted by its builder
            return order, []
        picks = sorted(picker.pick(np.ones(chunk.n, bool), self.preset.rate("duplicate_key"), spoils_row=True,
                                   rows_spoiled=2))
        marks = []
        for k, i in enumerate(picks):
            order.insert(i + k + 1, i)
            marks.append(Mark(i, None, "duplicate_key", {"copy": True}))
        return order, marks

    # -- bookkeeping --------------------------------------------------------------------------
    def _record(self, into: list, position: int, column: str | None, cls: str, rows: list[list],
                detail: dict | None) -> None:
        data_row = self.data_rows + position + 1
        entry: dict[str, Any] = {"row": self.header_row + data_row, "data_row": data_row, "column": column,
                                 "class": cls}
        if column is not None and column in self.style.columns:
            entry["value"] = _as_text(rows[position][self.style.columns.index(column)], self.style.fmt)
        if detail:
            entry.update({k: v for k, v in detail.items() if k != "copy"})
        into.append(entry)

    def _sample(self, mask: np.ndarray, rate: float, column: str | None = None,
                hit: set[tuple[int, str]] | None = None) -> list[int]:
        """Cells for a variant: each eligible cell with probability `rate`, none already damaged."""
        if rate <= 0:
            return []
        candidates = np.flatnonzero(mask)
        if not len(candidates):
            return []
        k = int(self.rng.binomial(len(candidates), min(rate, 1.0)))
        if not k:
            return []
        chosen = sorted(self.rng.choice(candidates, size=k, replace=False).tolist())
        if hit:
            chosen = [i for i in chosen if (i, column) not in hit]
        return chosen


class _Picker:
    """Chooses rows for defects: one defect per row (and per group), spoiled rows within a budget."""

    def __init__(self, rng: np.random.Generator, taken: np.ndarray, group: np.ndarray | None,
                 groups_taken: set[int], budget: int | None) -> None:
        self.rng = rng
        self.taken = taken
        self.group = group
        self.groups_taken = groups_taken
        self.budget = budget
        self.unusable = 0

    def pick(self, mask: np.ndarray, rate: float, spoils_row: bool = False, rows_spoiled: int = 1) -> list[int]:
        if rate <= 0:
            return []
        candidates = np.flatnonzero(mask & ~self.taken)
        if not len(candidates):
            return []
        k = int(self.rng.binomial(len(candidates), min(rate, 1.0)))
        if spoils_row and self.budget is not None:
            k = min(k, max(self.budget - self.unusable, 0) // rows_spoiled)
        if not k:
            return []
        chosen = []
        for i in self.rng.permutation(candidates).tolist():
            if len(chosen) == k:
                break
            if self.group is not None:
                g = int(self.group[i])
                if g in self.groups_taken:
                    continue
                self.groups_taken.add(g)
            self.taken[i] = True
            chosen.append(i)
        if spoils_row:
            self.unusable += len(chosen) * rows_spoiled
        return sorted(chosen)


def _as_text(value: Any, fmt: str) -> Any:
    """A cell as the manifest shows it: text as written; typed XLSX cells say what they are."""
    if fmt == "jsonl" or isinstance(value, str) or value is None:
        return value
    if isinstance(value, XlDate):
        return {"xlsx_date_cell": periods.from_days(value.days).isoformat()}
    return {"xlsx_number": value}


def _id_bytes(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "S":
        return values
    return np.array([(v or "").encode() for v in values], dtype="S18")


def _unknown_area(code: str, rng: np.random.Generator) -> str:
    """A 12-digit code that is not in the reference: a village or town number no one assigned."""
    if rng.random() < 0.5 and code[9:] != "000":
        return code[:9] + f"{int(rng.integers(900, 1000)):03d}"
    return code[:6] + f"{int(rng.integers(900, 1000)):03d}" + code[9:]


def _impossible_date(rng: np.random.Generator, month: int, form: str) -> str:
    y = periods.year_month(month)[0]
    m, d = [(2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31), (13, 1), (0, 15)][int(rng.integers(8))]
    if form in ("slash",):
        return f"{y}/{m}/{d}"
    if form == "compact":
        return f"{y:04d}{m:02d}{d:02d}"
    if form == "cn":
        return f"{y}年{m}月{d}日"
    return f"{y:04d}-{m:02d}-{d:02d}"
