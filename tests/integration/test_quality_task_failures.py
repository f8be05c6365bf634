"""Failed Airflow tasks escalate through the DAG factory's callbacks: one escalation per DAG and task.

A real Airflow run (`dag.test()`, the task runner and its callbacks) in a child process with an
Airflow home and DAGs folder of its own: the test DAG uses the factory's ESCALATION_CALLBACKS
with one retry and no delay, so each failing run calls a callback twice (retry, then failure).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import psycopg
import pytest

from tests.integration.test_quality_notify import mail  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

DAG_FILE = '''
"""A DAG (airflow) whose load task fails on demand, with the project's escalation callbacks."""
import datetime as dt

import pendulum
from airflow.sdk import DAG, task

from ruralwatch.orchestration.factory import ESCALATION_CALLBACKS

with DAG(dag_id="ingest_water_supply", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         default_args={"owner": "water", "retries": 1, "retry_delay": dt.timedelta(0), **ESCALATION_CALLBACKS}):
    @task(task_id="load")
    def load(params=None):
        if (params or {}).get("fail"):
            raise RuntimeError("warehouse unreachable while loading the row of 990101196503041030")
        return 1

    load()
'''

RUNNER = '''
import json, os, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag("ingest_water_supply")
print(json.dumps([str(dag.test(run_conf={"month": "2026-11", "fail": fail}).state) for fail in json.loads(sys.argv[1])]))
'''


def run_airflow(tmp_path, fails: list[bool]) -> list[str]:
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    (dags / "callback_dag.py").write_text(DAG_FILE, encoding="utf-8")
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR")
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    if not (tmp_path / "airflow" / "airflow.db").exists():
        migrated = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True)
        assert migrated.returncode == 0, migrated.stderr[-3000:]
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(RUNNER), json.dumps(fails)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_failed_try_lands_in_one_escalation_per_dag_and_task_until_the_task_succeeds(
        warehouse, tmp_path, mail):  # noqa: F811
    from ruralwatch.pipeline import prepare_warehouse

    prepare_warehouse()
    # Two failing runs (two tries each: retry callback, then failure callback), then one that succeeds.
    assert run_airflow(tmp_path, [True, True, False]) == ["failed", "failed", "success"]
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute(
            "select escalation_id, kind, status, runs, severity, department_name, feed, first_data_month, sample, "
            "detail, resolution from dq.escalations").fetchall()
        assert len(rows) == 1
        escalation_id, kind, status, runs, severity, department, feed, month, sample, detail, resolution = rows[0]
        assert (kind, runs, severity, department, feed) == ("task_failure", 4, "critical", "数据工程组", "water_supply")
        assert (status, resolution) == ("resolved", "task_succeeded")
        assert str(month) == "2026-11-01"
        assert (detail["dag_id"], detail["task_id"], detail["try_number"]) == ("ingest_water_supply", "load", 2)
        assert "990101********1030" in sample[0]["错误"] and "990101196503041030" not in json.dumps(sample)
        events = [r[0] for r in conn.execute(
            "select event from dq.escalation_events where escalation_id = %s order by event_id", (escalation_id,))]
        assert events == ["opened", "notified", "seen", "seen", "seen", "resolved"]
    # The first failed try told the engineers, by mail, once.
    assert len(mail.messages) == 1
    assert "ingest_water_supply / load" in mail.messages[0]["Subject"]
