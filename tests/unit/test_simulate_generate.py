"""The generator against its manifest: every planted thing is in the file where the manifest says, every
file opens in the reader its format calls for, and the presets plant what they promise."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path

import openpyxl
import pytest

from ruralwatch.simulate import Options, generate, ids, periods, write_area_reference, write_lead_feedback
from ruralwatch.simulate.defects import ROW_DEFECTS, STRUCTURAL
from ruralwatch.simulate.leadfeedback import RESULTS
from ruralwatch.simulate.schema import FEEDS, MONTHLY

_FULLWIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")
_UNIT = re.compile(r"[(（][^()（）]*[)）]$")
_NAME = re.compile(r"^[a-z_]+_\d{6}(_v\d+)?\.(csv|xlsx)$")


def _run(root: Path, name: str, **options) -> list[dict]:
    out = root / name
    paths = generate(Options(out=out, **options))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, list[dict]]]:
    root = tmp_path_factory.mktemp("simulate")
    months = periods.parse_range("2026-10:2026-11")
    # Every row-level class at a rate that shows up in a small city (quarantines follow, as they should).
    forced = {cls: 0.01 for cls in ROW_DEFECTS if cls not in ("id_partial", "unknown_lead")}
    return {
        "default": (root / "default", _run(root, "default", persons=1_500, months=months, seed=11)),
        "heavy": (root / "heavy", _run(root, "heavy", persons=1_500, months=months, seed=12, defects="heavy")),
        "none": (root / "none", _run(root, "none", persons=1_000, months=months[:1], seed=13, defects="none")),
        "forced": (root / "forced", _run(root, "forced", persons=2_000, months=months[:1], seed=14,
                                         defects="heavy", rates=forced, late={"rural_roster": 4})),
    }


def _all(runs, key):
    for name, (root, manifests) in runs.items():
        for manifest in manifests:
            for item in manifest[key]:
                yield name, root, manifest, item


# -- reading files the plain way ---------------------------------------------------------------------
def _grid(root: Path, delivery: dict) -> list[list]:
    """Physical rows of a delivery as its format's ordinary reader sees them (row 1 first)."""
    path = root / delivery["file"]
    if delivery["format"] == "xlsx":
        sheet = openpyxl.load_workbook(path).worksheets[0]
        return [[cell.value for cell in row] for row in sheet.iter_rows(min_row=1, max_row=sheet.max_row)]
    if delivery["format"] == "jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        names = [c.name for c in FEEDS[delivery["feed"]].columns]
        return [[json.loads(line).get(n) for n in names] for line in lines]
    with path.open(encoding=delivery["encoding"], newline="") as handle:
        return list(csv.reader(handle))


def _column_index(header: list, column: str) -> int:
    names = [_UNIT.sub("", re.sub(r"\s+", "", str(h or ""))) for h in header]
    return names.index(column)


def _cell_matches(cell, value) -> bool:
    if isinstance(value, dict) and "xlsx_number" in value:
        return isinstance(cell, (int, float)) and not isinstance(cell, bool) and float(cell) == value["xlsx_number"]
    if isinstance(value, dict) and "xlsx_date_cell" in value:
        return isinstance(cell, dt.datetime) and cell.date().isoformat() == value["xlsx_date_cell"]
    if value is None:
        return cell in (None, "")
    return cell == value


def _key(text) -> str:
    return str(text or "").strip().translate(_FULLWIDTH).upper()


# -- the manifest against the files ------------------------------------------------------------------
def test_the_self_check_is_clean_for_every_preset(runs):
    for name, (_, manifests) in runs.items():
        for manifest in manifests:
            check = manifest["self_check"]
            assert check["ok"], (name, manifest["month"], check["mismatches"][:5])
            assert check["files_checked"] >= 10


def test_every_planted_cell_is_in_the_file_at_its_row_and_column(runs):
    checked = 0
    grids: dict[tuple[str, str], list[list]] = {}
    for _, root, manifest, entry in [*_all(runs, "defects"), *_all(runs, "accepted"), *_all(runs, "notes")]:
        if entry["row"] is None or entry["column"] is None or entry["class"] in (
                "missing_required_column", "extra_unknown_column"):
            continue
        delivery = next(d for d in manifest["deliveries"] if d["file"] == entry["file"])
        if (str(root), entry["file"]) not in grids:
            grids[str(root), entry["file"]] = _grid(root, delivery)
        grid = grids[str(root), entry["file"]]
        header_row = delivery["header_row"]
        header = grid[header_row - 1] if header_row else [c.name for c in FEEDS[delivery["feed"]].columns]
        assert entry["row"] == header_row + entry["data_row"]
        cell = grid[entry["row"] - 1][_column_index(header, entry["column"])]
        assert _cell_matches(cell, entry.get("value")), (entry, cell)
        checked += 1
    assert checked > 300


def test_duplicate_rows_repeat_their_key(runs):
    seen = 0
    for _, root, manifest, entry in _all(runs, "defects"):
        if entry["class"] != "duplicate_key":
            continue
        delivery = next(d for d in manifest["deliveries"] if d["file"] == entry["file"])
        grid = _grid(root, delivery)
        header = grid[delivery["header_row"] - 1] if delivery["header_row"] else [
            c.name for c in FEEDS[delivery["feed"]].columns]
        for key in FEEDS[delivery["feed"]].key:
            k = _column_index(header, key)
            assert _key(grid[entry["row"] - 1][k]) == _key(grid[entry["duplicate_of_row"] - 1][k])
        assert entry["row"] != entry["duplicate_of_row"]
        seen += 1
    assert seen > 0


def test_bad_ids_fail_the_check_and_accepted_ones_pass_after_normalising(runs):
    bad = good = 0
    for _, _, _, entry in _all(runs, "defects"):
        if entry["class"] in ("id_bad_check", "id_scientific"):
            assert not ids.is_valid_id(_key(entry["value"]))
            assert ids.is_valid_id(_key(entry["true_value"]))
            bad += 1
        if entry["class"] == "id_numeric_cell":
            assert "xlsx_number" in entry["value"] or isinstance(entry["value"], float)
    for _, _, _, entry in [*_all(runs, "accepted"), *_all(runs, "notes")]:
        if entry["class"].startswith("id_"):
            value = _key(entry["value"])
            if entry["class"] == "id_15_digit":
                value = ids.upgrade15(value)
            assert ids.is_valid_id(value), entry
            good += 1
    assert bad > 20 and good > 20


def test_whole_file_events_are_what_the_manifest_says(runs):
    found = set()
    for _, root, manifest, entry in _all(runs, "defects"):
        cls = entry["class"]
        if cls not in STRUCTURAL:
            continue
        found.add(cls)
        delivery = next(d for d in manifest["deliveries"] if d["file"] == entry["file"])
        path = root / entry["file"]
        data = path.read_bytes()
        if cls in ("duplicate_bytes_v2", "resent_last_month"):
            assert data == (root / entry["copy_of"]).read_bytes()
            assert delivery["status"] == "duplicate"
        elif cls == "folder_name_mismatch":
            assert path.parent.name != path.name.rsplit("_", 1)[0] and delivery["status"] == "rejected"
        elif cls == "unparseable_name":
            assert not _NAME.match(path.name) and delivery["status"] == "rejected"
        elif cls == "unreadable_file":
            with pytest.raises(Exception):  # noqa: B017 - any failure to open is the point
                openpyxl.load_workbook(path)
            assert delivery["status"] == "rejected"
        elif cls == "undecodable_file":
            for encoding in ("utf-8", "gb18030"):
                with pytest.raises(UnicodeDecodeError):
                    data.decode(encoding)
            assert delivery["status"] == "rejected"
        elif cls == "header_only_snapshot":
            assert len(_grid(root, delivery)) == delivery["header_row"] and delivery["status"] == "rejected"
        elif cls == "missing_required_column":
            header = _grid(root, delivery)[delivery["header_row"] - 1]
            with pytest.raises(ValueError):
                _column_index(header, entry["column"])
            assert delivery["status"] == "rejected"
        elif cls == "quarantined_batch":
            assert delivery["status"] == "quarantined"
            assert delivery["unusable_rows"] > 0.02 * delivery["data_rows"]
    assert found == set(STRUCTURAL)


def test_extra_columns_are_in_the_header(runs):
    seen = 0
    for _, root, manifest, entry in _all(runs, "defects"):
        if entry["class"] == "extra_unknown_column":
            delivery = next(d for d in manifest["deliveries"] if d["file"] == entry["file"])
            assert entry["value"] in _grid(root, delivery)[delivery["header_row"] - 1]
            seen += 1
    assert seen > 0


# -- formats ---------------------------------------------------------------------------------------------
def test_each_format_opens_in_its_reader(runs):
    kinds = set()
    for _, (root, manifests) in runs.items():
        for manifest in manifests:
            for d in manifest["deliveries"]:
                if d["structural"] in ("unreadable_file", "undecodable_file") or d["data_rows"] is None:
                    continue
                path = root / d["file"]
                grid = _grid(root, d)
                kinds.add((d["format"], d["encoding"]))
                if d["format"] == "csv":
                    raw = path.read_bytes()
                    assert raw.startswith(b"\xef\xbb\xbf") == (d["encoding"] == "utf-8-sig")
                    if d["encoding"] in ("gbk", "gb18030") and any(b > 127 for b in raw):
                        with pytest.raises(UnicodeDecodeError):
                            raw.decode("utf-8")
                if d["format"] == "xlsx":
                    for r in range(d["title_rows"]):
                        assert [v for v in grid[r] if v not in (None, "")] and len(
                            [v for v in grid[r] if v not in (None, "")]) == 1
                    title = grid[0][0] if d["title_rows"] else ""
                    if d["title_rows"]:
                        y, m = periods.year_month(periods.parse_month(manifest["month"]))
                        assert f"{y}年" in title
                assert len(grid) == d["header_row"] + d["data_rows"], d["file"]
                if d["header_row"]:
                    header = grid[d["header_row"] - 1]
                    for column in FEEDS[d["feed"]].required:
                        if d["structural"] != "missing_required_column":
                            _column_index(header, column)
    assert {("csv", "utf-8"), ("csv", "utf-8-sig"), ("xlsx", None), ("jsonl", "utf-8")} <= kinds
    assert kinds & {("csv", "gbk"), ("csv", "gb18030")}


def test_xlsx_files_carry_typed_cells_sometimes(runs):
    kinds = set()
    for _, _, _, entry in [*_all(runs, "defects"), *_all(runs, "accepted")]:
        if isinstance(entry.get("value"), dict):
            kinds |= set(entry["value"])
    assert "xlsx_number" in kinds


def test_mtime_is_the_arrival_and_on_time_follows_the_due_day(runs):
    for _, (root, manifests) in runs.items():
        for manifest in manifests:
            for d in manifest["deliveries"]:
                arrival = dt.datetime.fromisoformat(d["arrival"])
                assert os.stat(root / d["file"]).st_mtime == arrival.timestamp()
                assert d["on_time"] == (arrival <= dt.datetime.fromisoformat(d["due"]))


def test_late_option_makes_the_feed_late_and_i19_shows_it(runs):
    manifest = runs["forced"][1][0]
    roster = [d for d in manifest["deliveries"] if d["feed"] == "rural_roster"]
    assert roster and not any(d["on_time"] for d in roster)
    assert manifest["timeliness"]["rural_roster"]["on_time"] is False
    assert manifest["indicators"]["I19"]["乡村振兴局"]["value"] < 1


def test_none_plants_nothing_but_spells_every_way(runs):
    for manifest in runs["none"][1]:
        assert manifest["defects"] == []
        assert {d["status"] for d in manifest["deliveries"]} <= {"live", "superseded"}
        assert all(d["on_time"] for d in manifest["deliveries"])
        assert len(manifest["accepted"]) > 0 and len(manifest["notes"]) > 0
        forms = {json.dumps(d.get("forms"), sort_keys=True) for d in manifest["deliveries"] if d.get("forms")}
        assert len(forms) > 3
        assert manifest["leads"]


def test_default_stays_realistic(runs):
    for manifest in runs["default"][1]:
        assert manifest["feeds_without_live_delivery"] == []
        events = [d for d in manifest["deliveries"] if d["structural"]]
        assert len({d["feed"] for d in events}) <= 2
        for d in manifest["deliveries"]:
            assert d["status"] != "quarantined"
            if d["data_rows"]:
                assert d["unusable_rows"] is None or d["unusable_rows"] <= 0.011 * d["data_rows"] + 1


def test_every_row_defect_class_can_be_planted(runs):
    planted = {e["class"] for _, _, _, e in _all(runs, "defects")}
    missing = set(ROW_DEFECTS) - planted - {"unknown_lead"}
    assert not missing


def test_every_feed_is_delivered_each_month(runs):
    for manifest in runs["default"][1]:
        feeds = {d["feed"] for d in manifest["deliveries"]}
        assert feeds == set(MONTHLY)
        api = [d for d in manifest["deliveries"] if d["channel"] == "api"]
        assert len(api) == 1 and api[0]["file"].startswith("_api/")
    first = runs["default"][1][0]
    assert any(d["channel"] == "file" and d["feed"] == "hrss_employment" for d in first["deliveries"])


def test_re_deliveries_supersede(runs):
    versions = 0
    for _, (_, manifests) in runs.items():
        for manifest in manifests:
            by_feed: dict[str, list[dict]] = {}
            for d in manifest["deliveries"]:
                by_feed.setdefault(d["feed"], []).append(d)
            for feed, ds in by_feed.items():
                live = [d for d in ds if d["status"] == "live"]
                assert len(live) <= 1, feed
                if any(d["version"] > 1 and d["status"] == "live" for d in ds):
                    versions += 1
                    assert all(d["status"] != "live" for d in ds if d["version"] == 1 and d["channel"] == "file")
    assert versions > 0


def test_the_manifest_records_sha256_of_what_was_written(runs):
    root, manifests = runs["default"]
    for d in manifests[-1]["deliveries"]:
        assert hashlib.sha256((root / d["file"]).read_bytes()).hexdigest() == d["sha256"]


# -- the area reference and the lead feedback ------------------------------------------------------------
def test_area_reference_is_fixed_and_well_formed(runs, tmp_path):
    path = write_area_reference(tmp_path / "area_codes.csv")
    assert path.read_bytes() == (runs["default"][0] / "_reference" / "area_codes.csv").read_bytes()
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["行政区划代码", "名称", "级别", "上级代码"]
    codes = {r[0]: r for r in rows[1:]}
    assert codes["990100000000"][2] == "市"
    counties = [r for r in rows[1:] if r[2] == "县"]
    assert len(counties) == 6
    for county in counties:
        towns = [r for r in rows[1:] if r[3] == county[0]]
        assert 8 <= len(towns) <= 12
        for town in towns:
            assert town[2] == "镇" and town[0][:6] == county[0][:6] and town[0].endswith("000")
            villages = [r for r in rows[1:] if r[3] == town[0]]
            assert 10 <= len(villages) <= 20
            assert all(re.fullmatch(r"9901\d{8}", v[0]) and v[0][:9] == town[0][:9] and v[2] == "村"
                       for v in villages)


def test_lead_feedback_answers_the_pushed_leads(runs, tmp_path):
    manifest = runs["default"][1][-1]
    leads = [{"线索编号": f"XS{k:05d}", "town": lead["town"], "rule": lead["rule"], "key": lead["key"]}
             for k, lead in enumerate(manifest["leads"]) if lead["town"]]
    records = write_lead_feedback(leads, manifest["month"], tmp_path, seed=3, unknown_leads=2)
    assert len(records) == len({lead["town"] for lead in leads})
    month_end = dt.date.fromisoformat(manifest["period_end"])
    answered = unknown = 0
    for record in records:
        path = tmp_path / record["file"]
        assert re.fullmatch(r"lead_feedback_\d{6}_\d{12}\.xlsx", path.name) and record["town"] in path.name
        sheet = openpyxl.load_workbook(path).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        header = list(rows[record["header_row"] - 1])
        body = rows[record["header_row"]:]
        ids_col, result_col = _column_index(header, "线索编号"), _column_index(header, "核实结果")
        assert {r[ids_col] for r in body} == set(record["answered"]) | set(record["unknown"])
        assert {r[result_col] for r in body} <= set(RESULTS)
        date_col = _column_index(header, "核实日期")
        for r in body:
            value = r[date_col]
            day = value.date() if isinstance(value, dt.datetime) else None
            if day is not None:
                assert day <= month_end
        answered += len(record["answered"])
        unknown += len(record["unknown"])
    assert unknown == 2 and 0.6 * len(leads) <= answered <= len(leads)


# -- blank dates stay blank --------------------------------------------------------------------------
_YES = {"是", "Y", "y", "1"}
_NULL_CELLS = {"", "无", "/", "-"}
_DATE_TEXT = re.compile(r"^(\d{4})(?:-|/|年)(\d{1,2})(?:-|/|月)(\d{1,2})日?$|^(\d{4})(\d{2})(\d{2})$")


def _is_null(cell) -> bool:
    return cell is None or (isinstance(cell, str) and (cell.strip() in _NULL_CELLS or cell.strip().lower() == "null"))


def _date_of(cell) -> dt.date | None:
    """A date cell in any accepted form (XLSX date cells and serials too); None for what is not a date."""
    if isinstance(cell, dt.datetime):
        return cell.date()
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return dt.date(1899, 12, 30) + dt.timedelta(days=int(cell))
    match = _DATE_TEXT.match(str(cell).strip())
    if not match:
        return None
    y, m, d = (int(g) for g in (match.groups()[:3] if match.group(1) else match.groups()[3:]))
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None  # a planted impossible date


def _readable_deliveries(runs):
    for _, (root, manifests) in runs.items():
        for manifest in manifests:
            for d in manifest["deliveries"]:
                if d["data_rows"] and d["structural"] not in ("unreadable_file", "undecodable_file"):
                    yield root, d


def test_blank_household_dates_stay_blank_in_the_roster(runs):
    """识别纳入日期 belongs to 监测户 only and 风险消除日期 to households whose risk is eliminated; the
    rest are blank cells (a null once came out as 1970-01-01)."""
    monitored_dated = cleared_dated = 0
    for root, d in _readable_deliveries(runs):
        if d["feed"] != "rural_roster":
            continue
        grid = _grid(root, d)
        header = grid[d["header_row"] - 1]
        kind, included = _column_index(header, "户类型"), _column_index(header, "识别纳入日期")
        risk, cleared = _column_index(header, "风险是否消除"), _column_index(header, "风险消除日期")
        for row in grid[d["header_row"]:]:
            if row[kind] != "监测户":
                assert _is_null(row[included]), (d["file"], row)
            else:
                monitored_dated += not _is_null(row[included])
            if str(row[risk] or "").strip() not in _YES:
                assert _is_null(row[cleared]), (d["file"], row)
            else:
                cleared_dated += not _is_null(row[cleared])
    assert monitored_dated > 50 and cleared_dated > 20


def test_no_date_in_any_feed_lies_before_1990(runs):
    """Every date cell of every delivery, in whatever form it is written: event and planned dates are
    all recent; birth dates reach back further, but not to the epoch's 1900 floor."""
    seen = 0
    for root, d in _readable_deliveries(runs):
        columns = [c.name for c in FEEDS[d["feed"]].columns if c.kind == "date"]
        if not columns or d["format"] == "jsonl":
            continue
        grid = _grid(root, d)
        header = grid[d["header_row"] - 1]
        for column in columns:
            try:
                k = _column_index(header, column)
            except ValueError:
                continue  # a planted missing column
            floor = dt.date(1900, 1, 1) if column == "出生日期" else dt.date(1990, 1, 1)
            for row in grid[d["header_row"]:]:
                if _is_null(row[k]):
                    continue
                day = _date_of(row[k])
                if day is not None:
                    assert day >= floor, (d["file"], column, row[k])
                    seen += 1
    assert seen > 10_000
