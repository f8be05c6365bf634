"""Every feed's suite on real PostgreSQL through the real gate: a clean delivery passes every check,
and a delivery with one planted defect per hand-written rule fails exactly those rules."""
from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from ruralwatch import settings
from tests.deliveries import sample_rows, write_csv, write_xlsx
from tests.integration.test_quality_escalations import resident_id

pytestmark = pytest.mark.integration

NOVEMBER = dt.date(2026, 11, 1)
ROWS = 12  # enough values for the outlier rules, which need at least 10
NAMES = "郑强 冯燕 褚明 卫兰 蒋涛 沈梅 韩雪 杨帆 朱琳 秦岭 许诺 何平".split()


def person(i: int) -> tuple[str, str]:
    """A valid resident ID born in 1950 + 3i, and a name."""
    return resident_id(f"990101{1950 + 3 * i}0101{100 + i:03d}"), NAMES[i]


def village(i: int) -> str:
    return f"990101102{201 + i:03d}"


def clean_rows(feed: str) -> list[dict]:
    make = {
        "civil_affairs_assistance": lambda i: {
            "身份证号": person(i)[0], "姓名": person(i)[1], "救助类型": "农村低保", "行政区划代码": village(0),
            "保障起始月份": "2025-01", "保障终止月份": "", "月保障金额": f"{500 + i}", "救助状态": "在保"},
        "civil_affairs_deaths": lambda i: {
            "身份证号": person(i)[0], "姓名": person(i)[1], "死亡日期": f"2026-11-{i + 1:02d}", "行政区划代码": village(0)},
        "health_insurance_enrollment": lambda i: {
            "身份证号": person(i)[0], "姓名": person(i)[1], "参保年度": "2026", "参保状态": "参保", "个人缴费": "380",
            "资助缴费": "0"},
        "health_medical_claims": lambda i: {
            "结算流水号": f"JS{i:04d}", "身份证号": person(i)[0], "姓名": person(i)[1], "就诊类型": "门诊",
            "就诊日期": "2026-11-03", "出院日期": "", "医疗总费用": f"{100 + i}", "基本医保支付": "60",
            "大病保险支付": "", "医疗救助支付": "", "个人自付": f"{40 + i}"},
        "education_students": lambda i: {
            "身份证号": person(i)[0], "姓名": person(i)[1], "学校名称": "示范县第一小学", "学段": "小学", "年级": "三年级",
            "学籍状态": "在读", "资助项目": "营养改善计划", "资助金额": f"{800 + i}", "学年": "2026-2027"},
        "hrss_employment": lambda i: {
            "身份证号": person(i)[0], "姓名": person(i)[1], "就业状态": "已就业", "就业形式": "县内务工",
            "就业地点": "示范县", "月均工资": f"{3000 + i}", "本年务工月数": "10", "公益性岗位工资发放至": ""},
        "hrss_pension_enrollment": lambda i: {
            "身份证号": person(i)[0], "姓名": person(i)[1], "参保状态": "参保缴费", "缴费档次": "200", "政府代缴": "否"},
        "housing_safety": lambda i: {
            "户主身份证号": person(i)[0], "户主姓名": person(i)[1], "行政区划代码": village(0), "鉴定等级": "A",
            "鉴定日期": "2026-03-01", "改造状态": "无需改造", "竣工日期": ""},
        "housing_village_environment": lambda i: {
            "行政区划代码": village(i), "村名": f"{i + 1}村", "总户数": "100", "卫生厕所户数": "90", "生活污水治理": "是",
            "生活垃圾收运处置": "是", "统计年度": "2026"},
        "rural_projects": lambda i: {
            "项目编号": f"XM2026{i:03d}", "项目名称": f"产业项目{i}", "项目类型": "产业发展", "行政区划代码": "990101102000",
            "计划投资": f"{50 + i}", "已拨付": "20", "计划完工日期": "2027-06-30", "实际完工日期": "",
            "项目状态": "在建", "带动脱贫户数": "10"},
        "lead_feedback": lambda i: {
            "线索编号": f"XS2026{i:04d}", "核实结果": "已纳入监测", "核实说明": "已入户核实", "核实人": "王五",
            "核实日期": "2026-11-10"},
        "water_supply": lambda i: {
            "行政区划代码": village(i), "村名": f"{i + 1}村", "供水方式": "集中供水", "总户数": "100",
            "自来水入户户数": "90", "水质检测达标": "是", "本月断水天数": "0", "统计月份": "2026-11"},
        "hotline_tickets": lambda i: {
            "工单编号": f"GD{i:05d}", "来电日期": "2026-11-05", "诉求人姓名": person(i)[1], "诉求人身份证号": person(i)[0],
            "联系电话": f"1380000{i:04d}", "行政区划代码": village(0), "诉求类型": "涉贫求助", "诉求摘要": "咨询医保报销",
            "办理状态": "已办结", "办结日期": "2026-11-20"},
        "rectification_problems": lambda i: {
            "问题编号": f"WT{i:04d}", "问题来源": "审计", "问题描述": "资金拨付滞后", "责任单位": "民政局", "行政区划代码": "",
            "发现日期": "2026-10-01", "整改时限": "2026-12-31", "整改状态": "整改中", "整改完成日期": ""},
    }
    if feed == "rural_roster":
        return sample_rows()
    return [make[feed](i) for i in range(ROWS)]


def _set(rows: list[dict], index: int, **values) -> None:
    rows[index].update(values)


def defective_rows(feed: str) -> list[dict]:
    """The clean rows with one defect per hand-written rule of the feed, each on its own row."""
    rows = [dict(r) for r in clean_rows(feed)]
    if feed == "rural_roster":
        _set(rows, 9, 与户主关系="配偶")                                         # household_one_head (HH002003004)
        for r in rows[10:13]:                                                     # household_head_id_matches
            r["户主身份证号"] = resident_id("99010219600101124")
        _set(rows, 5, 家庭人口数="5")                                              # household_size_matches_rows
        _set(rows, 6, **{"家庭年纯收入(元)": "53000"})                              # household_income_consistent
        _set(rows, 7, 性别="男")                                                   # gender_birth_date_match_id
        _set(rows, 3, 监测对象类别="")                                              # monitoring_category_required
        _set(rows, 2, 户主身份证号=resident_id("99010119650304104"))                # household_head_id_consistent
        _set(rows, 8, 户类型="监测户")                                              # household_type_consistent
        _set(rows, 11, 出生日期="2027-01-01")                                       # birth_date_not_future
        _set(rows, 9, 风险消除日期="2025-12-01")                                    # risk_eliminated_after_identified
        _set(rows, 4, 风险是否消除="是")                                            # risk_eliminated_date_required
        for r in rows[10:13]:                                                     # household_income_outlier
            r["家庭年纯收入(元)"] = "4100000"
    elif feed == "civil_affairs_assistance":
        _set(rows, 0, 保障终止月份="2024-12")                                       # end_month_after_start_month
        _set(rows, 1, 保障起始月份="2027-01")                                       # start_month_not_future
        _set(rows, 2, 保障终止月份="2026-06")                                       # active_assistance_not_ended
        _set(rows, 3, 月保障金额="50000")                                           # monthly_amount_outlier
    elif feed == "civil_affairs_deaths":
        _set(rows, 0, 死亡日期="1949-01-01")                                        # death_after_birth
    elif feed == "health_insurance_enrollment":
        _set(rows, 0, 参保年度="2020")                                              # insurance_year_plausible
        _set(rows, 1, 参保状态="未参保")                                            # uninsured_without_contribution
    elif feed == "health_medical_claims":
        _set(rows, 0, 医疗总费用="999")                                             # claim_total_adds_up
        _set(rows, 1, 就诊类型="住院", 就诊日期="2026-11-10", 出院日期="2026-11-08")  # discharge_not_before_visit
        _set(rows, 2, 就诊类型="住院")                                              # inpatient_has_discharge_date
        _set(rows, 3, 医疗总费用="100000", 基本医保支付="99957")                    # total_cost_outlier
    elif feed == "education_students":
        _set(rows, 0, 资助项目="")                                                  # aid_amount_has_programme
        _set(rows, 1, 学年="2020-2021")                                             # school_year_plausible
        _set(rows, 2, 资助金额="200000")                                            # aid_amount_outlier
    elif feed == "hrss_employment":
        _set(rows, 0, 公益性岗位工资发放至="2026-11")                                # public_job_pay_only_for_public_jobs
        _set(rows, 1, 就业形式="")                                                  # employed_has_employment_form
        _set(rows, 2, 本年务工月数="12")                                            # months_worked_within_year
        _set(rows, 3, 月均工资="3000000")                                           # monthly_wage_outlier
    elif feed == "hrss_pension_enrollment":
        _set(rows, 11, 参保状态="待遇领取")                                         # pension_recipient_aged_60 (born 1983)
    elif feed == "housing_safety":
        _set(rows, 0, 鉴定等级="C")                                                 # unsafe_house_needs_rebuild
        _set(rows, 1, 鉴定等级="D", 改造状态="已竣工")                               # completed_rebuild_has_date
        _set(rows, 2, 鉴定等级="D", 改造状态="已竣工", 竣工日期="2026-01-01")        # completion_after_assessment
    elif feed == "housing_village_environment":
        _set(rows, 0, 卫生厕所户数="120")                                           # sanitary_toilets_within_households
        _set(rows, 1, 统计年度="2020")                                              # statistical_year_plausible
        _set(rows, 4, 总户数="99")                                                  # total_households_agree_with_water_supply
    elif feed == "rural_projects":
        _set(rows, 0, 已拨付="100")                                                 # disbursed_within_planned_investment
        _set(rows, 1, 项目状态="已完工")                                            # completed_project_has_date
        _set(rows, 2, 计划投资="500000")                                            # planned_investment_outlier
    elif feed == "water_supply":
        _set(rows, 0, 自来水入户户数="130")                                         # tap_water_within_households
        _set(rows, 1, 本月断水天数="31")                                            # outage_days_within_month
        _set(rows, 2, 统计月份="2026-10")                                           # statistical_month_matches_delivery
        _set(rows, 3, 总户数="101")                                                 # total_households_agree_with_village_environment
    elif feed == "hotline_tickets":
        _set(rows, 0, 办结日期="")                                                  # closed_ticket_has_date
        _set(rows, 1, 办结日期="2026-11-01")                                        # closed_after_call
        _set(rows, 2, 联系电话="12345")                                             # phone_format
    elif feed == "rectification_problems":
        _set(rows, 0, 整改时限="2026-09-01")                                        # deadline_after_found
        _set(rows, 1, 整改状态="已整改")                                            # rectified_has_completion_date
        _set(rows, 2, 整改完成日期="2026-09-15")                                    # completed_after_found
    return rows


def write_delivery(landing, feed: str, rows: list[dict], version: str = "") -> None:
    if feed == "lead_feedback":  # towns return XLSX, one file per town
        write_xlsx(landing / feed / f"{feed}_202611_990101102000{version}.xlsx", rows)
    else:
        write_csv(landing / feed / f"{feed}_202611{version}.csv", rows)


def gate(landing, feed: str) -> dict:
    from ruralwatch import pipeline

    loaded = [o for o in pipeline.load_feed(feed, NOVEMBER, landing) if o["status"] == "loaded"]
    assert len(loaded) == 1, loaded
    verdicts = pipeline.gate_feed(feed)
    assert [v["batch_id"] for v in verdicts] == [loaded[0]["batch_id"]]
    return verdicts[0]


def test_every_suite_passes_a_clean_delivery_and_catches_each_planted_defect(warehouse, tmp_path):
    from ruralwatch.feeds.registry import load_registry
    from ruralwatch.quality.checks import handwritten_checks

    landing = tmp_path / "landing"
    for feed in load_registry():
        write_delivery(landing, feed.name, clean_rows(feed.name))
        clean = gate(landing, feed.name)
        assert (clean["decision"], clean["failed"]) == ("live", []), feed.name

    # Every feed's clean month is live before the defects come, so cross-feed rules have a counterpart.
    missed = {}
    for feed in load_registry():
        rules = {c.name for c in handwritten_checks(feed)}
        if not rules:
            continue
        write_delivery(landing, feed.name, defective_rows(feed.name), "_v2")
        defective = gate(landing, feed.name)
        caught = set(defective["failed"]) & rules
        if caught != rules:
            missed[feed.name] = sorted(rules - caught)
    assert missed == {}

    with psycopg.connect(warehouse) as conn:
        # The hand-written rules were all evaluated by GX in PostgreSQL and recorded with their verdicts.
        assert conn.execute("select count(distinct feed) from dq.check_results").fetchone()[0] == len(load_registry())
        assert conn.execute("select count(*) from dq.escalations where status = 'open'").fetchone()[0] > 0


def test_area_codes_are_checked_against_the_shipped_reference_from_the_first_delivery(warehouse, tmp_path):
    landing = tmp_path / "landing"
    write_delivery(landing, "water_supply", clean_rows("water_supply"))
    first = gate(landing, "water_supply")
    seed = (settings.DBT_PROJECT_DIR / "seeds" / "area_codes.csv").read_text(encoding="utf-8").splitlines()
    with psycopg.connect(warehouse) as conn:
        # The reference shipped with the project is there before any warehouse build, so the first
        # month is gated like every later one (a backfill then equals the months run one by one).
        assert conn.execute("select count(*) from reference.area_codes").fetchone()[0] == len(seed) - 1
        assert conn.execute("select count(*) from dq.check_results where check_name = 'area_code_in_reference' "
                            "and success").fetchone()[0] == 1
    assert first["decision"] == "live" and first["failed"] == []
    rows = clean_rows("water_supply")
    unknown = "990101102299"  # well formed, but no such village in the reference
    assert not any(line.startswith(unknown + ",") for line in seed)
    _set(rows, 0, 行政区划代码=unknown)
    write_delivery(landing, "water_supply", rows, "_v2")
    second = gate(landing, "water_supply")
    assert second["failed"] == ["area_code_in_reference"]
    with psycopg.connect(warehouse) as conn:
        sample = conn.execute("select sample from dq.escalations where check_name = 'area_code_in_reference'").fetchone()[0]
    assert sample == [{"_source_row": 2, "area_code": unknown}]
