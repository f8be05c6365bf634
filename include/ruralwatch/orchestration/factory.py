"""DAGs made from the feed registry: one `ingest_<feed>` per declared feed, and `build_warehouse`.

Parsing these DAGs reads the registry YAML and nothing else: no database, dbt, GX or network call
happens at import; every heavy import sits inside a task.
"""
from __future__ import annotations

import datetime as dt
from textwrap import dedent

import pendulum
from airflow.sdk import DAG, Asset, Param, task
from airflow.timetables.trigger import CronTriggerTimetable

from ruralwatch.feeds.registry import Feed, Registry, load_registry

TIMEZONE = "Asia/Shanghai"
START_DATE = pendulum.datetime(2026, 1, 1, tz=TIMEZONE)
DEFAULT_RETRIES = 2


def feed_asset(feed: Feed) -> Asset:
    return Asset(name=f"raw.{feed.name}", uri=f"ruralwatch://warehouse/raw/{feed.name}",
                 extra={"department": feed.department.name, "title": feed.title})


def _ingest_doc(feed: Feed) -> str:
    return dedent(f"""
    ### 接收 {feed.title}（{feed.department.name}）

    Loads the month's deliveries of `{feed.name}` from `<landing>/{feed.name}/` into `raw.{feed.name}`,
    gates each new batch with its GX suite, and publishes the asset `raw.{feed.name}` when a batch
    went live (which triggers `build_warehouse`).

    **Schedule**: the {feed.due_day + 1}th of each month at 06:00 (Asia/Shanghai), for the month
    before (deliveries are due by day {feed.due_day}). **Backfill** a month: trigger with
    `{{"month": "YYYY-MM"}}`, or `ruralwatch load --feed {feed.name} --month YYYY-MM`.

    **Triage**
    - `load` failed: read its log; a structural break in a file is *not* a task failure (the
      delivery is recorded as `rejected` in `raw.deliveries` with the file, row and column), so a
      failure here is the warehouse or the landing folder being unreachable. Fix, then clear the task.
    - `gate` failed: a check could not run (not a data verdict). Data verdicts are in
      `dq.check_results`; a quarantined batch is listed by `ruralwatch deliveries`.
    - Owner department contact: {feed.department.contact_email}.
    """)


def make_ingest_dag(feed: Feed) -> DAG:
    asset = feed_asset(feed)
    with DAG(
        dag_id=f"ingest_{feed.name}",
        description=f"{feed.department.name}：{feed.title}",
        schedule=CronTriggerTimetable(f"0 6 {feed.due_day + 1} * *", timezone=TIMEZONE),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": feed.department.code, "retries": DEFAULT_RETRIES,
                      "retry_delay": dt.timedelta(minutes=5)},
        tags=["ingest", feed.department.code, feed.kind],
        params={
            "month": Param(None, type=["null", "string"], description="data month YYYY-MM (default: last month)"),
            "landing": Param(None, type=["null", "string"], description="landing folder (default: RURALWATCH_LANDING)"),
        },
        doc_md=_ingest_doc(feed),
    ) as dag:

        @task(task_id="load")
        def load(params: dict | None = None, logical_date=None) -> list[dict]:
            from pathlib import Path

            from ruralwatch import pipeline

            params = params or {}
            month = pipeline.data_month_for_run(logical_date, params.get("month"))
            landing = Path(params["landing"]) if params.get("landing") else None
            return pipeline.load_feed(feed.name, month, landing)

        @task(task_id="gate")
        def gate(loaded: list[dict]) -> list[dict]:
            from ruralwatch import pipeline

            return pipeline.gate_feed(feed.name)

        @task(task_id="publish", outlets=[asset])
        def publish(gated: list[dict]) -> int:
            from airflow.sdk.exceptions import AirflowSkipException

            live = [g for g in gated if g["decision"] == "live"]
            if not live:
                # No asset event: nothing new went live, so nothing downstream needs rebuilding.
                raise AirflowSkipException("no batch went live this run")
            return len(live)

        publish(gate(load()))
    return dag


def make_build_dag(registry: Registry) -> DAG:
    assets = [feed_asset(f) for f in registry]
    condition = assets[0]
    for asset in assets[1:]:
        condition = condition | asset
    with DAG(
        dag_id="build_warehouse",
        description="dbt: staging → 户/人 facts → indicator and warning marts",
        schedule=condition,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "data_engineering", "retries": 1, "retry_delay": dt.timedelta(minutes=2)},
        tags=["build", "dbt"],
        doc_md=dedent("""
        ### 构建数据仓库
        Runs `dbt seed` and `dbt build` (models with their tests) whenever a feed publishes a new
        live batch. **Triage**: the task log carries dbt's own output; a failed dbt test names the
        model and the test. Rerun with `ruralwatch build` once fixed.
        """),
    ) as dag:

        @task(task_id="dbt_build")
        def dbt_build() -> None:
            from ruralwatch import pipeline

            pipeline.build_warehouse()

        @task(task_id="summary")
        def run_summary() -> dict:
            from ruralwatch import pipeline

            result = pipeline.summary()
            return {"tables": result["tables"], "checks_run": result["checks_run"],
                    "checks_passed": result["checks_passed"]}

        dbt_build() >> run_summary()
    return dag


def build_all_dags(registry: Registry | None = None) -> dict[str, DAG]:
    registry = registry or load_registry()
    dags = {f"ingest_{feed.name}": make_ingest_dag(feed) for feed in registry}
    dags["build_warehouse"] = make_build_dag(registry)
    return dags
