"""Readers turn a delivered file into a header mapping and a stream of text rows.

Nothing is interpreted here: values stay text exactly as delivered. Only the structure is checked
(can the file be decoded, is there a header, are the required columns there); a structural break
raises `DeliveryRejected`, naming the file, row and column so the department can act on it.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ruralwatch.feeds.headers import header_unit, normalise_header
from ruralwatch.feeds.registry import Feed

SNIFF_BYTES = 1 << 20
HEADER_SEARCH_ROWS = 10
# A zip whose members inflate past these is treated as hostile (a zip bomb), not opened.
XLSX_MAX_UNCOMPRESSED = 2 << 30
XLSX_MAX_RATIO = 200


class DeliveryRejected(Exception):
    """A structural break: the whole delivery is rejected (and kept, recorded, escalated)."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


@dataclass
class HeaderMap:
    headers: list[str]                  # as delivered
    columns: list[str | None]           # declared column name per position; None = extra column
    header_row: int                     # 1-based row of the header as a spreadsheet shows it
    extras: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)  # amount column → the unit its header names

    @property
    def has_extras(self) -> bool:
        return bool(self.extras)


def map_headers(feed: Feed, cells: list[str], header_row: int, file_name: str) -> HeaderMap:
    by_key = {normalise_header(c.header): c for c in feed.columns}
    headers = [("" if c is None else str(c)).strip() for c in cells]
    while headers and not headers[-1]:
        headers.pop()
    columns: list[str | None] = []
    extras: list[str] = []
    warnings: list[str] = []
    units: dict[str, str] = {}
    seen: dict[str, int] = {}
    for position, header in enumerate(headers, start=1):
        col = by_key.get(normalise_header(header))
        if col is None:
            columns.append(None)
            extras.append(header or f"(blank header, column {position})")
            continue
        if col.name in seen:
            raise DeliveryRejected(
                f"{file_name}: row {header_row}: column {col.header} appears twice "
                f"(columns {seen[col.name]} and {position}); which one to load is not for us to guess",
                row=header_row, column=col.header)
        seen[col.name] = position
        unit = header_unit(header)
        if col.type == "amount" and unit and unit not in {"元", "万元"}:
            raise DeliveryRejected(
                f"{file_name}: row {header_row}: column {header}: unit {unit!r} is not 元 or 万元",
                row=header_row, column=header)
        if col.type == "amount":
            units[col.name] = unit or col.unit
        columns.append(col.name)
    missing = [c.header for c in feed.required_columns if c.name not in seen]
    if missing:
        raise DeliveryRejected(
            f"{file_name}: row {header_row}: required column {'、'.join(missing)} is missing "
            f"(found: {'、'.join(h for h in headers if h)}). Ask {feed.owner} to re-deliver with every "
            "required column.",
            row=header_row, column=missing[0])
    if extras:
        warnings.append(f"unknown extra column(s) loaded into _extra (schema drift): {'、'.join(extras)}")
    return HeaderMap(headers, columns, header_row, extras, warnings, units)


def _looks_like_header(feed: Feed, cells: list) -> bool:
    keys = {normalise_header(c.header) for c in feed.columns}
    hits = sum(1 for c in cells if c is not None and normalise_header(str(c)) in keys)
    return hits >= min(2, len(feed.columns))


# -- CSV -------------------------------------------------------------------------------------------
@dataclass
class CsvSource:
    path: Path
    encoding: str          # python codec: utf-8, utf-8-sig or gb18030
    header: HeaderMap
    data_offset: int       # byte offset of the first data row

    @property
    def pg_encoding(self) -> str:
        return {"utf-8": "UTF8", "utf-8-sig": "UTF8", "gb18030": "GB18030"}[self.encoding]

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            handle.seek(self.data_offset)
            while chunk := handle.read(chunk_size):
                yield chunk

    def iter_rows(self) -> Iterator[tuple[int, list[str]]]:
        """(source row, cells) for each data row; blank lines are skipped but counted."""
        with open(self.path, "rb") as raw:
            raw.seek(self.data_offset)
            text = io.TextIOWrapper(raw, encoding=self.encoding, newline="", errors="strict")
            reader = csv.reader(text)
            row_number = self.header.header_row
            try:
                for cells in reader:
                    row_number += 1
                    if not cells or all(not c.strip() for c in cells):
                        continue
                    yield row_number, cells
            except UnicodeDecodeError as exc:
                raise DeliveryRejected(
                    f"{self.path.name}: row {row_number + 1}: bytes that are not valid {self.encoding} "
                    f"({exc.reason}); the file mixes encodings or is damaged",
                    row=row_number + 1) from exc
            except csv.Error as exc:
                raise DeliveryRejected(f"{self.path.name}: row {row_number + 1}: unreadable CSV ({exc})",
                                       row=row_number + 1) from exc


def detect_encoding(path: Path) -> str:
    with open(path, "rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in sample:
        raise DeliveryRejected(f"{path.name}: binary content (NUL bytes), not a CSV text file", row=1)
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        try:
            decoder.decode(sample, final=len(sample) < SNIFF_BYTES)
            return encoding
        except UnicodeDecodeError:
            continue
    raise DeliveryRejected(
        f"{path.name}: cannot be decoded as UTF-8 or GB18030/GBK; ask the department to export it again "
        "as CSV (UTF-8) or XLSX", row=1)


def open_csv(feed: Feed, path: Path) -> CsvSource:
    encoding = detect_encoding(path)
    with open(path, "rb") as handle:
        offset = 0
        for row in range(1, HEADER_SEARCH_ROWS + 1):
            line = handle.readline()
            if not line:
                break
            offset += len(line)
            try:
                text = line.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DeliveryRejected(f"{path.name}: row {row}: not valid {encoding}", row=row) from exc
            try:
                cells = next(csv.reader([text.lstrip("\ufeff")]), [])
            except csv.Error as exc:
                raise DeliveryRejected(f"{path.name}: row {row}: unreadable CSV ({exc})", row=row) from exc
            if _looks_like_header(feed, cells):
                header = map_headers(feed, [c.lstrip("\ufeff") for c in cells], row, path.name)
                return CsvSource(path, encoding, header, offset)
    if offset == 0:
        raise DeliveryRejected(f"{path.name}: the file is empty", row=1)
    raise DeliveryRejected(
        f"{path.name}: no header row in the first {HEADER_SEARCH_ROWS} rows; expected the Chinese headers "
        f"of {feed.title}, e.g. {'、'.join(c.header for c in feed.required_columns[:4])}", row=1)


# -- XLSX ------------------------------------------------------------------------------------------
@dataclass
class XlsxSource:
    path: Path
    header: HeaderMap
    width: int

    def iter_rows(self) -> Iterator[tuple[int, list[str | None], list[int]]]:
        """(source row, cells as text, positions of numeric cells) for each non-empty data row."""
        workbook = _open_workbook(self.path)
        try:
            sheet = workbook.worksheets[0]
            for row_number, values in enumerate(_sheet_rows(sheet, self.path), start=1):
                if row_number <= self.header.header_row:
                    continue
                if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                    continue
                cells: list[str | None] = []
                numeric: list[int] = []
                for position, value in enumerate(values):
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        numeric.append(position)
                    cells.append(cell_text(value))
                yield row_number, cells, numeric
        finally:
            workbook.close()


def cell_text(value) -> str | None:
    """An XLSX cell as the text a person sees in it; numbers keep every digit the file holds."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
            packed = sum(info.compress_size for info in archive.infolist()) or 1
    except zipfile.BadZipFile as exc:
        raise DeliveryRejected(f"{path.name}: not a readable XLSX workbook ({exc})", row=1) from exc
    if total > XLSX_MAX_UNCOMPRESSED or total / packed > XLSX_MAX_RATIO:
        raise DeliveryRejected(
            f"{path.name}: the workbook would inflate to {total:,} bytes from {packed:,} (a zip bomb or a "
            "damaged file); not opened", row=1)


def _sheet_rows(sheet, path: Path, max_row: int | None = None) -> Iterator[tuple]:
    """The sheet's rows as values, read as they are in the file.

    Read-only openpyxl trusts the sheet's own `<dimension>` record: a stale one silently drops the
    rows and columns outside it, and a forged one (A1:XFD1048576) pads every row to 16,384 cells,
    minutes of CPU for a tiny file. Without it, rows are exactly the cells the file holds. The sheet
    is parsed while it streams, so a damaged sheet (bad XML, a bad CRC, a zip entry that inflates past
    its declared size) only shows here; it is a structural break like any other.
    """
    sheet.reset_dimensions()
    row_number = 0
    try:
        for values in sheet.iter_rows(values_only=True, max_row=max_row):
            row_number += 1
            yield values
    except Exception as exc:  # openpyxl, zipfile, zlib and the XML parser each raise their own types
        # Say what broke, but not a cell's value (a ValueError quotes it): this reason reaches logs.
        detail = f": {exc}" if isinstance(exc, (zipfile.BadZipFile, zlib.error, SyntaxError, EOFError)) else ""
        raise DeliveryRejected(
            f"{path.name}: row {row_number + 1} of the first sheet is unreadable ({type(exc).__name__}{detail}); "
            "the workbook is damaged: ask the department to save it again as XLSX", row=row_number + 1) from exc


def _open_workbook(path: Path):
    import openpyxl

    _check_zip(path)
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise DeliveryRejected(f"{path.name}: not a readable XLSX workbook ({type(exc).__name__}: {exc})",
                               row=1) from exc


def open_xlsx(feed: Feed, path: Path) -> XlsxSource:
    workbook = _open_workbook(path)
    try:
        if not workbook.worksheets:
            raise DeliveryRejected(f"{path.name}: the workbook has no sheet", row=1)
        sheet = workbook.worksheets[0]
        for row_number, values in enumerate(_sheet_rows(sheet, path, max_row=HEADER_SEARCH_ROWS), start=1):
            if _looks_like_header(feed, list(values)):
                cells = [cell_text(v) for v in values]
                header = map_headers(feed, cells, row_number, path.name)
                return XlsxSource(path, header, len(header.headers))
    finally:
        workbook.close()
    raise DeliveryRejected(
        f"{path.name}: no header row in the first {HEADER_SEARCH_ROWS} rows of the first sheet; expected "
        f"the Chinese headers of {feed.title}, e.g. {'、'.join(c.header for c in feed.required_columns[:4])}",
        row=1)


# -- JSON lines (an assembled API delivery) --------------------------------------------------------
@dataclass
class JsonlSource:
    path: Path
    header: HeaderMap

    @property
    def encoding(self) -> str:
        return "json"

    def iter_rows(self) -> Iterator[tuple[int, list[str | None], list[int]]]:
        import json

        with open(self.path, encoding="utf-8") as handle:
            for row_number, line in enumerate(handle, start=1):
                item = json.loads(line)
                cells: list[str | None] = []
                numeric: list[int] = []
                for position, header in enumerate(self.header.headers):
                    value = item.get(header)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        numeric.append(position)
                    cells.append(cell_text(value))
                yield row_number, cells, numeric


def open_jsonl(feed: Feed, path: Path) -> JsonlSource:
    """Items are objects keyed by the Chinese field names; the header is every key seen."""
    import json

    keys: dict[str, None] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            keys.update(dict.fromkeys(json.loads(line)))
    # Row numbers count items from 1, so there is no header row: header_row 0.
    return JsonlSource(path, map_headers(feed, list(keys), 0, path.name))
