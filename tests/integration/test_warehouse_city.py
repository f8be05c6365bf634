"""The household warehouse against the simulator's truth: three months of a simulated city with no
defects, loaded and gated month by month, built by dbt in two runs (the second incremental), the lead
loop closed by the towns' answers — then every indicator and every lead compared exactly, and the
access, documentation, snapshot and lead lists checked on the same real PostgreSQL warehouse.

One module-scoped city keeps the runtime modest: ~1,200 persons, two dbt builds. Seed 9's November
changes two households' monitoring status, which the snapshot test needs.
"""
from __future__ import annotations

import datetime as dt
import re

import psycopg
import pytest

from tests.conftest import TEST_DATABASE
from tests.integration.test_warehouse_support import (
    City,
    city_warehouse,
    expected_timeliness,
    indicator_mismatches,
    leads_in_mart,
    load_month,
    read_truth,
    timeliness_in_mart,
    truth_leads,
)

pytestmark = pytest.mark.integration

SEPTEMBER, OCTOBER, NOVEMBER = dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)
MONTHS = ("2026-09", "2026-10", "2026-11")
MASKED_ID = re.compile(r"^\d{6}\*{8}\d{3}[\dX]$")
FULL_ID = re.compile(r"(?<![\d*])\d{17}[\dX](?![\d*])")


def _row_versions(conn, table: str, month: dt.date) -> set[str]:
    """The transaction ids that wrote a month's rows: unchanged when a build leaves the month alone."""
    return {r[0] for r in conn.execute(f"select distinct xmin::text from {table} where data_month = %s",  # noqa: S608
                                       (month,))}


@pytest.fixture(scope="module")
def city(server_url, tmp_path_factory):
    """Sep–Oct loaded and built; September's leads pushed and answered by the towns in October's
    lead_feedback; November loaded; built again (incremental)."""
    from ruralwatch import pipeline
    from ruralwatch.simulate import write_lead_feedback

    tmp = tmp_path_factory.mktemp("city")
    with city_warehouse(server_url, f"{TEST_DATABASE}_city", tmp, persons=1200, months="2026-09:2026-11", seed=9,
                        defects="none") as city:
        city.truth = {m: read_truth(city.landing, m.replace("-", "")) for m in MONTHS}
        load_month(city.landing, SEPTEMBER)
        load_month(city.landing, OCTOBER)
        pipeline.build_warehouse()
        with city.connect() as conn:
            city.first_build = {
                "versions": {(t, m): _row_versions(conn, t, m)
                             for t in ("marts.fct_person_month", "marts.fct_medical_claims", "marts.fct_household_month",
                                       "intermediate.int_roster_rows_checked",
                                       "intermediate.int_roster_members_placed")
                             for m in (SEPTEMBER, OCTOBER)},
                "lead_ids": {r[0] for r in conn.execute("select lead_id from marts.mart_warning_leads")},
            }
        city.september_lists = pipeline.push_leads(SEPTEMBER)
        with city.connect() as conn:
            pushed = conn.execute(
                "select lead_id, coalesce(town_code, county_code, '990100000000'), rule_id "
                "from marts.mart_warning_leads where pushed_month = %s", (SEPTEMBER,)).fetchall()
        city.feedback = write_lead_feedback([{"线索编号": lead, "town": town, "rule": rule} for lead, town, rule in pushed],
                                            "2026-10", city.landing, seed=5, unknown_leads=2)
        load_month(city.landing, OCTOBER, feeds=["lead_feedback"])
        load_month(city.landing, NOVEMBER)
        pipeline.build_warehouse()
        yield city


# -- the truth ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("month", MONTHS)
def test_every_indicator_equals_the_truth(city: City, month):
    with city.connect() as conn:
        problems = indicator_mismatches(conn, city.truth[month])
        computed = conn.execute("select count(*) from marts.mart_indicator_values where period_label = %s",
                                (month,)).fetchone()[0]
    assert computed > 5000
    assert problems == [], "\n".join(problems[:40])


@pytest.mark.parametrize("month", MONTHS)
def test_timeliness_per_department_equals_the_truth(city: City, month):
    with city.connect() as conn:
        assert timeliness_in_mart(conn, month) == expected_timeliness(city.truth[month])


@pytest.mark.parametrize("month", MONTHS)
def test_every_lead_equals_the_truth_with_its_area_and_town(city: City, month):
    with city.connect() as conn:
        expected = truth_leads(conn, city.truth[month])
        found = leads_in_mart(conn, month)
    assert set(city.truth[month]["rules_evaluated"]) == {f"W0{i}" for i in range(1, 10)}
    assert len(expected) > 20
    assert sorted(set(expected) - set(found)) == []
    assert sorted(set(found) - set(expected)) == []
    assert {k: v for k, v in found.items() if expected[k] != v} == {}


def test_a_lead_opens_in_the_month_its_condition_starts_to_hold(city: City):
    """In the truth a lead is new when its (rule, key) holds this month and did not the month before
    (every rule is evaluated every month here); the mart pushes exactly those, each once."""
    with city.connect() as conn:
        held = {m: set(truth_leads(conn, city.truth[m])) for m in MONTHS}
        pushed = {m: {(r[0], r[1], r[2]) for r in conn.execute(
            "select rule_id, lead_key_type, lead_key from marts.mart_warning_leads where to_char(pushed_month, "
            "'YYYY-MM') = %s", (m,))} for m in MONTHS}
    assert pushed["2026-09"] == held["2026-09"]
    assert pushed["2026-10"] == held["2026-10"] - held["2026-09"]
    assert pushed["2026-11"] == held["2026-11"] - held["2026-10"]


# -- the lead loop -------------------------------------------------------------------------------------
def test_lead_numbers_are_stable_across_builds(city: City):
    with city.connect() as conn:
        now = {r[0] for r in conn.execute("select lead_id from marts.mart_warning_leads "
                                          "where pushed_month in (%s, %s)", (SEPTEMBER, OCTOBER))}
    assert now == city.first_build["lead_ids"]
    assert all(re.match(r"^XS2026(09|10)-W0[1-9]-[0-9A-F]{10}$", lead) for lead in now)


def test_each_town_gets_its_new_leads_once_with_masked_subjects(city: City):
    import openpyxl

    from ruralwatch import pipeline
    from ruralwatch.reports.leads import HEADERS

    with city.connect() as conn:
        expected = {r[0]: r[1:] for r in conn.execute(
            "select lead_id, coalesce(town_code, county_code, '990100000000'), pushed_date, response_deadline_date "
            "from marts.mart_warning_leads where pushed_month = %s", (SEPTEMBER,))}
    listed: dict[str, str] = {}
    for item in city.september_lists:
        sheet = openpyxl.load_workbook(item["path"]).active
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[1] == HEADERS
        assert item["path"].endswith(f"/202609/leads/{item['area_code']}.xlsx")
        for row in rows[2:]:
            assert row[0] not in listed, f"{row[0]} is on two lists"
            listed[row[0]] = item["area_code"]
            assert (row[6].date(), row[7].date()) == (dt.date(2026, 10, 6), dt.date(2026, 10, 21))
            assert not FULL_ID.search(" ".join(str(v) for v in row)), row
            if row[1] == "个人（名册外）":
                assert MASKED_ID.match(row[2]), row
    assert listed == {lead: values[0] for lead, values in expected.items()}
    # A second push of the month writes the same lists; the next month's lists hold only its new leads.
    again = pipeline.push_leads(SEPTEMBER)
    assert [(i["path"], i["leads"]) for i in again] == [(i["path"], i["leads"]) for i in city.september_lists]
    october = pipeline.push_leads(OCTOBER)
    october_leads = set()
    for item in october:
        october_leads |= {r[0] for r in list(openpyxl.load_workbook(item["path"]).active.iter_rows(values_only=True))[2:]}
    assert october_leads and not (october_leads & set(listed))


def test_towns_answers_close_leads_and_make_i17_and_i20(city: City):
    """I17 = leads answered by the deadline / leads pushed; I20 = answered 已纳入监测 or 已落实帮扶 /
    answered — computed here from the towns' files as the simulator's own reader reads them."""
    from ruralwatch.simulate.periods import parse_month
    from ruralwatch.simulate.readback import NO_DAY, AreaBook, read_delivery
    from ruralwatch.simulate.schema import FEEDS

    answers = {}
    for record in city.feedback:
        parsed = read_delivery(city.landing / record["file"], FEEDS["lead_feedback"], parse_month("2026-10"),
                               AreaBook.load())
        for lead, result, day in zip(parsed.columns["线索编号"], parsed.columns["核实结果"], parsed.columns["核实日期"],
                                     strict=True):
            answers[lead] = (result, None if day == NO_DAY else dt.date(1970, 1, 1) + dt.timedelta(days=int(day)))
    with city.connect() as conn:
        leads = {r[0]: r[1:] for r in conn.execute(
            "select lead_id, rule_id, is_answered, is_answered_on_time, is_converted, is_open, lead_status, "
            "feedback_result from marts.mart_warning_leads where pushed_month = %s", (SEPTEMBER,))}
        cells = {r[0]: (r[1], r[2]) for r in conn.execute(
            "select measure_code, numerator, denominator from marts.mart_indicator_values "
            "where period = %s and area_level = '市' and indicator_id in ('I17', 'I20')", (SEPTEMBER,))}
        unmatched = {r[0] for r in conn.execute("select lead_id from audit.audit_lead_feedback_unmatched")}
    deadline = dt.date(2026, 10, 21)
    answered = {lead for lead in leads if lead in answers}
    on_time = {lead for lead in answered if answers[lead][1] is not None and answers[lead][1] <= deadline}
    converted = {lead for lead in answered if answers[lead][0] in ("已纳入监测", "已落实帮扶")}
    assert 0 < len(on_time) < len(answered) < len(leads)
    assert {lead for lead, v in leads.items() if v[1]} == answered
    assert {lead for lead, v in leads.items() if v[2]} == on_time
    assert {lead for lead, v in leads.items() if v[3]} == converted
    assert all(not v[4] and v[5] == "已反馈" and v[6] == answers[lead][0] for lead, v in leads.items() if lead in answered)
    assert cells["I17"] == (len(on_time), len(leads))
    assert cells["I20.全部"] == (len(converted), len(answered))
    for rule in {v[0] for v in leads.values()}:
        mine = {lead for lead in answered if leads[lead][0] == rule}
        assert cells[f"I20.{rule}"] == (len(mine & converted), len(mine))
    # Two rows carry a 线索编号 the warehouse never pushed: flagged for the auditors, closing nothing.
    assert unmatched == {lead for record in city.feedback for lead in record["unknown"]} and len(unmatched) == 2


# -- incremental, snapshot --------------------------------------------------------------------------
def test_the_next_month_does_not_rebuild_history(city: City):
    with city.connect() as conn:
        for (table, month), versions in city.first_build["versions"].items():
            assert versions and _row_versions(conn, table, month) == versions, (table, month)
        assert _row_versions(conn, "marts.fct_person_month", NOVEMBER)
        assert _row_versions(conn, "intermediate.int_roster_members_placed", NOVEMBER)


def test_the_snapshot_dates_each_status_change_by_its_data_month(city: City):
    with city.connect() as conn:
        changed = {r[0] for r in conn.execute("""
            select nov.household_code
            from marts.fct_household_month as nov
            inner join marts.fct_household_month as oct
                on oct.household_code = nov.household_code and oct.data_month = %s
            where nov.data_month = %s
              and (nov.household_type, nov.monitoring_category, nov.is_risk_eliminated)
                  is distinct from (oct.household_type, oct.monitoring_category, oct.is_risk_eliminated)
            """, (OCTOBER, NOVEMBER))}
        new_versions = {r[0] for r in conn.execute(
            "select household_code from snapshots.snap_household_monitoring_status "
            "where dbt_valid_from = %s and dbt_valid_to is null", (dt.datetime(2026, 11, 1),))}
        closed = {r[0] for r in conn.execute(
            "select household_code from snapshots.snap_household_monitoring_status where dbt_valid_to = %s",
            (dt.datetime(2026, 11, 1),))}
        current = conn.execute("select count(*), count(distinct household_code) from "
                               "snapshots.snap_household_monitoring_status where dbt_valid_to is null").fetchone()
        households = conn.execute("select count(*) from marts.dim_household").fetchone()[0]
    assert changed, "the simulated November changes no household's status: nothing to check"
    assert changed <= new_versions and changed <= closed
    assert current == (households, households)


# -- access ---------------------------------------------------------------------------------------------
def _denied(conn, query: str) -> bool:
    try:
        conn.execute(query)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_an_analyst_reads_published_views_only(city: City):
    with city.connect(autocommit=True) as conn:
        conn.execute("set role ruralwatch_analyst")
        for relation in ("raw.deliveries", "raw.rural_roster", "staging.stg_rural_roster__persons",
                         "intermediate.int_roster_members_placed", "marts.fct_person_month",
                         "marts.mart_indicator_values", "audit.audit_identity_conflicts", "dq.check_results",
                         "restricted.pseudonym_key", "reference.area_codes", "snapshots.snap_household_monitoring_status"):
            assert _denied(conn, f"select 1 from {relation} limit 1"), relation  # noqa: S608
        assert _denied(conn, "select restricted.person_key('110105194912310021')")
        assert conn.execute("select count(*) from published.mart_indicator_values").fetchone()[0] > 0
        assert conn.execute("select count(*) from published.fct_person_month").fetchone()[0] > 0
        columns = {r[0] for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'published'")}
    personal = {c for c in columns if re.search(r"resident_id|name$|phone|verifier|subject_reference|note", c)
                and c not in {"area_name", "indicator_name", "rule_name", "county_name", "town_name",
                              "rule_department_name"}}
    assert personal == set()


def test_published_village_cells_below_five_are_suppressed(city: City):
    with city.connect() as conn:
        small = conn.execute(
            "select period, area_code, measure_code from marts.mart_indicator_values "
            "where area_level = '村' and suppress_small_cells and record_count between 1 and 4").fetchall()
        large = conn.execute(
            "select period, area_code, measure_code, value from marts.mart_indicator_values "
            "where area_level = '村' and record_count >= 5 and value is not null limit 50").fetchall()
        conn.execute("set role ruralwatch_analyst")
        for period, area, measure in small[:50]:
            shown = conn.execute("select numerator, denominator, value, record_count, is_suppressed "
                                 "from published.mart_indicator_values where period = %s and area_code = %s "
                                 "and measure_code = %s", (period, area, measure)).fetchone()
            assert shown == (None, None, None, None, True)
        for period, area, measure, value in large:
            shown = conn.execute("select value, is_suppressed from published.mart_indicator_values where period = %s "
                                 "and area_code = %s and measure_code = %s", (period, area, measure)).fetchone()
            assert shown == (value, False)
    assert small and large


def test_an_auditor_reads_the_quality_ledger_and_masked_conflicts_only(city: City):
    with city.connect(autocommit=True) as conn:
        conn.execute("set role ruralwatch_auditor")
        for relation in ("raw.rural_roster", "staging.stg_rural_roster__persons", "restricted.pseudonym_key",
                         "intermediate.int_deaths_registered", "marts.fct_person_month"):
            assert _denied(conn, f"select 1 from {relation} limit 1"), relation  # noqa: S608
        assert conn.execute("select count(*) from dq.check_results").fetchone()[0] > 0
        ids = [r[0] for r in conn.execute("select masked_resident_id from audit.audit_identity_conflicts")]
        conn.execute("select count(*) from audit.audit_lead_feedback_unmatched")
    assert all(MASKED_ID.match(i) for i in ids if i is not None)


def test_an_engineer_reads_everything(city: City):
    with city.connect(autocommit=True) as conn:
        conn.execute("set role ruralwatch_engineer")
        for relation in ("raw.rural_roster", "staging.stg_rural_roster__persons", "restricted.pseudonym_key",
                         "marts.fct_person_month", "audit.audit_identity_conflicts", "published.dim_household"):
            conn.execute(f"select 1 from {relation} limit 1")  # noqa: S608


# -- documentation ---------------------------------------------------------------------------------------
def test_every_mart_column_has_a_chinese_comment(city: City):
    with city.connect() as conn:
        missing = conn.execute("""
            select n.nspname || '.' || c.relname || '.' || coalesce(a.attname, '(relation)')
            from pg_class as c
            inner join pg_namespace as n on n.oid = c.relnamespace
            left join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where n.nspname in ('marts', 'published', 'audit', 'snapshots') and c.relkind in ('r', 'v')
              and (coalesce(col_description(c.oid, a.attnum), '') !~ '[\\u4e00-\\u9fff]'
                   or coalesce(obj_description(c.oid, 'pg_class'), '') !~ '[\\u4e00-\\u9fff]')
            order by 1""").fetchall()
    assert [m[0] for m in missing] == []


def test_dbt_docs_generate_works(city: City):
    import json

    from ruralwatch.transform import run_dbt

    result = run_dbt(["docs", "generate"])
    target = [line for line in result.output.splitlines() if "Catalog written to" in line]
    assert target, result.output[-2000:]
    catalog = json.loads(open(target[0].split("Catalog written to", 1)[1].strip(), encoding="utf-8").read())
    described = catalog["nodes"]["model.ruralwatch.mart_indicator_values"]["columns"]["value"]["comment"]
    assert described.startswith("指标值")
