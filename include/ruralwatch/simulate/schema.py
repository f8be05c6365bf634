"""The feeds as the exchange spec (feeds.md) declares them, seen from the department's side.

The simulator keeps its own copy of the contract on purpose: it is an independent oracle, so it must
not share the warehouse's registry (a mistake there would otherwise be reproduced here and go unseen).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    kind: str                  # id, text, enum, area, date, month, year, school_year, amount, int, yesno, phone
    required: bool = False
    unit: str = ""             # amounts: the spec's unit (元 or 万元)
    event: bool = False        # a date that may not lie after the data month (planned dates may)
    plant: bool = True         # value defects may be planted here (off where they would blur the truth)


@dataclass(frozen=True)
class Feed:
    name: str
    department: str
    title: str                 # title row of XLSX exports; {y} {m} are the data month
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    event: bool = False        # event feed: a header-only file is a valid empty month
    area_level: str = ""       # "village": a village code is required; "any": any level; "": no area
    formats: tuple[tuple[str, float], ...] = (("csv:utf-8", 1.0),)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def id_columns(self) -> tuple[str, ...]:
        """The resident ID columns whose invalid values make a row unusable (身份证号, 户主身份证号)."""
        return tuple(c.name for c in self.columns if c.name in ("身份证号", "户主身份证号"))


C = Column
_CSV = (("csv:utf-8", 0.5), ("csv:utf-8-sig", 0.35), ("csv:gb18030", 0.15))
_CSV_OR_XLSX = (("xlsx", 0.5), ("csv:utf-8", 0.2), ("csv:utf-8-sig", 0.2), ("csv:gb18030", 0.1))

FEEDS: dict[str, Feed] = {f.name: f for f in (
    Feed("rural_roster", "乡村振兴局", "{y}年{m}月脱贫户和监测对象名册", (
        C("户编号", "text", True, plant=False), C("户主身份证号", "id", True), C("身份证号", "id", True),
        C("姓名", "text", True), C("与户主关系", "enum", True), C("性别", "enum"), C("出生日期", "date"),
        C("行政区划代码", "area", True), C("户类型", "enum", True), C("监测对象类别", "enum"),
        C("识别纳入日期", "date", event=True, plant=False), C("风险是否消除", "yesno", plant=False),
        C("风险消除日期", "date", event=True), C("是否易地搬迁", "yesno", plant=False),
        C("劳动技能", "enum"), C("就业意愿", "yesno", plant=False), C("家庭人口数", "int", True, plant=False),
        C("家庭年纯收入", "amount", True, unit="元", plant=False),
    ), key=("身份证号",), area_level="village", formats=_CSV_OR_XLSX),
    Feed("civil_affairs_assistance", "民政局", "{y}年{m}月社会救助对象名册", (
        C("身份证号", "id", True), C("姓名", "text", True), C("救助类型", "enum", True),
        C("行政区划代码", "area", True), C("保障起始月份", "month", True), C("保障终止月份", "month", plant=False),
        C("月保障金额", "amount", True, unit="元"), C("救助状态", "enum", True),
    ), key=("身份证号", "救助类型"), area_level="village",
        formats=(("csv:gbk", 0.6), ("csv:gb18030", 0.1), ("csv:utf-8-sig", 0.2), ("csv:utf-8", 0.1))),
    Feed("civil_affairs_deaths", "民政局", "{y}年{m}月死亡火化登记", (
        C("身份证号", "id", True), C("姓名", "text", True), C("死亡日期", "date", True, event=True, plant=False),
        C("行政区划代码", "area"),
    ), key=("身份证号",), event=True, area_level="any",  # feeds.md names no level: any (blank allowed)
        formats=(("csv:gbk", 0.5), ("csv:utf-8-sig", 0.3), ("csv:utf-8", 0.2))),
    Feed("health_insurance_enrollment", "医保局", "{y}年城乡居民医保参保登记", (
        C("身份证号", "id", True), C("姓名", "text", True), C("参保年度", "year", True, plant=False),
        C("参保状态", "enum", True), C("个人缴费", "amount", unit="元"), C("资助缴费", "amount", unit="元"),
    ), key=("身份证号",), formats=_CSV),
    Feed("health_medical_claims", "医保局", "{y}年{m}月医疗费用结算明细", (
        C("结算流水号", "text", True, plant=False), C("身份证号", "id", True), C("姓名", "text", True),
        C("就诊类型", "enum", True), C("就诊日期", "date", True, event=True), C("出院日期", "date", event=True),
        C("医疗总费用", "amount", True, unit="元"), C("基本医保支付", "amount", True, unit="元", plant=False),
        C("大病保险支付", "amount", unit="元", plant=False), C("医疗救助支付", "amount", unit="元", plant=False),
        C("个人自付", "amount", True, unit="元", plant=False),
    ), key=("结算流水号",), event=True, formats=_CSV),
    Feed("education_students", "教育局", "{y}年{m}月学生学籍及资助名单", (
        C("身份证号", "id", True), C("姓名", "text", True), C("学校名称", "text", True), C("学段", "enum", True),
        C("年级", "text"), C("学籍状态", "enum", True), C("资助项目", "text"), C("资助金额", "amount", unit="元"),
        C("学年", "school_year", True),
    ), key=("身份证号",), formats=_CSV_OR_XLSX),
    Feed("hrss_employment", "人社局", "{y}年{m}月农村劳动力就业信息", (
        C("身份证号", "id", True), C("姓名", "text", True), C("就业状态", "enum", True), C("就业形式", "enum"),
        C("就业地点", "text"), C("月均工资", "amount", unit="元"), C("本年务工月数", "int"),
        C("公益性岗位工资发放至", "month", plant=False),
    ), key=("身份证号",), formats=_CSV),
    Feed("hrss_pension_enrollment", "人社局", "{y}年{m}月城乡居民基本养老保险参保名单", (
        C("身份证号", "id", True), C("姓名", "text", True), C("参保状态", "enum", True),
        C("缴费档次", "amount", unit="元"), C("政府代缴", "yesno"),
    ), key=("身份证号",), formats=_CSV),
    Feed("housing_safety", "住建局", "{y}年{m}月农村住房安全鉴定台账", (
        C("户主身份证号", "id", True), C("户主姓名", "text", True), C("行政区划代码", "area", True),
        C("鉴定等级", "enum", True), C("鉴定日期", "date", event=True), C("改造状态", "enum", True),
        C("竣工日期", "date", event=True),
    ), key=("户主身份证号",), area_level="village", formats=_CSV_OR_XLSX),
    Feed("housing_village_environment", "住建局", "{y}年{m}月村庄人居环境统计", (
        C("行政区划代码", "area", True), C("村名", "text", True), C("总户数", "int", True, plant=False),
        C("卫生厕所户数", "int", True, plant=False), C("生活污水治理", "yesno", True, plant=False),
        C("生活垃圾收运处置", "yesno", True, plant=False), C("统计年度", "year", True, plant=False),
    ), key=("行政区划代码",), area_level="village", formats=_CSV),
    Feed("rural_projects", "乡村振兴局", "{y}年{m}月衔接资金项目库", (
        C("项目编号", "text", True, plant=False), C("项目名称", "text", True), C("项目类型", "enum", True),
        C("行政区划代码", "area", True, plant=False), C("计划投资", "amount", True, unit="万元", plant=False),
        C("已拨付", "amount", unit="万元", plant=False), C("计划完工日期", "date", True, plant=False),
        C("实际完工日期", "date", event=True), C("项目状态", "enum", True), C("带动脱贫户数", "int"),
    ), key=("项目编号",), area_level="any", formats=_CSV_OR_XLSX),
    Feed("lead_feedback", "镇(办)", "{y}年{m}月预警线索核实反馈表", (
        C("线索编号", "text", True), C("核实结果", "enum", True), C("核实说明", "text"), C("核实人", "text", True),
        C("核实日期", "date", True, event=True),
    ), key=("线索编号",), event=True, formats=(("xlsx", 1.0),)),
    Feed("water_supply", "水务局", "{y}年{m}月农村供水工程及饮水安全情况", (
        C("行政区划代码", "area", True), C("村名", "text", True), C("供水方式", "enum", True),
        C("总户数", "int", True, plant=False), C("自来水入户户数", "int", True, plant=False),
        C("水质检测达标", "yesno", True, plant=False), C("本月断水天数", "int", True, plant=False),
        C("统计月份", "month", True, plant=False),
    ), key=("行政区划代码",), area_level="village", formats=_CSV),
    Feed("hotline_tickets", "12345热线", "{y}年{m}月涉贫诉求工单明细", (
        C("工单编号", "text", True, plant=False), C("来电日期", "date", True, event=True),
        C("诉求人姓名", "text", True), C("诉求人身份证号", "id"), C("联系电话", "phone"),
        C("行政区划代码", "area", True), C("诉求类型", "enum", True), C("诉求摘要", "text", True),
        C("办理状态", "enum", True), C("办结日期", "date", event=True),
    ), key=("工单编号",), event=True, area_level="any",
        formats=(("csv:utf-8", 0.4), ("csv:utf-8-sig", 0.2), ("xlsx", 0.4))),
    Feed("rectification_problems", "乡村振兴局", "{y}年{m}月问题整改台账", (
        C("问题编号", "text", True, plant=False), C("问题来源", "enum", True), C("问题描述", "text", True),
        C("责任单位", "text", True), C("行政区划代码", "area"), C("发现日期", "date", True, event=True),
        C("整改时限", "date", True, plant=False), C("整改状态", "enum", True), C("整改完成日期", "date", event=True),
    ), key=("问题编号",), area_level="any", formats=(("xlsx", 1.0),)),
)}

# Every feed the generate command delivers each month (lead_feedback comes from write_lead_feedback).
MONTHLY = tuple(name for name in FEEDS if name != "lead_feedback")

# The due day of every feed is the 5th of the following month (no feed declares otherwise).
DEPARTMENT_OF = {name: feed.department for name, feed in FEEDS.items()}
