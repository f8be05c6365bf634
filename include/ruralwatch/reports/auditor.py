"""The auditor's report (数据质量审计报告): one printable HTML page per data month, in Chinese.

What it shows, all read from the warehouse's own bookkeeping: deliveries and what became of them,
gate runs and pass rates per department, feed timeliness (dq.feed_timeliness), quarantined and
released batches, and the escalation ledger with each escalation's history (问题整改台账).
Regenerated on every run into `<reports>/<YYYYMM>/auditor_report.html`, one folder per month.

Auditors are not engineers: every value that could identify a person is masked before it reaches
the ledger (samples) and masked again here (free text), and the page links to GX Data Docs for the
check-by-check detail.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import jinja2
import psycopg
from psycopg.rows import dict_row

from ruralwatch.feeds.registry import Registry
from ruralwatch.masking import mask_ids_in_text
from ruralwatch.quality.checks import checks_for
from ruralwatch.quality.escalations import (
    EVENT_LABELS,
    KIND_LABELS,
    LOCAL_TZ,
    RESOLUTION_LABELS,
    SEVERITY_LABELS,
    STATUS_LABELS,
    month_label,
)
from ruralwatch.quality.timeliness import STATUS_LABELS as TIMELINESS_LABELS

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
DELIVERY_LABELS = {"loaded": "已入库", "superseded": "已被替代", "duplicate": "重复报送", "rejected": "拒收",
                   "quarantined": "隔离"}
GATE_LABELS = {"pending": "待校验", "passed": "通过", "failed": "未通过", "released": "人工放行",
               "not_applicable": "—"}


def report_path(reports_dir: Path, month: dt.date) -> Path:
    return reports_dir / f"{month:%Y%m}" / "auditor_report.html"


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(LOCAL_TZ).strftime(fmt) if value else ""


def _rate(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "—"


def gather(conn: psycopg.Connection, registry: Registry, month: dt.date, as_of: dt.datetime) -> dict:
    """Everything the report shows, as plain values; the template only lays it out.

    Escalations appear as they stand at `as_of` (the report says so): an auditor reading October's
    report in December sees whether October's problems were fixed since.
    """
    params = {"month": month, "next_month": _next_month(month)}
    with conn.cursor(row_factory=dict_row) as cur:
        deliveries = cur.execute(
            "select batch_id, feed, file_name, status, gate_status, is_live, row_count, arrived_at, reason, "
            "       released_by, release_reason, channel "
            "from raw.deliveries where data_month = %(month)s order by feed, recorded_at, batch_id",
            params).fetchall()
        results = cur.execute(
            "select r.run_id, r.batch_id, r.feed, r.fingerprint, r.check_name, r.severity, r.success, "
            "       r.unexpected_count, r.checked_at "
            "from dq.check_results as r join raw.deliveries as d using (batch_id) "
            "where d.data_month = %(month)s order by r.checked_at, r.run_id, r.check_name", params).fetchall()
        timeliness = cur.execute(
            "select * from dq.feed_timeliness where data_month = %(month)s order by department_code, feed",
            params).fetchall()
        department_timeliness = {r["department_code"]: r for r in cur.execute(
            "select * from dq.department_timeliness where data_month = %(month)s", params).fetchall()}
        # The ledger as it touches this month: escalations first seen by then and not closed before it.
        escalations = cur.execute(
            "select * from dq.escalations as e "
            "where coalesce(e.first_data_month, (e.first_seen_at at time zone 'Asia/Shanghai')::date) "
            "      < %(next_month)s "
            "  and (e.status <> 'resolved' or coalesce(e.resolved_data_month, "
            "       (e.resolved_at at time zone 'Asia/Shanghai')::date) >= %(month)s) "
            "order by e.status = 'resolved', e.department_code, e.escalation_id", params).fetchall()
        events = cur.execute(
            "select * from dq.escalation_events where escalation_id = any(%s) order by escalation_id, event_id",
            ([e["escalation_id"] for e in escalations],)).fetchall()

    descriptions = {c.fingerprint: c.description for feed in registry for c in checks_for(feed)}
    feed_titles = {f.name: f.title for f in registry}
    files = {d["batch_id"]: d["file_name"] for d in deliveries}

    departments = []
    for code, department in registry.departments.items():
        feeds = [f.name for f in registry if f.department.code == code]
        if not feeds:
            continue
        mine = [d for d in deliveries if d["feed"] in feeds]
        checks = [r for r in results if r["feed"] in feeds]
        passed = sum(1 for r in checks if r["success"])
        ledger = [e for e in escalations if e["department_code"] == code]
        punctual = department_timeliness.get(code) or {}
        departments.append({
            "name": department.name,
            "feeds": len(feeds),
            "deliveries": len(mine),
            "quarantined": sum(1 for d in mine if d["status"] == "quarantined"),
            "rejected": sum(1 for d in mine if d["status"] == "rejected"),
            "runs": len({r["run_id"] for r in checks}),
            "checks": len(checks),
            "passed": passed,
            "pass_rate": _rate(passed, len(checks)),
            "failed_critical": sum(1 for r in checks if not r["success"] and r["severity"] == "critical"),
            "failed_warning": sum(1 for r in checks if not r["success"] and r["severity"] == "warning"),
            "open": sum(1 for e in ledger if e["status"] != "resolved"),
            "resolved": sum(1 for e in ledger if e["status"] == "resolved"),
            "feeds_expected": punctual.get("feeds_expected", 0),
            "feeds_on_time": punctual.get("feeds_on_time", 0),
            "feeds_late": punctual.get("feeds_late", 0),
            "feeds_missing": punctual.get("feeds_missing", 0),
            "on_time_rate": _rate(punctual.get("feeds_on_time", 0), punctual.get("feeds_expected", 0)),
        })
    # The engineers' own escalations (failed tasks) belong to no department feed.
    for code in sorted({e["department_code"] for e in escalations} - set(registry.departments)):
        ledger = [e for e in escalations if e["department_code"] == code]
        departments.append({"name": ledger[0]["department_name"], "feeds": 0, "deliveries": 0, "quarantined": 0,
                            "rejected": 0, "runs": 0, "checks": 0, "passed": 0, "pass_rate": "—",
                            "failed_critical": 0, "failed_warning": 0,
                            "open": sum(1 for e in ledger if e["status"] != "resolved"),
                            "resolved": sum(1 for e in ledger if e["status"] == "resolved"),
                            "feeds_expected": 0, "feeds_on_time": 0, "feeds_late": 0, "feeds_missing": 0,
                            "on_time_rate": "—"})

    runs = []
    for run_id in dict.fromkeys(r["run_id"] for r in results):
        rows = [r for r in results if r["run_id"] == run_id]
        first = rows[0]
        failed = [r for r in rows if not r["success"]]
        runs.append({
            "feed_title": feed_titles.get(first["feed"], first["feed"]),
            "file_name": files.get(first["batch_id"], first["batch_id"]),
            "checked_at": _local(first["checked_at"]),
            "checks": len(rows),
            "passed": len(rows) - len(failed),
            "pass_rate": _rate(len(rows) - len(failed), len(rows)),
            "failed": [{"description": descriptions.get(r["fingerprint"], r["check_name"]),
                        "severity": SEVERITY_LABELS.get(r["severity"], r["severity"]),
                        "is_critical": r["severity"] == "critical",
                        "rows": r["unexpected_count"]} for r in failed],
        })

    by_escalation: dict[int, list[dict]] = {}
    for event in events:
        by_escalation.setdefault(event["escalation_id"], []).append({
            "at": _local(event["at"]), "event": EVENT_LABELS.get(event["event"], event["event"]),
            "actor": mask_ids_in_text(event["actor"] or ""),
            "rows": event["failing_rows"], "note": mask_ids_in_text(event["note"] or "")})
    ledger = []
    for e in escalations:
        sample = e["sample"] or []
        columns = list(dict.fromkeys(k for row in sample for k in row))
        ledger.append({
            "id": e["escalation_id"],
            "kind": KIND_LABELS[e["kind"]],
            "department": e["department_name"],
            "feed_title": feed_titles.get(e["feed"] or "", ""),
            "title": mask_ids_in_text(e["title"]),
            "severity": SEVERITY_LABELS[e["severity"]],
            "is_critical": e["severity"] == "critical",
            "status": STATUS_LABELS[e["status"]],
            "is_resolved": e["status"] == "resolved",
            "is_overdue": e["status"] != "resolved" and e["due_date"] < as_of.astimezone(LOCAL_TZ).date(),
            "first_seen": _local(e["first_seen_at"]),
            "last_seen": _local(e["last_seen_at"]),
            "months": month_label(e["first_data_month"]) + (
                f" 至 {month_label(e['last_data_month'])}"
                if e["last_data_month"] and e["last_data_month"] != e["first_data_month"] else ""),
            "first_file": files.get(e["first_batch_id"]) or (e["detail"] or {}).get("file_name") or "",
            "runs": e["runs"],
            "failing_rows": e["failing_rows"],
            "checked_rows": e["checked_rows"],
            "due_date": e["due_date"].isoformat(),
            "acknowledged": f"{e['acknowledged_by']}（{_local(e['acknowledged_at'])}）" if e["acknowledged_by"] else "",
            "resolution": (f"{RESOLUTION_LABELS.get(e['resolution'], e['resolution'])}："
                           f"{mask_ids_in_text(e['resolution_note'] or '')}（{_local(e['resolved_at'])}）")
            if e["status"] == "resolved" else "",
            "sample_columns": [{"_source_row": "行号"}.get(c, c) for c in columns],
            "sample_rows": [[mask_ids_in_text(str(row.get(c))) if row.get(c) is not None else "" for c in columns]
                            for row in sample],
            "history": by_escalation.get(e["escalation_id"], []),
        })

    all_checks = len(results)
    all_passed = sum(1 for r in results if r["success"])
    expected = sum(d.get("feeds_expected", 0) for d in department_timeliness.values())
    on_time = sum(d.get("feeds_on_time", 0) for d in department_timeliness.values())
    return {
        "month": month,
        "month_label": month_label(month),
        "summary": {
            "deliveries": len(deliveries),
            "loaded": sum(1 for d in deliveries if d["status"] in ("loaded", "superseded")),
            "quarantined": sum(1 for d in deliveries if d["status"] == "quarantined"),
            "rejected": sum(1 for d in deliveries if d["status"] == "rejected"),
            "duplicates": sum(1 for d in deliveries if d["status"] == "duplicate"),
            "runs": len(runs),
            "checks": all_checks,
            "pass_rate": _rate(all_passed, all_checks),
            "escalations": len(ledger),
            "open": sum(1 for e in ledger if not e["is_resolved"]),
            "resolved": sum(1 for e in ledger if e["is_resolved"]),
            "on_time_rate": _rate(on_time, expected),
        },
        "departments": departments,
        "timeliness": [{
            "department": t["department_name"], "feed_title": t["feed_title"], "due_date": t["due_date"].isoformat(),
            "delivered_at": _local(t["delivered_at"]), "status": TIMELINESS_LABELS[t["status"]],
            "status_code": t["status"], "days_late": t["days_late"] if t["days_late"] else "",
            "rejected": t["rejected_deliveries"], "duplicates": t["duplicate_deliveries"]} for t in timeliness],
        "deliveries": [{
            "feed_title": feed_titles.get(d["feed"], d["feed"]), "file_name": d["file_name"],
            "channel": "接口" if d["channel"] == "api" else "文件",
            "arrived_at": _local(d["arrived_at"]), "rows": d["row_count"] if d["row_count"] is not None else "",
            "status": DELIVERY_LABELS.get(d["status"], d["status"]),
            "gate": GATE_LABELS.get(d["gate_status"], d["gate_status"]), "is_live": d["is_live"],
            "reason": mask_ids_in_text(d["reason"] or ""),
            "release": f"{d['released_by']}：{mask_ids_in_text(d['release_reason'] or '')}" if d["released_by"] else "",
        } for d in deliveries],
        "runs": runs,
        "ledger": ledger,
    }


def render(data: dict, generated_at: dt.datetime) -> str:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    html = environment.get_template("auditor_report.html").render(**data, generated_at=_local(generated_at))
    # A last guard: whatever the data held, no full resident ID leaves in the page.
    return mask_ids_in_text(html)


def write_report(conn: psycopg.Connection, registry: Registry, month: dt.date, reports_dir: Path,
                 generated_at: dt.datetime) -> Path:
    """Render the month's report and replace the file atomically (a reader never sees half a page)."""
    path = report_path(reports_dir, month)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = gather(conn, registry, month, generated_at)
    tmp = path.with_suffix(".html.part")
    tmp.write_text(render(data, generated_at), encoding="utf-8")
    tmp.replace(path)
    log.info("auditor report for %s: %s", month_label(month), path)
    return path
