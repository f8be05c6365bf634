from __future__ import annotations

import datetime as dt

import pytest

from ruralwatch.feeds.headers import DeliveryNameError, header_unit, normalise_header, parse_delivery_name


@pytest.mark.parametrize("header", ["计划投资", "计划投资(万元)", "计划投资（万元）", " 计划 投资 （万元）", "\ufeff计划投资"])
def test_headers_match_after_spaces_and_one_trailing_unit(header):
    assert normalise_header(header) == "计划投资"


def test_header_unit():
    assert header_unit("计划投资（万元）") == "万元"
    assert header_unit("月保障金额(元)") == "元"
    assert header_unit("身份证号") is None


def test_delivery_names():
    name = parse_delivery_name("rural_roster_202611.csv", "rural_roster")
    assert (name.feed, name.data_month, name.version, name.suffix) == ("rural_roster", dt.date(2026, 11, 1), 1, None)
    v2 = parse_delivery_name("rural_roster_202611_v2.xlsx", "rural_roster")
    assert v2.version == 2 and v2.extension == "xlsx" and v2.slot == "202611"
    town = parse_delivery_name("lead_feedback_202611_990101001000_v2.xlsx", "lead_feedback", allow_town_suffix=True)
    assert town.suffix == "990101001000" and town.version == 2 and town.slot == "202611_990101001000"


@pytest.mark.parametrize("file_name, message", [
    ("civil_affairs_assistance_202611.csv", "folder of feed"),
    ("rural_roster_2026-11.csv", "does not parse"),
    ("rural_roster_202613.csv", "not a month"),
    ("rural_roster_202611_v1.csv", "numbered from _v2"),
    ("rural_roster_202611.pdf", "does not parse"),
    ("rural_roster_202611_990101001000.csv", "only town-delivered feeds"),
])
def test_bad_names_are_rejected_with_a_reason(file_name, message):
    with pytest.raises(DeliveryNameError, match=message):
        parse_delivery_name(file_name, "rural_roster")
