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


def _mount_simulator() -> None:
    # The simulator is a department, not part of the platform: the CLI offers it for demos and tests,
    # and nothing in the platform's own code paths imports it.
    from ruralwatch.simulate.cli import app as simulate_app

    app.add_typer(simulate_app, name="simulate",
                  help="A synthetic city whose departments deliver every feed (tests, demo, benchmarks).")


_mount_simulator()


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
def demo(month: str = typer.Option(None, help="data month YYYY-MM (default: the next month not yet run)")) -> None:
    """A simulated month through every DAG, with the API feed from the simulator's server; a summary."""
    from ruralwatch.demo import run_demo
    from ruralwatch.pipeline import parse_month

    run_demo(parse_month(month) if month else None)


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
    # Transient bars: each file's bar disappears when it is done, leaving one line of outcome.
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), transient=True) as progress, \
            db.connect(autocommit=True) as conn:
        tasks: dict[str, int] = {}

        def report(name: str, done: int) -> None:
            progress.update(tasks[name], completed=done)

        loader = Loader(conn, registry, progress=report)
        for f, path in files:
            tasks[path.name] = progress.add_task(f"{f.name}/{path.name}", total=path.stat().st_size)
            outcome = loader.load_file(f, path)
            progress.remove_task(tasks[path.name])
            progress.console.print(outcome.describe())
    if gate:
        for name in sorted({f.name for f, _ in files}):
            for result in pipeline.gate_feed(name):
                typer.echo(f"gate {name} {result['batch_id']}: {result['decision']}"
                           + (f" (failed: {', '.join(result['failed'])})" if result["failed"] else ""))


def _terminal_echo(line: str) -> None:
    # The terminal itself: while DAGs run, sys.stdout is their log file (runner.task_logs_to).
    print(line, file=sys.__stdout__, flush=True)


@app.command()
def run(
    landing: Path = typer.Option(None, help="landing folder (default: RURALWATCH_LANDING)"),
    month: str = typer.Option(None, help="data month YYYY-MM"),
    months: str = typer.Option(None, help="a range of data months A:B, run one after another"),
    workers: int = typer.Option(None, help="ingest DAGs run side by side (default RURALWATCH_INGEST_WORKERS, 2)"),
) -> None:
    """Run data months through every DAG as the scheduler would (dag.test), with a summary."""
    from ruralwatch import settings
    from ruralwatch.orchestration.runner import run_month, task_logs_to
    from ruralwatch.pipeline import month_range, parse_month

    if bool(month) == bool(months):
        raise typer.BadParameter("give --month YYYY-MM or --months A:B")
    landing = landing or settings.landing_dir()
    wanted = month_range(months) if months else [parse_month(month)]
    log_file = settings.LOCAL_DIR / "logs" / f"run-{wanted[0]:%Y%m}-{wanted[-1]:%Y%m}.log"
    typer.echo(f"task logs: {log_file}")
    with task_logs_to(log_file):
        for data_month in wanted:
            _terminal_echo(f"== {data_month:%Y-%m} from {landing}")
            run_month(landing, data_month, echo=_terminal_echo, workers=workers)
    from ruralwatch.demo import print_month_summary

    print_month_summary(wanted[-1])


@app.command()
def backfill(
    months: str = typer.Option(..., help="the range of data months A:B"),
    landing: Path = typer.Option(None, help="landing folder (default: RURALWATCH_LANDING)"),
    workers: int = typer.Option(None, help="ingest DAGs run side by side (default RURALWATCH_INGEST_WORKERS, 2)"),
) -> None:
    """Load and gate every month of a range, build once, publish each month (same marts as one by one)."""
    from ruralwatch import settings
    from ruralwatch.orchestration.runner import backfill as run_backfill
    from ruralwatch.orchestration.runner import task_logs_to
    from ruralwatch.pipeline import month_range

    wanted = month_range(months)
    log_file = settings.LOCAL_DIR / "logs" / f"backfill-{wanted[0]:%Y%m}-{wanted[-1]:%Y%m}.log"
    typer.echo(f"task logs: {log_file}")
    with task_logs_to(log_file):
        run_backfill(landing or settings.landing_dir(), wanted, echo=_terminal_echo, workers=workers)
    from ruralwatch.demo import print_month_summary

    print_month_summary(wanted[-1])


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
    table = Table(title=f"{len(rows)} deliveries (raw.deliveries)")
    for column in ("feed", "file", "month", "status", "gate", "live", "rows", "reason"):
        table.add_column(column, overflow="fold", no_wrap=column in {"month", "status", "live", "rows"},
                         max_width=60 if column == "reason" else None)
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


@bench_app.command("city")
def bench_city(persons: int = typer.Option(1_000_000, help="persons in the simulated city")) -> None:
    """A simulated city, one month and the next, end to end: rows/s, gates, dbt, wall time, memory."""
    from ruralwatch.bench.city import main as bench_main

    bench_main(persons)


@app.command()
def sql(
    role: str = typer.Option("analyst", help="analyst | auditor | engineer"),
    command: str = typer.Option(None, "-c", "--command", help="run one SQL command and exit"),
) -> None:
    """psql on the warehouse as a role: analysts see the published marts only (no IDs, no names)."""
    import os
    import shutil
    import subprocess

    from ruralwatch import db

    if role not in {"analyst", "auditor", "engineer"}:
        raise typer.BadParameter("role must be analyst, auditor or engineer")
    env = os.environ.copy()
    # A deployment gives each role its own login (RURALWATCH_ANALYST_URL, …); locally, the engineer's
    # connection takes the role for the whole session, so permissions are the role's, not ours.
    url = os.environ.get(f"RURALWATCH_{role.upper()}_URL")
    if not url:
        url = db.warehouse_url()
        env["PGOPTIONS"] = f"-c role=ruralwatch_{role}"
    psql = shutil.which("psql") or str(db.EmbeddedServer()._bin / "psql")
    args = [psql, url, "-v", "ON_ERROR_STOP=1"] + (["-c", command] if command else [])
    raise typer.Exit(subprocess.call(args, env=env))


@app.command("dbt-sources")
def dbt_sources() -> None:
    """Regenerate dbt_project/models/staging/_raw__sources.yml from the feed registry."""
    from ruralwatch.feeds.dbt_sources import SOURCES_PATH, write_sources

    typer.echo(f"{'updated' if write_sources() else 'unchanged'}: {SOURCES_PATH}")


@app.command("dbt-manifest")
def dbt_manifest() -> None:
    """Build dbt_project/target/manifest.json (dbt parse), which build_warehouse's dbt starts from."""
    from ruralwatch.transform import build_manifest

    typer.echo(f"built: {build_manifest()}")


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


# -- data quality: the escalation ledger, releases, suites, reports ---------------------------------
escalations_app = typer.Typer(help="问题整改台账 (dq.escalations): list, show, ack, comment, resolve, notify.",
                              no_args_is_help=True)
app.add_typer(escalations_app, name="escalations")
suites_app = typer.Typer(help="The GX suites built from the registry and expectations/*.yml.", no_args_is_help=True)
app.add_typer(suites_app, name="suites")
report_app = typer.Typer(help="Reports written under RURALWATCH_REPORTS.", no_args_is_help=True)
app.add_typer(report_app, name="report")


def _ledger_call(action):
    """Run a ledger action; a refusal (not found, wrong state) is a message, not a traceback."""
    from ruralwatch import db
    from ruralwatch.quality.escalations import LedgerError

    try:
        with db.connect(autocommit=True) as conn:
            return action(conn)
    except LedgerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@escalations_app.command("list")
def escalations_list(
    status: str = typer.Option("open", help="open (open and acknowledged) | acknowledged | resolved | all"),
    department: str = typer.Option(None, help="department code or name, e.g. civil_affairs or 民政局"),
    feed: str = typer.Option(None, help="only this feed"),
) -> None:
    """List escalations, one line each."""
    from rich.console import Console
    from rich.table import Table

    from ruralwatch.quality import escalations as ledger

    rows = _ledger_call(lambda conn: ledger.list_escalations(conn, status, department, feed))
    table = Table(title=f"问题整改台账：{len(rows)} 条")
    # Short columns never wrap, so the Chinese title takes the width a narrow terminal has left.
    for column in ("编号", "状态", "级别", "部门", "数据项", "首次发现", "最近发现", "次数", "不合格行", "整改期限"):
        table.add_column(column, no_wrap=True)
    table.add_column("问题", overflow="fold", ratio=1)
    for e in rows:
        table.add_row(str(e["escalation_id"]), ledger.STATUS_LABELS[e["status"]], ledger.SEVERITY_LABELS[e["severity"]],
                      e["department_name"], e["feed"] or "",
                      f"{e['first_seen_at'].astimezone(ledger.LOCAL_TZ):%m-%d %H:%M}",
                      f"{e['last_seen_at'].astimezone(ledger.LOCAL_TZ):%m-%d %H:%M}", str(e["runs"]),
                      "" if e["failing_rows"] is None else str(e["failing_rows"]), e["due_date"].isoformat(),
                      e["title"])
    Console().print(table)


@escalations_app.command("show")
def escalations_show(escalation_id: int = typer.Argument(..., help="the escalation's number")) -> None:
    """One escalation with its sample, history and notifications."""
    import json

    from rich.console import Console
    from rich.table import Table

    from ruralwatch.quality import escalations as ledger

    e = _ledger_call(lambda conn: ledger.escalation_detail(conn, escalation_id))
    local = ledger.LOCAL_TZ
    console = Console()
    console.print(f"[bold]问题 {e['escalation_id']}[/bold] {e['title']}")
    facts = [("状态", ledger.STATUS_LABELS[e["status"]]), ("类型", ledger.KIND_LABELS[e["kind"]]),
             ("级别", ledger.SEVERITY_LABELS[e["severity"]]), ("部门", f"{e['department_name']}（{e['contact_email'] or '—'}）"),
             ("数据项", e["feed"] or "—"), ("检查", e["check_name"] or "—"), ("指纹", e["fingerprint"]),
             ("首次发现", f"{e['first_seen_at'].astimezone(local):%Y-%m-%d %H:%M}（批次 {e['first_batch_id'] or '—'}）"),
             ("最近发现", f"{e['last_seen_at'].astimezone(local):%Y-%m-%d %H:%M}（批次 {e['last_batch_id'] or '—'}）"),
             ("次数", str(e["runs"])), ("不合格行数", "—" if e["failing_rows"] is None else str(e["failing_rows"])),
             ("整改期限", e["due_date"].isoformat())]
    if e["status"] == "resolved":
        facts.append(("销号", f"{ledger.RESOLUTION_LABELS[e['resolution']]}：{e['resolution_note'] or ''}"
                             f"（{e['resolved_by']}，{e['resolved_at'].astimezone(local):%Y-%m-%d %H:%M}）"))
    for label, value in facts:
        console.print(f"  {label}：{value}")
    console.print("  样例（已脱敏）：" + json.dumps(e["sample"], ensure_ascii=False))
    history = Table(title="处理记录")
    for column in ("时间", "事件", "执行人/运行", "不合格行", "说明"):
        history.add_column(column, overflow="fold")
    for ev in e["events"]:
        history.add_row(f"{ev['at'].astimezone(local):%Y-%m-%d %H:%M}", ledger.EVENT_LABELS[ev["event"]],
                        ev["actor"] or "", "" if ev["failing_rows"] is None else str(ev["failing_rows"]), ev["note"] or "")
    console.print(history)
    messages = Table(title="通知")
    for column in ("渠道", "收件人", "尝试", "已发送", "错误"):
        messages.add_column(column, overflow="fold")
    for m in e["messages"]:
        messages.add_row(m["channel"], m["recipient"] or "webhook", str(m["attempts"]),
                         f"{m['sent_at'].astimezone(local):%Y-%m-%d %H:%M}" if m["sent_at"] else "未发送",
                         m["last_error"] or "")
    console.print(messages)


@escalations_app.command("ack")
def escalations_ack(
    escalation_id: int = typer.Argument(...),
    by: str = typer.Option(..., "--by", help="who acknowledges"),
    comment: str = typer.Option(None, "--comment", help="what will be done"),
) -> None:
    """Acknowledge an open escalation: someone is on it (it stays open until fixed)."""
    import datetime as dt

    from ruralwatch.quality import escalations as ledger

    _ledger_call(lambda conn: ledger.acknowledge(conn, escalation_id, by, dt.datetime.now(dt.UTC), comment))
    typer.echo(f"escalation {escalation_id} acknowledged by {by}")


@escalations_app.command("comment")
def escalations_comment(
    escalation_id: int = typer.Argument(...),
    text: str = typer.Option(..., "--text", help="the comment"),
    by: str = typer.Option(..., "--by", help="who comments"),
) -> None:
    """Add a comment to an escalation's history."""
    import datetime as dt

    from ruralwatch.quality import escalations as ledger

    _ledger_call(lambda conn: ledger.comment(conn, escalation_id, by, text, dt.datetime.now(dt.UTC)))
    typer.echo(f"comment added to escalation {escalation_id}")


@escalations_app.command("resolve")
def escalations_resolve(
    escalation_id: int = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="why it is resolved"),
    by: str = typer.Option(..., "--by", help="who resolves it"),
) -> None:
    """Resolve an escalation by hand, with a reason (a failure afterwards opens a new one)."""
    import datetime as dt

    from ruralwatch.quality import escalations as ledger

    _ledger_call(lambda conn: ledger.resolve_manually(conn, escalation_id, by, reason, dt.datetime.now(dt.UTC)))
    typer.echo(f"escalation {escalation_id} resolved by {by}")


@escalations_app.command("notify")
def escalations_notify() -> None:
    """Send the outbox's unsent notifications (RURALWATCH_SMTP_* / RURALWATCH_WEBHOOK_URL)."""
    from ruralwatch.quality import notify

    typer.echo(notify.send_pending().describe())


@app.command()
def release(
    batch_id: str = typer.Argument(..., help="a quarantined batch (ruralwatch deliveries)"),
    reason: str = typer.Option(..., "--reason", help="why it may go live despite its failed checks"),
    by: str = typer.Option(..., "--by", help="who releases it"),
) -> None:
    """Let a quarantined batch go live, recording who and why; then run `ruralwatch build`."""
    from ruralwatch import pipeline
    from ruralwatch.quality.gate import ReleaseRefused

    try:
        status = pipeline.release_batch(batch_id, reason, by)
    except ReleaseRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"batch {batch_id} released by {by}: now {status}; run `ruralwatch build` to rebuild the warehouse")


@app.command()
def timeliness(month: str = typer.Option(..., help="data month YYYY-MM")) -> None:
    """Completeness and timeliness of every feed for a month (late feeds escalate)."""
    from rich.console import Console
    from rich.table import Table

    from ruralwatch import pipeline
    from ruralwatch.quality.timeliness import STATUS_LABELS

    rows = pipeline.check_timeliness(pipeline.parse_month(month))
    table = Table(title=f"{month} 报送及时性")
    for column in ("部门", "数据项", "截止日期", "报送时间", "状态", "逾期天数"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["department"], r["feed"], r["due_date"], r["delivered_at"] or "", STATUS_LABELS[r["status"]],
                      "" if r["days_late"] is None else str(r["days_late"]))
    Console().print(table)


@suites_app.command("export")
def suites_export(folder: Path = typer.Option(None, help="default: expectations/suites")) -> None:
    """Write each feed's suite as GX JSON (expectations/suites/<feed>.json, committed)."""
    from ruralwatch.quality.data_docs import SUITES_DIR, export_suites

    paths = export_suites(folder=folder or SUITES_DIR)
    typer.echo(f"{len(paths)} suites in {folder or SUITES_DIR}")


@report_app.command("auditor")
def report_auditor(month: str = typer.Option(..., help="data month YYYY-MM")) -> None:
    """The month's auditor report (HTML, Chinese, printable) and GX Data Docs."""
    from ruralwatch import pipeline

    typer.echo(pipeline.publish_auditor_report(pipeline.parse_month(month)))


# -- early-warning leads and access -------------------------------------------------------------------
leads_app = typer.Typer(help="预警线索: per-town lists of new leads.", no_args_is_help=True)
app.add_typer(leads_app, name="leads")
access_app = typer.Typer(help="Roles: ruralwatch_engineer, ruralwatch_analyst, ruralwatch_auditor.", no_args_is_help=True)
app.add_typer(access_app, name="access")


@leads_app.command("push")
def leads_push(month: str = typer.Option(..., help="data month YYYY-MM")) -> None:
    """Write each town's XLSX list of the month's new leads (<reports>/<YYYYMM>/leads/<town code>.xlsx)."""
    from ruralwatch import pipeline

    lists = pipeline.push_leads(pipeline.parse_month(month))
    for item in lists:
        typer.echo(f"{item['area_code']} {item['area_name']}: {item['leads']} leads -> {item['path']}")
    typer.echo(f"{sum(i['leads'] for i in lists)} leads on {len(lists)} lists")


@access_app.command("apply")
def access_apply() -> None:
    """Create the roles and grant each its schemas (run after a build, as the user dbt builds with)."""
    from ruralwatch import pipeline

    for role, schemas in pipeline.apply_access().items():
        typer.echo(f"{role}: {', '.join(schemas)}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def reliability(ctx: typer.Context) -> None:
    """Faults, hostile input and access (tests/reliability): what was tried and what held (`make reliability`).

    Extra arguments go to pytest, e.g. `ruralwatch reliability -k hostile`.
    """
    from ruralwatch.reliability import main as reliability_main

    raise typer.Exit(reliability_main(list(ctx.args)))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
