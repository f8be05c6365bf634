"""Completeness and timeliness per feed and department (dq.feed_timeliness, I19), and late feeds escalated."""
from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tests.deliveries import sample_rows, write_csv
from tests.integration.test_quality_escalations import water
from tests.integration.test_quality_notify import mail  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

NOVEMBER = dt.date(2026, 11, 1)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, tzinfo=SHANGHAI)


def test_on_time_late_missing_and_a_duplicate_that_does_not_count(warehouse, tmp_path, mail):  # noqa: F811
    from ruralwatch import pipeline
    from ruralwatch.feeds.registry import load_registry

    landing = tmp_path / "landing"
    # rural_roster arrived on 3 December: on time. water_supply on 7 December 08:00: two days late.
    write_csv(landing / "rural_roster" / "rural_roster_202611.csv", sample_rows(), mtime=at(3).timestamp())
    write_csv(landing / "water_supply" / "water_supply_202611.csv", water(True), mtime=at(7, 8).timestamp())
    # housing_village_environment sends October's file again under November's name: not a delivery.
    october = [{"行政区划代码": "990101102201", "村名": "一村", "总户数": "120", "卫生厕所户数": "100",
                "生活污水治理": "是", "生活垃圾收运处置": "是", "统计年度": "2026"}]
    write_csv(landing / "housing_village_environment" / "housing_village_environment_202610.csv", october,
              mtime=at(1).timestamp() - 30 * 86400)
    write_csv(landing / "housing_village_environment" / "housing_village_environment_202611.csv", october,
              mtime=at(2).timestamp())
    for feed in ("rural_roster", "water_supply"):
        pipeline.load_feed(feed, NOVEMBER, landing)
    pipeline.load_feed("housing_village_environment", dt.date(2026, 10, 1), landing)
    pipeline.load_feed("housing_village_environment", NOVEMBER, landing)

    # Before the due day nothing is late: what has not come yet is pending.
    early = {r["feed"]: r["status"] for r in pipeline.check_timeliness(NOVEMBER, as_of=at(4))}
    assert early["rural_roster"] == "on_time" and early["civil_affairs_deaths"] == "pending"
    assert early["lead_feedback"] == "not_expected"

    rows = {r["feed"]: r for r in pipeline.check_timeliness(NOVEMBER, as_of=at(10))}
    assert rows["rural_roster"]["status"] == "on_time"
    assert (rows["water_supply"]["status"], rows["water_supply"]["days_late"]) == ("late", 2)
    assert (rows["housing_village_environment"]["status"], rows["housing_village_environment"]["days_late"]) \
        == ("missing", 5)
    assert rows["lead_feedback"]["status"] == "not_expected"
    registry = load_registry()
    missing = {f.name for f in registry if f.file_suffix is None} - {"rural_roster", "water_supply"}
    assert {f for f, r in rows.items() if r["status"] == "missing"} == missing

    with psycopg.connect(warehouse) as conn:
        by_department = {r[0]: r[1:] for r in conn.execute(
            "select department_name, feeds_expected, feeds_on_time, feeds_late, feeds_missing, on_time_rate "
            "from dq.department_timeliness where data_month = %s", (NOVEMBER,))}
        assert by_department["水务局"] == (1, 0, 1, 0, 0)
        assert by_department["乡村振兴局"][:4] == (3, 1, 0, 2) and float(by_department["乡村振兴局"][4]) == pytest.approx(1 / 3, abs=1e-4)
        assert by_department["住建局"] == (2, 0, 0, 2, 0)
        assert conn.execute("select duplicate_deliveries from dq.feed_timeliness where feed = "
                            "'housing_village_environment' and data_month = %s", (NOVEMBER,)).fetchone() == (1,)
        late = dict(conn.execute("select feed, runs from dq.escalations where kind = 'late_feed'").fetchall())
        assert set(late) == missing and set(late.values()) == {1}
    assert len(mail.messages) == len(missing)
    assert any("村庄人居环境（2026年11月）逾期未报送" in m["Subject"] for m in mail.messages)

    # The same day again changes nothing; the next day counts one more run and tells nobody again.
    pipeline.check_timeliness(NOVEMBER, as_of=at(10, 15))
    pipeline.check_timeliness(NOVEMBER, as_of=at(11))
    with psycopg.connect(warehouse) as conn:
        assert set(dict(conn.execute("select feed, runs from dq.escalations where kind = 'late_feed'")).values()) == {2}
    assert len(mail.messages) == len(missing)

    # The real November file arrives late: loading it resolves the lateness escalation.
    november = [dict(october[0], 卫生厕所户数="105")]
    write_csv(landing / "housing_village_environment" / "housing_village_environment_202611_v2.csv", november,
              mtime=at(12).timestamp())
    pipeline.load_feed("housing_village_environment", NOVEMBER, landing)
    with psycopg.connect(warehouse) as conn:
        assert conn.execute(
            "select status, resolution from dq.escalations where kind = 'late_feed' "
            "and feed = 'housing_village_environment'").fetchone() == ("resolved", "delivered")
    rows = {r["feed"]: r for r in pipeline.check_timeliness(NOVEMBER, as_of=at(13))}
    assert (rows["housing_village_environment"]["status"], rows["housing_village_environment"]["days_late"]) \
        == ("late", 7)
