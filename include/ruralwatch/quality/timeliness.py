"""Completeness and timeliness of department deliveries, per feed and data month (indicator I19).

feeds.md: a month's delivery is due by the 5th of the following month unless the feed declares
another day; it arrived when the file appeared in the landing folder (its mtime, recorded as
raw.deliveries.arrived_at), or, for the API, when the platform answered. Delivered means a delivery
whose rows could be read (loaded, later superseded, or quarantined by the gate: the department did
deliver; the quality problem is escalated on its own). A rejected file or a duplicate of an earlier
file (last month's file sent again under this month's name) is not a delivery of the month.

`check` writes one row per feed and month to dq.feed_timeliness and escalates feeds still missing
after their due day; dq.department_timeliness sums them per department for I19.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, fields

import psycopg
from psycopg import sql

from ruralwatch.feeds.registry import Feed, Registry
from ruralwatch.quality import escalations
from ruralwatch.quality.escalations import LOCAL_TZ, READABLE_STATUSES, month_label

log = logging.getLogger(__name__)

TIMELINESS_DDL = """
create table if not exists dq.feed_timeliness (
    feed                 text not null,
    data_month           date not null,
    department_code      text not null,
    department_name      text not null,
    feed_title           text not null,
    due_date             date not null,
    due_at               timestamptz not null,
    is_expected          boolean not null,
    status               text not null check (status in ('on_time', 'late', 'missing', 'pending', 'not_expected')),
    delivered_at         timestamptz,
    days_late            integer,
    deliveries           integer not null,
    rejected_deliveries  integer not null,
    duplicate_deliveries integer not null,
    first_batch_id       text,
    checked_at           timestamptz not null,
    primary key (feed, data_month)
);
comment on table dq.feed_timeliness is
    '各部门每月报送的完整性与及时性：按时、逾期、未报、未到期（截止日为次月5日，除非另有约定）';

create or replace view dq.department_timeliness as
select
    department_code,
    department_name,
    data_month,
    count(*) filter (where status in ('on_time', 'late', 'missing')) as feeds_expected,
    count(*) filter (where status in ('on_time', 'late')) as feeds_delivered,
    count(*) filter (where status = 'on_time') as feeds_on_time,
    count(*) filter (where status = 'late') as feeds_late,
    count(*) filter (where status = 'missing') as feeds_missing,
    round(count(*) filter (where status = 'on_time')::numeric
          / nullif(count(*) filter (where status in ('on_time', 'late', 'missing')), 0), 4) as on_time_rate
from dq.feed_timeliness
group by department_code, department_name, data_month;
comment on view dq.department_timeliness is
    '部门数据按时报送率（I19）：已到截止日的应报数据项中按时报送的比例';
"""

STATUS_LABELS = {"on_time": "按时", "late": "逾期报送", "missing": "逾期未报", "pending": "未到截止日",
                 "not_expected": "按需报送"}


@dataclass(frozen=True)
class FeedTimeliness:
    feed: str
    data_month: dt.date
    department_code: str
    department_name: str
    feed_title: str
    due_date: dt.date
    due_at: dt.datetime
    is_expected: bool
    status: str
    delivered_at: dt.datetime | None
    days_late: int | None
    deliveries: int
    rejected_deliveries: int
    duplicate_deliveries: int
    first_batch_id: str | None
    checked_at: dt.datetime


def due_date_for(feed: Feed, month: dt.date) -> dt.date:
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following + dt.timedelta(days=feed.due_day - 1)


def is_expected_monthly(feed: Feed) -> bool:
    """Towns answer leads when they have verified them, not on a calendar: a month without a
    lead_feedback file is not late. Every other feed is due every month (feeds.md)."""
    return feed.file_suffix is None


def assess(conn: psycopg.Connection, registry: Registry, month: dt.date, as_of: dt.datetime) -> list[FeedTimeliness]:
    """Each declared feed's delivery state for the month as of a moment; reads, writes nothing."""
    rows = conn.execute(
        "select feed, "
        "   min(arrived_at) filter (where status = any(%(readable)s)), "
        "   count(*) filter (where status = any(%(readable)s)), "
        "   count(*) filter (where status = 'rejected'), "
        "   count(*) filter (where status = 'duplicate'), "
        "   (array_agg(batch_id order by arrived_at, batch_id) filter (where status = any(%(readable)s)))[1] "
        "from raw.deliveries where data_month = %(month)s group by feed",
        {"readable": list(READABLE_STATUSES), "month": month}).fetchall()
    stats = {r[0]: r[1:] for r in rows}
    today = as_of.astimezone(LOCAL_TZ).date()
    result = []
    for feed in registry:
        delivered_at, deliveries, rejected, duplicates, first_batch = stats.get(feed.name, (None, 0, 0, 0, None))
        due = due_date_for(feed, month)
        # Due *by* the due day: anything that arrived before the next local midnight is on time.
        due_at = dt.datetime.combine(due + dt.timedelta(days=1), dt.time(0), LOCAL_TZ)
        expected = is_expected_monthly(feed)
        days_late = None
        if delivered_at is not None:
            status = "on_time" if delivered_at < due_at else "late"
            days_late = max(0, (delivered_at.astimezone(LOCAL_TZ).date() - due).days)
        elif not expected:
            status = "not_expected"
        elif as_of >= due_at:
            status = "missing"
            days_late = (today - due).days
        else:
            status = "pending"
        result.append(FeedTimeliness(
            feed=feed.name, data_month=month, department_code=feed.department.code,
            department_name=feed.department.name, feed_title=feed.title, due_date=due, due_at=due_at,
            is_expected=expected, status=status, delivered_at=delivered_at, days_late=days_late,
            deliveries=deliveries, rejected_deliveries=rejected, duplicate_deliveries=duplicates,
            first_batch_id=first_batch, checked_at=as_of))
    return result


_COLUMNS = [f.name for f in fields(FeedTimeliness)]
_UPSERT = sql.SQL("insert into dq.feed_timeliness ({}) values ({}) on conflict (feed, data_month) do update set {}").format(
    sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
    sql.SQL(", ").join(map(sql.Placeholder, _COLUMNS)),
    sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
                       for c in _COLUMNS if c not in ("feed", "data_month")))


def late_fingerprint(feed: str, month: dt.date) -> str:
    return escalations.fingerprint(kind="late_feed", feed=feed, data_month=month.isoformat())


def check(conn: psycopg.Connection, registry: Registry, month: dt.date, as_of: dt.datetime) -> list[FeedTimeliness]:
    """Record the month's timeliness and escalate feeds missing after their due day.

    Idempotent on the day: the observation is the day checked, so checking again the same day
    changes nothing, and each later day a feed is still missing counts one more run.
    """
    rows = assess(conn, registry, month, as_of)
    with conn.transaction():
        for row in rows:
            conn.execute(_UPSERT, asdict(row))
        for row in sorted(rows, key=lambda r: late_fingerprint(r.feed, month)):
            feed = registry[row.feed]
            if row.status == "missing":
                escalations.escalate(conn, escalations.Finding(
                    fingerprint=late_fingerprint(row.feed, month), kind="late_feed", severity="critical",
                    title=f"{feed.title}（{month_label(month)}）逾期未报送，截止日期为{row.due_date:%Y年%m月%d日}",
                    department=feed.department, observation=f"timeliness:{month:%Y-%m}:{as_of.astimezone(LOCAL_TZ).date()}",
                    seen_at=as_of, feed=row.feed, scope=f"{month:%Y%m}", data_month=month, failing_rows=None,
                    sample=[{"数据项": feed.title, "截止日期": row.due_date.isoformat(), "已逾期天数": row.days_late,
                             "被拒收文件数": row.rejected_deliveries, "重复文件数": row.duplicate_deliveries}],
                    detail={"due_date": row.due_date.isoformat(), "days_late": row.days_late}))
            elif row.status in ("on_time", "late"):
                arrived = row.delivered_at.astimezone(LOCAL_TZ)
                escalations.resolve(
                    conn, late_fingerprint(row.feed, month), at=as_of, by=f"delivery:{row.first_batch_id}",
                    resolution="delivered", batch_id=row.first_batch_id, data_month=month,
                    note=f"已于 {arrived:%Y-%m-%d %H:%M} 报送" + (f"，逾期{row.days_late}天" if row.days_late else ""))
    late = [r.feed for r in rows if r.status in ("late", "missing")]
    if late:
        log.warning("%s: late or missing feeds: %s", month_label(month), ", ".join(late))
    return rows
