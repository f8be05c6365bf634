"""What the DAG tasks do, as plain functions: testable without a scheduler, reused by the CLI.

Tasks pass small values between them (batch ids, counts), never tables.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

from ruralwatch import db, settings
from ruralwatch.feeds.loader import DeliveryOutcome, Loader
from ruralwatch.feeds.registry import load_registry
from ruralwatch.warehouse import (
    apply_once_per_version,
    ensure_area_reference,
    ensure_platform_tables,
    ensure_pseudonym_key,
)

log = logging.getLogger(__name__)

_MONTH = re.compile(r"^(\d{4})-?(\d{2})$")


def parse_month(text: str) -> dt.date:
    """`2026-11` or `202611` → 2026-11-01."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"not a month: {text!r} (expected YYYY-MM)")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def month_range(text: str) -> list[dt.date]:
    """`2026-09:2026-11` → the first day of each month, in order."""
    start_text, _, end_text = text.partition(":")
    start, end = parse_month(start_text), parse_month(end_text or start_text)
    if end < start:
        raise ValueError(f"month range {text!r} runs backwards")
    months = [start]
    while months[-1] < end:
        months.append((months[-1].replace(day=28) + dt.timedelta(days=4)).replace(day=1))
    return months


def previous_month(day: dt.date) -> dt.date:
    first = day.replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


def data_month_for_run(logical_date: dt.datetime | dt.date | None, month_param: str | None) -> dt.date:
    """A monthly run on the due day loads the month before it; `month` overrides (backfills)."""
    if month_param:
        return parse_month(month_param)
    if logical_date is None:
        raise ValueError("a run needs a logical date or a month parameter")
    day = logical_date.date() if isinstance(logical_date, dt.datetime) else logical_date
    return previous_month(day)


def prepare_warehouse() -> None:
    """Idempotent set-up: platform tables, the pseudonymisation key, the shared SQL functions."""
    from ruralwatch.transform import udf_sql

    version, ddl = udf_sql()
    with db.connect(autocommit=True) as conn:
        ensure_platform_tables(conn, load_registry())
        ensure_pseudonym_key(conn)
        ensure_area_reference(conn)
        apply_once_per_version(conn, "util", f"ruralwatch util functions {version}", "ruralwatch.udfs",
                               lambda: conn.execute(ddl))


def load_feed(feed: str, month: dt.date, landing: Path | None = None) -> list[dict]:
    """Load the month's new deliveries of one feed; returns one small dict per delivery."""
    landing = landing or settings.landing_dir()
    prepare_warehouse()
    registry = load_registry()
    declared = registry[feed]
    with db.connect(autocommit=True) as conn:
        loader = Loader(conn, registry)
        outcomes = []
        api_failure = None
        if "api" in declared.formats:
            from ruralwatch.feeds.api import ApiError

            # The platform is the preferred channel; files in the landing folder are the fallback, so a
            # platform that cannot deliver (down, inconsistent pages, even a refused token) must not keep
            # the month's files from loading.
            try:
                outcomes += _load_from_api(loader, declared, month)
            except ApiError as exc:
                api_failure = exc
        outcomes += loader.load_landing(landing, feed=feed, month=month)
        _escalate_deliveries(conn, registry, feed)
        if api_failure is not None:
            _settle_api_failure(conn, feed, month, landing, api_failure)
    for outcome in outcomes:
        log.info(outcome.describe())
    return [_outcome_dict(o) for o in outcomes]


def _settle_api_failure(conn, feed: str, month: dt.date, landing: Path, failure: Exception) -> None:
    """After the files were tried: a warning when the month is delivered anyway, else the API's error."""
    from ruralwatch.feeds.api import ApiAuthError
    from ruralwatch.quality.escalations import READABLE_STATUSES

    delivered = conn.execute(
        "select channel, file_name from raw.deliveries where feed = %s and data_month = %s "
        "and status = any(%s) order by recorded_at desc limit 1", (feed, month, list(READABLE_STATUSES))).fetchone()
    if delivered is None:
        # Fail the task: with nothing delivered the month would otherwise just go late without a word.
        raise type(failure)(f"{failure}. No file in {landing / feed} delivered {month:%Y-%m} either, so "
                            "nothing of the month is loaded") from failure
    # A refused token does not heal by itself: louder than a platform that is down for a day.
    level = logging.ERROR if isinstance(failure, ApiAuthError) else logging.WARNING
    log.log(level, "%s %s: the data-sharing API could not deliver (%s); the month is delivered by %s %s, "
            "which stands until the API delivers", feed, f"{month:%Y-%m}", failure, delivered[0], delivered[1])


def _escalate_deliveries(conn, registry, feed: str | None) -> None:
    """Rejected deliveries escalate; rejections and lateness a new delivery made good resolve."""
    from ruralwatch.quality import escalations, notify

    escalations.sweep_deliveries(conn, registry, dt.datetime.now(dt.UTC), feed=feed)
    notify.send_pending(conn)


def _load_from_api(loader: Loader, feed, month: dt.date) -> list[DeliveryOutcome]:
    from ruralwatch.feeds.api import ApiClient, ApiSettings

    config = ApiSettings.from_env(page_size=int((feed.api or {}).get("page_size", 500)))
    if config is None:
        log.info("%s: RURALWATCH_API_BASE_URL is not set; files only", feed.name)
        return []
    client = ApiClient(config, (feed.api or {}).get("path", "/api/v1/employment"))
    delivery = client.fetch(feed.name, month, key_field=feed.column(feed.key[0]).header)
    if delivery is None:
        log.info("%s: the platform has no data for %s yet", feed.name, month)
        return []
    outcome = loader.load_api(feed, delivery)
    # Recorded (loaded, rejected, or seen before) and archived: the spooled pages have served. Left in
    # place they would answer the next fetch of this month instead of the platform, hiding a correction.
    # A crash before this line leaves them for one more run, which assembles the same bytes (seen) and
    # clears them then.
    client.clear_spool(feed.name, month)
    return [outcome]


def _outcome_dict(o: DeliveryOutcome) -> dict:
    return {"feed": o.feed, "file": o.file_name, "status": o.status, "batch_id": o.batch_id,
            "rows": o.rows, "reason": o.reason, "warnings": o.warnings,
            "data_month": o.data_month.isoformat() if o.data_month else None}


def gate_feed(feed: str) -> list[dict]:
    """Gate every batch of the feed still waiting for its verdict (this run's and any left over)."""
    from ruralwatch.quality.gate import gate_batch, pending_batches

    registry = load_registry()
    with db.connect(autocommit=True) as conn:
        outcomes = [gate_batch(batch_id, registry, conn) for batch_id in pending_batches(conn, feed)]
        # gate_batch recorded each run's escalations with its verdict; this catches deliveries
        # loaded outside a DAG (the CLI) and sends what the outbox holds.
        _escalate_deliveries(conn, registry, feed)
    return [{"batch_id": o.batch_id, "decision": o.decision, "checks": len(o.results),
             "failed": [r.check.name for r in o.failed]} for o in outcomes]


def release_batch(batch_id: str, reason: str, released_by: str) -> str:
    """Let a quarantined batch go live with a recorded reason; returns its status afterwards."""
    from ruralwatch.quality.gate import release_batch as release

    prepare_warehouse()
    with db.connect(autocommit=True) as conn:
        return release(conn, batch_id, reason, released_by, dt.datetime.now(dt.UTC))


def check_timeliness(month: dt.date, as_of: dt.datetime | None = None) -> list[dict]:
    """Completeness and timeliness of every feed for the month (dq.feed_timeliness); late feeds escalate."""
    from ruralwatch.quality import notify, timeliness

    prepare_warehouse()
    as_of = as_of or dt.datetime.now(dt.UTC)
    registry = load_registry()
    with db.connect(autocommit=True) as conn:
        rows = timeliness.check(conn, registry, month, as_of)
        notify.send_pending(conn)
    return [{"feed": r.feed, "department": r.department_name, "status": r.status, "due_date": r.due_date.isoformat(),
             "delivered_at": r.delivered_at.astimezone(timeliness.LOCAL_TZ).isoformat(timespec="minutes")
             if r.delivered_at else None, "days_late": r.days_late}
            for r in rows]


def publish_auditor_report(month: dt.date, as_of: dt.datetime | None = None) -> str:
    """The month's auditor report and GX Data Docs under settings.reports_dir(); returns the report's path."""
    from ruralwatch.quality import data_docs
    from ruralwatch.reports import auditor

    check_timeliness(month, as_of)
    reports = settings.reports_dir()
    with db.connect(autocommit=True) as conn:
        data_docs.build_data_docs(conn, reports, month)
        path = auditor.write_report(conn, load_registry(), month, reports, as_of or dt.datetime.now(dt.UTC))
    return str(path)


def send_notifications() -> dict:
    """Send what the outbox holds (new escalations' messages) on the configured channels."""
    from ruralwatch.quality import notify

    report = notify.send_pending()
    return {"sent": report.sent, "failed": report.failed, "waiting": report.waiting}


def build_warehouse(select: str | None = None, echo: bool = False) -> None:
    from ruralwatch.transform import run_dbt

    prepare_warehouse()
    run_dbt(["seed", "--quiet"] if not echo else ["seed"], echo=echo)
    args = ["build"]
    if select:
        args += ["--select", select]
    run_dbt(args, echo=echo)
    # dbt replaced its relations; the roles' default privileges cover them, this covers a fresh
    # warehouse whose schemas dbt has only just created.
    apply_access()


def apply_access() -> dict[str, list[str]]:
    """Create the engineer, analyst and auditor roles and grant each its schemas (ruralwatch.access)."""
    from ruralwatch import access

    with db.connect(autocommit=True) as conn:
        return access.apply(conn)


def push_leads(month: dt.date) -> list[dict]:
    """Write the month's per-town lists of new early-warning leads under settings.reports_dir():
    `<reports>/<YYYYMM>/leads/<town code>.xlsx`. Idempotent: the same month writes the same lists."""
    from ruralwatch.reports.leads import write_lead_lists

    with db.connect() as conn:
        return [lead_list.as_dict() for lead_list in write_lead_lists(conn, month, settings.reports_dir())]


# The roster's rows as parsed once per live batch, not the staging view: counting the view parsed every
# month of the roster again (2 s a month at a million persons, after every build).
SUMMARY_TABLES = ("intermediate.int_roster_rows_checked", "marts.dim_household")


def summary(month: dt.date | None = None) -> dict:
    """Counts a person can check: deliveries, raw rows, staging rows, households, gate results."""
    with db.connect() as conn:
        deliveries = conn.execute(
            "select feed, file_name, status, gate_status, is_live, row_count, reason from raw.deliveries "
            "where %(month)s::date is null or data_month = %(month)s order by feed, recorded_at",
            {"month": month}).fetchall()
        checks = conn.execute(
            "select count(*), count(*) filter (where success) from dq.check_results r "
            "join raw.deliveries d using (batch_id) where %(month)s::date is null or d.data_month = %(month)s",
            {"month": month}).fetchone()
        tables = {}
        for relation in SUMMARY_TABLES:
            exists = conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]
            tables[relation] = conn.execute(f"select count(*) from {relation}").fetchone()[0] if exists else None  # noqa: S608
    return {
        "deliveries": [dict(zip(["feed", "file", "status", "gate", "live", "rows", "reason"], d, strict=True))
                       for d in deliveries],
        "checks_run": checks[0], "checks_passed": checks[1], "tables": tables,
    }


def latest_data_month() -> dt.date | None:
    """The newest data month with a live batch: what an asset-triggered run reports on."""
    with db.connect() as conn:
        return conn.execute("select max(data_month) from raw.deliveries where is_live").fetchone()[0]


def publish_indicator_report(month: dt.date) -> str | None:
    """The analysts' indicator report for the month; None (logged) while the indicator mart is not built."""
    from ruralwatch.reports import indicators

    with db.connect() as conn:
        try:
            path = indicators.write_indicator_report(conn, settings.reports_dir(), month)
        except LookupError as exc:
            log.warning("indicator report skipped: %s", exc)
            return None
    return str(path)
