"""DAGs made from the feed registry: one `ingest_<feed>` per declared feed, `build_warehouse` and
`publish_reports`.

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
# The Airflow connection dbt (through Cosmos) uses; `ruralwatch` sets it from WAREHOUSE_URL or the
# embedded server (AIRFLOW_CONN_RURALWATCH_WAREHOUSE), a deployment from its secrets backend.
WAREHOUSE_CONN_ID = "ruralwatch_warehouse"
# Emitted when a build finishes; publish_reports is scheduled on it.
MARTS_ASSET = Asset(name="marts", uri="ruralwatch://warehouse/marts")


def escalate_failed_task(context) -> None:
    """Every failed try lands in one escalation per DAG and task (ruralwatch.quality.escalations)."""
    from ruralwatch.quality.escalations import escalate_task_failure

    escalate_task_failure(context)


def resolve_task_escalation(context) -> None:
    """A task that succeeds closes its open failure escalation, if it has one."""
    from ruralwatch.quality.escalations import resolve_task_failure

    resolve_task_failure(context)


# Airflow calls the failure or retry callback on every failed try; the ledger dedupes by DAG and task.
ESCALATION_CALLBACKS = {"on_failure_callback": escalate_failed_task, "on_retry_callback": escalate_failed_task,
                        "on_success_callback": resolve_task_escalation}


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
                      "retry_delay": dt.timedelta(minutes=5), **ESCALATION_CALLBACKS},
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
        default_args={"owner": "data_engineering", "retries": 1, "retry_delay": dt.timedelta(minutes=2),
                      **ESCALATION_CALLBACKS},
        tags=["build", "dbt"],
        doc_md=dedent("""
        ### 构建数据仓库
        Whenever a feed publishes a new live batch: `prepare` (platform tables, the pseudonymisation
        key, the util.* SQL functions), then `dbt_build` — one `dbt build` of the project through
        astronomer-cosmos, on DBT_THREADS threads (default 2): seeds, snapshots and models, each
        model's tests right after it, so a failed test stops what is built on its model and the rest
        goes on. Incremental models rebuild only the months whose inputs changed.

        **Triage**: a failed `dbt_build`'s log carries dbt's own output, a line per node, and ends with
        the failed model or test and its error; `ruralwatch build --select <model>+` rebuilds from it
        by hand. Fix, then clear `dbt_build`: the build runs again, and what was already built for
        the month is kept (incremental models find nothing to do).
        """),
    ) as dag:

        @task(task_id="prepare")
        def prepare() -> None:
            from ruralwatch import pipeline

            pipeline.prepare_warehouse()

        @task(task_id="summary", outlets=[MARTS_ASSET])
        def run_summary() -> dict:
            from ruralwatch import pipeline

            result = pipeline.summary()
            return {"tables": result["tables"], "checks_run": result["checks_run"],
                    "checks_passed": result["checks_passed"]}

        @task(task_id="grant_access")
        def grant_access() -> dict:
            from ruralwatch import pipeline

            # dbt recreated relations: the analyst/auditor/engineer roles get their grants again.
            return pipeline.apply_access()

        prepare() >> dbt_build_task() >> grant_access() >> run_summary()
    return dag


def make_publish_dag() -> DAG:
    with DAG(
        dag_id="publish_reports",
        description="审计报告、指标报告、预警线索清单、通知",
        schedule=[MARTS_ASSET],
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "data_engineering", "retries": 1, "retry_delay": dt.timedelta(minutes=2),
                      **ESCALATION_CALLBACKS},
        tags=["publish", "reports"],
        params={"month": Param(None, type=["null", "string"],
                               description="data month YYYY-MM (default: the newest month with live data)")},
        doc_md=dedent("""
        ### 发布报告
        After each warehouse build: feed timeliness (late feeds escalate), the auditor's report and GX
        Data Docs, the analysts' indicator report, each town's list of new early-warning leads
        (`leads/<town code>.xlsx`), and the notifications the escalation outbox holds. Everything lands in `RURALWATCH_REPORTS`
        (default `.local/reports/<YYYYMM>/`), regenerated on every run.

        **Triage**: each task is independent; a failed one names its report in the log. A report
        task never changes data, so clearing it is always safe.
        """),
    ) as dag:

        @task(task_id="month")
        def report_month(params: dict | None = None) -> str:
            from ruralwatch import pipeline

            month = (pipeline.parse_month(params["month"]) if params and params.get("month")
                     else pipeline.latest_data_month())
            if month is None:
                raise ValueError("no live data yet: nothing to report on")
            return month.isoformat()

        @task(task_id="auditor_report")
        def auditor_report(month: str) -> str:
            from ruralwatch import pipeline

            return pipeline.publish_auditor_report(dt.date.fromisoformat(month))

        @task(task_id="indicator_report")
        def indicator_report(month: str) -> str | None:
            from ruralwatch import pipeline

            return pipeline.publish_indicator_report(dt.date.fromisoformat(month))

        @task(task_id="notifications")
        def notifications() -> dict:
            from ruralwatch import pipeline

            return pipeline.send_notifications()

        @task(task_id="lead_lists")
        def lead_lists(month: str) -> int:
            from ruralwatch import pipeline

            return len(pipeline.push_leads(dt.date.fromisoformat(month)))

        month = report_month()
        [auditor_report(month), indicator_report(month), lead_lists(month)] >> notifications()
    return dag


def dbt_build_task():
    """One `dbt build` of the whole project (seeds, snapshots, models, each model's tests right after
    it), through Cosmos with the profile made from the Airflow connection.

    One task, not one per node: dbt schedules the nodes itself on its threads, and a failed test still
    stops what is built on its model (the rest goes on). A task per node (Cosmos's default) cost ~0.5 s
    of invocation a node (61 of them) and kept the warehouse to one model at a time; Cosmos's watcher
    mode (one build, a sensor per node) cost as much again in XCom writes from dbt's threads.
    """
    from cosmos import ProfileConfig
    from cosmos.constants import InvocationMode
    from cosmos.operators.local import DbtBuildLocalOperator
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    from ruralwatch import settings
    from ruralwatch.transform import dbt_executable

    return DbtBuildLocalOperator(
        task_id="dbt_build",
        project_dir=str(settings.DBT_PROJECT_DIR),
        profile_config=ProfileConfig(
            profile_name="ruralwatch", target_name="warehouse",
            profile_mapping=PostgresUserPasswordProfileMapping(
                conn_id=WAREHOUSE_CONN_ID, profile_args={"schema": "public", "threads": settings.DBT_THREADS})),
        # In-process dbtRunner: no interpreter start-up.
        invocation_mode=InvocationMode.DBT_RUNNER,
        dbt_executable_path=dbt_executable(),
        install_deps=False,
        # dbt.log beside the CLI's (the project is copied to a temporary folder for the run, and its
        # own logs/ would go with it).
        env={"DBT_LOG_PATH": str(settings.DBT_LOG_DIR)},
        # dbt's run_results.json would only feed Cosmos's OpenLineage parsing (no lineage backend here),
        # which logged a warning per snapshot test.
        dbt_cmd_flags=["--no-write-json"],
        # Our own Assets are the feeds and the marts (summary task); Cosmos's per-table Assets would
        # embed the database URL.
        emit_datasets=False,
        doc_md="`dbt build` of the project; its log has dbt's line per node and names what failed.",
    )


def build_all_dags(registry: Registry | None = None) -> dict[str, DAG]:
    registry = registry or load_registry()
    dags = {f"ingest_{feed.name}": make_ingest_dag(feed) for feed in registry}
    dags["build_warehouse"] = make_build_dag(registry)
    dags["publish_reports"] = make_publish_dag()
    return dags
