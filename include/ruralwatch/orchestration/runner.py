"""Run the project's DAGs in-process with `dag.test()`, exactly as the scheduler would run them.

Used by `ruralwatch run`, the demo and the integration tests. Airflow's own metadata (SQLite in
.local/airflow) is created on first use; our state lives in the warehouse, never there.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ruralwatch import settings

log = logging.getLogger(__name__)


class DagRunFailed(RuntimeError):
    pass


@dataclass
class DagRunResult:
    dag_id: str
    state: str
    tasks: dict[str, str]
    seconds: float


def ensure_airflow_db() -> None:
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if (home / "airflow.db").exists() or os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        return
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


_dagbag = None


def ensure_warehouse_connection() -> None:
    """dbt runs through Cosmos with the Airflow connection `ruralwatch_warehouse`; for local runs it
    comes from the same URL as everything else. The embedded server trusts 127.0.0.1, so a URL
    without a password gets a placeholder that the server ignores (Cosmos insists on one)."""
    from urllib.parse import urlsplit, urlunsplit

    from ruralwatch import db
    from ruralwatch.orchestration.factory import WAREHOUSE_CONN_ID

    parts = urlsplit(db.warehouse_url())
    netloc = parts.netloc
    if "@" in netloc and ":" not in netloc.split("@", 1)[0]:
        user, host = netloc.split("@", 1)
        netloc = f"{user}:trust@{host}"
    os.environ[f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"] = urlunsplit(
        ("postgres", netloc, parts.path, parts.query, ""))


def get_dag(dag_id: str):
    global _dagbag
    from airflow.dag_processing.dagbag import DagBag

    from ruralwatch.transform import ensure_manifest

    if _dagbag is None:
        ensure_manifest()
        _dagbag = DagBag(dag_folder=str(settings.DAGS_DIR))
        if _dagbag.import_errors:
            raise RuntimeError(f"DAG import errors: {_dagbag.import_errors}")
    dag = _dagbag.get_dag(dag_id)
    if dag is None:
        raise KeyError(f"no DAG {dag_id!r}; known: {', '.join(sorted(_dagbag.dag_ids))}")
    return dag


_LOG_STREAMS: dict[Path, object] = {}
# The log file of the innermost task_logs_to, which ingest workers write to as well.
_current_log: Path | None = None


@contextlib.contextmanager
def task_logs_to(log_file: Path):
    """Airflow's and the tasks' log lines go to a file; the terminal keeps the progress lines.

    A month through every DAG writes tens of thousands of log lines (each task's start, XComs, dbt's
    per-node output); on the terminal they bury the one line per DAG an engineer watches. The file
    keeps all of them, and a failure names it. Progress goes to sys.__stdout__, the terminal.

    The file is never closed while the process lives: Airflow's loggers keep the stream they first
    saw, and a closed one made every later task fail ("I/O operation on closed file") — the second
    month of a range did. Use one log file per command rather than one per month.
    """
    global _current_log
    log_file.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    stream = _LOG_STREAMS.get(log_file)
    if stream is None:
        stream = _LOG_STREAMS[log_file] = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    outer, _current_log = _current_log, log_file
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            yield log_file
    except DagRunFailed as exc:
        raise DagRunFailed(f"{exc}; this run's log: {log_file}") from exc
    finally:
        stream.flush()
        root.handlers[:], root.level = saved
        _current_log = outer


def run_dag(dag_id: str, month: dt.date | None = None, landing: Path | None = None,
            conf: dict | None = None) -> DagRunResult:
    """One DAG run for a data month; raises DagRunFailed naming the failed tasks."""
    import gc
    import time

    import pendulum

    ensure_airflow_db()
    ensure_warehouse_connection()
    dag = get_dag(dag_id)
    run_conf = dict(conf or {})
    if month:
        run_conf["month"] = month.strftime("%Y-%m")
    if landing:
        run_conf["landing"] = str(landing)
    # The scheduler would start a month's run after its due day; the month param pins the data month.
    logical = None
    if month:
        following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=6)
        logical = pendulum.datetime(following.year, following.month, following.day, 6, tz="Asia/Shanghai")
    # Cosmos ends each dbt invocation with gc.collect(): over this process's heap (Airflow, dbt, GX and
    # their modules, all long-lived) one collection cost 0.65 s (a build made 61 when each model was
    # its own task).
    # Frozen objects are left out of collections; what the run itself allocates is still collected. One
    # collection first, so the garbage of earlier runs (a backfill's months) is freed, not frozen.
    gc.collect()
    gc.freeze()
    started = time.monotonic()
    dag_run = dag.test(logical_date=logical, run_conf=run_conf) if logical else dag.test(run_conf=run_conf)
    tasks = _task_states(dag_run)
    result = DagRunResult(dag_id, str(getattr(dag_run.state, "value", dag_run.state)), tasks,
                          time.monotonic() - started)
    if result.state != "success":
        failed = [t for t, s in tasks.items() if s in {"failed", "upstream_failed"}]
        raise DagRunFailed(f"DAG {dag_id} ended {result.state}; failed tasks: {', '.join(failed) or '?'} "
                           f"(logs in {os.environ['AIRFLOW_HOME']}/logs)")
    return result


def _task_states(dag_run) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance.task_id, TaskInstance.state).filter(
            TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id).all()
    return {task_id: str(getattr(state, "value", state)) for task_id, state in rows}


def api_feeds() -> set[str]:
    """The feeds the data-sharing platform's API delivers, when the API is configured."""
    from ruralwatch.feeds.api import ApiSettings
    from ruralwatch.feeds.registry import load_registry

    if ApiSettings.from_env() is None:
        return set()
    return {feed.name for feed in load_registry() if "api" in feed.formats}


def feeds_with_deliveries(landing: Path, month: dt.date) -> list[str]:
    """Feeds that have something to load for the month: files in the landing folder, or the API."""
    from ruralwatch.feeds.loader import discover
    from ruralwatch.feeds.registry import load_registry

    registry = load_registry()
    names = {feed.name for feed, _ in discover(landing, registry, month=month)} | api_feeds()
    return [feed.name for feed in registry if feed.name in names]


def run_month(landing: Path, month: dt.date, echo=None, workers: int | None = None) -> list[DagRunResult]:
    """One data month through every DAG, in the order the scheduler would run them: the feeds' ingest
    DAGs side by side (as the scheduler's workers run them), then the build and the reports."""
    echo = echo or (lambda message: None)
    results = run_ingests(landing, month, feeds_with_deliveries(landing, month), echo, workers)
    for dag_id in downstream_dag_ids():
        result = run_dag(dag_id, month=month)
        echo(f"{dag_id}: {result.state} in {result.seconds:.1f}s ({len(result.tasks)} tasks)")
        results.append(result)
    return results


def ingest_waits(feeds: list[str]) -> dict[str, set[str]]:
    """For each feed, the feeds listed before it whose ingest it waits for.

    Two feeds whose checks compare one with the other (`comparison_partners`) run one after the other,
    in the registry's order. Side by side, the gate's lock still lets the second of the two find a
    disagreement, but which one is second, and so which department is escalated to, would depend on
    timing; one-at-a-time runs and backfills must give the same verdicts. Every other pair is
    independent.
    """
    from ruralwatch.feeds.registry import load_registry
    from ruralwatch.quality.checks import comparison_partners

    registry = load_registry()
    partners = comparison_partners(registry)
    order = [feed.name for feed in registry if feed.name in set(feeds)]
    return {name: partners[name] & set(order[:order.index(name)]) for name in order}


def ingest_order(feeds: list[str], previous_seconds: dict[str, float], api_feeds: set[str]) -> list[str]:
    """The order in which workers take the feeds up: the API's feeds first, then the longest first.

    With two workers the month ends when the later one does. Taken in registry order, the roster and
    hrss_employment (the two longest, a minute each at city scale) ran one after the other on one
    worker while the other ran out of feeds (16 s idle). A fetch from the platform waits on the
    network more than on our CPU, so it starts at once, beside the loads; the others go by how long
    their last month took to load and gate (`previous_seconds`), and a feed never seen before by
    registry order. The pairs `ingest_waits` keeps apart still run in registry order.
    """
    position = {feed: i for i, feed in enumerate(feeds)}
    return sorted(feeds, key=lambda f: (f not in api_feeds, -previous_seconds.get(f, 0.0), position[f]))


def previous_ingest_seconds() -> dict[str, float]:
    """Each feed's load and gate seconds in the latest month it delivered (raw.deliveries)."""
    from ruralwatch import db

    with db.connect(autocommit=True) as conn:
        if conn.execute("select to_regclass('raw.deliveries') is null").fetchone()[0]:
            return {}
        rows = conn.execute(
            "select feed, sum(coalesce(load_seconds, 0) + coalesce(gate_seconds, 0)) from raw.deliveries "
            "where (feed, data_month) in (select feed, max(data_month) from raw.deliveries group by feed) "
            "group by feed").fetchall()
    return {feed: float(seconds) for feed, seconds in rows}


def run_ingests(landing: Path, month: dt.date, feeds: list[str], echo=None,
                workers: int | None = None, run=None) -> list[DagRunResult]:
    """The month's ingest DAGs, `workers` at a time (settings.INGEST_WORKERS), each in a process of its
    own as a scheduler's worker runs it, taken up in `ingest_order`; one worker runs them here, one
    after the other, in registry order. Results come back in the order of `feeds`.

    A failed DAG stops further feeds from starting; those already running finish, then it raises.
    `run` stands in for run_dag (a module-level function, as workers import it by name).
    """
    run = run or run_dag
    echo = echo or (lambda message: None)
    workers = min(workers or settings.INGEST_WORKERS, len(feeds))
    if workers <= 1:
        results = []
        for feed in feeds:
            results.append(run(f"ingest_{feed}", month, landing))
            echo(_describe_ingest(results[-1]))
        return results
    import concurrent.futures as futures
    import multiprocessing

    from ruralwatch.pipeline import prepare_warehouse

    # Once, before any load: a first set-up (tables, functions, key) then never runs beside a load.
    prepare_warehouse()
    ensure_airflow_db()
    ensure_warehouse_connection()
    waits = ingest_waits(feeds)
    context = multiprocessing.get_context("spawn")
    slots = context.Queue()
    for slot in range(workers):
        slots.put(_worker_metadata(slot))
    results: dict[str, DagRunResult] = {}
    failure: BaseException | None = None
    with futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start,
                                     initargs=(slots, _current_log)) as pool:
        running: dict[futures.Future, str] = {}
        waiting = ingest_order(list(waits), previous_ingest_seconds(), api_feeds())
        while waiting or running:
            ready = [] if failure else [f for f in waiting if waits[f] <= results.keys()]
            for feed in ready[:workers - len(running)]:
                waiting.remove(feed)
                running[pool.submit(run, f"ingest_{feed}", month, landing)] = feed
            if not running:
                break
            done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for future in done:
                feed = running.pop(future)
                try:
                    results[feed] = future.result()
                except Exception as exc:  # noqa: BLE001 - raised below, after the running ones finish
                    failure = failure or exc
                    continue
                echo(_describe_ingest(results[feed]))
    if failure is not None:
        raise failure
    return [results[feed] for feed in feeds]


def _describe_ingest(result: DagRunResult) -> str:
    return (f"{result.dag_id}: {result.state} in {result.seconds:.1f}s "
            f"({', '.join(f'{t}={s}' for t, s in sorted(result.tasks.items()))})")


def _worker_metadata(slot: int) -> str | None:
    """Each worker's Airflow metadata: a copy of the local SQLite database, since two processes writing
    one SQLite file lock each other out. A deployment's own metadata database serves every worker."""
    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        return None
    import shutil

    source = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    target = source.parent / "workers" / f"airflow-{slot}.db"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


_worker_logs = None


def _worker_start(slots, log_file: Path | None) -> None:
    """In each worker process, before Airflow is imported: its metadata, and the parent's log file."""
    global _worker_logs
    metadata = slots.get()
    if metadata:
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata
    if log_file is not None:
        # Entered for the life of the process: the worker's task logs go where the parent's go.
        _worker_logs = task_logs_to(log_file)
        _worker_logs.__enter__()


def downstream_dag_ids() -> list[str]:
    """The DAGs that follow the feeds' assets, in the order their assets chain them."""
    ids = ["build_warehouse"]
    if "publish_reports" in get_dagbag().dag_ids:
        ids.append("publish_reports")
    return ids


def get_dagbag():
    get_dag("build_warehouse")
    return _dagbag


def backfill(landing: Path, months: list[dt.date], echo=None, workers: int | None = None) -> list[DagRunResult]:
    """Load and gate every month of a range, then build once and publish each month: what an engineer
    runs to catch up several past months; it gives the same marts as running them one by one."""
    echo = echo or (lambda message: None)
    results = []
    for month in months:
        results += run_ingests(landing, month, feeds_with_deliveries(landing, month),
                               lambda line, month=month: echo(f"{month:%Y-%m} {line}"), workers)
    result = run_dag("build_warehouse")
    echo(f"build_warehouse: {result.state} in {result.seconds:.1f}s ({len(result.tasks)} tasks)")
    results.append(result)
    if "publish_reports" in get_dagbag().dag_ids:
        for month in months:
            result = run_dag("publish_reports", month=month)
            echo(f"{month:%Y-%m} publish_reports: {result.state} in {result.seconds:.1f}s")
            results.append(result)
    return results
