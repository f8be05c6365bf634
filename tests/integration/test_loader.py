"""The loader on a real PostgreSQL: every format and encoding, every rejection, duplicates, supersession."""
from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tests.deliveries import sample_rows, write_csv, write_xlsx

pytestmark = pytest.mark.integration

ROSTER = "rural_roster"
MONTH = dt.date(2026, 11, 1)


@pytest.fixture()
def loader(warehouse):
    from ruralwatch.feeds.loader import Loader
    from ruralwatch.pipeline import prepare_warehouse

    prepare_warehouse()
    conn = psycopg.connect(warehouse, autocommit=True)
    yield Loader(conn)
    conn.close()


def _load(loader, landing, feed=ROSTER):
    return {o.file_name: o for o in loader.load_landing(landing, feed=feed)}


def _raw(loader, batch_id, column="resident_id"):
    return [r[0] for r in loader.conn.execute(
        f"select {column} from raw.rural_roster where _batch_id = %s order by _source_row", (batch_id,))]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_each_encoding_loads_every_value_as_delivered(loader, tmp_path, encoding):
    rows = sample_rows()
    write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows, encoding=encoding)
    outcome = _load(loader, tmp_path)["rural_roster_202611.csv"]
    assert outcome.status == "loaded" and outcome.rows == len(rows)
    assert _raw(loader, outcome.batch_id, "person_name") == [r["姓名"] for r in rows]
    recorded = loader.conn.execute("select encoding from raw.deliveries where batch_id = %s",
                                   (outcome.batch_id,)).fetchone()[0]
    assert recorded == encoding


def test_xlsx_with_title_rows_units_and_numeric_cells(loader, tmp_path):
    rows = sample_rows()
    write_xlsx(tmp_path / ROSTER / "rural_roster_202611.xlsx", rows,
               title_rows=["2026年11月脱贫户和监测对象名册", "填报单位：示范市乡村振兴局"],
               numeric_columns={"家庭人口数", "身份证号"})
    outcome = _load(loader, tmp_path)["rural_roster_202611.xlsx"]
    assert outcome.status == "loaded" and outcome.rows == len(rows)
    first = loader.conn.execute(
        "select _source_row, household_size, _numeric_cells, household_net_income_yuan from raw.rural_roster "
        "where _batch_id = %s order by _source_row limit 1", (outcome.batch_id,)).fetchone()
    # Two title rows and a header: the first data row is row 4, as Excel shows it.
    assert first[0] == 4
    assert first[1] == rows[0]["家庭人口数"]
    assert set(first[2]) == {"household_size", "resident_id"}
    assert first[3] == rows[0]["家庭年纯收入(元)"]


def test_column_order_spaces_and_fullwidth_units_in_headers(loader, tmp_path):
    rows = sample_rows()
    renamed = [{(" 家庭年纯收入（元） " if k == "家庭年纯收入(元)" else k): v for k, v in r.items()} for r in rows]
    headers = list(reversed(list(renamed[0])))
    write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", renamed, headers=headers)
    outcome = _load(loader, tmp_path)["rural_roster_202611.csv"]
    assert outcome.status == "loaded"
    assert _raw(loader, outcome.batch_id, "household_net_income_yuan") == [r["家庭年纯收入(元)"] for r in rows]
    units = loader.conn.execute("select column_units from raw.deliveries where batch_id = %s",
                                (outcome.batch_id,)).fetchone()[0]
    assert units == {"household_net_income_yuan": "元"}


def test_extra_column_is_loaded_and_warned(loader, tmp_path):
    rows = [dict(r, 联系电话="13800000000") for r in sample_rows()]
    write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows)
    outcome = _load(loader, tmp_path)["rural_roster_202611.csv"]
    assert outcome.status == "loaded"
    assert any("联系电话" in w for w in outcome.warnings)
    extra = loader.conn.execute("select _extra from raw.rural_roster where _batch_id = %s limit 1",
                                (outcome.batch_id,)).fetchone()[0]
    assert extra == {"联系电话": "13800000000"}


def test_missing_required_column_rejects_naming_file_row_and_column(loader, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "户编号"} for r in sample_rows()]
    path = write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows)
    outcome = _load(loader, tmp_path)["rural_roster_202611.csv"]
    assert outcome.status == "rejected"
    assert "rural_roster_202611.csv" in outcome.reason and "row 1" in outcome.reason and "户编号" in outcome.reason
    status, archive = loader.conn.execute(
        "select status, archive_path from raw.deliveries where batch_id = %s", (outcome.batch_id,)).fetchone()
    assert status == "rejected"
    # Nothing is lost: the delivery is kept, byte for byte.
    assert open(archive, "rb").read() == path.read_bytes()
    assert loader.conn.execute("select count(*) from raw.rural_roster").fetchone()[0] == 0


def test_header_only_snapshot_is_rejected_but_an_event_feed_month_may_be_empty(loader, tmp_path):
    headers = list(sample_rows()[0])
    (tmp_path / ROSTER).mkdir(parents=True)
    (tmp_path / ROSTER / "rural_roster_202611.csv").write_text(",".join(headers) + "\n", encoding="utf-8")
    outcome = _load(loader, tmp_path)["rural_roster_202611.csv"]
    assert outcome.status == "rejected" and "no data rows" in outcome.reason
    deaths = tmp_path / "civil_affairs_deaths"
    deaths.mkdir()
    (deaths / "civil_affairs_deaths_202611.csv").write_text("身份证号,姓名,死亡日期,行政区划代码\n", encoding="utf-8")
    event = _load(loader, tmp_path, "civil_affairs_deaths")["civil_affairs_deaths_202611.csv"]
    assert event.status == "loaded" and event.rows == 0


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x00\x01\x02PK\x03\x04" * 100, "binary"),
    (b"\xff\xfe\xfa\xfb\x80\x81" * 200, "cannot be decoded"),
    ("标题\n没有表头\n".encode(), "no header row"),
])
def test_unreadable_files_are_rejected_with_a_reason(loader, tmp_path, content, message):
    (tmp_path / ROSTER).mkdir(parents=True)
    (tmp_path / ROSTER / "rural_roster_202611.csv").write_bytes(content)
    outcome = _load(loader, tmp_path)["rural_roster_202611.csv"]
    assert outcome.status == "rejected"
    assert message in outcome.reason


def test_damaged_xlsx_is_rejected(loader, tmp_path):
    (tmp_path / ROSTER).mkdir(parents=True)
    (tmp_path / ROSTER / "rural_roster_202611.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    outcome = _load(loader, tmp_path)["rural_roster_202611.xlsx"]
    assert outcome.status == "rejected" and "XLSX" in outcome.reason


def test_folder_and_name_must_agree(loader, tmp_path):
    write_csv(tmp_path / ROSTER / "civil_affairs_assistance_202611.csv", sample_rows())
    outcome = _load(loader, tmp_path)["civil_affairs_assistance_202611.csv"]
    assert outcome.status == "rejected" and "folder" in outcome.reason


def test_ragged_row_rejects_naming_the_row(loader, tmp_path):
    rows = sample_rows()
    path = write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] += ",多余,的值"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcome = _load(loader, tmp_path)["rural_roster_202611.csv"]
    assert outcome.status == "rejected" and "row 4" in outcome.reason


def test_blank_lines_load_and_rows_keep_their_numbers(loader, tmp_path):
    rows = sample_rows()
    path = write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "")
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    outcome = _load(loader, tmp_path)["rural_roster_202611.csv"]
    assert outcome.status == "loaded" and outcome.rows == len(rows)
    numbers = _raw(loader, outcome.batch_id, "_source_row")
    assert numbers[:3] == [2, 3, 5]


def test_identical_bytes_are_one_delivery_whatever_the_name(loader, tmp_path):
    rows = sample_rows()
    first = write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows)
    (tmp_path / ROSTER / "rural_roster_202611_v2.csv").write_bytes(first.read_bytes())
    (tmp_path / ROSTER / "rural_roster_202612.csv").write_bytes(first.read_bytes())
    outcomes = _load(loader, tmp_path)
    assert outcomes["rural_roster_202611.csv"].status == "loaded"
    assert outcomes["rural_roster_202611_v2.csv"].status == "duplicate"
    assert outcomes["rural_roster_202612.csv"].status == "duplicate"
    assert "still counts as not delivered" in outcomes["rural_roster_202612.csv"].reason
    again = _load(loader, tmp_path)
    assert {o.status for o in again.values()} == {"seen"}
    assert loader.conn.execute("select count(*) from raw.deliveries").fetchone()[0] == 3
    assert loader.conn.execute("select count(*) from raw.rural_roster").fetchone()[0] == len(rows)


def test_v2_supersedes_once_it_passes_the_gate(loader, tmp_path):
    from ruralwatch.quality.gate import gate_batch

    rows = sample_rows()
    v1 = _load(loader, write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows).parents[1])
    gate_batch(v1["rural_roster_202611.csv"].batch_id, conn=loader.conn)
    corrected = [dict(r, 家庭年纯收入="") for r in rows]
    corrected = [dict(r, **{"家庭年纯收入(元)": "99999"}) for r in rows]
    write_csv(tmp_path / ROSTER / "rural_roster_202611_v2.csv", corrected)
    v2 = _load(loader, tmp_path)["rural_roster_202611_v2.csv"]
    assert v2.status == "loaded"
    gate_batch(v2.batch_id, conn=loader.conn)
    live = loader.conn.execute(
        "select file_name, status, is_live from raw.deliveries order by file_name").fetchall()
    assert live == [("rural_roster_202611.csv", "superseded", False), ("rural_roster_202611_v2.csv", "loaded", True)]


def test_same_name_new_bytes_is_a_correction_with_a_warning(loader, tmp_path):
    from ruralwatch.quality.gate import gate_batch

    rows = sample_rows()
    path = write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows, mtime=1_780_000_000)
    first = _load(loader, tmp_path)["rural_roster_202611.csv"]
    gate_batch(first.batch_id, conn=loader.conn)
    write_csv(path, [dict(r, **{"家庭年纯收入(元)": "50000"}) for r in rows], mtime=1_780_100_000)
    second = _load(loader, tmp_path)["rural_roster_202611.csv"]
    assert second.status == "loaded" and second.batch_id != first.batch_id
    assert any("correction" in w for w in second.warnings)
    gate_batch(second.batch_id, conn=loader.conn)
    live = loader.conn.execute("select batch_id from raw.deliveries where is_live").fetchall()
    assert live == [(second.batch_id,)]


def test_a_rejected_correction_leaves_the_last_good_batch_live(loader, tmp_path):
    from ruralwatch.quality.gate import gate_batch

    rows = sample_rows()
    write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows)
    good = _load(loader, tmp_path)["rural_roster_202611.csv"]
    gate_batch(good.batch_id, conn=loader.conn)
    write_csv(tmp_path / ROSTER / "rural_roster_202611_v2.csv", [{k: v for k, v in r.items() if k != "身份证号"}
                                                                 for r in rows])
    bad = _load(loader, tmp_path)["rural_roster_202611_v2.csv"]
    assert bad.status == "rejected"
    live = loader.conn.execute("select batch_id from raw.deliveries where is_live").fetchall()
    assert live == [(good.batch_id,)]


def test_a_failed_load_leaves_no_partial_rows(loader, tmp_path, monkeypatch):
    """A crash mid-COPY rolls the whole batch back: no rows, no partition, no ledger entry."""
    from ruralwatch.feeds import readers

    rows = sample_rows()
    write_xlsx(tmp_path / ROSTER / "rural_roster_202611.xlsx", rows)
    original = readers.XlsxSource.iter_rows

    def crashing(self):
        for i, item in enumerate(original(self)):
            if i == 5:
                raise OSError("disk went away")
            yield item

    monkeypatch.setattr(readers.XlsxSource, "iter_rows", crashing)
    with pytest.raises(OSError):
        _load(loader, tmp_path)
    assert loader.conn.execute("select count(*) from raw.rural_roster").fetchone()[0] == 0
    assert loader.conn.execute("select count(*) from raw.deliveries").fetchone()[0] == 0
    monkeypatch.setattr(readers.XlsxSource, "iter_rows", original)
    retry = _load(loader, tmp_path)["rural_roster_202611.xlsx"]
    assert retry.status == "loaded" and retry.rows == len(rows)


def test_an_empty_event_month_is_not_a_duplicate_of_another_empty_month(loader, tmp_path):
    """Header-only event files are byte-identical month after month; each is its own empty month."""
    deaths = tmp_path / "civil_affairs_deaths"
    deaths.mkdir()
    header = "身份证号,姓名,死亡日期,行政区划代码\n"
    (deaths / "civil_affairs_deaths_202610.csv").write_text(header, encoding="utf-8")
    (deaths / "civil_affairs_deaths_202611.csv").write_text(header, encoding="utf-8")
    (deaths / "civil_affairs_deaths_202611_v2.csv").write_text(header, encoding="utf-8")
    outcomes = _load(loader, tmp_path, "civil_affairs_deaths")
    assert outcomes["civil_affairs_deaths_202610.csv"].status == "loaded"
    assert outcomes["civil_affairs_deaths_202611.csv"].status == "loaded"
    # Within one month, the same bytes again are still the same delivery.
    assert outcomes["civil_affairs_deaths_202611_v2.csv"].status == "duplicate"


def test_a_new_csv_hashed_alongside_its_copy_is_recorded_as_if_hashed_first(loader, tmp_path):
    """A CSV new by name is COPYed while a thread hashes it; the ledger must not show the difference,
    and a file the hash finds already known leaves nothing of the attempt behind."""
    from ruralwatch.feeds.loader import batch_id_for, sha256_of

    rows = sample_rows()
    first = write_csv(tmp_path / ROSTER / "rural_roster_202611.csv", rows)
    outcome = _load(loader, tmp_path)["rural_roster_202611.csv"]
    sha = sha256_of(first)
    assert (outcome.status, outcome.batch_id) == ("loaded", batch_id_for(ROSTER, first.name, sha))
    recorded = loader.conn.execute("select batch_id, sha256, archive_path from raw.deliveries").fetchall()
    assert recorded == [(outcome.batch_id, sha, recorded[0][2])]
    assert recorded[0][2] and open(recorded[0][2], "rb").read() == first.read_bytes()
    assert len(_raw(loader, outcome.batch_id)) == len(rows)
    partitions = loader.conn.execute("select count(*) from pg_inherits where inhparent = 'raw.rural_roster__rows'::regclass"
                                     ).fetchone()[0]
    # The same bytes under a new name: loaded alongside the hash, rolled back, recorded as a duplicate.
    (tmp_path / ROSTER / "rural_roster_202612.csv").write_bytes(first.read_bytes())
    assert _load(loader, tmp_path)["rural_roster_202612.csv"].status == "duplicate"
    assert loader.conn.execute("select count(*) from raw.deliveries where batch_id like 'pending-%'").fetchone()[0] == 0
    assert loader.conn.execute("select count(*) from pg_inherits where inhparent = 'raw.rural_roster__rows'::regclass"
                               ).fetchone()[0] == partitions
    assert loader.conn.execute("select count(*) from pg_class where relname like 'rural_roster__rows_%' "
                               "and relkind = 'r'").fetchone()[0] == partitions
