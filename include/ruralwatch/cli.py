"""`ruralwatch`: the engineer's command line. Each command runs the same code the DAGs run."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from ruralwatch import settings  # noqa: F401  (sets the quiet, no-telemetry environment)

app = typer.Typer(help="防返贫动态监测 data platform", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The warehouse: embedded PostgreSQL, or WAREHOUSE_URL when set.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (creating it in .local/pg on first use)."""
    from ruralwatch import db

    if _external_warehouse():
        return
    url = db.EmbeddedServer().start()
    typer.echo(url)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL; its data stays in .local/pg."""
    from ruralwatch import db

    if _external_warehouse():
        return
    stopped = db.EmbeddedServer().stop()
    typer.echo("stopped" if stopped else "was not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the warehouse is up and where it is."""
    from ruralwatch import db

    if _external_warehouse():
        return
    typer.echo(db.EmbeddedServer().status())


@db_app.command("url")
def db_url() -> None:
    """Print the warehouse URL (starting the embedded server if needed): `psql "$(ruralwatch db url)"`."""
    from ruralwatch import db

    typer.echo(db.warehouse_url())


@app.command()
def demo(month: str = typer.Option("2026-11", help="data month YYYY-MM")) -> None:
    """Run a month of deliveries through every DAG on the warehouse and print a summary."""
    from ruralwatch.demo import run_demo
    from ruralwatch.pipeline import parse_month

    run_demo(parse_month(month))


@app.command()
def load(
    landing: Path = typer.Option(None, help="landing folder (default: RURALWATCH_LANDING)"),
    feed: str = typer.Option(None, help="only this feed"),
    month: str = typer.Option(None, help="only this data month YYYY-MM"),
    gate: bool = typer.Option(True, help="run the quality gate on what was loaded"),
) -> None:
    """Load deliveries from a landing folder: the same code the ingest DAGs run."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from ruralwatch import db, pipeline
    from ruralwatch.feeds.loader import Loader, discover
    from ruralwatch.feeds.registry import load_registry

    landing = landing or settings.landing_dir()
    registry = load_registry()
    wanted = pipeline.parse_month(month) if month else None
    files = discover(landing, registry, feed, wanted)
    if not files:
        typer.echo(f"no deliveries under {landing}" + (f" for {feed}" if feed else ""))
        raise typer.Exit(0)
    pipeline.prepare_warehouse()
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn()) as progress, \
            db.connect(autocommit=True) as conn:
        tasks: dict[str, int] = {}

        def report(name: str, done: int) -> None:
            progress.update(tasks[name], completed=done)

        loader = Loader(conn, registry, progress=report)
        for f, path in files:
            tasks[path.name] = progress.add_task(f"{f.name}/{path.name}", total=path.stat().st_size)
            outcome = loader.load_file(f, path)
            progress.update(tasks[path.name], completed=path.stat().st_size)
            progress.console.print(outcome.describe())
    if gate:
        for name in sorted({f.name for f, _ in files}):
            for result in pipeline.gate_feed(name):
                typer.echo(f"gate {name} {result['batch_id']}: {result['decision']}"
                           + (f" (failed: {', '.join(result['failed'])})" if result["failed"] else ""))


@app.command()
def deliveries(
    feed: str = typer.Option(None, help="only this feed"),
    month: str = typer.Option(None, help="only this data month YYYY-MM"),
) -> None:
    """List what arrived and what became of it (raw.deliveries)."""
    from rich.console import Console
    from rich.table import Table

    from ruralwatch import db, pipeline

    wanted = pipeline.parse_month(month) if month else None
    with db.connect() as conn:
        rows = conn.execute(
            "select feed, file_name, to_char(data_month, 'YYYY-MM'), status, gate_status, is_live, row_count, "
            "coalesce(reason, '') from raw.deliveries "
            "where (%(feed)s::text is null or feed = %(feed)s) and (%(month)s::date is null or data_month = %(month)s) "
            "order by feed, data_month, recorded_at", {"feed": feed, "month": wanted}).fetchall()
    table = Table(title=f"{len(rows)} deliveries")
    for column in ("feed", "file", "month", "status", "gate", "live", "rows", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[("yes" if v else "no") if isinstance(v, bool) else str(v if v is not None else "")
                        for v in row])
    Console().print(table)


@app.command()
def build(select: str = typer.Option(None, help="dbt selector, e.g. +dim_household")) -> None:
    """dbt seed + build (models and their tests), as the build_warehouse DAG does."""
    from ruralwatch import pipeline

    pipeline.build_warehouse(select, echo=True)


bench_app = typer.Typer(help="Benchmarks that print figures (not timed tests).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("ingest")
def bench_ingest(
    rows: int = typer.Option(2_000_000, help="rows of the generated claims file"),
    landing: Path = typer.Option(None, help="use the largest claims CSV of this landing folder instead"),
) -> None:
    """The loader's rows/s against a bare COPY of the same file (target ratio ≥ 0.8)."""
    from ruralwatch.bench.ingest import main as bench_main

    bench_main(rows, landing)


@app.command("dbt-sources")
def dbt_sources() -> None:
    """Regenerate dbt_project/models/staging/_raw__sources.yml from the feed registry."""
    from ruralwatch.feeds.dbt_sources import SOURCES_PATH, write_sources

    typer.echo(f"{'updated' if write_sources() else 'unchanged'}: {SOURCES_PATH}")


@app.command()
def airflow() -> None:
    """Start `airflow standalone` with the project's DAGs (for people who want the UI)."""
    import os
    import subprocess

    from ruralwatch.orchestration.runner import ensure_airflow_db

    ensure_airflow_db()
    env = os.environ.copy()
    env.setdefault("AIRFLOW__API__PORT", "8080")
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    home = Path(env["AIRFLOW_HOME"])
    typer.echo(f"Airflow UI: http://127.0.0.1:{env['AIRFLOW__API__PORT']}  (DAGs from {settings.DAGS_DIR})")
    typer.echo(f"login: admin; the password is written to {home}/simple_auth_manager_passwords.json.generated")
    airflow_bin = Path(sys.executable).with_name("airflow")
    raise typer.Exit(subprocess.call([str(airflow_bin), "standalone"], env=env))


def _external_warehouse() -> bool:
    import os

    if os.environ.get("WAREHOUSE_URL"):
        typer.echo("WAREHOUSE_URL is set: the warehouse is that server, not the embedded one.")
        return True
    return False


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
