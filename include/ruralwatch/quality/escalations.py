"""The escalation ledger (问题整改台账): one escalation per failing check, tracked until it is fixed.

A check is one expectation on one feed, identified by its fingerprint (`Check.fingerprint`). The
first failure opens an escalation and writes its notification to `dq.outbox` in the same
transaction; later failures update it (last seen, runs, failing rows) and notify nobody; a pass
resolves it. A failure after that opens a new one. Rejected deliveries, late feeds and failed
Airflow tasks are escalated the same way, each under a fingerprint of its own.

Open-or-update is one statement: an insert that meets the partial unique index on open
escalations becomes an update (`on conflict … do update … returning (xmax = 0)`), so two runs at
once cannot both open one. Every observation carries a key (a gate run, a delivery, a task try);
seeing the same observation again changes nothing, which keeps re-runs idempotent.

Samples and messages stored here are masked (`ruralwatch.masking`): departments and auditors read them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from ruralwatch.feeds.registry import Department, Feed, Registry
from ruralwatch.masking import mask_ids_in_text

if TYPE_CHECKING:
    from ruralwatch.quality.checks import Check
    from ruralwatch.quality.gate import CheckResult

log = logging.getLogger(__name__)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_DUE_WORKING_DAYS = 10
OPEN_STATUSES = ("open", "acknowledged")
# A delivery whose rows could be read: it counts as delivered, whatever its quality verdict.
READABLE_STATUSES = ("loaded", "superseded", "quarantined")

KIND_LABELS = {"check": "质量检查未通过", "rejected_delivery": "报送被拒收", "late_feed": "逾期未报送",
               "task_failure": "任务运行失败"}
STATUS_LABELS = {"open": "未整改", "acknowledged": "整改中", "resolved": "已销号"}
SEVERITY_LABELS = {"critical": "严重", "warning": "一般"}
EVENT_LABELS = {"opened": "发现", "seen": "再次发现", "acknowledged": "确认", "commented": "备注",
                "resolved": "销号", "notified": "已通知", "released": "批次放行"}
RESOLUTION_LABELS = {"check_passed": "复核通过", "redelivered": "已重新报送", "delivered": "已补报",
                     "task_succeeded": "任务已恢复", "manual": "人工销号", "check_retired": "检查项已停用"}

LEDGER_DDL = """
create schema if not exists dq;
create table if not exists dq.escalations (
    escalation_id     bigint generated always as identity primary key,
    fingerprint       text not null,
    kind              text not null check (kind in ('check', 'rejected_delivery', 'late_feed', 'task_failure')),
    status            text not null default 'open' check (status in ('open', 'acknowledged', 'resolved')),
    feed              text,
    scope             text,
    check_fingerprint text,
    check_name        text,
    column_name       text,
    severity          text not null check (severity in ('critical', 'warning')),
    title             text not null,
    department_code   text not null,
    department_name   text not null,
    contact_email     text,
    first_seen_at     timestamptz not null,
    last_seen_at      timestamptz not null,
    first_batch_id    text,
    last_batch_id     text,
    first_data_month  date,
    last_data_month   date,
    first_run_id      text,
    last_run_id       text,
    runs              integer not null default 1,
    failing_rows      bigint,
    checked_rows      bigint,
    sample            jsonb not null default '[]'::jsonb,
    detail            jsonb not null default '{}'::jsonb,
    last_observation  text not null,
    due_date          date not null,
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    resolved_at       timestamptz,
    resolved_by       text,
    resolution        text check (resolution in ('check_passed', 'redelivered', 'delivered', 'task_succeeded',
                                                 'manual', 'check_retired')),
    resolution_note   text,
    resolved_batch_id text,
    resolved_run_id   text,
    resolved_data_month date,
    check ((status = 'resolved') = (resolved_at is not null))
);
-- The decision to open is this index: at most one open (or acknowledged) escalation per fingerprint.
create unique index if not exists escalations_one_open_per_fingerprint
    on dq.escalations (fingerprint) where status in ('open', 'acknowledged');
create index if not exists escalations_by_department on dq.escalations (department_code, status);
comment on table dq.escalations is
    '问题整改台账：每个未通过的检查（及拒收、逾期、任务失败）一条，从首次发现到整改销号';

create table if not exists dq.escalation_events (
    event_id       bigint generated always as identity primary key,
    escalation_id  bigint not null references dq.escalations (escalation_id),
    event          text not null check (event in
                       ('opened', 'seen', 'acknowledged', 'commented', 'resolved', 'notified', 'released')),
    at             timestamptz not null,
    actor          text,
    run_id         text,
    batch_id       text,
    failing_rows   bigint,
    note           text
);
create index if not exists escalation_events_by_escalation on dq.escalation_events (escalation_id, event_id);
create index if not exists escalation_events_by_batch on dq.escalation_events (batch_id) where batch_id is not null;
comment on table dq.escalation_events is '问题整改台账的处理记录：发现、再次发现、通知、确认、备注、销号';

-- Written in the escalation's own transaction; a sender claims rows with `for update skip locked`
-- and marks them sent after the server accepted them.
create table if not exists dq.outbox (
    message_id      bigint generated always as identity primary key,
    escalation_id   bigint not null references dq.escalations (escalation_id),
    channel         text not null check (channel in ('email', 'webhook')),
    recipient       text,
    subject         text not null,
    body            text not null,
    payload         jsonb not null,
    created_at      timestamptz not null default now(),
    attempts        integer not null default 0,
    last_attempt_at timestamptz,
    last_error      text,
    sent_at         timestamptz,
    unique (escalation_id, channel)
);
create index if not exists outbox_unsent on dq.outbox (message_id) where sent_at is null;
comment on table dq.outbox is '待发送的问题通知（邮件、Webhook），与问题同一事务写入，发送成功后标记';
"""


class LedgerError(ValueError):
    """An action on the ledger that cannot be done; the message says why."""


def ensure_tables(conn: psycopg.Connection) -> None:
    """The dq ledger, outbox and timeliness tables; called from warehouse.ensure_platform_tables."""
    from ruralwatch.quality.timeliness import TIMELINESS_DDL

    conn.execute(LEDGER_DDL)
    conn.execute(TIMELINESS_DDL)


# -- identities -------------------------------------------------------------------------------------
def fingerprint(**identity: Any) -> str:
    """A stable key for what went wrong, in the same form as Check.fingerprint."""
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def check_fingerprint(check: Check, town: str | None = None) -> str:
    """A check's escalation key. Towns deliver lead_feedback separately, so each town's failure of
    a check is its own escalation: town B passing must not close town A's problem."""
    return check.fingerprint if town is None else fingerprint(check=check.fingerprint, town=town)


def due_date(first_seen_at: dt.datetime, working_days: int | None = None) -> dt.date:
    """Working days (Monday to Friday) after the day it was first seen, in Asia/Shanghai.

    Public holidays and the make-up working weekends (调休) are not known here; the default leaves
    room for them. RURALWATCH_ESCALATION_DUE_WORKING_DAYS sets the number.
    """
    if working_days is None:
        working_days = int(os.environ.get("RURALWATCH_ESCALATION_DUE_WORKING_DAYS", DEFAULT_DUE_WORKING_DAYS))
    day = first_seen_at.astimezone(LOCAL_TZ).date()
    remaining = working_days
    while remaining > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            remaining -= 1
    return day


def engineering_department(registry: Registry) -> Department:
    """Who owns a failed pipeline task: the platform team, not the department whose feed it was.

    The bureau runs the warehouse (feeds.md), so its data office is the contact unless
    RURALWATCH_ENGINEERING_EMAIL names the engineers' own address.
    """
    bureau = registry.departments.get("rural_revitalization")
    email = os.environ.get("RURALWATCH_ENGINEERING_EMAIL") or (bureau.contact_email if bureau else "")
    return Department("data_engineering", "数据工程组", email)


def month_label(month: dt.date | None) -> str:
    return f"{month.year}年{month.month}月" if month else "月份不明"


def masked_sample(rows: Iterable[dict]) -> list[dict]:
    """Samples arrive masked by column type; text is masked again in case a query renamed a column."""
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return mask_ids_in_text(value)
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return mask_ids_in_text(str(value))

    return [{str(k): clean(v) for k, v in row.items()} for row in rows]


# -- opening and updating ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One observation that something is wrong, ready to be escalated."""

    fingerprint: str
    kind: str
    severity: str
    title: str                    # Chinese: the department reads it
    department: Department
    observation: str              # what saw it; the same observation twice changes nothing
    seen_at: dt.datetime
    feed: str | None = None
    scope: str | None = None      # a town (per-town feeds), a slot or a month: narrows the fingerprint
    check_fingerprint: str | None = None
    check_name: str | None = None
    column_name: str | None = None
    batch_id: str | None = None
    data_month: dt.date | None = None
    run_id: str | None = None
    failing_rows: int | None = None
    checked_rows: int | None = None
    sample: list[dict] = field(default_factory=list)
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    escalation_id: int
    opened: bool          # True: a new escalation, notified; False: the open one was updated


_UPSERT = """
insert into dq.escalations as e (
    fingerprint, kind, feed, scope, check_fingerprint, check_name, column_name, severity, title,
    department_code, department_name, contact_email, first_seen_at, last_seen_at,
    first_batch_id, last_batch_id, first_data_month, last_data_month, first_run_id, last_run_id,
    failing_rows, checked_rows, sample, detail, last_observation, due_date)
values (
    %(fingerprint)s, %(kind)s, %(feed)s, %(scope)s, %(check_fingerprint)s, %(check_name)s, %(column_name)s,
    %(severity)s, %(title)s, %(department_code)s, %(department_name)s, %(contact_email)s,
    %(seen_at)s, %(seen_at)s, %(batch_id)s, %(batch_id)s, %(data_month)s, %(data_month)s,
    %(run_id)s, %(run_id)s, %(failing_rows)s, %(checked_rows)s, %(sample)s, %(detail)s,
    %(observation)s, %(due_date)s)
on conflict (fingerprint) where status in ('open', 'acknowledged') do update set
    last_seen_at = greatest(e.last_seen_at, excluded.last_seen_at),
    last_batch_id = coalesce(excluded.last_batch_id, e.last_batch_id),
    last_data_month = greatest(e.last_data_month, excluded.last_data_month),
    last_run_id = coalesce(excluded.last_run_id, e.last_run_id),
    runs = e.runs + 1,
    failing_rows = excluded.failing_rows,
    checked_rows = excluded.checked_rows,
    sample = excluded.sample,
    detail = e.detail || excluded.detail,
    severity = excluded.severity,
    title = excluded.title,
    last_observation = excluded.last_observation
where e.last_observation is distinct from excluded.last_observation
returning escalation_id, (xmax = 0) as opened
"""


def escalate(conn: psycopg.Connection, finding: Finding) -> Decision | None:
    """Open an escalation for the finding, or update the open one; None when already seen.

    A new escalation's notifications are written to the outbox in the same transaction.
    """
    from ruralwatch.quality import notify

    params = {
        "fingerprint": finding.fingerprint, "kind": finding.kind, "feed": finding.feed, "scope": finding.scope,
        "check_fingerprint": finding.check_fingerprint, "check_name": finding.check_name,
        "column_name": finding.column_name, "severity": finding.severity, "title": finding.title,
        "department_code": finding.department.code, "department_name": finding.department.name,
        "contact_email": finding.department.contact_email or None, "seen_at": finding.seen_at,
        "batch_id": finding.batch_id, "data_month": finding.data_month, "run_id": finding.run_id,
        "failing_rows": finding.failing_rows, "checked_rows": finding.checked_rows,
        "sample": json.dumps(masked_sample(finding.sample), ensure_ascii=False),
        "detail": json.dumps(finding.detail, ensure_ascii=False, default=str),
        "observation": finding.observation, "due_date": due_date(finding.seen_at),
    }
    with conn.transaction():
        row = conn.execute(_UPSERT, params).fetchone()
        if row is None:
            return None
        decision = Decision(int(row[0]), bool(row[1]))
        _event(conn, decision.escalation_id, "opened" if decision.opened else "seen", finding.seen_at,
               actor=finding.run_id or finding.observation, run_id=finding.run_id, batch_id=finding.batch_id,
               failing_rows=finding.failing_rows)
        if decision.opened:
            notify.enqueue(conn, decision.escalation_id)
            log.warning("escalation %s opened: %s — %s", decision.escalation_id, finding.department.name,
                        finding.title)
    return decision


def _event(conn: psycopg.Connection, escalation_id: int, event: str, at: dt.datetime, *, actor: str | None = None,
           run_id: str | None = None, batch_id: str | None = None, failing_rows: int | None = None,
           note: str | None = None) -> None:
    conn.execute(
        "insert into dq.escalation_events (escalation_id, event, at, actor, run_id, batch_id, failing_rows, note) "
        "values (%s, %s, %s, %s, %s, %s, %s, %s)",
        (escalation_id, event, at, actor, run_id, batch_id, failing_rows, note))


def resolve(conn: psycopg.Connection, fingerprint_: str, *, at: dt.datetime, by: str, resolution: str,
            note: str | None = None, batch_id: str | None = None, run_id: str | None = None,
            data_month: dt.date | None = None, only_if_not_older: bool = False) -> int | None:
    """Resolve the open escalation of a fingerprint, if there is one; returns its id.

    `only_if_not_older`: a pass in an older month's batch (a backfill gated late) says nothing
    about a newer month that failed, so it resolves only escalations last seen no later.
    """
    with conn.transaction():
        row = conn.execute(
            "update dq.escalations set status = 'resolved', resolved_at = %s, resolved_by = %s, resolution = %s, "
            "resolution_note = %s, resolved_batch_id = %s, resolved_run_id = %s, resolved_data_month = %s "
            "where fingerprint = %s and status in ('open', 'acknowledged') "
            "and (not %s or last_data_month is null or %s::date is null or last_data_month <= %s::date) "
            "returning escalation_id",
            (at, by, resolution, note, batch_id, run_id, data_month, fingerprint_, only_if_not_older,
             data_month, data_month)).fetchone()
        if row is None:
            return None
        _event(conn, row[0], "resolved", at, actor=by, run_id=run_id, batch_id=batch_id,
               note=note or RESOLUTION_LABELS[resolution])
    log.info("escalation %s resolved (%s)", row[0], resolution)
    return int(row[0])


# -- quality gates ----------------------------------------------------------------------------------
def record_gate(conn: psycopg.Connection, feed: Feed, batch_id: str, run_id: str, results: list[CheckResult],
                suite: list[Check], at: dt.datetime) -> dict[str, int]:
    """After a gate run: open or update an escalation per failed check, resolve those that passed.

    Runs inside the gate's transaction. Fingerprints are handled in sorted order, so two gate runs
    at once lock ledger rows in the same order and cannot deadlock.
    """
    delivery = conn.execute(
        "select data_month, slot, file_name, row_count from raw.deliveries where batch_id = %s",
        (batch_id,)).fetchone()
    data_month, slot, file_name, row_count = delivery
    town = slot.split("_", 1)[1] if feed.file_suffix and slot and "_" in slot else None
    counts = {"opened": 0, "updated": 0, "resolved": 0, "retired": 0}
    keyed = sorted(((check_fingerprint(r.check, town), r) for r in results), key=lambda item: item[0])
    for key, result in keyed:
        check = result.check
        if result.success:
            if resolve(conn, key, at=at, by=run_id, resolution="check_passed", batch_id=batch_id, run_id=run_id,
                       data_month=data_month, only_if_not_older=True,
                       note=f"{file_name}（{month_label(data_month)}）复核通过"):
                counts["resolved"] += 1
            continue
        decision = escalate(conn, Finding(
            fingerprint=key, kind="check", severity=check.severity, title=check.description,
            department=feed.department, observation=f"gate:{run_id}", seen_at=at, feed=feed.name, scope=town,
            check_fingerprint=check.fingerprint, check_name=check.name, column_name=check.column,
            batch_id=batch_id, data_month=data_month, run_id=run_id, failing_rows=result.unexpected_count,
            checked_rows=result.element_count or row_count, sample=result.sample,
            detail={"file_name": file_name, "expectation_type": check.expectation_type}))
        if decision:
            counts["opened" if decision.opened else "updated"] += 1
    # A check edited or removed from the suite gets a new fingerprint (or none): its old escalation
    # could never pass again, so it is closed as retired rather than left open for ever.
    current = sorted(check_fingerprint(c, town) for c in suite)
    stale = conn.execute(
        "select fingerprint from dq.escalations where kind = 'check' and feed = %s and scope is not distinct from %s "
        "and status in ('open', 'acknowledged') and not (fingerprint = any(%s)) order by fingerprint",
        (feed.name, town, current)).fetchall()
    for (key,) in stale:
        if resolve(conn, key, at=at, by=run_id, resolution="check_retired", run_id=run_id,
                   note="检查项已修改或删除，原问题不再评估"):
            counts["retired"] += 1
    return counts


def note_release(conn: psycopg.Connection, batch_id: str, reason: str, released_by: str, at: dt.datetime) -> None:
    """A released batch's open escalations stay open; their history says who let it through and why."""
    rows = conn.execute(
        "select escalation_id from dq.escalations where last_batch_id = %s and status in ('open', 'acknowledged') "
        "order by escalation_id", (batch_id,)).fetchall()
    for (escalation_id,) in rows:
        _event(conn, escalation_id, "released", at, actor=released_by, batch_id=batch_id,
               note=f"批次已放行上线：{reason}")


# -- deliveries: rejected, and later made good --------------------------------------------------------
def sweep_deliveries(conn: psycopg.Connection, registry: Registry, at: dt.datetime,
                     feed: str | None = None) -> dict[str, int]:
    """Escalate rejected deliveries not escalated yet; resolve rejections and lateness made good.

    A sweep over raw.deliveries rather than a hook in the loader: whichever way a file was loaded
    (a DAG, the CLI), and even if a run died right after loading it, the next sweep finds it.
    A rejection already followed by a readable delivery of the same slot is left alone: it was
    fixed before anyone needed telling.
    """
    counts = {"opened": 0, "updated": 0, "resolved": 0}
    params = {"feed": feed, "readable": list(READABLE_STATUSES)}
    rejected = conn.execute(
        "select d.batch_id, d.feed, d.file_name, d.data_month, d.slot, d.reason, d.recorded_at "
        "from raw.deliveries as d "
        "where d.status = 'rejected' and (%(feed)s::text is null or d.feed = %(feed)s) "
        "  and not exists (select 1 from dq.escalation_events as ev "
        "                  where ev.batch_id = d.batch_id and ev.event in ('opened', 'seen')) "
        "  and not exists (select 1 from raw.deliveries as later "
        "                  where later.feed = d.feed and (d.slot is null or later.slot = d.slot) "
        "                    and later.status = any(%(readable)s) and later.recorded_at > d.recorded_at) "
        "order by d.recorded_at, d.batch_id", params).fetchall()
    for batch_id, feed_name, file_name, data_month, slot, reason, _ in rejected:
        if feed_name not in registry.feeds:
            continue
        declared = registry[feed_name]
        decision = escalate(conn, Finding(
            fingerprint=fingerprint(kind="rejected_delivery", feed=feed_name, slot=slot),
            kind="rejected_delivery", severity="critical",
            title=f"{declared.title}（{month_label(data_month)}）报送文件被拒收，须重新报送",
            department=declared.department, observation=f"delivery:{batch_id}", seen_at=at, feed=feed_name,
            scope=slot, batch_id=batch_id, data_month=data_month,
            sample=[{"文件": file_name, "拒收原因": reason}],
            detail={"file_name": file_name, "reason": mask_ids_in_text(reason or "")}))
        if decision:
            counts["opened" if decision.opened else "updated"] += 1

    made_good = conn.execute(
        "select e.fingerprint, e.kind, d.batch_id, d.data_month, d.file_name, d.arrived_at "
        "from dq.escalations as e "
        "cross join lateral ("
        "    select d.batch_id, d.data_month, d.file_name, d.arrived_at from raw.deliveries as d "
        "    where d.feed = e.feed and d.status = any(%(readable)s) and case e.kind "
        "        when 'rejected_delivery' then (e.scope is null or d.slot = e.scope) and d.recorded_at > "
        "            (select r.recorded_at from raw.deliveries as r where r.batch_id = e.last_batch_id) "
        "        else d.data_month = e.first_data_month end "
        "    order by d.recorded_at limit 1) as d "
        "where e.kind in ('rejected_delivery', 'late_feed') and e.status in ('open', 'acknowledged') "
        "  and (%(feed)s::text is null or e.feed = %(feed)s) "
        "order by e.fingerprint", params).fetchall()
    for key, kind, batch_id, data_month, file_name, arrived_at in made_good:
        if kind == "rejected_delivery":
            resolution, note = "redelivered", f"已收到可读取的重新报送：{file_name}"
        else:
            arrived = arrived_at.astimezone(LOCAL_TZ) if arrived_at else None
            resolution = "delivered"
            note = f"已补报：{file_name}" + (f"（到达 {arrived:%Y-%m-%d %H:%M}）" if arrived else "")
        if resolve(conn, key, at=at, by=f"delivery:{batch_id}", resolution=resolution, note=note,
                   batch_id=batch_id, data_month=data_month):
            counts["resolved"] += 1
    return counts


# -- Airflow tasks ----------------------------------------------------------------------------------
def task_fingerprint(dag_id: str, task_id: str) -> str:
    return fingerprint(kind="task_failure", dag_id=dag_id, task_id=task_id)


def _task_identity(context: dict) -> tuple[str, str, str, int]:
    ti = context.get("ti") or context["task_instance"]
    return ti.dag_id, ti.task_id, str(ti.run_id), int(getattr(ti, "try_number", 0) or 0)


def _run_data_month(dag_id: str, context: dict) -> dt.date | None:
    from ruralwatch.pipeline import data_month_for_run

    if not dag_id.startswith("ingest_"):
        return None
    params = context.get("params") or {}
    try:
        return data_month_for_run(context.get("logical_date"), params.get("month"))
    except ValueError:
        return None


def escalate_task_failure(context: dict, registry: Registry | None = None,
                          at: dt.datetime | None = None) -> Decision | None:
    """Airflow's failure (and retry) callback: every failed try of a task lands in one escalation
    per DAG and task; the try is the observation, so `runs` counts tries and one message goes out."""
    from ruralwatch import db
    from ruralwatch.feeds.registry import load_registry
    from ruralwatch.quality import notify

    registry = registry or load_registry()
    at = at or dt.datetime.now(dt.UTC)
    dag_id, task_id, run_id, try_number = _task_identity(context)
    error = mask_ids_in_text(f"{type(context.get('exception')).__name__}: {context.get('exception')}")[:2000] \
        if context.get("exception") is not None else "（无异常信息）"
    feed = dag_id.removeprefix("ingest_") if dag_id.removeprefix("ingest_") in registry.feeds else None
    finding = Finding(
        fingerprint=task_fingerprint(dag_id, task_id), kind="task_failure", severity="critical",
        title=f"Airflow 任务运行失败：{dag_id} / {task_id}", department=engineering_department(registry),
        observation=f"task:{dag_id}:{run_id}:{task_id}:{try_number}", seen_at=at, feed=feed,
        scope=f"{dag_id}.{task_id}", run_id=run_id, data_month=_run_data_month(dag_id, context),
        sample=[{"DAG": dag_id, "任务": task_id, "运行": run_id, "第几次尝试": try_number, "错误": error[:300]}],
        detail={"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "try_number": try_number, "error": error})
    with db.connect(autocommit=True) as conn:
        if conn.execute("select to_regclass('dq.escalations') is null").fetchone()[0]:
            # A task that failed before the platform tables existed (a fresh warehouse).
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(hashtext('ruralwatch.ensure_platform_tables'))")
                ensure_tables(conn)
        decision = escalate(conn, finding)
        notify.send_pending(conn)
    return decision


def resolve_task_failure(context: dict, at: dt.datetime | None = None) -> int | None:
    """Airflow's success callback: the task ran, so its failure escalation (if any) is fixed."""
    from ruralwatch import db

    dag_id, task_id, run_id, try_number = _task_identity(context)
    with db.connect(autocommit=True) as conn:
        if conn.execute("select to_regclass('dq.escalations') is null").fetchone()[0]:
            return None
        return resolve(conn, task_fingerprint(dag_id, task_id), at=at or dt.datetime.now(dt.UTC),
                       by=f"task:{dag_id}:{run_id}:{task_id}:{try_number}", resolution="task_succeeded",
                       run_id=run_id, note=f"任务于运行 {run_id} 第{try_number}次尝试成功")


# -- what engineers do ------------------------------------------------------------------------------
def acknowledge(conn: psycopg.Connection, escalation_id: int, by: str, at: dt.datetime,
                note: str | None = None) -> None:
    _require_person(by)
    with conn.transaction():
        row = conn.execute(
            "update dq.escalations set status = 'acknowledged', acknowledged_at = %s, acknowledged_by = %s "
            "where escalation_id = %s and status = 'open' returning escalation_id",
            (at, by, escalation_id)).fetchone()
        if row is None:
            raise LedgerError(_not_actionable(conn, escalation_id, "acknowledged", "open"))
        _event(conn, escalation_id, "acknowledged", at, actor=by, note=note)


def comment(conn: psycopg.Connection, escalation_id: int, by: str, text: str, at: dt.datetime) -> None:
    _require_person(by)
    if not text.strip():
        raise LedgerError("a comment needs text")
    with conn.transaction():
        if conn.execute("select 1 from dq.escalations where escalation_id = %s", (escalation_id,)).fetchone() is None:
            raise LedgerError(f"no escalation {escalation_id}; `ruralwatch escalations list --status all` lists them")
        _event(conn, escalation_id, "commented", at, actor=by, note=text)


def resolve_manually(conn: psycopg.Connection, escalation_id: int, by: str, reason: str, at: dt.datetime) -> None:
    """An engineer closes an escalation (e.g. the department explained the values are right).

    If the check fails again, a new escalation opens: the reason stays on record with this one.
    """
    _require_person(by)
    if not reason.strip():
        raise LedgerError("resolving by hand needs a reason (--reason)")
    with conn.transaction():
        key = conn.execute("select fingerprint from dq.escalations where escalation_id = %s and status in "
                           "('open', 'acknowledged')", (escalation_id,)).fetchone()
        if key is None:
            raise LedgerError(_not_actionable(conn, escalation_id, "resolved", "open or acknowledged"))
        resolve(conn, key[0], at=at, by=by, resolution="manual", note=reason)


def _require_person(by: str) -> None:
    if not by or not by.strip():
        raise LedgerError("say who you are (--by NAME): the ledger records who did what")


def _not_actionable(conn: psycopg.Connection, escalation_id: int, action: str, needed: str) -> str:
    row = conn.execute("select status from dq.escalations where escalation_id = %s", (escalation_id,)).fetchone()
    if row is None:
        return f"no escalation {escalation_id}; `ruralwatch escalations list --status all` lists them"
    return f"escalation {escalation_id} is {row[0]}; only an escalation that is {needed} can be {action}"


# -- reading ----------------------------------------------------------------------------------------
def list_escalations(conn: psycopg.Connection, status: str = "open", department: str | None = None,
                     feed: str | None = None) -> list[dict]:
    """status: open (open and acknowledged), acknowledged, resolved or all."""
    statuses = {"open": list(OPEN_STATUSES), "acknowledged": ["acknowledged"], "resolved": ["resolved"],
                "all": ["open", "acknowledged", "resolved"]}.get(status)
    if statuses is None:
        raise LedgerError(f"status must be open, acknowledged, resolved or all, not {status!r}")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from dq.escalations where status = any(%s) "
            "and (%s::text is null or department_code = %s or department_name = %s) "
            "and (%s::text is null or feed = %s) order by escalation_id",
            (statuses, department, department, department, feed, feed)).fetchall()


def escalation_detail(conn: psycopg.Connection, escalation_id: int) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select * from dq.escalations where escalation_id = %s", (escalation_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no escalation {escalation_id}; `ruralwatch escalations list --status all` lists them")
        row["events"] = cur.execute(
            "select * from dq.escalation_events where escalation_id = %s order by event_id", (escalation_id,)).fetchall()
        row["messages"] = cur.execute(
            "select message_id, channel, recipient, subject, attempts, last_error, created_at, sent_at "
            "from dq.outbox where escalation_id = %s order by message_id", (escalation_id,)).fetchall()
    return row
