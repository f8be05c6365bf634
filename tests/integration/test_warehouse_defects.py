"""The warehouse under the simulator's `default` defects: a month with bad IDs (check digit,
scientific notation, numeric XLSX cells), repeated keys, impossible and future dates, negative amounts,
wrong-level and unknown area codes, a file in the wrong folder (rejected), a duplicate _v2 — and every
indicator and lead still equal to the truth, which marks all of them exact under every preset.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

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

MONTH = "2026-11"
# Seed 2's November plants row defects in every feed and two whole-file events (a file delivered into
# another feed's folder, a _v2 with unchanged bytes), and none in the API's items (see the precondition).
SEED = 2


@pytest.fixture(scope="module")
def city(server_url, tmp_path_factory):
    from ruralwatch import pipeline

    tmp = tmp_path_factory.mktemp("defects")
    with city_warehouse(server_url, f"{TEST_DATABASE}_defects", tmp, persons=1500, months=MONTH, seed=SEED,
                        defects="default") as city:
        city.truth = {MONTH: read_truth(city.landing, MONTH.replace("-", ""))}
        load_month(city.landing, dt.date(2026, 11, 1))
        pipeline.build_warehouse()
        yield city


def test_the_month_is_spoiled_the_way_the_default_preset_says(city: City):
    truth = city.truth[MONTH]
    classes = Counter(d["class"] for d in truth["defects"])
    assert truth["defects_preset"] == "default"
    assert {"id_bad_check", "duplicate_key", "date_impossible", "area_wrong_level", "amount_negative"} <= set(classes)
    assert {d["status"] for d in truth["deliveries"]} >= {"live", "rejected", "duplicate"}
    # The loader's API client takes repeated keys across pages for overlapping pages and refuses the month;
    # this seed's API items have none, so the month loads as the spec reads it.
    assert not [d for d in truth["defects"] if d["file"].startswith("_api/") and d["class"] == "duplicate_key"]


def test_every_indicator_equals_the_truth_under_defects(city: City):
    with city.connect() as conn:
        problems = indicator_mismatches(conn, city.truth[MONTH])
    assert problems == [], "\n".join(problems[:40])


def test_timeliness_equals_the_truth_under_defects(city: City):
    with city.connect() as conn:
        assert timeliness_in_mart(conn, MONTH) == expected_timeliness(city.truth[MONTH])


def test_every_lead_equals_the_truth_under_defects(city: City):
    with city.connect() as conn:
        expected = truth_leads(conn, city.truth[MONTH])
        found = leads_in_mart(conn, MONTH)
    assert expected
    assert found == expected


def test_unusable_rows_take_part_in_nothing_and_stay_visible(city: City):
    """Rows with an invalid ID or a repeated key are in staging, flagged, and in no fact."""
    with city.connect() as conn:
        flagged = conn.execute(
            "select count(*) filter (where not is_usable), count(*) filter (where is_key_repeated), "
            "count(*) filter (where resident_id_problem is not null) from staging.stg_rural_roster__persons").fetchone()
        in_facts = conn.execute(
            "select count(*) from staging.stg_rural_roster__persons as s "
            "inner join marts.fct_person_month as f on f.person_key = s.person_key and f.data_month = s.data_month "
            "where not s.is_usable").fetchone()[0]
        persons = conn.execute("select count(*) from marts.fct_person_month").fetchone()[0]
        conflicts = conn.execute("select conflict_type, count(*) from audit.audit_identity_conflicts "
                                 "group by conflict_type").fetchall()
    unusable_in_truth = [d for d in city.truth[MONTH]["deliveries"] if d["feed"] == "rural_roster"
                         and d["status"] == "live"][0]["unusable_rows"]
    assert flagged[0] == unusable_in_truth > 0
    assert in_facts == 0
    assert persons == city.truth[MONTH]["population"]["roster_person_rows"]
    assert dict(conflicts).get("roster_person_repeated", 0) == flagged[1]


def test_the_build_does_not_need_the_escalation_ledger(city: City):
    """I18 reads dq.escalations, which another part of the platform owns: a warehouse without it still
    builds (the staging view is empty), and reads it again once it is there."""
    from ruralwatch.transform import run_dbt

    with city.connect(autocommit=True) as conn:
        escalations = conn.execute("select count(*) from dq.escalations").fetchone()[0]
        conn.execute("alter table dq.escalations rename to escalations_elsewhere")
    try:
        run_dbt(["build", "--select", "stg_dq__escalations"])
        with city.connect() as conn:
            assert conn.execute("select count(*) from staging.stg_dq__escalations").fetchone()[0] == 0
    finally:
        with city.connect(autocommit=True) as conn:
            conn.execute("alter table dq.escalations_elsewhere rename to escalations")
        run_dbt(["build", "--select", "stg_dq__escalations"])
    with city.connect() as conn:
        assert conn.execute("select count(*) from staging.stg_dq__escalations").fetchone()[0] == escalations > 0
