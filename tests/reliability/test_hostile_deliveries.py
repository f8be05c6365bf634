"""Hostile deliveries through `pipeline.load_feed`, what an ingest DAG's load task runs.

Every one must end as a clear rejection, recorded in raw.deliveries with its reason and escalated
(dq.escalations, kind rejected_delivery), never as a crash of the run; and the warehouse must be
intact afterwards: the ledger there, another feed's batch untouched, no half-made batch table.
SQL in names, headers and cells must be stored as the text it is.
"""
from __future__ import annotations

import datetime as dt
import os
import random
import re
import struct
import time
import zipfile
import zlib
from pathlib import Path

import psycopg
import pytest

from tests.deliveries import sample_rows, write_csv, write_xlsx

pytestmark = pytest.mark.integration

ROSTER = "rural_roster"
DEATHS = "civil_affairs_deaths"
MONTH = dt.date(2026, 11, 1)
CSV = "rural_roster_202611.csv"
XLSX = "rural_roster_202611.xlsx"
INJECTION = "'); drop table raw.deliveries; --"


# -- building hostile files ----------------------------------------------------------------------------
def _rewrite_sheet(path: Path, change) -> None:
    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members:
            target.writestr(name, change(data) if name == "xl/worksheets/sheet1.xml" else data)


def _local_header(name: bytes, crc: int, packed: int, size: int, method: int) -> bytes:
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, packed, size, len(name), 0) + name


def _central_header(name: bytes, crc: int, packed: int, size: int, method: int, offset: int) -> bytes:
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, packed, size,
                       len(name), 0, 0, 0, 0, 0, offset) + name


def xlsx_bomb(path: Path, inflated_mib: int = 2047, declared_mib: int | None = None) -> None:
    """A valid workbook whose sheet inflates to `inflated_mib` MiB of whitespace from about 1/1000 of it.

    The deflate stream is one full-flushed 1 MiB block repeated: cheap to make, a real bomb to open.
    `declared_mib` makes the zip's headers lie about the sheet's size (a bomb that hides from a size check).
    """
    write_xlsx(path, sample_rows())
    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    prefix = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
              b'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>')
    suffix = b"</sheetData></worksheet>"
    block = b" " * (1 << 20)

    def flushed(data: bytes) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)

    repeated = flushed(block)
    packed = flushed(prefix) + repeated * inflated_mib + flushed(suffix) + b"\x03\x00"  # an empty final block
    crc = zlib.crc32(prefix)
    for _ in range(inflated_mib):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + len(suffix) + (inflated_mib << 20)
    if declared_mib is not None:
        size = declared_mib << 20
    with open(path, "wb") as out:
        central = b""
        for name, data in members:
            offset = out.tell()
            if name == "xl/worksheets/sheet1.xml":
                entry = (name.encode(), crc, len(packed), size, 8)
                body = packed
            else:
                entry = (name.encode(), zlib.crc32(data), len(data), len(data), 0)
                body = data
            out.write(_local_header(*entry) + body)
            central += _central_header(*entry, offset)
        start = out.tell()
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0))


def _roster_csv(folder: Path, rows: list[dict] | None = None, name: str = CSV) -> Path:
    return write_csv(folder / name, rows or sample_rows())


def case_sql_in_the_file_name(folder: Path, outside: Path) -> str:
    """SQL in the file name: rural_roster_202611'); drop table raw.deliveries; --.csv"""
    _roster_csv(folder, name=f"rural_roster_202611{INJECTION}.csv")
    return "does not parse"


def case_path_traversal_in_the_file_name(folder: Path, outside: Path) -> str:
    """../ traversal in names: rural_roster_202611..\\..\\..\\etc\\passwd.csv and the same with U+2215 slashes"""
    # '/' cannot be in a name; a Windows path and a look-alike slash can, and reach no other folder.
    _roster_csv(folder, name="rural_roster_202611..\\..\\..\\etc\\passwd.csv")
    _roster_csv(folder, name="rural_roster_202611\u2215..\u2215..\u2215etc\u2215passwd.csv")
    return "does not parse"


def case_feed_folder_symlinked_elsewhere(folder: Path, outside: Path) -> str:
    """the feed folder is a symlink to a folder outside the landing, holding a valid roster"""
    folder.rmdir()
    _roster_csv(outside)
    folder.symlink_to(outside, target_is_directory=True)
    return "symbolic link"


def case_file_symlinked_to_a_system_file(folder: Path, outside: Path) -> str:
    """rural_roster_202611.csv is a symlink to /etc/passwd"""
    (folder / CSV).symlink_to("/etc/passwd")
    return "symbolic link"


def case_50_mb_single_line(folder: Path, outside: Path) -> str:
    """a valid roster followed by one 50 MB line"""
    path = _roster_csv(folder)
    with open(path, "ab") as handle:
        handle.write(b"A" * (50 << 20) + b"\r\n")
    return "field larger than field limit"


def case_50_mb_first_line(folder: Path, outside: Path) -> str:
    """a file whose first line is 50 MB (no header can be found in it)"""
    (folder / CSV).write_bytes(b"A" * (50 << 20) + b"\r\n")
    return "row 1: unreadable CSV"


def case_1_mb_cell(folder: Path, outside: Path) -> str:
    """a valid roster with a 1 MB 姓名 cell"""
    rows = sample_rows()
    rows[3]["姓名"] = "名" * (1 << 20)
    _roster_csv(folder, rows)
    return "row 5: unreadable CSV (field larger than field limit"


def case_binary_csv(folder: Path, outside: Path) -> str:
    """200 KB of random bytes as a .csv"""
    (folder / CSV).write_bytes(random.Random(9).randbytes(200_000))
    return "binary content"


def case_nul_byte_past_the_first_mib(folder: Path, outside: Path) -> str:
    """a valid 1.4 MB roster with a NUL byte in a cell of its last row (past the encoding sniff)"""
    path = _roster_csv(folder, sample_rows() * 5000)
    with open(path, "ab") as handle:
        handle.write("HH9,990101196503041030,990101196503041030,张\x00伟\r\n".encode())
    return "a NUL byte"


def case_binary_xlsx(folder: Path, outside: Path) -> str:
    """200 KB of random bytes as an .xlsx"""
    (folder / XLSX).write_bytes(random.Random(7).randbytes(200_000))
    return "not a readable XLSX"


def case_xlsx_zip_bomb(folder: Path, outside: Path) -> str:
    """a 2 MB .xlsx whose sheet inflates to 2 GiB"""
    xlsx_bomb(folder / XLSX)
    return "zip bomb"


def case_xlsx_zip_bomb_with_lying_sizes(folder: Path, outside: Path) -> str:
    """a 1 MB .xlsx whose sheet inflates to 1 GiB while its zip headers declare 1 MiB"""
    xlsx_bomb(folder / XLSX, inflated_mib=1024, declared_mib=1)
    return "BadZipFile: Bad CRC-32"


def case_xlsx_damaged_sheet_xml(folder: Path, outside: Path) -> str:
    """an .xlsx whose sheet XML breaks off after 500 rows"""
    path = write_xlsx(folder / XLSX, sample_rows() * 40)
    _rewrite_sheet(path, lambda xml: xml[: len(xml) - 400] + b"<<<not xml")
    return "unreadable (ParseError"


def case_xlsx_forged_dimension(folder: Path, outside: Path) -> str:
    """a 6 KB .xlsx declaring A1:XFD1048576 with one cell at XFD1048576"""
    # A tiny file declaring the largest sheet there is: read-only openpyxl padded every row to 16,384
    # cells for a million rows, four minutes of CPU.
    path = write_xlsx(folder / XLSX, sample_rows())
    far = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    _rewrite_sheet(path, lambda xml: re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:XFD1048576"/>',
                                            xml).replace(b"</sheetData>", far))
    return "16384 cells under a header of 18 columns"


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}


# -- the warehouse before and after ------------------------------------------------------------------------
@pytest.fixture()
def warehouse_with_another_feed(warehouse, tmp_path):
    """A warehouse holding a loaded deaths batch, the other feed that must not notice anything."""
    from ruralwatch import pipeline

    landing = tmp_path / "landing"
    rows = [{"身份证号": r["身份证号"], "姓名": r["姓名"], "死亡日期": "2026-11-03", "行政区划代码": r["行政区划代码"]}
            for r in sample_rows()[:3]]
    write_csv(landing / DEATHS / "civil_affairs_deaths_202611.csv", rows)
    assert [o["status"] for o in pipeline.load_feed(DEATHS, MONTH, landing)] == ["loaded"]
    return warehouse, landing


def state(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return {
            "deaths": conn.execute("select batch_id, status, row_count from raw.deliveries where feed = %s",
                                   (DEATHS,)).fetchall(),
            "deaths_rows": conn.execute("select count(*) from raw.civil_affairs_deaths").fetchone()[0],
            "roster_rows": conn.execute("select count(*) from raw.rural_roster").fetchone()[0],
            "roster_batch_tables": conn.execute(
                "select count(*) from pg_class where relnamespace = 'raw'::regnamespace "
                "and relname like 'rural\\_roster\\_\\_rows\\_%'").fetchone()[0],
            "ledgers": conn.execute(
                "select to_regclass('raw.deliveries') is not null, to_regclass('raw.rural_roster__rows') is not null, "
                "to_regclass('raw.civil_affairs_deaths__rows') is not null, to_regclass('dq.escalations') is not null"
            ).fetchone(),
        }


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_delivery_is_rejected_recorded_escalated_and_harmless(warehouse_with_another_feed, tmp_path, case,
                                                                      record_property):
    """A hostile roster delivery.

    Tried: a hostile file in the roster's landing folder (each case says which), then
    `pipeline.load_feed("rural_roster", 2026-11)`.
    Held: no exception, a rejection naming why, in raw.deliveries and escalated (rejected_delivery); nothing
    loaded, no batch table left; the ledger and another feed's batch untouched; nothing outside the
    landing folder read into the archive.
    """
    from ruralwatch import pipeline

    record_property("tried", f"{CASES[case].__doc__}; then pipeline.load_feed(rural_roster, 2026-11)")

    url, landing = warehouse_with_another_feed
    before = state(url)
    folder = landing / ROSTER
    folder.mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    expected = CASES[case](folder, outside)

    started = time.monotonic()
    outcomes = pipeline.load_feed(ROSTER, MONTH, landing)
    seconds = time.monotonic() - started
    assert outcomes and all(o["status"] == "rejected" for o in outcomes), outcomes
    assert all(expected in o["reason"] for o in outcomes), [o["reason"] for o in outcomes]
    assert seconds < 60, f"{case} took {seconds:.0f}s to reject"

    with psycopg.connect(url) as conn:
        recorded = conn.execute("select file_name, status, reason, archive_path from raw.deliveries "
                                "where feed = %s order by file_name", (ROSTER,)).fetchall()
        escalated = conn.execute("select status, sample from dq.escalations where kind = 'rejected_delivery' "
                                 "and feed = %s", (ROSTER,)).fetchall()
    assert sorted(o["file"] for o in outcomes) == [r[0] for r in recorded]
    assert all(status == "rejected" and expected in reason for _, status, reason, _ in recorded)
    archive = Path(os.environ["RURALWATCH_ARCHIVE"]).resolve()
    for _, _, _, archive_path in recorded:
        assert archive_path is None or Path(archive_path).resolve().is_relative_to(archive)
    if "symlink" in case:
        assert all(archive_path is None for *_, archive_path in recorded), "a file outside the landing was archived"
    assert len(escalated) == 1 and escalated[0][0] == "open"
    assert {item["文件"] for item in escalated[0][1]} <= {o["file"] for o in outcomes}

    after = state(url)
    assert after == {**before, "roster_rows": 0, "roster_batch_tables": 0}
    assert after["ledgers"] == (True,) * 4
    record_property("held", f"rejected: “{outcomes[0]['reason'][:110]}…”; recorded, escalated, nothing loaded, "
                            "the rest of the warehouse untouched; a re-run sees it and changes nothing")
    assert pipeline.load_feed(ROSTER, MONTH, landing) == [dict(o, status="seen", rows=0, warnings=[],
                                                               reason="already recorded as rejected",
                                                               data_month=None)
                                                          for o in outcomes]


def test_sql_and_quotes_in_headers_and_cells_are_stored_as_text(warehouse_with_another_feed):
    """SQL in headers and cells.

    Tried: a roster whose cells hold `'); drop table raw.deliveries; --`, `$$; drop schema raw cascade; $$`
    and quotes, with an extra column headed `恶意"列); drop table raw.deliveries; --`, through load_feed
    and the quality gate.
    Held: the batch loaded and was gated; every value is stored verbatim (the extra column in _extra under
    its own name); raw.deliveries, raw and the other feed are all still there.
    """
    from ruralwatch import pipeline

    url, landing = warehouse_with_another_feed
    header = '恶意"列); drop table raw.deliveries; --'
    rows = [dict(r, 姓名=INJECTION, 户类型="$$; drop schema raw cascade; $$", **{header: 'x"$$y'})
            for r in sample_rows()]
    write_csv(landing / ROSTER / CSV, rows)
    before = state(url)
    outcomes = pipeline.load_feed(ROSTER, MONTH, landing)
    assert [(o["status"], o["rows"]) for o in outcomes] == [("loaded", len(rows))]
    assert any(header in w for w in outcomes[0]["warnings"])
    gated = pipeline.gate_feed(ROSTER)
    # The values are valid apart from 户类型 (a warning check), so the batch goes live, checked like any other.
    assert [(g["decision"], g["failed"]) for g in gated] == [("live", ["allowed_values"])]
    with psycopg.connect(url) as conn:
        stored = conn.execute("select person_name, household_type, _extra from raw.rural_roster").fetchall()
    assert stored == [(INJECTION, "$$; drop schema raw cascade; $$", {header: 'x"$$y'})] * len(rows)
    after = state(url)
    assert after["deaths"] == before["deaths"] and after["ledgers"] == before["ledgers"] == (True,) * 4


def test_a_stale_xlsx_dimension_loses_no_rows_or_columns(warehouse_with_another_feed):
    """An XLSX whose <dimension> record is stale (some exporters never update it).

    Tried: a 13-row roster with an extra column, its sheet declaring A1:R5 (5 rows, 18 columns).
    Held: all 13 rows and the extra column load (read-only openpyxl used to trust the record and silently
    dropped 9 rows and the column).
    """
    from ruralwatch import pipeline

    url, landing = warehouse_with_another_feed
    rows = [dict(r, 备注="额外") for r in sample_rows()]
    path = write_xlsx(landing / ROSTER / XLSX, rows)
    _rewrite_sheet(path, lambda xml: re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:R5"/>', xml))
    outcomes = pipeline.load_feed(ROSTER, MONTH, landing)
    assert [(o["status"], o["rows"]) for o in outcomes] == [("loaded", len(rows))]
    assert any("备注" in w for w in outcomes[0]["warnings"])
    with psycopg.connect(url) as conn:
        extras = conn.execute("select count(*) from raw.rural_roster where _extra = %s::jsonb",
                              ('{"备注": "额外"}',)).fetchone()[0]
    assert extras == len(rows)


def test_hostile_items_from_the_api_are_rejected_or_stored_verbatim(warehouse, monkeypatch, tmp_path):
    """Hostile items from the data-sharing API (hrss_employment).

    Tried: the simulator's HTTP server serving, for 2026-11, items with SQL in values and in a field name,
    a 20-digit number and 1e999 as JSON numbers; then, for 2026-12, the same plus a NUL (\\u0000) in a name;
    each month through `pipeline.load_feed`.
    Held: 2026-11 loads with every value stored as the text it was (the odd field in _extra, the numbers
    as written and flagged as numeric cells); 2026-12 is rejected naming the row and the NUL, recorded (channel
    api) and escalated; no exception, the ledger intact.
    """
    import json

    from ruralwatch import pipeline
    from ruralwatch.simulate.api import start_server

    monkeypatch.setattr("ruralwatch.settings.LOCAL_DIR", tmp_path)
    odd_field = '就业地点"); drop table raw.deliveries; --'
    items = [{"身份证号": r["身份证号"], "姓名": r["姓名"], "就业状态": "已就业", "就业形式": INJECTION,
              "月均工资": "__HUGE__", "本年务工月数": "__INF__", odd_field: "$$"} for r in sample_rows()]
    lines = [json.dumps(item, ensure_ascii=False).replace('"__HUGE__"', "99999999999999999999")
             .replace('"__INF__"', "1e999") for item in items]
    api_dir = tmp_path / "platform" / "_api"
    api_dir.mkdir(parents=True)
    (api_dir / "hrss_employment_202611.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with_nul = lines[:5] + [lines[5].replace(json.dumps(items[5]["姓名"], ensure_ascii=False)[1:-1],
                                             items[5]["姓名"][0] + "\\u0000")] + lines[6:]
    (api_dir / "hrss_employment_202612.jsonl").write_text("\n".join(with_nul) + "\n", encoding="utf-8")
    no_files = tmp_path / "landing"
    no_files.mkdir()
    with start_server(tmp_path / "platform") as server:
        monkeypatch.setenv("RURALWATCH_API_BASE_URL", server.url)
        monkeypatch.setenv("RURALWATCH_API_TOKEN", server.token)
        november = pipeline.load_feed("hrss_employment", MONTH, no_files)
        december = pipeline.load_feed("hrss_employment", dt.date(2026, 12, 1), no_files)
    assert [(o["status"], o["rows"]) for o in november] == [("loaded", len(items))]
    assert [o["status"] for o in december] == ["rejected"]
    assert "row 6" in december[0]["reason"] and "NUL" in december[0]["reason"]
    with psycopg.connect(warehouse) as conn:
        stored = conn.execute("select distinct employment_form, monthly_wage_yuan, _numeric_cells, _extra "
                              "from raw.hrss_employment").fetchall()
        ledger = conn.execute("select data_month, channel, status from raw.deliveries order by data_month").fetchall()
        escalated = conn.execute("select status from dq.escalations where kind = 'rejected_delivery'").fetchall()
    assert len(stored) == 1
    form, wage, numeric, extra = stored[0]
    assert (form, wage, extra) == (INJECTION, "99999999999999999999", {odd_field: "$$"})
    assert set(numeric) == {"monthly_wage_yuan", "months_worked_this_year"}
    assert ledger == [(MONTH, "api", "loaded"), (dt.date(2026, 12, 1), "api", "rejected")]
    assert escalated == [("open",)]
