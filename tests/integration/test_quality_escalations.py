"""The escalation ledger on a real PostgreSQL with real GX gates: one escalation per failing check,
idempotent re-runs, resolution by a corrected re-delivery, a new escalation on regression, a
critical failure that keeps the last good batch live, concurrent runs, and the engineer's CLI."""
from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from tests.deliveries import sample_rows, write_csv
from tests.integration.test_quality_notify import mail, webhook  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

NOVEMBER = dt.date(2026, 11, 1)
DECEMBER = dt.date(2026, 12, 1)
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def resident_id(body: str) -> str:
    """A valid GB 11643 ID from its first 17 digits."""
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


PEOPLE = [(resident_id(f"99010119{60 + n:02d}0101{100 + n:03d}"), name)
          for n, name in enumerate(["郑强", "冯燕", "褚明", "卫兰", "蒋涛", "沈梅"])]


# -- a month of deliveries with planted defects ------------------------------------------------------
def roster(fixed: bool) -> list[dict]:
    rows = sample_rows()
    if not fixed:
        rows[0]["家庭人口数"] = "4"                      # household_size_matches_rows
        rows[3]["监测对象类别"] = ""                      # monitoring_category_required
    return rows


def claims(fixed: bool) -> list[dict]:
    def claim(number, person, kind, visit, discharge, total, basic, critical, assistance, own):
        return {"结算流水号": number, "身份证号": person[0], "姓名": person[1], "就诊类型": kind, "就诊日期": visit,
                "出院日期": discharge, "医疗总费用": total, "基本医保支付": basic, "大病保险支付": critical,
                "医疗救助支付": assistance, "个人自付": own}

    return [
        claim("JS0001", PEOPLE[0], "门诊", "2026-11-03", "", "300.00", "200.00", "", "", "100.00"),
        claim("JS0002", PEOPLE[1], "住院", "2026/11/5", "2026-11-12", "12,000.00", "8000", "2000", "1000", "1000元"),
        claim("JS0003", PEOPLE[2], "住院", "2026-11-10", "2026-11-18" if fixed else "2026-11-08",  # discharge < visit
              "5000", "3000", "-", "无", "2000"),
        claim("JS0004", PEOPLE[3], "门诊", "20261115", "", "400" if fixed else "500",  # parts add up to 400
              "300", "", "", "100"),
    ]


def water(fixed: bool, month: str = "2026-11") -> list[dict]:
    return [
        {"行政区划代码": "990101102201", "村名": "一村", "供水方式": "集中供水", "总户数": "120",
         "自来水入户户数": "110" if fixed else "130", "水质检测达标": "是", "本月断水天数": "0", "统计月份": month},
        {"行政区划代码": "990101102202", "村名": "二村", "供水方式": "分散供水", "总户数": "80",
         "自来水入户户数": "60", "水质检测达标": "否", "本月断水天数": "3" if fixed else "31", "统计月份": month},
    ]


def housing(fixed: bool) -> list[dict]:
    return [
        {"户主身份证号": PEOPLE[4][0], "户主姓名": PEOPLE[4][1], "行政区划代码": "990101102201", "鉴定等级": "C",
         "鉴定日期": "2026-10-01", "改造状态": "改造中" if fixed else "无需改造", "竣工日期": ""},
        {"户主身份证号": PEOPLE[5][0], "户主姓名": PEOPLE[5][1], "行政区划代码": "990101102202", "鉴定等级": "D",
         "鉴定日期": "2026-09-01", "改造状态": "已竣工", "竣工日期": "2026-11-01"},
    ]


def employment(fixed: bool) -> list[dict]:
    return [
        {"身份证号": PEOPLE[0][0], "姓名": PEOPLE[0][1], "就业状态": "已就业", "就业形式": "县内务工", "就业地点": "示范县",
         "月均工资": "3200", "本年务工月数": "10", "公益性岗位工资发放至": "" if fixed else "2026-11"},
        {"身份证号": PEOPLE[1][0], "姓名": PEOPLE[1][1], "就业状态": "已就业", "就业形式": "公益性岗位", "就业地点": "一村",
         "月均工资": "800", "本年务工月数": "11", "公益性岗位工资发放至": "2026-11"},
    ]


def deaths(fixed: bool) -> list[dict]:
    row = {"身份证号": PEOPLE[2][0], "姓名": PEOPLE[2][1], "死亡日期": "2026-11-20", "行政区划代码": "990101102201"}
    if not fixed:
        del row["死亡日期"]  # a required column missing: the delivery is rejected
    return [row]


FEEDS = {"rural_roster": roster, "health_medical_claims": claims, "water_supply": water, "housing_safety": housing,
         "hrss_employment": employment, "civil_affairs_deaths": deaths}

PLANTED = {
    ("rural_roster", "household_size_matches_rows"), ("rural_roster", "monitoring_category_required"),
    ("health_medical_claims", "claim_total_adds_up"), ("health_medical_claims", "discharge_not_before_visit"),
    ("water_supply", "tap_water_within_households"), ("water_supply", "outage_days_within_month"),
    ("housing_safety", "unsafe_house_needs_rebuild"), ("hrss_employment", "public_job_pay_only_for_public_jobs"),
}


def deliver(landing, version: str = "", fixed: bool = False) -> None:
    for feed, rows in FEEDS.items():
        write_csv(landing / feed / f"{feed}_202611{version}.csv", rows(fixed))


def run_month(landing, month=NOVEMBER, feeds=FEEDS) -> list[dict]:
    """What each ingest DAG's load and gate tasks do, feed by feed."""
    from ruralwatch import pipeline

    verdicts = []
    for feed in feeds:
        pipeline.load_feed(feed, month, landing)
        verdicts += pipeline.gate_feed(feed)
    return verdicts


def ledger_state(conn) -> list[tuple]:
    return conn.execute(
        "select escalation_id, fingerprint, kind, feed, check_name, status, runs, failing_rows, first_batch_id, "
        "last_batch_id, last_seen_at, due_date from dq.escalations order by escalation_id").fetchall()


# -- tests ------------------------------------------------------------------------------------------
def test_a_month_with_planted_defects_escalates_each_failing_check_once_until_fixed(
        warehouse, tmp_path, mail, webhook):  # noqa: F811
    landing = tmp_path / "landing"
    deliver(landing)
    verdicts = run_month(landing)
    assert {v["decision"] for v in verdicts} == {"live"}  # every planted defect is a warning

    with psycopg.connect(warehouse) as conn:
        failed = conn.execute(
            "select distinct feed, check_name, fingerprint from dq.check_results where not success").fetchall()
        assert {(feed, name) for feed, name, _ in failed} == PLANTED
        escalated = conn.execute(
            "select feed, check_name, fingerprint, department_name, severity, status, runs, failing_rows, sample "
            "from dq.escalations where kind = 'check'").fetchall()
        # Exactly one escalation per failing check, keyed by the check's fingerprint.
        assert sorted(e[2] for e in escalated) == sorted(f[2] for f in failed)
        assert {e[0]: e[3] for e in escalated}["health_medical_claims"] == "医保局"
        assert all(e[5] == "open" and e[6] == 1 and e[7] >= 1 and e[8] for e in escalated)
        rejected = conn.execute(
            "select feed, severity, status, department_name from dq.escalations where kind = 'rejected_delivery'").fetchall()
        assert rejected == [("civil_affairs_deaths", "critical", "open", "民政局")]
        first_state = ledger_state(conn)

    expected_messages = len(PLANTED) + 1
    assert len(mail.messages) == expected_messages and len(webhook.requests) == expected_messages
    recipients = sorted(m["To"] for m in mail.messages)
    assert recipients.count("data@yb.example.gov.cn") == 2 and recipients.count("data@mz.example.gov.cn") == 1

    # Two more identical runs: the same escalations, nobody notified again.
    for _ in range(2):
        run_month(landing)
        with psycopg.connect(warehouse) as conn:
            assert ledger_state(conn) == first_state
    assert len(mail.messages) == expected_messages and len(webhook.requests) == expected_messages

    # A corrected re-delivery (_v2) of every feed resolves every escalation, silently.
    deliver(landing, "_v2", fixed=True)
    run_month(landing)
    with psycopg.connect(warehouse) as conn:
        resolved = conn.execute(
            "select kind, resolution, status, resolved_batch_id is not null from dq.escalations order by escalation_id"
        ).fetchall()
        assert len(resolved) == expected_messages
        assert {r[:3] for r in resolved} == {("check", "check_passed", "resolved"),
                                            ("rejected_delivery", "redelivered", "resolved")}
        assert all(r[3] for r in resolved)
        live = conn.execute("select feed, file_name from raw.deliveries where is_live order by feed").fetchall()
        assert all(name.endswith("_v2.csv") for _, name in live) and len(live) == len(FEEDS)
    assert len(mail.messages) == expected_messages

    # December regresses on one rule: a new escalation, with the same fingerprint as the resolved one.
    write_csv(landing / "water_supply" / "water_supply_202612.csv",
              [dict(row, 自来水入户户数="130") if row["村名"] == "一村" else row for row in water(True, "2026-12")])
    run_month(landing, DECEMBER, ["water_supply"])
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute(
            "select escalation_id, status, first_data_month from dq.escalations "
            "where check_name = 'tap_water_within_households' order by escalation_id").fetchall()
        assert [(status, month) for _, status, month in rows] == [("resolved", NOVEMBER), ("open", DECEMBER)]
        fingerprints = {r[0] for r in conn.execute(
            "select distinct fingerprint from dq.escalations where check_name = 'tap_water_within_households'")}
        assert len(fingerprints) == 1
    assert len(mail.messages) == expected_messages + 1
    assert "自来水入户户数不得超过总户数" in mail.messages[-1]["Subject"]


def test_a_critical_failure_quarantines_the_batch_and_the_last_good_batch_stays_live(warehouse, tmp_path):
    from typer.testing import CliRunner

    from ruralwatch.cli import app

    landing = tmp_path / "landing"
    write_csv(landing / "rural_roster" / "rural_roster_202610.csv", sample_rows())
    # November differs from October (a raise for one household): the same bytes would be a duplicate.
    november = [dict(r, **{"家庭年纯收入(元)": "38000"}) if r["户编号"] == "HH001001001" else r for r in sample_rows()]
    write_csv(landing / "rural_roster" / "rural_roster_202611.csv", november)
    run_month(landing, dt.date(2026, 10, 1), ["rural_roster"])
    run_month(landing, NOVEMBER, ["rural_roster"])
    # v2 of November: two IDs lose their check digit. 2 of 13 rows unusable > 2%: critical.
    broken = [dict(r) for r in november]
    for row in broken[5:7]:
        row["身份证号"] = row["身份证号"][:-1] + ("1" if row["身份证号"][-1] != "1" else "2")
    write_csv(landing / "rural_roster" / "rural_roster_202611_v2.csv", broken)
    verdicts = run_month(landing, NOVEMBER, ["rural_roster"])
    assert [v["decision"] for v in verdicts] == ["quarantined"]
    v2 = verdicts[0]["batch_id"]

    def staging_reads(conn):
        # What staging models read: rows of live batches only (dbt_project/macros/staging/typed_feed.sql).
        return conn.execute(
            "select r._source_file, count(*) from raw.rural_roster as r "
            "join raw.deliveries as d on d.batch_id = r._batch_id and d.is_live "
            "group by 1 order by 1").fetchall()

    with psycopg.connect(warehouse) as conn:
        live = conn.execute("select file_name from raw.deliveries where is_live order by file_name").fetchall()
        assert live == [("rural_roster_202610.csv",), ("rural_roster_202611.csv",)]
        assert conn.execute("select status, gate_status, is_live from raw.deliveries where batch_id = %s",
                            (v2,)).fetchone() == ("quarantined", "failed", False)
        assert staging_reads(conn) == [("rural_roster_202610.csv", 13), ("rural_roster_202611.csv", 13)]
        critical = conn.execute("select check_name, status, last_batch_id from dq.escalations "
                                "where severity = 'critical'").fetchall()
        assert critical == [("unusable_rows", "open", v2)]

    # An engineer releases it with a reason; it goes live in its month, the escalation stays open.
    refused = CliRunner().invoke(app, ["release", v2, "--reason", "", "--by", "王工"])
    assert refused.exit_code == 1
    released = CliRunner().invoke(app, ["release", v2, "--reason", "民政局已电话确认两人身份证号正确，系统录入错误", "--by", "王工"])
    assert released.exit_code == 0, released.output
    with psycopg.connect(warehouse) as conn:
        assert conn.execute("select status, gate_status, is_live, released_by from raw.deliveries where batch_id = %s",
                            (v2,)).fetchone() == ("loaded", "released", True, "王工")
        assert staging_reads(conn) == [("rural_roster_202610.csv", 13), ("rural_roster_202611_v2.csv", 13)]
        events = conn.execute(
            "select ev.event, ev.actor from dq.escalation_events as ev join dq.escalations as e using (escalation_id) "
            "where e.check_name = 'unusable_rows' order by ev.event_id").fetchall()
        assert events[-1] == ("released", "王工")
        assert conn.execute("select status from dq.escalations where check_name = 'unusable_rows'").fetchone() == ("open",)
    again = CliRunner().invoke(app, ["release", v2, "--reason", "再次放行", "--by", "王工"])
    assert again.exit_code == 1 and "only a quarantined batch" in again.output


def test_runs_at_once_cannot_open_two_escalations_for_one_check(warehouse):
    """Eight connections decide on one fingerprint at the same moment; each holds its transaction open."""
    from ruralwatch.feeds.registry import load_registry
    from ruralwatch.pipeline import prepare_warehouse
    from ruralwatch.quality.escalations import Finding, escalate

    prepare_warehouse()
    department = load_registry().departments["water"]
    workers = 8
    barrier = threading.Barrier(workers)
    decisions, errors = [], []

    def run(n: int) -> None:
        try:
            with psycopg.connect(warehouse, autocommit=True) as conn, conn.transaction():
                barrier.wait(timeout=30)
                decisions.append(escalate(conn, Finding(
                    fingerprint="race-check", kind="check", severity="warning", title="自来水入户户数不得超过总户数",
                    department=department, observation=f"gate:run-{n}",
                    seen_at=dt.datetime(2026, 12, 6, 2, n, tzinfo=dt.UTC), feed="water_supply", failing_rows=n)))
                threading.Event().wait(0.2)  # keep the transaction open so the others queue behind it
        except Exception as exc:  # noqa: BLE001 - reported below with its thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(d.opened for d in decisions) == [False] * (workers - 1) + [True]
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute("select escalation_id, runs from dq.escalations where fingerprint = 'race-check'").fetchall()
        assert len(rows) == 1 and rows[0][1] == workers
        events = conn.execute("select event, count(*) from dq.escalation_events group by 1 order by 1").fetchall()
        assert events == [("opened", 1), ("seen", workers - 1)]
        assert conn.execute("select count(*) from dq.outbox").fetchone()[0] == 2  # one mail, one webhook


def test_engineers_list_show_acknowledge_comment_and_resolve_from_the_command_line(warehouse, tmp_path):
    from typer.testing import CliRunner

    from ruralwatch.cli import app

    landing = tmp_path / "landing"
    write_csv(landing / "water_supply" / "water_supply_202611.csv", water(False))
    run_month(landing, NOVEMBER, ["water_supply"])
    cli = CliRunner()

    listed = cli.invoke(app, ["escalations", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "问题整改台账：2 条" in listed.output and "水务局" in listed.output and "本月断水天数" in listed.output
    with psycopg.connect(warehouse) as conn:
        (first, _), (second, _) = conn.execute(
            "select escalation_id, check_name from dq.escalations order by check_name").fetchall()

    assert cli.invoke(app, ["escalations", "ack", str(first)]).exit_code != 0  # --by is required
    acked = cli.invoke(app, ["escalations", "ack", str(first), "--by", "李工", "--comment", "已电话联系水务局"])
    assert acked.exit_code == 0, acked.output
    assert cli.invoke(app, ["escalations", "comment", str(first), "--by", "李工", "--text", "水务局承诺12月8日前更正"]).exit_code == 0
    resolved = cli.invoke(app, ["escalations", "resolve", str(second), "--by", "李工",
                                "--reason", "二村11月确有31天记录错误，已核实为统计口径问题"])
    assert resolved.exit_code == 0, resolved.output
    assert cli.invoke(app, ["escalations", "resolve", str(second), "--by", "李工", "--reason", "x"]).exit_code == 1

    shown = cli.invoke(app, ["escalations", "show", str(first)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for text in ("整改中", "确认", "备注", "水务局承诺12月8日前更正", "李工"):
        assert text in shown.output
    assert cli.invoke(app, ["escalations", "show", "999"]).exit_code == 1

    # The acknowledged one keeps absorbing failures; the hand-resolved one reopens as a new escalation.
    write_csv(landing / "water_supply" / "water_supply_202611_v2.csv",
              [dict(row, 村名=row["村名"] + "（更正）") for row in water(False)])
    run_month(landing, NOVEMBER, ["water_supply"])
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute("select escalation_id, check_name, status, runs from dq.escalations "
                            "order by escalation_id").fetchall()
    assert [r[1:] for r in rows if r[0] == first] == [("outage_days_within_month", "acknowledged", 2)]
    assert [r[2] for r in rows if r[0] == second] == ["resolved"]
    assert len(rows) == 3 and rows[-1][2] == "open"


def test_a_late_backfill_of_an_older_month_does_not_close_a_newer_months_problem(warehouse, tmp_path):
    landing = tmp_path / "landing"
    write_csv(landing / "water_supply" / "water_supply_202612.csv", water(False, "2026-12"))
    run_month(landing, DECEMBER, ["water_supply"])
    write_csv(landing / "water_supply" / "water_supply_202610.csv", water(True, "2026-10"))
    verdicts = run_month(landing, dt.date(2026, 10, 1), ["water_supply"])
    assert verdicts[0]["failed"] == []
    with psycopg.connect(warehouse) as conn:
        # (31 days without water is possible in December, so only the tap-water rule fails.)
        assert conn.execute("select check_name, status from dq.escalations order by check_name").fetchall() == [
            ("tap_water_within_households", "open")]
    # December's own correction does close them.
    write_csv(landing / "water_supply" / "water_supply_202612_v2.csv", water(True, "2026-12"))
    run_month(landing, DECEMBER, ["water_supply"])
    with psycopg.connect(warehouse) as conn:
        assert {r[0] for r in conn.execute("select status from dq.escalations")} == {"resolved"}
