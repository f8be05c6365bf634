"""Every DAG imports cleanly, carries an owner, retries, tags and triage docs, and parses light."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ruralwatch.feeds.registry import load_registry


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    from ruralwatch import settings

    return DagBag(dag_folder=str(settings.DAGS_DIR))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_ingest_dag_per_declared_feed(dagbag):
    expected = {f"ingest_{feed.name}" for feed in load_registry()} | {"build_warehouse"}
    assert expected <= set(dagbag.dag_ids)


def test_every_dag_has_owner_retries_tags_and_docs(dagbag):
    assert dagbag.dags, "no DAG was found"
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and "Triage" in dag.doc_md, f"{dag_id} has no triage doc_md"
        assert dag.catchup is False, f"{dag_id} would backfill every month since its start date"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_ingest_dags_publish_their_feed_asset(dagbag):
    for feed in load_registry():
        dag = dagbag.dags[f"ingest_{feed.name}"]
        outlets = [o for t in dag.tasks for o in t.outlets]
        assert [o.uri for o in outlets] == [f"ruralwatch://warehouse/raw/{feed.name}"]


def test_parsing_dags_does_no_heavy_work():
    """No database driver, GX or dbt is imported when the DAG file is parsed."""
    code = (
        "import runpy, sys; from ruralwatch import settings;"
        "runpy.run_path(str(settings.DAGS_DIR / 'ruralwatch_dags.py'));"
        "heavy = [m for m in ('psycopg', 'great_expectations', 'dbt', 'ruralwatch.db', 'ruralwatch.feeds.loader')"
        " if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
