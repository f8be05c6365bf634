"""Notifications of new escalations, by e-mail (SMTP) and a generic JSON webhook, through an outbox.

`enqueue` writes the messages in the escalation's own transaction, so an escalation never exists
without its messages. `send_pending` claims one unsent row at a time with `for update skip locked`,
sends it while holding the row, and marks it sent in the same transaction. So:
- a crash between deciding and sending loses nothing: the row is still unsent and the next sender
  (any later task, `ruralwatch escalations notify`) sends it;
- two senders at once never send one row twice: the second skips the row the first holds;
- a crash after the server accepted a message but before the commit would send it again on the
  next try. No sender can rule that out; the message carries a stable Message-ID and the webhook an
  `Idempotency-Key`, both made from the outbox row, so a receiver can drop the repeat.

Servers and credentials come from the environment only: RURALWATCH_SMTP_HOST, _PORT, _USER,
_PASSWORD, _FROM, _STARTTLS, _SSL; RURALWATCH_WEBHOOK_URL and RURALWATCH_WEBHOOK_TOKEN. A channel
that is not configured leaves its messages waiting in the outbox, where `ruralwatch escalations show`
lists them.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr

import psycopg
from psycopg.rows import dict_row

from ruralwatch.quality.escalations import (
    KIND_LABELS,
    LOCAL_TZ,
    SEVERITY_LABELS,
    month_label,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
TIMEOUT_SECONDS = 20


class WebhookRejected(RuntimeError):
    pass


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    sender: str
    starttls: bool
    ssl: bool

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        host = os.environ.get("RURALWATCH_SMTP_HOST")
        if not host:
            return None
        ssl = _flag("RURALWATCH_SMTP_SSL")
        user = os.environ.get("RURALWATCH_SMTP_USER") or None
        sender = os.environ.get("RURALWATCH_SMTP_FROM") or (user if user and "@" in user else "ruralwatch@localhost")
        return cls(host=host, port=int(os.environ.get("RURALWATCH_SMTP_PORT") or (465 if ssl else 25)),
                   user=user, password=os.environ.get("RURALWATCH_SMTP_PASSWORD") or None, sender=sender,
                   starttls=_flag("RURALWATCH_SMTP_STARTTLS"), ssl=ssl)


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    token: str | None

    @classmethod
    def from_env(cls) -> WebhookSettings | None:
        url = os.environ.get("RURALWATCH_WEBHOOK_URL")
        return cls(url, os.environ.get("RURALWATCH_WEBHOOK_TOKEN") or None) if url else None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


# -- composing --------------------------------------------------------------------------------------
def compose(escalation: dict, feed_title: str | None, file_name: str | None, batch_status: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[str, str, dict]:
    """(subject, body, webhook payload) in Chinese for the owning department.

    `batch_status` is the batch's status after its gate: a warning-level check failing in a batch
    that a critical check quarantined must not tell the department its data went live.
    """
    number = escalation["escalation_id"]
    subject_what = f"{feed_title}：{escalation['title']}" if feed_title else escalation["title"]
    subject = f"【防返贫监测数据问题 #{number}】{escalation['department_name']} · {subject_what}"
    severity = escalation["severity"]
    consequence = {
        ("check", "critical"): "该批数据未通过关键检查，已隔离，未进入数据仓库；平台继续使用上一批合格数据。",
        ("check", "warning"): "该批数据因其他关键检查未通过已隔离，未进入数据仓库。" if batch_status == "quarantined"
        else "该批数据已入库使用，请在下次报送时更正。",
        ("rejected_delivery", "critical"): "文件无法读取或结构不符合接口规范，整批未入库。",
        ("late_feed", "critical"): "截至检查时未收到本月可用的报送，相关指标暂缺。",
        ("task_failure", "critical"): "平台数据处理任务失败，请数据工程组排查。",
    }.get((escalation["kind"], severity), "")
    first_seen = escalation["first_seen_at"].astimezone(LOCAL_TZ)
    lines = [
        f"{escalation['department_name']}：",
        "",
        "防返贫动态监测数据平台发现以下问题，请核实处理：",
        "",
        f"问题编号：{number}",
        f"问题类型：{KIND_LABELS[escalation['kind']]}",
    ]
    if feed_title:
        lines.append(f"数据项：{feed_title}（{month_label(escalation['first_data_month'])}）")
    if file_name:
        lines.append(f"文件：{file_name}")
    lines += [
        f"问题：{escalation['title']}",
        f"级别：{SEVERITY_LABELS[severity]}。{consequence}",
        f"发现时间：{first_seen:%Y-%m-%d %H:%M}",
    ]
    if escalation["failing_rows"] is not None:
        total = f"（共 {escalation['checked_rows']} 行）" if escalation["checked_rows"] else ""
        lines.append(f"不合格行数：{escalation['failing_rows']}{total}")
    sample = escalation["sample"] or []
    if sample:
        lines += ["", "问题样例（身份证号、电话、姓名已脱敏）："]
        for row in sample:
            lines.append("  " + "；".join(f"{_field_label(k, headers or {})}：{v}" for k, v in row.items()
                                          if v is not None))
    lines += [
        "",
        f"整改期限：{escalation['due_date']:%Y年%m月%d日}",
        "",
        _what_to_do(escalation["kind"]),
        "同一问题在整改完成前不再重复提醒；整改完成、复核通过后系统自动销号。",
        "",
        "此邮件由防返贫动态监测数据平台自动发送。",
    ]
    body = "\n".join(lines)
    payload = {
        "event": "escalation.opened",
        "escalation_id": number,
        "fingerprint": escalation["fingerprint"],
        "kind": escalation["kind"],
        "severity": severity,
        "department": {"code": escalation["department_code"], "name": escalation["department_name"],
                       "contact_email": escalation["contact_email"]},
        "feed": escalation["feed"],
        "feed_title": feed_title,
        "file_name": file_name,
        "title": escalation["title"],
        "data_month": escalation["first_data_month"].isoformat() if escalation["first_data_month"] else None,
        "first_seen_at": escalation["first_seen_at"].isoformat(),
        "due_date": escalation["due_date"].isoformat(),
        "failing_rows": escalation["failing_rows"],
        "checked_rows": escalation["checked_rows"],
        "sample": sample,
        "subject": subject,
        "text": body,
    }
    return subject, body, payload


def _field_label(key: str, headers: dict[str, str]) -> str:
    return {"_source_row": "行号"}.get(key) or headers.get(key, key)


def _what_to_do(kind: str) -> str:
    return {
        "check": "请核实上述数据，更正后重新报送本月文件（文件名加 _v2、_v3 …）。",
        "rejected_delivery": "请按拒收原因修正文件后重新报送（文件名加 _v2、_v3 …）。",
        "late_feed": "请尽快报送本月数据；已报送的请确认文件名和报送位置是否正确。",
        "task_failure": "请查看 Airflow 任务日志，修复后重新运行该任务。",
    }[kind]


def enqueue(conn: psycopg.Connection, escalation_id: int) -> None:
    """Write the new escalation's messages (one per channel) in the caller's transaction."""
    from ruralwatch.feeds.registry import load_registry

    with conn.cursor(row_factory=dict_row) as cur:
        escalation = cur.execute("select * from dq.escalations where escalation_id = %s",
                                 (escalation_id,)).fetchone()
        batch = cur.execute("select file_name, status from raw.deliveries where batch_id = %s",
                            (escalation["first_batch_id"],)).fetchone() if escalation["first_batch_id"] else None
    registry = load_registry()
    feed = registry.feeds.get(escalation["feed"] or "")
    subject, body, payload = compose(
        escalation, feed.title if feed else None, batch["file_name"] if batch else None,
        batch["status"] if batch else None, {c.name: c.header for c in feed.columns} if feed else None)
    message = json.dumps(payload, ensure_ascii=False)
    for channel, recipient in (("email", escalation["contact_email"]), ("webhook", None)):
        if channel == "email" and not recipient:
            continue
        conn.execute(
            "insert into dq.outbox (escalation_id, channel, recipient, subject, body, payload) "
            "values (%s, %s, %s, %s, %s, %s) on conflict (escalation_id, channel) do nothing",
            (escalation_id, channel, recipient, subject, body, message))


# -- sending ----------------------------------------------------------------------------------------
@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    waiting: int = 0          # unsent rows of channels that are not configured here

    def describe(self) -> str:
        return f"sent {self.sent}, failed {self.failed} (will retry), waiting for configuration {self.waiting}"


def send_pending(conn: psycopg.Connection | None = None, smtp: SmtpSettings | None = None,
                 webhook: WebhookSettings | None = None, limit: int = 500) -> SendReport:
    """Send what the outbox holds for the configured channels; never raises for a refused message.

    A message the server refuses stays unsent with its error and is tried again next time (up to
    MAX_ATTEMPTS), so a broken mail server does not fail the data pipeline that called this.
    """
    from ruralwatch import db

    smtp = smtp or SmtpSettings.from_env()
    webhook = webhook or WebhookSettings.from_env()
    own = conn is None
    conn = conn or db.connect(autocommit=True)
    report = SendReport()
    try:
        if conn.execute("select to_regclass('dq.outbox') is null").fetchone()[0]:
            return report
        channels = [name for name, configured in (("email", smtp), ("webhook", webhook)) if configured]
        # A channel that failed once is left alone for the rest of this call: a server that is down
        # or hanging would otherwise cost a timeout per message inside the data pipeline's task.
        working = list(channels)
        tried: list[int] = []
        while working and len(tried) < limit:
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    "select message_id, escalation_id, channel, recipient, subject, body, payload from dq.outbox "
                    "where sent_at is null and channel = any(%s) and attempts < %s and not (message_id = any(%s)) "
                    "order by message_id limit 1 for update skip locked",
                    (working, MAX_ATTEMPTS, tried)).fetchone()
                if row is None:
                    break
                tried.append(row["message_id"])
                now = dt.datetime.now(dt.UTC)
                try:
                    if row["channel"] == "email":
                        _send_email(smtp, row)
                    else:
                        _send_webhook(webhook, row)
                except (OSError, smtplib.SMTPException, WebhookRejected) as exc:
                    report.failed += 1
                    working.remove(row["channel"])
                    log.warning("outbox message %s (%s) not sent: %s", row["message_id"], row["channel"], exc)
                    cur.execute("update dq.outbox set attempts = attempts + 1, last_attempt_at = %s, last_error = %s "
                                "where message_id = %s", (now, f"{type(exc).__name__}: {exc}"[:1000],
                                                          row["message_id"]))
                    continue
                cur.execute("update dq.outbox set attempts = attempts + 1, last_attempt_at = %s, sent_at = %s, "
                            "last_error = null where message_id = %s", (now, now, row["message_id"]))
                cur.execute(
                    "insert into dq.escalation_events (escalation_id, event, at, actor, note) "
                    "values (%s, 'notified', %s, 'ruralwatch', %s)",
                    (row["escalation_id"], now,
                     f"已发送邮件至 {row['recipient']}" if row["channel"] == "email" else "已推送 Webhook"))
                report.sent += 1
        report.waiting = conn.execute(
            "select count(*) from dq.outbox where sent_at is null and not (channel = any(%s))",
            (channels,)).fetchone()[0]
        if report.sent or report.failed:
            log.info("notifications: %s", report.describe())
        return report
    finally:
        if own:
            conn.close()


def _message_key(row: dict) -> str:
    return f"ruralwatch-outbox-{row['message_id']}"


def _send_email(settings: SmtpSettings, row: dict) -> None:
    message = EmailMessage()
    message["Subject"] = row["subject"]
    message["From"] = formataddr(("防返贫动态监测数据平台", settings.sender))
    message["To"] = row["recipient"]
    domain = settings.sender.rsplit("@", 1)[-1]
    message["Message-ID"] = f"<{_message_key(row)}@{domain}>"
    message.set_content(row["body"], charset="utf-8")
    client = smtplib.SMTP_SSL if settings.ssl else smtplib.SMTP
    with client(settings.host, settings.port, timeout=TIMEOUT_SECONDS) as smtp:
        if settings.starttls and not settings.ssl:
            smtp.starttls()
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(message)


def _send_webhook(settings: WebhookSettings, row: dict) -> None:
    data = json.dumps(row["payload"], ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": _message_key(row),
               "User-Agent": "ruralwatch"}
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    request = urllib.request.Request(settings.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - URL from env
            status = response.status
    except urllib.error.HTTPError as exc:
        raise WebhookRejected(f"{settings.url} answered {exc.code}") from exc
    if not 200 <= status < 300:
        raise WebhookRejected(f"{settings.url} answered {status}")
