"""Byte-for-byte reproducible CSV and XLSX files, written row by row.

The XLSX writer is a minimal SpreadsheetML package written by hand rather than with openpyxl: openpyxl's
write-only mode is about fifteen times slower (a million-row roster would take minutes) and stamps the
zip entries and document properties with the wall clock, so the same seed would not give the same bytes.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

from .spellings import EXCEL_EPOCH_OFFSET, XlDate

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_STATIC_PARTS = {
    "[Content_Types].xml": _XML + (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.styles+xml"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.'
        'core-properties+xml"/>'
        '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'extended-properties+xml"/></Types>'),
    "_rels/.rels": _XML + (
        f'<Relationships xmlns="{_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        f'<Relationship Id="rId2" Type="{_PKG_REL}/metadata/core-properties" Target="docProps/core.xml"/>'
        f'<Relationship Id="rId3" Type="{_REL}/extended-properties" Target="docProps/app.xml"/>'
        '</Relationships>'),
    "docProps/app.xml": _XML + (
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        '<Application>Microsoft Excel</Application></Properties>'),
    "xl/workbook.xml": _XML + (
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": _XML + (
        f'<Relationships xmlns="{_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'),
    # Style 0 plain, 1 a date cell (yyyy-mm-dd), 2 the bold title.
    "xl/styles.xml": _XML + (
        f'<styleSheet xmlns="{_MAIN}">'
        '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="宋体"/></font>'
        '<font><b/><sz val="14"/><name val="宋体"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '</styleSheet>'),
}


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _escape(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


class CsvSink:
    """A CSV delivery. GBK/GB18030 exports come from Windows Excel, so they end lines with CRLF."""

    def __init__(self, path: Path, encoding: str) -> None:
        self.path = path
        newline = "\r\n" if encoding in ("gbk", "gb18030", "utf-8-sig") else "\n"
        self._handle = path.open("w", encoding=encoding, newline="")
        self._writer = csv.writer(self._handle, lineterminator=newline)
        self.rows_written = 0

    def title(self, lines: list[str]) -> None:
        raise ValueError("CSV deliveries have no title rows")

    def header(self, names: list[str]) -> None:
        self._writer.writerow(names)
        self.rows_written += 1

    def rows(self, rows: list[list]) -> None:
        self._writer.writerows(rows)
        self.rows_written += len(rows)

    def close(self) -> None:
        self._handle.close()


class XlsxSink:
    """An XLSX delivery: first sheet, optional title rows, then the header, then data rows."""

    def __init__(self, path: Path, created: dt.datetime, author: str) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        for name, text in _STATIC_PARTS.items():
            self._put(name, text)
        stamp = created.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._put("docProps/core.xml", _XML + (
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
            'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/'
            'terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dc:creator>{_escape(author)}</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
            '</cp:coreProperties>'))
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        self._sheet = self._zip.open(info, "w", force_zip64=True)
        self._sheet.write((_XML + f'<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><sheetData>').encode())
        self.rows_written = 0
        self._letters = [column_letter(i) for i in range(64)]
        self._merges: list[str] = []
        self._width = 1

    def _put(self, name: str, text: str) -> None:
        info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        self._zip.writestr(info, text.encode())

    def title(self, lines: list[str]) -> None:
        for line in lines:
            r = self.rows_written + 1
            self._sheet.write(f'<row r="{r}"><c r="A{r}" s="2" t="inlineStr"><is><t>{_escape(line)}</t></is>'
                              '</c></row>'.encode())
            self._merges.append(r)
            self.rows_written += 1

    def header(self, names: list[str]) -> None:
        self._width = len(names)
        self.rows([names])

    def rows(self, rows: list[list]) -> None:
        letters = self._letters
        out = []
        r = self.rows_written
        for row in rows:
            r += 1
            cells = []
            for i, value in enumerate(row):
                if value is None:
                    continue
                ref = f"{letters[i]}{r}"
                if isinstance(value, str):
                    cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_escape(value)}</t></is></c>')
                elif isinstance(value, XlDate):
                    cells.append(f'<c r="{ref}" s="1"><v>{value.days + EXCEL_EPOCH_OFFSET}</v></c>')
                else:
                    cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
            out.append(f'<row r="{r}">{"".join(cells)}</row>')
        self._sheet.write("".join(out).encode())
        self.rows_written = r

    def close(self) -> None:
        tail = "</sheetData>"
        if self._merges:
            last = self._letters[max(self._width - 1, 0)]
            refs = "".join(f'<mergeCell ref="A{r}:{last}{r}"/>' for r in self._merges)
            tail += f'<mergeCells count="{len(self._merges)}">{refs}</mergeCells>'
        self._sheet.write((tail + "</worksheet>").encode())
        self._sheet.close()
        self._zip.close()


def corrupt(data: bytes, kind: str) -> bytes:
    """A structurally broken copy: a truncated zip (unreadable), or bytes no declared encoding decodes."""
    if kind == "unreadable_file":
        return data[: max(len(data) // 3, 30)]
    if kind == "undecodable_file":
        out = io.BytesIO()
        for i, line in enumerate(data.split(b"\n")):
            out.write(line + (b"\xff\xfe" if i % 3 == 1 else b"") + b"\n")
        return out.getvalue()
    raise ValueError(kind)
