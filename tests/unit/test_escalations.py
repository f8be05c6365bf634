"""The ledger's pure parts: due dates, fingerprints, masking, and the Chinese notification text."""
from __future__ import annotations

import dataclasses
import datetime as dt

from ruralwatch.feeds.registry import load_registry
from ruralwatch.quality import escalations, notify, timeliness
from ruralwatch.quality.checks import checks_for

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def test_due_date_counts_working_days_in_shanghai():
    friday_evening_utc = dt.datetime(2026, 12, 4, 17, tzinfo=dt.UTC)  # Saturday 01:00 in Shanghai
    assert escalations.due_date(friday_evening_utc, 10) == dt.date(2026, 12, 18)
    assert escalations.due_date(dt.datetime(2026, 12, 3, 9, tzinfo=SHANGHAI), 1) == dt.date(2026, 12, 4)
    assert escalations.due_date(dt.datetime(2026, 12, 4, 9, tzinfo=SHANGHAI), 1) == dt.date(2026, 12, 7)


def test_due_date_working_days_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RURALWATCH_ESCALATION_DUE_WORKING_DAYS", "3")
    assert escalations.due_date(dt.datetime(2026, 12, 7, 9, tzinfo=SHANGHAI)) == dt.date(2026, 12, 10)


def test_a_checks_escalation_key_is_its_fingerprint_and_each_town_has_its_own():
    feed = load_registry()["lead_feedback"]
    check = checks_for(feed)[0]
    assert escalations.check_fingerprint(check) == check.fingerprint
    town_a = escalations.check_fingerprint(check, "990101001000")
    town_b = escalations.check_fingerprint(check, "990101002000")
    assert len({check.fingerprint, town_a, town_b}) == 3
    assert escalations.check_fingerprint(check, "990101001000") == town_a
    # A check's fingerprint does not depend on its severity or on the relation it reads besides the batch.
    assert dataclasses.replace(check, severity="critical", requires=("x.y",)).fingerprint == check.fingerprint


def test_samples_are_masked_even_when_a_query_renamed_the_id_column():
    sample = escalations.masked_sample([{"_source_row": 4, "normalized": "990101196503041030",
                                         "note": "户主990101196503041030与配偶", "day": dt.date(2026, 11, 5)}])
    assert sample == [{"_source_row": 4, "normalized": "990101********1030", "note": "户主990101********1030与配偶",
                       "day": "2026-11-05"}]


def escalation(**overrides) -> dict:
    row = {"escalation_id": 7, "fingerprint": "abc", "kind": "check", "severity": "warning",
           "title": "卫生厕所户数不得超过总户数", "department_code": "housing", "department_name": "住建局",
           "contact_email": "data@zj.example.gov.cn", "feed": "housing_village_environment",
           "first_data_month": dt.date(2026, 11, 1), "first_seen_at": dt.datetime(2026, 12, 6, 1, tzinfo=dt.UTC),
           "due_date": dt.date(2026, 12, 18), "failing_rows": 2, "checked_rows": 40,
           "sample": [{"_source_row": 5, "area_code": "990101001001"}]}
    row.update(overrides)
    return row


def test_the_notification_is_chinese_and_says_what_happened_to_the_batch():
    subject, body, payload = notify.compose(escalation(), "村庄人居环境", "housing_village_environment_202611.csv",
                                            "loaded", {"area_code": "行政区划代码"})
    assert subject == "【防返贫监测数据问题 #7】住建局 · 村庄人居环境：卫生厕所户数不得超过总户数"
    assert "数据项：村庄人居环境（2026年11月）" in body and "整改期限：2026年12月18日" in body
    assert "行号：5；行政区划代码：990101001001" in body
    assert "已入库使用" in body
    quarantined = notify.compose(escalation(), "村庄人居环境", None, "quarantined")[1]
    assert "已隔离" in quarantined and "已入库使用" not in quarantined
    assert payload["escalation_id"] == 7 and payload["due_date"] == "2026-12-18" and payload["text"] == body


def test_each_kind_of_escalation_tells_the_department_what_to_do():
    for kind, words in [("rejected_delivery", "拒收原因"), ("late_feed", "尽快报送"), ("task_failure", "Airflow")]:
        body = notify.compose(escalation(kind=kind, severity="critical", failing_rows=None, sample=[]), None, None)[1]
        assert words in body, kind


def test_a_month_is_due_by_the_declared_day_of_the_next_month():
    registry = load_registry()
    assert timeliness.due_date_for(registry["water_supply"], dt.date(2026, 11, 1)) == dt.date(2026, 12, 5)
    assert timeliness.due_date_for(registry["water_supply"], dt.date(2026, 12, 1)) == dt.date(2027, 1, 5)
    assert not timeliness.is_expected_monthly(registry["lead_feedback"])
    assert timeliness.is_expected_monthly(registry["rural_roster"])
