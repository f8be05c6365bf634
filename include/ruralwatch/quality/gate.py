"""The quality gate: validate a loaded batch with GX (SQL pushdown), record every check, decide.

A failed critical check quarantines the batch: it stays in raw, downstream models keep the last good
batch, and an engineer can release it with a recorded reason. Otherwise the batch goes live and
supersedes the earlier live batch of its slot (month, or month and town).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field

import psycopg

from ruralwatch import db
from ruralwatch.feeds.registry import Feed, Registry, load_registry
from ruralwatch.masking import MASKERS
from ruralwatch.quality import escalations
from ruralwatch.quality.checks import Check, checks_for, comparison_partners, usable_row_parts
from ruralwatch.quality.shared_calls import SharedCalls
from ruralwatch.warehouse import RAW_ROW_COLUMNS, rows_table

log = logging.getLogger(__name__)

# A batch's columns besides the feed's own: the raw table's, and what batch_query adds.
BATCH_COLUMNS = {name for name, _ in RAW_ROW_COLUMNS} | {"_batch_id", "_data_month"}
# `from x` or `join x` where x is neither the batch nor a subquery.
_OTHER_RELATION = re.compile(r"(?<!distinct )\b(from|join)\s+(?!\{batch\}|\()", re.IGNORECASE)
SAFE_BATCH_ID = re.compile(r"^[a-z0-9_\-]+$")
SAMPLE_ROWS = 5


@dataclass
class CheckResult:
    check: Check
    success: bool
    unexpected_count: int | None
    element_count: int | None
    sample: list[dict] = field(default_factory=list)


@dataclass
class GateOutcome:
    batch_id: str
    feed: str
    run_id: str
    decision: str                      # live | quarantined | superseded (not gated: see gate_batch)
    results: list[CheckResult]

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success]

    @property
    def failed_critical(self) -> list[CheckResult]:
        return [r for r in self.failed if r.check.severity == "critical"]

    def describe(self) -> str:
        passed = len(self.results) - len(self.failed)
        text = f"{self.feed} batch {self.batch_id}: {passed}/{len(self.results)} checks passed → {self.decision}"
        for r in self.failed:
            text += f"\n  ✗ [{r.check.severity}] {r.check.description} ({r.unexpected_count} rows)"
        return text


@dataclass(frozen=True)
class Batch:
    batch_id: str
    batch_key: int
    feed: str
    data_month: dt.date | None


def batch_query(feed: Feed, batch: Batch) -> str:
    """The batch's rows, read from its own partition (the literal key prunes every other batch)."""
    if not SAFE_BATCH_ID.match(batch.batch_id):
        raise ValueError(f"not a batch id: {batch.batch_id!r}")
    month = f"'{batch.data_month.isoformat()}'::date" if batch.data_month else "null::date"
    return (f"select *, '{batch.batch_id}'::text as _batch_id, {month} as _data_month "
            f'from raw."{rows_table(feed)}" where _batch_key = {int(batch.batch_key)}')


def _gx_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX logs several lines per expectation at INFO ("_get_default_value called with key …"): hundreds
    # per gate, drowning the progress an engineer watches. Its warnings and errors still come through.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


@dataclass
class WorkTables:
    """Where one gate run has already evaluated its checks (see `_evaluate_checks`)."""
    rows: str                                               # the batch, with a row check's verdict per column
    flags: dict[str, str] = field(default_factory=dict)     # row check's fingerprint → its column
    failing: dict[str, str] = field(default_factory=dict)   # query check's fingerprint → its failing rows

    def all(self) -> list[str]:
        return [self.rows, *self.failing.values()]


def _expectation(check: Check, tables: WorkTables | None = None):
    """The check as a GX expectation: its own SQL (the exported suites, the data docs), or, in a gate
    run, the query over the work table where the check's verdict was kept."""
    import great_expectations.expectations as gxe

    meta = {"check": check.name, "severity": check.severity, "fingerprint": check.fingerprint,
            "column": check.column}
    if check.requires:
        meta["requires"] = list(check.requires)
    if check.mostly is not None:
        return gxe.ExpectColumnValuesToBeInSet(column=check.column, value_set=[True], mostly=check.mostly,
                                               meta=meta, description=check.description, severity=check.severity)
    if tables is not None and check.fingerprint in tables.flags:
        # The row check's verdict column must hold no true. GX computes every such expectation of a
        # suite in one aggregate query over the work table; as unexpected-rows queries they were two
        # scans each (the count, the rows), the roster's 31 row checks 62 scans of a million rows.
        return gxe.ExpectColumnValuesToBeInSet(column=tables.flags[check.fingerprint], value_set=[False],
                                               meta=meta, description=check.description, severity=check.severity)
    query = check.unexpected_rows_query
    if tables is not None:
        if check.fingerprint in tables.failing:
            query = (f"select failing.* from {tables.failing[check.fingerprint]} as failing "
                     "where failing._source_row in (select _source_row from {batch})")
    return gxe.UnexpectedRowsExpectation(unexpected_rows_query=query,
                                         meta=meta, description=check.description, severity=check.severity)


def _work_table(feed: Feed, batch: Batch, suffix: str = "") -> str:
    return f'raw."_gate_{rows_table(feed)}_{int(batch.batch_key)}{suffix}"'


def _evaluate_checks(conn: psycopg.Connection, feed: Feed, batch: Batch, checks: list[Check]) -> WorkTables:
    """Evaluate every check once, in parallel workers where PostgreSQL can, into unlogged work tables.

    Row checks parse values (resident IDs, dates, amounts) with the util.* functions, and GX runs each
    expectation's query at least once: on the raw batch every check re-parsed the whole batch each
    time, minutes per million rows. So the batch is copied once into a work table with one column per
    distinct parser call of the suite (`SharedCalls`: each call once per row, in parallel workers) and
    each row check's verdict as a boolean column over those. Each query check (keys, households, the
    hand-written rules) then runs once over that table, reading the same columns, into a table of its
    failing rows. GX validates the same expectations over these tables. They live in `raw`, as
    restricted as the delivery they copy, and are dropped when the suite has run.
    """
    tables = WorkTables(_work_table(feed, batch))
    calls = SharedCalls({c.name for c in feed.columns} | BATCH_COLUMNS)
    verdicts, unshared = [], []
    for number, check in enumerate(checks):
        if check.mostly is None and check.predicate and not check.query:
            tables.flags[check.fingerprint] = f"_check_{number}"
            if calls.shares_every_call(check.predicate):
                verdicts.append(f", coalesce(({calls.rewrite(check.predicate)}), false) as _check_{number}")
            else:
                unshared.append(f", coalesce(({check.predicate}), false) as _check_{number}")
    per_row, usable = usable_row_parts(feed)
    per_row = calls.rewrite(per_row)
    queries = {number: _reading_only_the_batch(check.query.strip(), calls)
               for number, check in enumerate(checks) if check.query}
    _drop(conn, tables.all())
    # Every parser call runs once per row, in the materialised CTE, in parallel workers; the verdicts
    # over its columns are comparisons, cheap in one process, and the usable-row window needs one.
    conn.execute(f"create unlogged table {tables.rows} as "  # noqa: S608 — names built from the registry
                 f"with parsed as materialized ("
                 f"select batch_rows.*{calls.select_list()}{''.join(unshared)} "
                 f"from ({batch_query(feed, batch)}) as batch_rows) "
                 f"select verdicts.*, {usable} as _row_is_usable from ("
                 f"select parsed.*{''.join(verdicts)}, {per_row} from parsed) as verdicts")
    # The query checks group and join this table: the planner needs its statistics. GX matches each
    # query check's failing rows back to it by row number.
    conn.execute(f"create index on {tables.rows} (_source_row)")
    conn.execute(f"analyze {tables.rows}")
    for number, query in queries.items():
        check = checks[number]
        failing = _work_table(feed, batch, f"_failing_{number}")
        tables.failing[check.fingerprint] = failing
        _drop(conn, [failing])
        conn.execute(f"create unlogged table {failing} as "  # noqa: S608
                     f"select * from ({_over(query, tables.rows)}) as failing")
    return tables


def _reading_only_the_batch(query: str, calls: SharedCalls) -> str:
    """A query check with its parser calls read from the work table's columns, when it reads nothing
    but the batch: in a query that also reads another relation, a column name in a call might be that
    relation's, so the query runs as written."""
    if _OTHER_RELATION.search(query):
        return query
    return calls.rewrite(query)


def _over(query: str, table: str) -> str:
    """The check's query over `table`, substituted as GX substitutes `{batch}` (str.format): a literal
    brace written `{{` for GX reads the same here."""
    return query.format(batch=table)


def _drop(conn: psycopg.Connection, tables: list[str]) -> None:
    for table in tables:
        conn.execute(f"drop table if exists {table}")  # noqa: S608


def applicable_checks(conn: psycopg.Connection, checks: list[Check]) -> list[Check]:
    """Leave out (and log) checks that read a relation not built yet, e.g. the area-code seed."""
    relations = sorted({r for c in checks for r in c.requires})
    missing = {r for r in relations
               if conn.execute("select to_regclass(%s) is null", (r,)).fetchone()[0]}
    for check in checks:
        absent = [r for r in check.requires if r in missing]
        if absent:
            log.warning("%s: check %s left out this run: %s does not exist yet", check.feed, check.name,
                        ", ".join(absent))
    return [c for c in checks if not missing.intersection(c.requires)]


def validate_batch(feed: Feed, batch: Batch, checks: list[Check] | None = None) -> list[CheckResult]:
    """Run the feed's suite on one batch; every query runs in PostgreSQL, nothing is pulled whole."""
    checks = checks if checks is not None else checks_for(feed)
    with db.connect(autocommit=True) as conn:
        tables = None
        try:
            tables = _evaluate_checks(conn, feed, batch, checks)
            results = _validate(feed, tables, checks)
            # Samples come from the work tables too: on the raw batch a failed cross-row check re-parsed
            # and regrouped a million rows just to show five (minutes per roster at city scale).
            for result in results:
                if not result.success:
                    result.sample = _sample(conn, feed, tables, result.check)
            return results
        finally:
            if tables is not None:
                _drop(conn, tables.all())


def _validate(feed: Feed, tables: WorkTables, checks: list[Check]) -> list[CheckResult]:
    import great_expectations as gx
    from sqlalchemy.pool import NullPool

    context = _gx_context()
    # NullPool, and the engines closed when the suite has run: every validation makes its own engines,
    # and a process gating many batches (a backfill, a Celery worker) otherwise kept each one's pooled
    # connections until PostgreSQL refused new clients.
    source = context.data_sources.add_postgres(name="warehouse", connection_string=db.warehouse_url(),
                                               kwargs={"poolclass": NullPool})
    # A table asset, not a query asset: for a query GX ran it whole once to learn its columns, and
    # psycopg pulled every row of the batch into this process (the roster's million rows: 2 s and
    # most of a gigabyte). A table's columns come from the catalogue.
    schema, name = tables.rows.split(".", 1)
    asset = source.add_table_asset(name=f"{feed.name}_batch", table_name=name.strip('"'), schema_name=schema)
    batch_definition = asset.add_batch_definition_whole_table("batch")
    suite = context.suites.add(gx.ExpectationSuite(name=feed.name))
    for check in checks:
        suite.add_expectation(_expectation(check, tables))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{feed.name}_gate", data=batch_definition, suite=suite))
    try:
        # Counts only: the ledger's sample rows come from the work tables (`_sample`), and asking GX
        # for a partial list cost a scan per check that found nothing.
        outcome = validation.run(result_format={"result_format": "BASIC", "partial_unexpected_count": 0})
    finally:
        source.get_execution_engine().close()
        source.get_engine().dispose()
    by_fingerprint = {c.fingerprint: c for c in checks}
    results: list[CheckResult] = []
    for item in outcome.results:
        check = by_fingerprint[item.expectation_config.meta["fingerprint"]]
        error = _raised(item.exception_info)
        if error:
            # A check that could not run is a bug or a broken warehouse, never a data verdict.
            raise RuntimeError(f"check {check.name} on {feed.name} could not run: {error}")
        result = item.result or {}
        unexpected = result["observed_value"] if "observed_value" in result else result.get("unexpected_count")
        element = result.get("element_count") if check.mostly is not None else None
        results.append(CheckResult(check, bool(item.success), unexpected, element))
    return results


def _raised(info) -> str | None:
    """GX reports a failed query per metric, nested one level down, or at the top level."""
    if not info:
        return None
    candidates = [info, *[v for v in info.values() if isinstance(v, dict)]]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or candidate.get("exception_traceback", ""))[:2000]
    return None


def _sample(conn: psycopg.Connection, feed: Feed, tables: WorkTables, check: Check) -> list[dict]:
    """A few failing rows for the ledger, IDs masked: enough to find them, not to leak them."""
    if check.mostly is not None:
        query = f"select _source_row from {tables.rows} where not _row_is_usable"
    elif check.fingerprint in tables.failing:
        query = f"select * from {tables.failing[check.fingerprint]}"
    else:
        query = _over(check.rows_where(tables.flags[check.fingerprint]), tables.rows)
    cursor = conn.execute(f"select * from ({query}) as failing limit {SAMPLE_ROWS}")  # noqa: S608
    names = [d.name for d in cursor.description]
    maskers = {c.name: MASKERS[c.type] for c in feed.columns if c.type in MASKERS}
    return [
        {name: maskers[name](value) if name in maskers and value is not None else value
         for name, value in zip(names, row, strict=True)}
        for row in cursor.fetchall()
    ]


def gate_batch(batch_id: str, registry: Registry | None = None,
               conn: psycopg.Connection | None = None) -> GateOutcome:
    registry = registry or load_registry()
    own = conn is None
    conn = conn or db.connect(autocommit=True)
    try:
        row = conn.execute("select feed, batch_key, data_month from raw.deliveries where batch_id = %s",
                           (batch_id,)).fetchone()
        if row is None:
            raise KeyError(f"no delivery with batch id {batch_id}")
        feed = registry[row[0]]
        batch = Batch(batch_id, row[1], row[0], row[2])
        standing = _api_delivery_standing_over(conn, batch_id)
        if standing is not None:
            # feeds.md: when the API and a file both deliver a month, the API's delivery stands and the
            # file is recorded as superseded. Whatever its checks said, the file could not go live, so
            # they are not run (a month of hrss_employment: 636k rows, ~10 s). The rows stay in raw.
            conn.execute(
                "update raw.deliveries set status = 'superseded', gate_status = 'not_applicable', "
                "superseded_by = %s, reason = %s where batch_id = %s",
                (standing, "the API's delivery of this month stands (feeds.md); a file it stands over is "
                           "not gated", batch_id))
            outcome = GateOutcome(batch_id, feed.name, "", "superseded", [])
            log.info("%s batch %s: the API's delivery %s of the month stands; recorded as superseded, not gated",
                     feed.name, batch_id, standing)
            return outcome
        suite = checks_for(feed)
        with _compared_feeds_locked(conn, feed, registry):
            return _gate(conn, feed, batch, suite)
    finally:
        if own:
            conn.close()


@contextlib.contextmanager
def _compared_feeds_locked(conn: psycopg.Connection, feed: Feed, registry: Registry):
    """Hold a lock per pair of feeds whose checks compare one with the other while this one is gated.

    Both feeds of a pair (water_supply and housing_village_environment: a village's 总户数) check against
    the other's live batch, so whichever is gated second finds a disagreement. Gated at the same time —
    their ingest DAGs are due the same day and a scheduler's workers run them side by side — each would
    read the other's previous month and miss it. Locks are taken in one order, so two gates never wait
    for each other in a circle.
    """
    keys = [f"ruralwatch.gate.compared:{min(feed.name, p)}:{max(feed.name, p)}"
            for p in comparison_partners(registry)[feed.name]]
    for key in sorted(keys):
        conn.execute("select pg_advisory_lock(hashtextextended(%s, 0))", (key,))
    try:
        yield
    finally:
        for key in sorted(keys, reverse=True):
            conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def _gate(conn: psycopg.Connection, feed: Feed, batch: Batch, suite: list[Check]) -> GateOutcome:
    """Run the suite on the batch and record the verdict, its check results and escalations together."""
    batch_id = batch.batch_id
    started = time.perf_counter()
    results = validate_batch(feed, batch, applicable_checks(conn, suite))
    gate_seconds = time.perf_counter() - started
    checked_at = dt.datetime.now(dt.UTC)
    run_id = f"{checked_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    failed_critical = [r for r in results if not r.success and r.check.severity == "critical"]
    decision = "quarantined" if failed_critical else "live"
    with conn.transaction():
        _record_results(conn, run_id, batch_id, feed, results)
        conn.execute("update raw.deliveries set gate_seconds = %s where batch_id = %s", (gate_seconds, batch_id))
        if decision == "live":
            go_live(conn, batch_id)
        else:
            reasons = "; ".join(f"{r.check.description}（{r.unexpected_count}行）" for r in failed_critical)
            conn.execute(
                "update raw.deliveries set status = 'quarantined', gate_status = 'failed', is_live = false, "
                "reason = %s where batch_id = %s", (f"quality gate: {reasons}", batch_id))
        # Same transaction as the verdict: a gate run is recorded with its escalations or not at all.
        escalations.record_gate(conn, feed, batch_id, run_id, results, suite, checked_at)
    outcome = GateOutcome(batch_id, feed.name, run_id, decision, results)
    log.info(outcome.describe())
    return outcome


class ReleaseRefused(ValueError):
    """The batch cannot be released; the message says why and what to do."""


def release_batch(conn: psycopg.Connection, batch_id: str, reason: str, released_by: str,
                  at: dt.datetime) -> str:
    """An engineer's decision to let a quarantined batch go live anyway, with the reason recorded.

    The failed checks' escalations stay open: releasing accepts the data, it does not fix it.
    Returns the batch's status afterwards (loaded, or superseded when a newer batch is live).
    """
    if not reason.strip() or not released_by.strip():
        raise ReleaseRefused("a release needs a reason and the name of who releases it")
    with conn.transaction():
        row = conn.execute("select status, gate_status from raw.deliveries where batch_id = %s for update",
                           (batch_id,)).fetchone()
        if row is None:
            raise ReleaseRefused(f"no delivery with batch id {batch_id}; `ruralwatch deliveries` lists them")
        if row != ("quarantined", "failed"):
            raise ReleaseRefused(f"batch {batch_id} is {row[0]} (gate {row[1]}); only a quarantined batch "
                                 "can be released")
        conn.execute("update raw.deliveries set released_by = %s, release_reason = %s where batch_id = %s",
                     (released_by, reason, batch_id))
        go_live(conn, batch_id, gate_status="released")
        escalations.note_release(conn, batch_id, reason, released_by, at)
        return conn.execute("select status from raw.deliveries where batch_id = %s", (batch_id,)).fetchone()[0]


def _api_stands_over(channel: str, live_channel: str) -> bool:
    """feeds.md: the API's delivery of a month stands over any other channel's (hrss_employment)."""
    return live_channel == "api" and channel != "api"


def _api_delivery_standing_over(conn: psycopg.Connection, batch_id: str) -> str | None:
    """The live API delivery of the batch's slot, when it stands over the batch."""
    row = conn.execute(
        "select live.batch_id, me.channel, live.channel from raw.deliveries as me join raw.deliveries as live "
        "on live.feed = me.feed and live.slot = me.slot and live.is_live and live.batch_id <> me.batch_id "
        "where me.batch_id = %s", (batch_id,)).fetchone()
    return row[0] if row and _api_stands_over(row[1], row[2]) else None


def go_live(conn: psycopg.Connection, batch_id: str, gate_status: str = "passed") -> None:
    """Make the batch its slot's live batch, unless a newer or preferred one is live already.

    Newer = a higher version, or the same version delivered later (a correction under the same
    name). For hrss_employment the API's delivery stands over a file's (feeds.md).
    """
    me = conn.execute(
        "select feed, slot, version, channel, coalesce(arrived_at, recorded_at) from raw.deliveries "
        "where batch_id = %s for update", (batch_id,)).fetchone()
    feed, slot, version, channel, arrived = me
    live = conn.execute(
        "select batch_id, version, channel, coalesce(arrived_at, recorded_at) from raw.deliveries "
        "where feed = %s and slot = %s and is_live and batch_id <> %s for update", (feed, slot, batch_id)).fetchone()
    if live:
        live_id, live_version, live_channel, live_arrived = live
        newer = _api_stands_over(live_channel, channel) or (version, arrived) >= (live_version, live_arrived)
        if _api_stands_over(channel, live_channel) or not newer:
            conn.execute(
                "update raw.deliveries set status = 'superseded', gate_status = %s, superseded_by = %s, "
                "reason = 'a newer or preferred delivery of this month is live' where batch_id = %s",
                (gate_status, live_id, batch_id))
            return
        conn.execute(
            "update raw.deliveries set status = 'superseded', is_live = false, superseded_by = %s "
            "where batch_id = %s", (batch_id, live_id))
    conn.execute("update raw.deliveries set status = 'loaded', gate_status = %s, is_live = true "
                 "where batch_id = %s", (gate_status, batch_id))


def _record_results(conn, run_id: str, batch_id: str, feed: Feed, results: list[CheckResult]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into dq.check_results (run_id, batch_id, feed, fingerprint, check_name, expectation_type, "
            "column_name, arguments, severity, success, element_count, unexpected_count, sample) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(run_id, batch_id, feed.name, r.check.fingerprint, r.check.name, r.check.expectation_type,
              r.check.column, json.dumps(r.check.arguments, ensure_ascii=False), r.check.severity, r.success,
              r.element_count, r.unexpected_count, json.dumps(r.sample, ensure_ascii=False, default=str))
             for r in results])


def pending_batches(conn: psycopg.Connection, feed: str | None = None) -> list[str]:
    query = "select batch_id from raw.deliveries where gate_status = 'pending' and status = 'loaded'"
    params: tuple = ()
    if feed:
        query += " and feed = %s"
        params = (feed,)
    # A month's API delivery first: the file it stands over then needs no gate (gate_batch).
    return [r[0] for r in conn.execute(query + " order by data_month, channel = 'api' desc, version, arrived_at",
                                       params)]
