"""Notifications through the outbox, to a real SMTP server (aiosmtpd) and a real HTTP receiver on 127.0.0.1.

Also home of the mail and webhook sinks the other quality tests use (imported from here).
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

pytestmark = pytest.mark.integration

AT = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)


# -- sinks ------------------------------------------------------------------------------------------
class MailSink:
    """An SMTP server on 127.0.0.1 that keeps what it accepts; `delay` makes it slow to answer."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        # aiosmtpd checks readiness by connecting to the port it was given, so it needs a real one.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        import asyncio

        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def start(self) -> MailSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller.server is not None:
            self.controller.stop()


class WebhookSink:
    """An HTTP receiver on 127.0.0.1 that keeps every JSON POST; `status` is what it answers."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.requests.append({"headers": dict(self.headers), "json": json.loads(body.decode("utf-8"))})
                self.send_response(sink.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ruralwatch"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookSink:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def mail(monkeypatch):
    sink = MailSink().start()
    monkeypatch.setenv("RURALWATCH_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RURALWATCH_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("RURALWATCH_SMTP_FROM", "ruralwatch@xczx.example.gov.cn")
    yield sink
    sink.stop()


@pytest.fixture()
def webhook(monkeypatch):
    sink = WebhookSink().start()
    monkeypatch.setenv("RURALWATCH_WEBHOOK_URL", sink.url)
    monkeypatch.setenv("RURALWATCH_WEBHOOK_TOKEN", "test-token")
    yield sink
    sink.stop()


@pytest.fixture()
def ledger(warehouse):
    """An empty warehouse with the platform tables, and an autocommit connection to it."""
    from ruralwatch.pipeline import prepare_warehouse

    prepare_warehouse()
    with psycopg.connect(warehouse, autocommit=True) as conn:
        yield conn


def finding(number: int, observation: str = "gate:run-1", seen_at: dt.datetime = AT):
    from ruralwatch.feeds.registry import load_registry
    from ruralwatch.quality.escalations import Finding

    department = load_registry().departments["water"]
    return Finding(
        fingerprint=f"test-check-{number}", kind="check", severity="warning", title=f"自来水入户户数不得超过总户数（{number}）",
        department=department, observation=observation, seen_at=seen_at, feed="water_supply", check_name="tap_water",
        failing_rows=2, checked_rows=10,
        sample=[{"_source_row": 3, "area_code": "990101102201", "note": "户主 990101196503041030"}])


# -- tests ------------------------------------------------------------------------------------------
def test_a_new_escalation_is_sent_once_by_mail_and_webhook_in_chinese(ledger, mail, webhook):
    from ruralwatch.quality import escalations, notify

    decision = escalations.escalate(ledger, finding(1))
    assert decision.opened
    first = notify.send_pending(ledger)
    again = notify.send_pending(ledger)
    assert (first.sent, first.failed, again.sent) == (2, 0, 0)

    assert len(mail.messages) == 1
    message = mail.messages[0]
    assert message["To"] == "data@sw.example.gov.cn"
    assert "水务局" in message["Subject"] and "自来水入户户数不得超过总户数" in message["Subject"]
    body = message.get_content()
    assert "整改期限" in body and "不合格行数：2（共 10 行）" in body
    assert "990101********1030" in body and "990101196503041030" not in body
    assert message["Message-ID"].startswith("<ruralwatch-outbox-")

    assert len(webhook.requests) == 1
    request = webhook.requests[0]
    assert request["headers"]["Authorization"] == "Bearer test-token"
    assert request["headers"]["Idempotency-Key"].startswith("ruralwatch-outbox-")
    payload = request["json"]
    assert payload["event"] == "escalation.opened" and payload["escalation_id"] == decision.escalation_id
    assert payload["department"]["name"] == "水务局"
    assert "990101196503041030" not in json.dumps(payload, ensure_ascii=False)

    events = [r[0] for r in ledger.execute(
        "select event from dq.escalation_events where escalation_id = %s order by event_id", (decision.escalation_id,))]
    assert events == ["opened", "notified", "notified"]


def test_a_crash_between_deciding_and_sending_neither_loses_nor_repeats_a_message(ledger, warehouse, mail, webhook):
    """A separate process decides (commits the escalation and its outbox rows) and dies before sending."""
    code = (
        "import os, sys, psycopg; sys.path.insert(0, os.getcwd());"
        "from tests.integration.test_quality_notify import finding;"
        "from ruralwatch.quality import escalations;"
        "conn = psycopg.connect(os.environ['WAREHOUSE_URL'], autocommit=True);"
        "[escalations.escalate(conn, finding(n)) for n in (1, 2, 3)];"
        "os._exit(9)"  # dies hard: no sending, no clean-up
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RURALWATCH_SMTP")}
    crashed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert crashed.returncode == 9, crashed.stderr[-2000:]
    assert ledger.execute("select count(*) from dq.outbox where sent_at is null").fetchone()[0] == 6
    assert mail.messages == [] and webhook.requests == []

    from ruralwatch.quality import notify

    assert notify.send_pending(ledger).sent == 6
    assert notify.send_pending(ledger).sent == 0
    subjects = sorted(m["Subject"] for m in mail.messages)
    assert len(subjects) == 3 and len(set(subjects)) == 3
    assert len(webhook.requests) == 3
    assert ledger.execute("select count(*) from dq.outbox where sent_at is null").fetchone()[0] == 0


def test_two_senders_at_once_send_each_message_exactly_once(ledger, warehouse, mail, webhook):
    from ruralwatch.quality import escalations, notify

    for n in range(6):
        escalations.escalate(ledger, finding(n))
    mail.delay = 0.15  # each message holds its row a while, so the senders really overlap

    reports = []

    def sender():
        with psycopg.connect(warehouse, autocommit=True) as conn:
            reports.append(notify.send_pending(conn))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(r.sent for r in reports) == 12
    assert all(r.sent > 0 for r in reports), "both senders should have taken part"
    assert sorted(m["Message-ID"] for m in mail.messages) == sorted({m["Message-ID"] for m in mail.messages})
    assert len(mail.messages) == 6 and len(webhook.requests) == 6


def test_a_refused_message_stays_in_the_outbox_and_goes_out_later(ledger, mail, webhook, monkeypatch):
    from ruralwatch.quality import escalations, notify

    escalations.escalate(ledger, finding(1))
    escalations.escalate(ledger, finding(2))
    mail.stop()
    webhook.status = 503
    failed = notify.send_pending(ledger)
    # One try per broken channel, not one per message: the second escalation's messages wait untried.
    assert (failed.sent, failed.failed) == (0, 2)
    rows = ledger.execute("select channel, attempts, last_error is not null, sent_at from dq.outbox "
                          "order by message_id").fetchall()
    assert rows == [("email", 1, True, None), ("webhook", 1, True, None), ("email", 0, False, None),
                    ("webhook", 0, False, None)]

    replacement = MailSink().start()
    try:
        monkeypatch.setenv("RURALWATCH_SMTP_PORT", str(replacement.port))
        webhook.status = 200
        delivered = notify.send_pending(ledger)
        assert (delivered.sent, delivered.failed) == (4, 0)
        assert len(replacement.messages) == 2 and len(webhook.requests) == 3  # one refused, two accepted
        assert ledger.execute("select count(*) from dq.outbox where sent_at is null").fetchone()[0] == 0
    finally:
        replacement.stop()


def test_unconfigured_channels_wait_in_the_outbox(ledger, monkeypatch):
    from ruralwatch.quality import escalations, notify

    for name in ("RURALWATCH_SMTP_HOST", "RURALWATCH_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    escalations.escalate(ledger, finding(1))
    report = notify.send_pending(ledger)
    assert (report.sent, report.failed, report.waiting) == (0, 0, 2)

