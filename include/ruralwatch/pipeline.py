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
from ruralwatch.warehouse import ensure_platform_tables, ensure_pseudonym_key

log = logging.getLogger(__name__)

_MONTH = re.compile(r"^(\d{4})-?(\d{2})$")


def parse_month(text: str) -> dt.date:
    """`2026-11` or `202611` → 2026-11-01."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"not a month: {text!r} (expected YYYY-MM)")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


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
    marker = f"ruralwatch util functions {version}"
    with db.connect(autocommit=True) as conn:
        ensure_platform_tables(conn, load_registry())
        ensure_pseudonym_key(conn)
        current = conn.execute("select obj_description(to_regnamespace('util'), 'pg_namespace')").fetchone()[0]
        if current != marker:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(hashtext('ruralwatch.udfs'))")
                conn.execute(ddl)
                conn.execute(f"comment on schema util is '{marker}'")  # version is hex: safe


def load_feed(feed: str, month: dt.date, landing: Path | None = None) -> list[dict]:
    """Load the month's new deliveries of one feed; returns one small dict per delivery."""
    landing = landing or settings.landing_dir()
    prepare_warehouse()
    registry = load_registry()
    declared = registry[feed]
    with db.connect(autocommit=True) as conn:
        loader = Loader(conn, registry)
        outcomes = []
        if "api" in declared.formats:
            # The platform is the preferred channel; files in the landing folder are the fallback.
            outcomes += _load_from_api(loader, declared, month)
        outcomes += loader.load_landing(landing, feed=feed, month=month)
    for outcome in outcomes:
        log.info(outcome.describe())
    return [_outcome_dict(o) for o in outcomes]


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
    return [loader.load_api(feed, delivery)]


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
    return [{"batch_id": o.batch_id, "decision": o.decision, "checks": len(o.results),
             "failed": [r.check.name for r in o.failed]} for o in outcomes]


def build_warehouse(select: str | None = None, echo: bool = False) -> None:
    from ruralwatch.transform import run_dbt

    prepare_warehouse()
    run_dbt(["seed", "--quiet"] if not echo else ["seed"], echo=echo)
    args = ["build"]
    if select:
        args += ["--select", select]
    run_dbt(args, echo=echo)


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
        for label, relation in [("staging.stg_rural_roster__persons", "staging.stg_rural_roster__persons"),
                                ("marts.dim_household", "marts.dim_household")]:
            exists = conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]
            tables[label] = conn.execute(f"select count(*) from {relation}").fetchone()[0] if exists else None  # noqa: S608
    return {
        "deliveries": [dict(zip(["feed", "file", "status", "gate", "live", "rows", "reason"], d, strict=True))
                       for d in deliveries],
        "checks_run": checks[0], "checks_passed": checks[1], "tables": tables,
    }
