"""The truth in the manifest: checked against the simulator's own state when nothing is planted, and
against hand-made deliveries for the edge rules of indicators.md and feeds.md."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ruralwatch.simulate import Options, generate, ids, periods
from ruralwatch.simulate.population import (
    KINDS,
    MONITORED,
    POVERTY_FREED,
    REBUILT,
    build_city,
    on_roster,
)
from ruralwatch.simulate.timeline import advance
from ruralwatch.simulate.truth import Oracle

CITY = "990100000000"


# -- with nothing planted, the files say what the city is ---------------------------------------------
@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    months = periods.parse_range("2026-10:2026-11")
    paths = generate(Options(out=out, persons=2_500, months=months, seed=31, defects="none"))
    city = build_city(2_500, 31, months[0])
    states = []
    for month, path in zip(months, paths, strict=True):
        advance(city, month)
        states.append((month, json.loads(path.read_text(encoding="utf-8")), _expected(city, month)))
    return states


def _expected(city, month) -> dict:
    """The rules and indicators computed straight from the simulator's state (no files involved)."""
    p, hh = city.persons, city.households
    rows = np.flatnonzero(on_roster(city, month))
    households, size = np.unique(p.hh[rows], return_counts=True)
    kind = hh.kind[households]
    income = hh.income[households] / 100
    skip = (kind == MONITORED) & ~hh.cleared[households]
    number = hh.number[households].astype(str)
    freed = kind == POVERTY_FREED
    unsafe = (hh.grade[households] >= 2) & (hh.rebuild[households] != REBUILT)
    outside = (p.assist >= 0) & p.assist_active & (p.assist <= 1) & (p.born_month <= month)
    outside &= ~on_roster(city, month)
    return {
        "W01": set(number[(income / size < 7_500) & ~skip]),
        "W05": set(number[unsafe & ~skip]),
        "W06": {x.decode() for x in p.pid[outside]},
        "I01": int((kind == MONITORED).sum()),
        "I03": income[freed].sum() / size[freed].sum(),
        "I11": int(unsafe.sum()),
        "persons": len(rows),
        "kinds": {KINDS[k]: int((kind == k).sum()) for k in np.unique(kind)},
    }


def _keys(manifest, rule):
    return {lead["key"] for lead in manifest["leads"] if lead["rule"] == rule}


def test_clean_files_say_what_the_city_is(clean):
    for _, manifest, expected in clean:
        assert manifest["self_check"]["ok"]
        assert manifest["population"]["roster_person_rows"] == expected["persons"]
        assert manifest["population"]["roster_households_by_type"] == expected["kinds"]
        assert _keys(manifest, "W01") == expected["W01"]
        assert _keys(manifest, "W05") == expected["W05"]
        assert _keys(manifest, "W06") == expected["W06"]
        indicators = manifest["indicators"]
        assert indicators["I01.households.total"][CITY]["value"] == expected["I01"]
        assert indicators["I11"][CITY]["value"] == expected["I11"]
        assert indicators["I03"][CITY]["value"] == pytest.approx(expected["I03"], rel=1e-9)


def test_every_rule_fires_somewhere_in_a_small_city(clean):
    rules = {lead["rule"] for _, manifest, _ in clean for lead in manifest["leads"]}
    assert {"W01", "W04", "W05", "W06", "W08"} <= rules
    for _, manifest, _ in clean:
        assert manifest["rules_not_evaluated"] == []
        assert set(manifest["platform_dependent"]) == {"I17", "I18", "I20"}


def test_indicators_add_up_from_counties_to_the_city(clean):
    _, manifest, _ = clean[-1]
    counties = [f"99010{c}000000" for c in range(1, 7)]
    for name, cells in manifest["indicators"].items():
        if name.startswith(("I19", "I23.median")) or CITY not in cells:
            continue
        city, parts = cells[CITY], sum(cells[c]["numerator"] or 0 for c in counties)
        if name.startswith(("I15", "I22")):  # projects and problems without an area count at city level only
            assert parts <= (city["numerator"] or 0), name
        else:
            assert parts == pytest.approx(city["numerator"] or 0), name


# -- hand-made deliveries: the spec's edge rules, one by one --------------------------------------------
MONTH = periods.parse_month("2026-11")
VILLAGE, TOWN = "990101101201", "990101101000"
ARRIVAL = dt.datetime(2026, 12, 2, 10, 0, tzinfo=periods.CST).timestamp()


def _id(birth: str, seq: int, county: str = "990101") -> str:
    body = f"{county}{birth}{seq:03d}"
    return body + ids.check_char(body)


def _write(root: Path, feed: str, header: list[str], rows: list[list], name: str | None = None,
           encoding: str = "utf-8") -> Path:
    path = root / feed / (name or f"{feed}_202611.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    os.utime(path, (ARRIVAL, ARRIVAL))
    return path


ROSTER_HEADER = ["户编号", "户主身份证号", "身份证号", "姓名", "与户主关系", "行政区划代码", "户类型", "监测对象类别",
                 "风险是否消除", "是否易地搬迁", "劳动技能", "就业意愿", "家庭人口数", "家庭年纯收入（元）"]


@pytest.fixture()
def landing(tmp_path):
    a1, a2 = _id("19700101", 11), _id("19720202", 22)           # H1: 7,500.00 per capita exactly
    b1, b2 = _id("19650303", 31), _id("20100404", 42)           # H2: 7,499.99 per capita
    c1 = _id("19500505", 51)                                     # H3: 监测户, risk blank (= 否): skipped
    d1 = _id("19550606", 61)                                     # H4: 监测户, risk eliminated: not skipped
    e1, e2 = _id("19800707", 71), _id("19820808", 82)           # H5: zero employment, W02 by cost
    f1, f2 = _id("19600909", 91), _id("19900909", 92)           # H6: a member's row exported twice
    outsider, caller = _id("19751010", 101), _id("19881111", 113)
    g1 = _id("19451212", 121)                                    # H7: dead, still on the roster
    roster = [
        ["H1", a1, a1, "甲", "户主", VILLAGE, "脱贫户", "", "", "否", "普通劳动力", "是", 2, "15,000.00"],
        ["H1", a1, f" {a2[:6]}{a2[8:17]} ", "乙", "配偶", VILLAGE, "脱贫户", "", "", "否", "普通劳动力", "是", 2, "15000"],
        ["H2", b1, b1, "丙", "户主", VILLAGE, "脱贫户", "", "", "否", "丧失劳动力", "否", 2, "14999.98元"],
        ["H2", b1, b2, "丁", "子", VILLAGE, "脱贫户", "", "", "否", "无劳动力", "", 2, "14999.98"],
        ["H3", c1, c1, "戊", "户主", VILLAGE, "监测户", "边缘易致贫户", "", "否", "无劳动力", "", 1, "3000"],
        ["H4", d1, d1, "己", "户主", VILLAGE, "监测户", "脱贫不稳定户", "是", "是", "无劳动力", "", 1, "3000"],
        ["H5", e1, e1, "庚", "户主", VILLAGE, "脱贫户", "", "NULL", "N", "技能劳动力", "Y", 2, "80000"],
        ["H5", e1, e2.lower(), "辛", "配偶", VILLAGE, "脱贫户", "", "/", "n", "普通劳动力", "1", 2, "80000"],
        ["H6", f1, f1, "壬", "户主", VILLAGE, "脱贫户", "", "", "否", "无劳动力", "", 3, "90000"],
        ["H6", f1, f2, "壬", "子", VILLAGE, "脱贫户", "", "", "否", "无劳动力", "", 3, "90000"],
        ["H6", f1, f2, "壬", "子", VILLAGE, "脱贫户", "", "", "否", "无劳动力", "", 3, "90000"],
        ["H7", g1, g1, "癸", "户主", VILLAGE, "脱贫户", "", "", "否", "无劳动力", "", 1, "90000"],
    ]
    # A hundred ordinary households keep the two spoiled rows under the 2% quarantine gate.
    roster += [[f"F{k}", _id("19580101", 300 + k), _id("19580101", 300 + k), "某", "户主", VILLAGE, "脱贫户", "", "",
                "否", "无劳动力", "", 1, "30000"] for k in range(100)]
    _write(tmp_path, "rural_roster", ROSTER_HEADER, roster)
    _write(tmp_path, "hrss_employment", ["身份证号", "姓名", "就业状态", "就业形式", "公益性岗位工资发放至"], [
        [a1, "甲", "已就业", "公益性岗位", "2026-09"],          # 2 months unpaid: W08
        [e1, "庚", "未就业", "", ""],
        [b1, "丙", "已就业", "公益性岗位", ""],                  # blank: unpaid since January: W08
    ])
    _write(tmp_path, "health_medical_claims", ["结算流水号", "身份证号", "姓名", "就诊类型", "就诊日期", "医疗总费用",
                                               "基本医保支付", "个人自付"], [
        ["S1", e2, "辛", "住院", "2026/11/3", "50000", "30000", "20000.00"],
        ["S2", d1, "己", "门诊", "20261104", "3000", "1500", "1500"],   # 1,500 >= 50% of 3,000: W02 (H4)
    ])
    _write(tmp_path, "civil_affairs_assistance", ["身份证号", "姓名", "救助类型", "行政区划代码", "保障起始月份",
                                                  "月保障金额", "救助状态"], [
        [outsider, "子", "农村低保", VILLAGE, "2025年3月", "450", "在保"],
        [g1, "癸", "特困供养", VILLAGE, "202001", "900", "在保"],
    ], encoding="gbk")
    _write(tmp_path, "civil_affairs_deaths", ["身份证号", "姓名", "死亡日期"], [[g1, "癸", "2026年11月2日"]])
    _write(tmp_path, "hotline_tickets", ["工单编号", "来电日期", "诉求人姓名", "诉求人身份证号", "行政区划代码", "诉求类型",
                                         "诉求摘要", "办理状态", "办结日期"], [
        ["T1", "2026-11-03", "张先生", "", TOWN, "涉贫求助", "求助", "核查中", ""],
        ["T2", "2026-11-03", "李女士", "", VILLAGE, "涉贫求助", "求助", "已办结", "2026-11-08"],
        ["T3", "2026-11-05", "王某", caller, VILLAGE, "涉贫求助", "求助", "已办结", "2026-11-06"],
        ["T4", "2026-11-05", "甲", a1, VILLAGE, "涉贫求助", "求助", "待核查", ""],
    ])
    return tmp_path, {"a1": a1, "e1": e1, "outsider": outsider, "caller": caller, "g1": g1, "f1": f1}


def _evaluate(root: Path) -> dict:
    paths = sorted(p for p in root.rglob("*.csv"))
    return Oracle(root).evaluate(MONTH, paths)


def _leads(truth, rule):
    return {(lead["key_type"], lead["key"]) for lead in truth["leads"] if lead["rule"] == rule}


def test_w01_is_strictly_below_and_skips_monitored_households_at_risk(landing):
    truth = _evaluate(landing[0])
    assert _leads(truth, "W01") == {("household", "H2"), ("household", "H4")}


def test_variant_spellings_and_15_digit_ids_count(landing):
    truth = _evaluate(landing[0])
    roster = next(d for d in truth["deliveries"] if d["file"].startswith("rural_roster/"))
    assert roster["status"] == "live"
    assert truth["population"]["roster_person_rows"] == 110  # 112 rows less the two with a repeated key
    flags = truth["parsed"]["rural_roster/rural_roster_202611.csv"]
    assert [n[2] for n in flags["notes"]] == ["id_15_digit"]
    assert {f[2] for f in flags["flags"]} == {"duplicate_key"}


def test_w02_by_amount_and_by_share_of_income(landing):
    assert _leads(_evaluate(landing[0]), "W02") == {("household", "H5"), ("household", "H4")}


def test_w04_counts_only_labour_force_and_w08_counts_unpaid_months(landing):
    truth = _evaluate(landing[0])
    assert _leads(truth, "W04") == {("household", "H5")}
    assert _leads(truth, "W08") == {("household", "H1"), ("household", "H2")}
    assert truth["indicators"]["I07"][CITY]["value"] == 1


def test_w06_w07_w09_reach_outside_the_roster(landing):
    root, people = landing
    truth = _evaluate(root)
    assert _leads(truth, "W06") == {("person", people["outsider"])}
    assert _leads(truth, "W07") == {("household", "H7")}
    assert _leads(truth, "W09") == {("ticket", "T1"), ("person", people["caller"])}
    towns = {lead["key"]: lead["town"] for lead in truth["leads"] if lead["rule"] == "W09"}
    assert towns["T1"] == TOWN
    assert truth["indicators"]["I23.closed"][CITY]["value"] == pytest.approx(0.5)
    assert truth["indicators"]["I23.median_days"][CITY]["value"] == pytest.approx(3.0)


def test_dead_persons_leave_person_indicators(landing):
    truth = _evaluate(landing[0])
    assert truth["population"]["registered_dead_on_roster"] == 1
    assert truth["indicators"]["I16"][CITY]["value"] == 0  # the only 特困 person is dead


def test_a_batch_over_two_percent_unusable_is_quarantined_and_v2_goes_live(landing):
    root, people = landing
    rows = [[f"Q{k}", people["a1"], ids.wrong_check(_id("19900101", 200 + k), k), "甲", "户主", VILLAGE, "脱贫户", "",
             "", "否", "普通劳动力", "是", 1, "5000"] for k in range(3)]
    rows += [[f"G{k}", _id("19910101", 300 + k), _id("19910101", 300 + k), "乙", "户主", VILLAGE, "脱贫户", "", "",
              "否", "普通劳动力", "是", 1, "5000"] for k in range(60)]
    _write(root, "rural_roster", ROSTER_HEADER, rows, name="rural_roster_202611.csv")
    v2 = _write(root, "rural_roster", ROSTER_HEADER, rows[3:], name="rural_roster_202611_v2.csv")
    os.utime(v2, (ARRIVAL + 60, ARRIVAL + 60))
    truth = _evaluate(root)
    status = {d["file"]: d["status"] for d in truth["deliveries"]}
    assert status["rural_roster/rural_roster_202611.csv"] == "quarantined"
    assert status["rural_roster/rural_roster_202611_v2.csv"] == "live"
    assert truth["population"]["roster_person_rows"] == 60


def test_structural_breaks_reject_and_same_bytes_are_duplicates(landing):
    root, _ = landing
    (root / "civil_affairs_deaths" / "civil_affairs_deaths_202611_v2.csv").write_bytes(
        (root / "civil_affairs_deaths" / "civil_affairs_deaths_202611.csv").read_bytes())
    _write(root, "hotline_tickets", ["工单编号", "来电日期"], [["T9", "2026-11-03"]], name="hotline_tickets_202611_v2.csv")
    _write(root, "water_supply", ["行政区划代码"], [], name="rural_roster_202611_v3.csv")
    for path in root.rglob("*_v*.csv"):
        os.utime(path, (ARRIVAL + 120, ARRIVAL + 120))
    truth = _evaluate(root)
    status = {d["file"]: (d["status"], d["reason"]) for d in truth["deliveries"]}
    assert status["civil_affairs_deaths/civil_affairs_deaths_202611_v2.csv"] == ("duplicate", "same_bytes")
    assert status["hotline_tickets/hotline_tickets_202611_v2.csv"] == ("rejected", "missing_required_column")
    assert status["hotline_tickets/hotline_tickets_202611.csv"][0] == "live"
    assert status["water_supply/rural_roster_202611_v3.csv"] == ("rejected", "folder_name_mismatch")


def test_deaths_accept_an_area_code_at_any_level(landing):
    """feeds.md asks a village code only of the roster, assistance, housing and water feeds: a death may
    be registered with a town or county code, or none, and is neither flagged nor lost for it."""
    root, people = landing
    _write(root, "civil_affairs_deaths", ["身份证号", "姓名", "死亡日期", "行政区划代码"], [
        [people["g1"], "癸", "2026年11月2日", TOWN],
        [people["outsider"], "子", "2026-11-03", "990101000000"],
        [people["e1"], "庚", "2026-11-04", ""],
        [people["a1"], "甲", "2026-11-05", "990101101"],  # not 12 digits: malformed at any level
    ])
    truth = _evaluate(root)
    flags = truth["parsed"]["civil_affairs_deaths/civil_affairs_deaths_202611.csv"]["flags"]
    assert flags == [(4, "行政区划代码", "area_malformed")]
    assert _leads(truth, "W07") == {("household", "H7"), ("household", "H5"), ("household", "H1"),
                                    ("person", people["outsider"])}
