"""`make demo`: a simulated month — every feed, the API feed from the simulator's own server — through
every DAG, then a summary a person can check. Run it again and it takes the next month.

The simulated city lives in `.local/demo/landing` (made once, deterministic); which months have been
run is read from the warehouse itself (raw.deliveries), not from a state file.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ruralwatch import settings

# The terminal, kept even while the DAG runs' own output (Airflow, dbt) is sent to the log file.
console = Console(file=sys.__stdout__)

DEMO_MONTHS = "2026-10:2027-03"
DEMO_PERSONS = 2000
DEMO_SEED = 2026


def demo_landing() -> Path:
    return settings.LOCAL_DIR / "demo" / "landing"


def ensure_city(landing: Path) -> None:
    """The simulated city's deliveries for every demo month (the simulator is a department here)."""
    import subprocess
    import sys

    if (landing / "_truth").is_dir() and any((landing / "_truth").glob("*.json")):
        return
    with console.status(f"simulating a city of {DEMO_PERSONS:,} persons, months {DEMO_MONTHS}"):
        subprocess.run([sys.executable, "-m", "ruralwatch.simulate", "--persons", str(DEMO_PERSONS),
                        "--months", DEMO_MONTHS, "--seed", str(DEMO_SEED), "--out", str(landing),
                        "--defects", "default", "--quiet"], check=True)
    console.print(f"simulated city written to {landing}")


def next_month_to_run(landing: Path) -> dt.date:
    from ruralwatch import db
    from ruralwatch.pipeline import month_range

    months = month_range(DEMO_MONTHS)
    with db.connect() as conn:
        exists = conn.execute("select to_regclass('raw.deliveries') is not null").fetchone()[0]
        done = set() if not exists else {r[0] for r in conn.execute(
            "select distinct data_month from raw.deliveries where status in ('loaded', 'superseded')")}
    for month in months:
        if month not in done:
            return month
    return months[-1]


def run_demo(month: dt.date | None = None) -> None:
    from ruralwatch import db
    from ruralwatch.orchestration.runner import run_month, task_logs_to

    started = time.monotonic()
    landing = demo_landing()
    url = db.warehouse_url()
    where = "WAREHOUSE_URL" if os.environ.get("WAREHOUSE_URL") else "embedded PostgreSQL in .local/pg"
    ensure_city(landing)
    month = month or next_month_to_run(landing)
    log_file = settings.LOCAL_DIR / "logs" / f"demo-{month:%Y%m}.log"
    console.rule(f"[bold]防返贫动态监测 · demo month {month:%Y-%m}")
    console.print(f"warehouse: {redact(url)} ({where})")
    console.print(f"landing folder: {landing}")

    from ruralwatch.simulate.api import start_server

    # The data-sharing platform, played by the simulator on 127.0.0.1: hrss_employment comes by API.
    with start_server(landing) as api:
        os.environ["RURALWATCH_API_BASE_URL"] = api.url
        os.environ["RURALWATCH_API_TOKEN"] = api.token
        console.print(f"data-sharing API (simulated): {api.endpoint}")
        try:
            with task_logs_to(log_file):
                run_month(landing, month, echo=lambda line: console.print(f"[green]✓[/] {line}"))
        finally:
            os.environ.pop("RURALWATCH_API_BASE_URL", None)
            os.environ.pop("RURALWATCH_API_TOKEN", None)
    answered = answer_leads(landing, month)
    print_month_summary(month, log_file=log_file, seconds=time.monotonic() - started)
    if answered:
        console.print(f"towns answered {answered} of this month's leads; next month's run reads their "
                      "lead_feedback and closes them")


def answer_leads(landing: Path, month: dt.date) -> int:
    """The towns' side of the loop: answer the leads pushed this month in next month's lead_feedback."""
    from ruralwatch import db
    from ruralwatch.simulate.leadfeedback import write_lead_feedback

    with db.connect() as conn:
        if not _exists(conn, "marts.mart_warning_leads"):
            return 0
        leads = [{"线索编号": lead_id, "town": town, "rule": rule, "key": key} for lead_id, town, rule, key in conn.execute(
            "select lead_id, town_code, rule_id, lead_key from marts.mart_warning_leads "
            "where pushed_month = %s and town_code is not null", (month,))]
    if not leads:
        return 0
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    records = write_lead_feedback(leads, following.strftime("%Y-%m"), landing, seed=DEMO_SEED)
    return sum(len(r["answered"]) for r in records)


def redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@") if parts.password else url


def _exists(conn, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def print_month_summary(month: dt.date, log_file: Path | None = None, seconds: float | None = None) -> None:
    """What a month's run did and where its results are; parts appear as the warehouse has them."""
    from ruralwatch import db

    with db.connect() as conn:
        rows = conn.execute(
            "select feed, count(*) filter (where status = 'loaded' and is_live), "
            "coalesce(sum(row_count) filter (where is_live), 0), "
            "string_agg(distinct status, ', ' order by status) "
            "from raw.deliveries where data_month = %s group by feed order by feed", (month,)).fetchall()
        table = Table(title=f"{month:%Y-%m} deliveries (raw.deliveries)")
        for column in ("feed", "live batches", "rows live", "statuses"):
            table.add_column(column)
        for feed, live, count, statuses in rows:
            table.add_row(feed, str(live), f"{count:,}", statuses)
        console.print(table)
        checks = conn.execute(
            "select count(*), count(*) filter (where success) from dq.check_results r "
            "join raw.deliveries d using (batch_id) where d.data_month = %s", (month,)).fetchone()
        console.print(f"quality checks on this month's batches: {checks[1]} passed, {checks[0] - checks[1]} failed "
                      "(dq.check_results)")
        if _exists(conn, "dq.escalations"):
            opened, resolved, still_open = conn.execute(
                "select count(*) filter (where first_data_month = %(m)s), "
                "count(*) filter (where resolved_data_month = %(m)s), "
                "count(*) filter (where status in ('open', 'acknowledged')) from dq.escalations",
                {"m": month}).fetchone()
            console.print(f"escalations: {opened} opened and {resolved} resolved by {month:%Y-%m}'s data; "
                          f"{still_open} open in all (ruralwatch escalations list)")
        if _exists(conn, "marts.mart_warning_leads"):
            leads = conn.execute(
                "select count(*) filter (where pushed_month = %s), "
                "count(*) filter (where not is_answered and condition_cleared_month is null) "
                "from marts.mart_warning_leads", (month,)).fetchone()
            console.print(f"early-warning leads: {leads[0]} pushed for {month:%Y-%m}; {leads[1]} open in all")
        if _exists(conn, "marts.mart_indicator_values"):
            headline = conn.execute(
                "select indicator_id, indicator_name, numerator, denominator, value, "
                "case when value_kind = 'ratio' then '%%' else unit end "
                "from marts.mart_indicator_values where period = %s and area_level = '市' "
                "and indicator_id in ('I01', 'I02', 'I03', 'I07', 'I08', 'I11', 'I16', 'I17', 'I19') "
                "and (breakdown_type is null or breakdown_value in ('total', '全部门')) "
                "order by indicator_id, measure_code", (month,)).fetchall()
            if headline:
                table = Table(title="headline indicators (city)")
                for column in ("id", "指标", "numerator", "denominator", "value"):
                    table.add_column(column)
                for indicator_id, name, num, den, value, unit in headline:
                    shown = (f"{float(value) * 100:.1f}%" if unit == "%" and value is not None
                             else f"{_fmt(value)} {unit or ''}")
                    table.add_row(indicator_id, name, _fmt(num), _fmt(den), shown)
                console.print(table)
        from ruralwatch.pipeline import SUMMARY_TABLES

        for relation in SUMMARY_TABLES:
            if _exists(conn, relation):
                count = conn.execute(f"select count(*) from {relation}").fetchone()[0]  # noqa: S608 - constants
                console.print(f"{relation}: {count:,} rows")
    console.rule("where to look")
    reports = settings.reports_dir() / f"{month:%Y%m}"
    for name, path in [("auditor report", reports / "auditor_report.html"),
                       ("indicator report", reports / "indicator_report.html"),
                       ("lead lists", reports / "leads"),
                       ("data docs", settings.reports_dir() / "data_docs" / "index.html")]:
        if path.exists():
            console.print(f"{name + ':':<18}{path}")
    console.print(f"{'SQL:':<18}.venv/bin/ruralwatch sql   (psql as the analyst role)  or  "
                  "psql \"$(.venv/bin/ruralwatch db url)\"")
    console.print(f"{'deliveries:':<18}.venv/bin/ruralwatch deliveries --month {month:%Y-%m}")
    if log_file:
        console.print(f"{'task log:':<18}{log_file}")
    if seconds is not None:
        console.print(f"done in {seconds:.0f}s — run `make demo` again for the next month")


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) or hasattr(value, "as_integer_ratio"):
        number = float(value)
        return f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"
    return str(value)
