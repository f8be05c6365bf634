"""The rural_roster feed end to end through real Airflow DAG runs, GX and dbt on real PostgreSQL."""
from __future__ import annotations

import csv
import datetime as dt

import psycopg
import pytest

pytestmark = pytest.mark.integration

MONTH = dt.date(2026, 11, 1)


def _sample_rows(landing) -> list[dict]:
    path = landing / "rural_roster" / "rural_roster_202611.csv"
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            "raw": conn.execute("select count(*) from raw.rural_roster").fetchone()[0],
            "deliveries": conn.execute("select count(*) from raw.deliveries").fetchone()[0],
            "staging": conn.execute("select count(*) from staging.stg_rural_roster__persons").fetchone()[0],
            "households": conn.execute("select count(*) from marts.dim_household").fetchone()[0],
            "checks": conn.execute("select count(*) from dq.check_results").fetchone()[0],
        }


def test_dag_runs_load_gate_and_build_and_a_rerun_adds_nothing(warehouse, landing):
    from ruralwatch.orchestration.runner import run_dag

    rows = _sample_rows(landing)
    households = {r["户编号"] for r in rows}

    ingest = run_dag("ingest_rural_roster", month=MONTH, landing=landing)
    assert ingest.tasks == {"load": "success", "gate": "success", "publish": "success"}
    build = run_dag("build_warehouse")
    # dbt builds the whole project in one task, on its own threads.
    assert build.tasks == {"prepare": "success", "dbt_build": "success", "grant_access": "success",
                           "summary": "success"}

    first = _counts(warehouse)
    assert first["raw"] == len(rows)
    assert first["staging"] == len(rows)
    assert first["households"] == len(households)
    assert first["deliveries"] == 1
    assert first["checks"] > 0

    with psycopg.connect(warehouse) as conn:
        batch = conn.execute(
            "select status, gate_status, is_live, row_count, sha256, header_row from raw.deliveries").fetchone()
        assert batch[:4] == ("loaded", "passed", True, len(rows))
        assert len(batch[4]) == 64 and batch[5] == 1
        # Every value is text exactly as delivered, with its row as a spreadsheet shows it.
        first_row = conn.execute(
            "select _source_row, resident_id, household_net_income_yuan, _data_month, _source_file "
            "from raw.rural_roster order by _source_row limit 1").fetchone()
        assert first_row == (2, rows[0]["身份证号"], rows[0]["家庭年纯收入(元)"], MONTH, "rural_roster_202611.csv")
        # Marts carry pseudonymous keys, never resident IDs.
        head_key = conn.execute("select head_person_key from marts.dim_household limit 1").fetchone()[0]
        assert len(head_key) == 32 and not any(head_key == r["身份证号"] for r in rows)

    # The same delivery again: nothing new in raw, staging or the mart; the publish step is skipped.
    again = run_dag("ingest_rural_roster", month=MONTH, landing=landing)
    assert again.tasks["publish"] == "skipped"
    run_dag("build_warehouse")
    second = _counts(warehouse)
    assert {k: second[k] for k in ("raw", "deliveries", "staging", "households")} == \
           {k: first[k] for k in ("raw", "deliveries", "staging", "households")}

    # A correction (_v2) of the month: staging shows its rows, and only its rows, after the next build.
    corrected = [dict(rows[0], **{"家庭年纯收入(元)": "123456"}), *rows[1:]]
    with open(landing / "rural_roster" / "rural_roster_202611_v2.csv", "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(corrected)
    run_dag("ingest_rural_roster", month=MONTH, landing=landing)
    run_dag("build_warehouse")
    with psycopg.connect(warehouse) as conn:
        staged = conn.execute("select count(*), count(distinct batch_id), min(batch_id) from "
                              "staging.stg_rural_roster__persons").fetchone()
        live = conn.execute("select batch_id from raw.deliveries where is_live").fetchone()[0]
        income = conn.execute("select count(*) from staging.stg_rural_roster__persons "
                              "where household_net_income_yuan = 123456").fetchone()[0]
    assert staged == (len(rows), 1, live)
    assert income >= 1
