"""`make demo`: one month of deliveries through every DAG, then a summary a person can check."""
from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ruralwatch import settings

console = Console()

DEMO_MONTH = dt.date(2026, 11, 1)


def _quiet_logs(log_file: Path) -> None:
    """Task logs go to a file; the terminal shows our progress lines only."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def prepare_landing(landing: Path, month: dt.date) -> Path:
    """The month's deliveries: the committed sample delivery of rural_roster."""
    sample = settings.PROJECT_ROOT / "tests" / "fixtures" / "landing"
    for path in sample.rglob("*"):
        if path.is_file() and f"_{month:%Y%m}" in path.name:
            target = landing / path.relative_to(sample)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    return landing


def run_demo(month: dt.date = DEMO_MONTH, landing: Path | None = None) -> dict:
    from ruralwatch import db, pipeline
    from ruralwatch.feeds.registry import load_registry
    from ruralwatch.orchestration.runner import run_dag

    started = time.monotonic()
    log_file = settings.LOCAL_DIR / "logs" / f"demo-{month:%Y%m}.log"
    _quiet_logs(log_file)
    console.rule(f"[bold]防返贫动态监测 · demo month {month:%Y-%m}")
    url = db.warehouse_url()
    where = "WAREHOUSE_URL" if os.environ.get("WAREHOUSE_URL") else "embedded PostgreSQL in .local/pg"
    console.print(f"warehouse: {_redact(url)} ({where})")
    landing = landing or settings.LOCAL_DIR / "demo" / "landing"
    prepare_landing(landing, month)
    console.print(f"landing folder: {landing}")

    registry = load_registry()
    for feed in registry:
        if not (landing / feed.name).is_dir():
            continue
        with console.status(f"ingest_{feed.name}: load → gate → publish"):
            result = run_dag(f"ingest_{feed.name}", month=month, landing=landing)
        console.print(f"[green]✓[/] DAG ingest_{feed.name} {result.state} in {result.seconds:.1f}s "
                      f"({', '.join(f'{t}={s}' for t, s in sorted(result.tasks.items()))})")
    with console.status("build_warehouse: dbt seed + build (models and their tests)"):
        result = run_dag("build_warehouse")
    console.print(f"[green]✓[/] DAG build_warehouse {result.state} in {result.seconds:.1f}s")

    summary = pipeline.summary(month)
    _print_summary(summary, url, log_file, time.monotonic() - started)
    return summary


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _print_summary(summary: dict, url: str, log_file: Path, seconds: float) -> None:
    table = Table(title="deliveries (raw.deliveries)", show_lines=False)
    for column in ("feed", "file", "status", "gate", "live", "rows"):
        table.add_column(column)
    for d in summary["deliveries"]:
        table.add_row(d["feed"], d["file"], d["status"], d["gate"], "yes" if d["live"] else "no",
                      f"{d['rows'] or 0:,}")
    console.print(table)
    console.print(f"quality checks: {summary['checks_passed']}/{summary['checks_run']} passed (dq.check_results)")
    for name, count in summary["tables"].items():
        console.print(f"{name}: {count if count is not None else 'not built'} rows")
    console.rule("where to look")
    console.print(f"SQL:      psql \"{_redact(url)}\"  e.g. select * from marts.dim_household limit 10;")
    console.print("CLI:      .venv/bin/ruralwatch deliveries   (what arrived and what became of it)")
    console.print(f"task log: {log_file}")
    console.print(f"done in {seconds:.0f}s")
