"""`ruralwatch run` runs the month's ingest DAGs side by side, in worker processes, as a scheduler's
workers do; the verdicts are the ones a one-at-a-time run gives."""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from tests.simulated import simulate

pytestmark = pytest.mark.integration

MONTH = dt.date(2026, 11, 1)
FAILING = "ingest_civil_affairs_deaths"


def record_and_sleep(dag_id: str, month: dt.date, landing: Path):
    """Stands in for run_dag in a worker: notes when it ran and in which process."""
    from ruralwatch.orchestration.runner import DagRunFailed, DagRunResult

    started = time.time()
    if dag_id == FAILING:
        time.sleep(0.1)
        raise DagRunFailed(f"DAG {dag_id} ended failed; failed tasks: load")
    time.sleep(3 if dag_id == "ingest_rural_roster" else 0.5)
    (Path(landing) / f"{dag_id}.json").write_text(json.dumps(
        {"pid": os.getpid(), "started": started, "ended": time.time()}))
    return DagRunResult(dag_id, "success", {"load": "success"}, time.time() - started)


def _ran(landing: Path) -> dict[str, dict]:
    return {p.stem.removeprefix("ingest_"): json.loads(p.read_text()) for p in landing.glob("ingest_*.json")}


def test_feeds_compared_by_their_checks_run_one_after_the_other_in_registry_order():
    from ruralwatch.orchestration.runner import ingest_waits

    waits = ingest_waits(["water_supply", "rural_roster", "housing_village_environment", "hrss_employment"])
    # water_supply's and housing_village_environment's checks compare 总户数 with each other.
    assert waits == {"rural_roster": set(), "hrss_employment": set(), "housing_village_environment": set(),
                     "water_supply": {"housing_village_environment"}}
    assert ingest_waits(["water_supply", "rural_roster"]) == {"rural_roster": set(), "water_supply": set()}


def test_workers_take_up_the_api_feed_first_then_the_longest_last_month():
    from ruralwatch.orchestration.runner import ingest_order

    feeds = ["rural_roster", "civil_affairs_assistance", "civil_affairs_deaths", "hrss_employment", "water_supply"]
    previous = {"rural_roster": 61.0, "civil_affairs_assistance": 16.5, "civil_affairs_deaths": 1.0,
                "hrss_employment": 22.0}
    assert ingest_order(feeds, previous, {"hrss_employment"}) == [
        "hrss_employment", "rural_roster", "civil_affairs_assistance", "civil_affairs_deaths", "water_supply"]
    # Without the API configured, and with no month loaded yet: longest first, then registry order.
    assert ingest_order(feeds, previous, set())[:2] == ["rural_roster", "hrss_employment"]
    assert ingest_order(feeds, {}, set()) == feeds


def test_the_longest_last_month_is_read_from_the_deliveries(warehouse):
    from ruralwatch.feeds.registry import load_registry
    from ruralwatch.orchestration.runner import previous_ingest_seconds
    from ruralwatch.warehouse import ensure_platform_tables

    assert previous_ingest_seconds() == {}          # a warehouse with no platform tables yet
    with psycopg.connect(warehouse) as conn:
        ensure_platform_tables(conn, load_registry())
        for key, (feed, month, load, gate) in enumerate([
                ("rural_roster", "2026-10-01", 1.5, 80.0), ("rural_roster", "2026-11-01", 1.0, 55.0),
                ("water_supply", "2026-11-01", 0.1, None)], start=900):
            conn.execute(
                "insert into raw.deliveries (batch_id, feed, file_name, sha256, channel, data_month, "
                "version, status, gate_status, load_seconds, gate_seconds) values "
                "(%s, %s, 'f.csv', %s, 'file', %s, 1, 'loaded', 'passed', %s, %s)",
                (f"b{key}", feed, f"sha{key}", month, load, gate))
    # The latest month only: the roster's October does not count.
    assert previous_ingest_seconds() == {"rural_roster": 56.0, "water_supply": 0.1}


def test_two_workers_run_feeds_side_by_side_and_keep_the_compared_pair_apart(warehouse, tmp_path):
    from ruralwatch.orchestration.runner import run_ingests

    feeds = ["rural_roster", "civil_affairs_assistance", "housing_village_environment", "water_supply"]
    lines: list[str] = []
    results = run_ingests(tmp_path, MONTH, feeds, lines.append, workers=2, run=record_and_sleep)

    assert [r.dag_id for r in results] == [f"ingest_{f}" for f in feeds]
    assert len(lines) == 4 and all(": success in " in line for line in lines)
    ran = _ran(tmp_path)
    assert len({r["pid"] for r in ran.values()}) == 2 and os.getpid() not in {r["pid"] for r in ran.values()}
    # The roster's 3 s overlapped the others'; the compared pair never overlapped.
    assert ran["civil_affairs_assistance"]["started"] < ran["rural_roster"]["ended"]
    assert ran["water_supply"]["started"] >= ran["housing_village_environment"]["ended"]


def test_a_failed_ingest_starts_no_further_feed_and_raises_once_the_running_ones_finish(warehouse, tmp_path):
    from ruralwatch.orchestration.runner import DagRunFailed, run_ingests

    feeds = ["rural_roster", "civil_affairs_deaths", "housing_safety", "water_supply"]
    with pytest.raises(DagRunFailed, match=FAILING):
        run_ingests(tmp_path, MONTH, feeds, workers=2, run=record_and_sleep)
    assert set(_ran(tmp_path)) == {"rural_roster"}


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    # Default defects plant a village whose 总户数 water_supply states differently from
    # housing_village_environment: the pair's comparison has something to find.
    return simulate(tmp_path_factory.mktemp("city"), persons=300, months="2026-11", seed=5, defects="default")


def _verdicts(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {
            "deliveries": conn.execute(
                "select feed, file_name, status, gate_status, is_live, row_count from raw.deliveries "
                "order by feed, file_name").fetchall(),
            "checks": conn.execute(
                "select c.feed, d.file_name, c.check_name, c.column_name, c.success, c.unexpected_count "
                "from dq.check_results c join raw.deliveries d using (batch_id) order by 1, 2, 3, 4").fetchall(),
            "escalations": conn.execute(
                "select feed, check_name, kind, status, failing_rows from dq.escalations "
                "order by feed, check_name, kind").fetchall(),
        }


def test_a_month_ingested_by_two_workers_gives_the_verdicts_of_one_at_a_time(server_url, city, monkeypatch):
    from ruralwatch.orchestration.runner import feeds_with_deliveries, run_ingests
    from tests.conftest import _recreate_database

    landing = city
    feeds = feeds_with_deliveries(landing, MONTH)
    assert {"water_supply", "housing_village_environment"} <= set(feeds)

    verdicts = {}
    for workers in (1, 2):
        url = _recreate_database(server_url, f"ruralwatch_test_{os.getpid()}_w{workers}")
        monkeypatch.setenv("WAREHOUSE_URL", url)
        results = run_ingests(landing, MONTH, feeds, workers=workers)
        assert {r.state for r in results} == {"success"}
        verdicts[workers] = _verdicts(url)
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database "{url.rsplit("/", 1)[1]}" with (force)')

    assert verdicts[1]["checks"] and any(not c[4] for c in verdicts[1]["checks"]), "no check failed: weak test"
    assert verdicts[2] == verdicts[1]
    # Each worker kept the runs it made in its own copy of the SQLite metadata; together, every feed's.
    home = Path(os.environ["AIRFLOW_HOME"])

    def dag_runs(path: Path) -> set[tuple[str, str]]:
        with sqlite3.connect(path) as db:
            return set(db.execute("select dag_id, run_id from dag_run"))

    in_parent = dag_runs(home / "airflow.db")
    runs = [{dag_id for dag_id, _ in dag_runs(copy) - in_parent}
            for copy in sorted((home / "workers").glob("airflow-*.db"))]
    assert len(runs) == 2 and all(runs)
    assert set().union(*runs) >= {f"ingest_{f}" for f in feeds}
