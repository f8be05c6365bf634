"""The ground truth of a month: which deliveries go live, which leads the rules raise, what every
indicator is — computed from the delivered files as feeds.md and indicators.md say.

The Oracle is fed the month's files in order and keeps what later months need (deaths registered, the
last household of each person, twelve months of out-of-pocket costs).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import periods
from .api import answer_time
from .geography import CITY_CODE
from .ids import check_char
from .readback import NO_DAY, AreaBook, Parsed, Rejected, parse_name, read_delivery, reference_rows
from .schema import DEPARTMENT_OF, FEEDS, MONTHLY

PLATFORM_DEPENDENT = ("I17", "I18", "I20")
# What the rules and indicators read; the other columns are dropped once their values are checked.
TRUTH_COLUMNS = {
    "rural_roster": ("户编号", "户主身份证号", "身份证号", "与户主关系", "行政区划代码", "户类型", "监测对象类别",
                     "风险是否消除", "是否易地搬迁", "劳动技能", "就业意愿", "家庭人口数", "家庭年纯收入"),
    "civil_affairs_assistance": ("身份证号", "救助类型", "行政区划代码", "救助状态"),
    "civil_affairs_deaths": ("身份证号",),
    "health_insurance_enrollment": ("身份证号", "参保年度", "参保状态"),
    "health_medical_claims": ("身份证号", "个人自付"),
    "education_students": ("身份证号", "学籍状态"),
    "hrss_employment": ("身份证号", "就业状态", "就业形式", "公益性岗位工资发放至"),
    "hrss_pension_enrollment": ("身份证号", "参保状态"),
    "housing_safety": ("户主身份证号", "鉴定等级", "改造状态"),
    "housing_village_environment": ("行政区划代码", "总户数", "卫生厕所户数", "生活污水治理", "生活垃圾收运处置"),
    "rural_projects": ("行政区划代码", "计划投资", "已拨付", "计划完工日期", "项目状态"),
    "water_supply": ("行政区划代码", "总户数", "自来水入户户数", "水质检测达标", "本月断水天数"),
    "hotline_tickets": ("工单编号", "诉求人身份证号", "行政区划代码", "诉求类型", "办理状态", "来电日期", "办结日期"),
    "rectification_problems": ("行政区划代码", "整改时限", "整改状态"),
    "lead_feedback": ("线索编号", "核实结果", "核实日期"),
}
LABOUR_FORCE = ("普通劳动力", "技能劳动力", "弱劳动力或半劳动力")
# What the person rules read of a roster row once its household's fields are in the household table.
PERSON_COLUMNS = ("户编号", "身份证号", "行政区划代码", "劳动技能", "就业意愿", "age", "dead", "hh_kind", "hh_reloc")

INTERPRETATIONS = (
    "A delivery's status: rejected (name, folder, encoding, readability, required column, header-only "
    "snapshot), duplicate (same SHA-256 as an earlier delivery of the feed), quarantined (more than the "
    "threshold share of rows with an invalid 身份证号/户主身份证号 or a repeated key), else accepted. The live "
    "delivery of a month is the accepted, unquarantined one with the highest version (latest arrival on a "
    "tie); for hrss_employment the API's month stands over any file. A feed with no live delivery leaves "
    "its indicators null and its rules unevaluated.",
    "All rows that share a repeated key are unusable (neither copy can be trusted).",
    "A value that fails its check (impossible or future date, negative amount, unknown or wrong-level area "
    "code, out-of-range 本月断水天数) is null for indicators; values that are only inconsistent with each "
    "other (totals, 卫生厕所户数 > 总户数, two 户主) count as delivered.",
    "Household fields come from the household's first 户主 row among its usable rows, else its first usable "
    "row; the household's area is that row's 行政区划代码. A person is placed by their own row's code.",
    "A record whose area code is invalid or unknown counts at city level only; a village-keyed row "
    "(housing_village_environment, water_supply) with an invalid code has no valid key and counts nowhere.",
    "A death counts from the month of the deaths delivery that registers it (the 死亡日期 does not move it).",
    "Persons registered dead leave every person-based indicator and are never 劳动力 (so never count for I07/W04).",
    "W02: members are the household's usable rows this month plus persons registered dead within the window "
    "whose last roster household it was; costs come from the live claims deliveries of the window's months "
    "that the run delivered; it fires when the sum is positive and reaches either threshold.",
    "W08: only 公益性岗位 rows of hrss_employment; a blank 发放至 counts every month of the data month's year.",
    "W09: a person-keyed lead for any 涉贫求助 ticket in the delivery whose caller's valid ID is not on the "
    "roster; a ticket-keyed lead (caller ID missing, partial or invalid) only while the ticket is not 已办结.",
    "I09, I16 and the person-based indicators count roster persons (脱贫人口 and 监测对象) only.",
    "I19: a feed-month is delivered on time when an accepted (not rejected, not duplicate) delivery of it "
    "arrived by the end of the 5th of the following month, China Standard Time; an API month arrives when "
    "the platform answered: the simulated platform answers a month at one moment, which its server sends as "
    "the HTTP Date of every answer carrying the month's items (it is also the mtime of the month's _api "
    "file). Quarantine does not make a delivery late.",
    "I12-I14, I21: village-keyed rows; I15, I22, I23: rows placed by their own area code (blank: city).",
    "Towns and villages with nothing to count are omitted; the city and every county are always present.",
)


@dataclass
class Thresholds:
    w01_income_per_capita: float = 7_500.0
    w02_out_of_pocket: float = 20_000.0
    w02_income_share: float = 0.5
    w08_unpaid_months: int = 2
    i17_deadline_days: int = 15
    quarantine_share: float = 0.02
    outage_days_flag: int = 3

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Delivery:
    path: Path
    rel: str
    feed: str | None
    month: int | None
    version: int
    channel: str
    arrival: float
    sha256: str
    status: str = "accepted"
    reason: str = ""
    detail: str = ""
    duplicate_of: str | None = None
    parsed: Parsed | None = None
    unusable: int = 0
    rows: int = 0


@dataclass
class Oracle:
    landing: Path
    thresholds: Thresholds = field(default_factory=Thresholds)
    areas: AreaBook = field(default_factory=AreaBook.load)
    seen: dict[str, dict[str, str]] = field(default_factory=dict)          # feed -> sha -> first file
    deaths: dict[int, int] = field(default_factory=dict)                   # person key -> month registered
    last_household: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))  # person key -> 户编号
    out_of_pocket: dict[int, pd.Series] = field(default_factory=dict)      # month -> person key -> 元
    history: dict[int, dict[str, Any]] = field(default_factory=dict)       # month -> I03/I04 values

    # -- deliveries ----------------------------------------------------------------------------------
    def evaluate(self, month: int, paths: list[Path]) -> dict[str, Any]:
        deliveries = [self._describe(p) for p in paths]
        deliveries.sort(key=lambda d: (d.arrival, d.rel))
        for d in deliveries:
            self._classify(d, month)
        live = self._live(month, deliveries)
        self._cross_feed(live)
        for d in deliveries:  # only the live tables are computed on; the others keep their findings
            if d.parsed is not None and live.get(d.feed) is not d:
                d.parsed.columns = {}
        truth = self._compute(month, live)
        truth["deliveries"] = [self._delivery_record(d, live) for d in deliveries]
        truth["parsed"] = {d.rel: {"flags": d.parsed.flags, "notes": d.parsed.notes,
                                   "extra_columns": d.parsed.extra_columns, "header_row": d.parsed.header_row,
                                   "uncheckable": d.parsed.uncheckable}
                           for d in deliveries if d.parsed is not None}
        for d in deliveries:
            d.parsed = None  # the tables are large; only their findings are kept
        truth["timeliness"] = self._timeliness(month, deliveries)
        truth["indicators"]["I19"] = self._i19(truth["timeliness"])
        return truth

    def _describe(self, path: Path) -> Delivery:
        rel = path.relative_to(self.landing).as_posix()
        with path.open("rb") as handle:  # in blocks: the API's month of a million persons is 150 MB
            sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
        name = parse_name(path) if not path.name.endswith(".jsonl") else None
        channel = "api" if path.parent.name == "_api" else "file"
        if channel == "api":
            feed, _, label = path.stem.rpartition("_")
            name_month = periods.parse_month(label)
            # An API delivery arrives when the platform answered: the moment its answers for the month
            # carry in their Date header (api.answer_time), not when some file appeared.
            return Delivery(path, rel, feed, name_month, 1, channel, float(answer_time(path)), sha256)
        return Delivery(path, rel, name.feed if name else None, name.month if name else None,
                        name.version if name else 1, channel, os.stat(path).st_mtime, sha256)

    def _classify(self, d: Delivery, month: int) -> None:
        folder = d.path.parent.name
        if d.channel == "file" and d.feed is None:
            d.status, d.reason = "rejected", "unparseable_name"
            return
        if d.channel == "file" and d.feed != folder:
            d.status, d.reason = "rejected", "folder_name_mismatch"
            d.detail = f"folder {folder}, name {d.feed}"
            return
        seen = self.seen.setdefault(d.feed, {})
        if d.sha256 in seen:
            d.status, d.reason, d.duplicate_of = "duplicate", "same_bytes", seen[d.sha256]
            return
        seen[d.sha256] = d.rel
        try:
            d.parsed = read_delivery(d.path, FEEDS[d.feed], d.month, self.areas, keep=TRUTH_COLUMNS[d.feed])
        except Rejected as error:
            d.status, d.reason, d.detail = "rejected", error.reason, error.detail
            return
        d.rows = d.parsed.rows
        d.unusable = d.parsed.unusable
        for name, values in d.parsed.columns.items():
            if values.dtype == object:
                d.parsed.columns[name] = _Coded.of(values)
        if d.rows and d.unusable / d.rows > self.thresholds.quarantine_share:
            d.status, d.reason = "quarantined", "unusable_rows_over_threshold"

    def _live(self, month: int, deliveries: list[Delivery]) -> dict[str, Delivery]:
        live: dict[str, Delivery] = {}
        for d in deliveries:
            if d.status != "accepted" or d.month != month:
                continue
            current = live.get(d.feed)
            if d.feed == "hrss_employment" and current is not None and current.channel != d.channel:
                if d.channel == "api":
                    current.status, current.reason = "superseded", "api_delivery_stands"
                    live[d.feed] = d
                else:
                    d.status, d.reason = "superseded", "api_delivery_stands"
                continue
            if current is None or (d.version, d.arrival) >= (current.version, current.arrival):
                if current is not None:
                    current.status, current.reason = "superseded", f"by {d.rel}"
                live[d.feed] = d
            else:
                d.status, d.reason = "superseded", f"by {current.rel}"
        for d in live.values():
            d.status = "live"
        return live

    def _cross_feed(self, live: dict[str, Delivery]) -> None:
        """The same village's 总户数 from two bureaus: a warning on the water row."""
        env, water = live.get("housing_village_environment"), live.get("water_supply")
        if not env or not water:
            return
        e, w = env.parsed, water.parsed
        totals = pd.Series(e.columns["总户数"][e.usable], index=e.columns["行政区划代码"][e.usable])
        codes = w.columns["行政区划代码"]
        other = pd.Series(codes).map(totals).to_numpy(dtype=float)
        differs = w.usable & ~np.isnan(other) & (w.columns["总户数"] != other)
        for i in np.flatnonzero(differs).tolist():
            w.flags.append((i + 1, "总户数", "cross_feed_total_mismatch"))
        w.uncheckable.update((np.flatnonzero(~w.usable | np.isnan(other)) + 1).tolist())

    def _delivery_record(self, d: Delivery, live: dict[str, Delivery]) -> dict[str, Any]:
        return {"file": d.rel, "status": d.status, "reason": d.reason or None, "detail": d.detail or None,
                "duplicate_of": d.duplicate_of, "data_rows": d.rows if d.parsed else None,
                "unusable_rows": d.unusable if d.parsed else None, "sha256": d.sha256}

    def _timeliness(self, month: int, deliveries: list[Delivery]) -> dict[str, Any]:
        out = {}
        for feed in MONTHLY:
            accepted = [d for d in deliveries if d.feed == feed and d.month == month
                        and d.status not in ("rejected", "duplicate")]
            first = min((d.arrival for d in accepted), default=None)
            out[feed] = {
                "delivered": bool(accepted),
                "first_accepted_arrival": _stamp(first) if first is not None else None,
                "on_time": bool(accepted) and first <= periods.due(month).timestamp(),
            }
        return out

    def _i19(self, timeliness: dict[str, Any]) -> dict[str, Any]:
        by_department: dict[str, list[bool]] = {}
        for feed, row in timeliness.items():
            by_department.setdefault(DEPARTMENT_OF[feed], []).append(row["on_time"])
        out = {dep: _ratio(sum(v), len(v)) for dep, v in by_department.items()}
        every = [x for v in by_department.values() for x in v]
        out["全部门"] = _ratio(sum(every), len(every))
        return out

    # -- truth -----------------------------------------------------------------------------------------
    def _compute(self, month: int, live: dict[str, Delivery]) -> dict[str, Any]:
        t = self.thresholds
        period_end = periods.last_day(month)
        end_days = periods.to_days(period_end)
        frames = {}
        for feed, d in live.items():
            frames[feed] = _frame(d.parsed)
            d.parsed.columns = {}  # the frame holds the usable rows; the full columns are not needed again
        missing = sorted(set(MONTHLY) - set(frames))

        deaths = frames.get("civil_affairs_deaths")
        if deaths is not None:
            for key in deaths["身份证号"].tolist():
                self.deaths.setdefault(int(key), month)
        dead = pd.Index(list(self.deaths)) if self.deaths else pd.Index([], dtype=np.int64)

        claims = frames.get("health_medical_claims")
        if claims is not None:
            self.out_of_pocket[month] = claims.groupby("身份证号")["个人自付"].sum(min_count=1).dropna()

        roster = frames.get("rural_roster")
        indicators: dict[str, dict[int, dict[str, Any]]] = {}
        leads: list[dict[str, Any]] = []
        population: dict[str, Any] = {}
        evaluated: list[str] = []
        area = _Areas(self.areas.levels)

        if roster is not None:
            r = roster
            r["age"] = _ages(r["身份证号"].to_numpy(), period_end).astype(np.int16)
            r["dead"] = r["身份证号"].isin(dead)
            ref = reference_rows(r["户编号"], r["与户主关系"].eq("户主").to_numpy())
            hh = r.iloc[np.unique(ref)].set_index("户编号", drop=False)
            hh["kind"] = hh["户类型"]
            hh["risk_cleared"] = hh["风险是否消除"].eq(1) & hh["kind"].eq("监测户")
            hh["skip"] = hh["kind"].eq("监测户") & ~hh["risk_cleared"]
            r["hh_kind"] = pd.Categorical(r["户编号"].map(hh["kind"]))
            r["hh_reloc"] = r["户编号"].map(hh["是否易地搬迁"]).eq(1).to_numpy()
            latest = r.drop_duplicates("身份证号").set_index("身份证号")["户编号"]
            self.last_household = pd.concat([self.last_household[~self.last_household.index.isin(latest.index)],
                                             latest])
            del latest
            roster_keys = pd.Index(r["身份证号"].unique())
            # The household fields now live in hh: person rows keep what the person rules read.
            r = frames["rural_roster"] = roster = r[[c for c in PERSON_COLUMNS if c in r.columns]]

            students = frames.get("education_students")
            in_school = pd.Index(students.loc[students["学籍状态"].eq("在读"), "身份证号"]) if students is not None else None
            dropouts = pd.Index(students.loc[students["学籍状态"].eq("辍学"), "身份证号"]) if students is not None else None
            jobs = frames.get("hrss_employment")
            employed = pd.Index(jobs.loc[jobs["就业状态"].eq("已就业"), "身份证号"]) if jobs is not None else None

            alive = r[~r["dead"]]
            labour = (alive["劳动技能"].isin(LABOUR_FORCE) & alive["age"].between(16, 64))
            if in_school is not None:
                labour &= ~alive["身份证号"].isin(in_school)
            force = alive[labour.to_numpy()].copy()
            if employed is not None:
                force["employed"] = force["身份证号"].isin(employed)

            population = {
                "roster_households": int(len(hh)),
                "roster_households_by_type": {str(k): int(v) for k, v in hh["kind"].value_counts().sort_index().items()
                                              if v},
                "roster_person_rows": int(len(r)),
                "roster_persons_alive": int(len(alive)),
                "registered_dead_on_roster": int(r["dead"].sum()),
            }

            # I01 / I02
            monitored = hh[hh["kind"].eq("监测户")]
            for cat, part in [("total", monitored), *[(c, monitored[monitored["监测对象类别"].eq(c)])
                                                     for c in ("脱贫不稳定户", "边缘易致贫户", "突发严重困难户")]]:
                area.count(indicators, f"I01.households.{cat}", part["行政区划代码"])
            mon_people = alive[alive["hh_kind"].eq("监测户")]
            area.count(indicators, "I01.persons.total", mon_people["行政区划代码"])
            for cat in ("脱贫不稳定户", "边缘易致贫户", "突发严重困难户"):
                cats = mon_people["户编号"].map(monitored["监测对象类别"])
                area.count(indicators, f"I01.persons.{cat}", mon_people.loc[cats.eq(cat).to_numpy(), "行政区划代码"])
            area.ratio(indicators, "I02.households", monitored["行政区划代码"], monitored["risk_cleared"], 1)
            cleared_people = mon_people["户编号"].map(monitored["risk_cleared"]).fillna(False).astype(bool)
            area.ratio(indicators, "I02.persons", mon_people["行政区划代码"], cleared_people, 1)
            del mon_people, cleared_people
            # I03 / I04
            freed = hh[hh["kind"].eq("脱贫户") & hh["家庭年纯收入"].notna() & hh["家庭人口数"].notna()]
            area.ratio(indicators, "I03", freed["行政区划代码"], freed["家庭年纯收入"], freed["家庭人口数"])
            moved = freed[freed["是否易地搬迁"].eq(1)]
            area.ratio(indicators, "I04", moved["行政区划代码"], moved["家庭年纯收入"], moved["家庭人口数"])
            self._growth(month, indicators)
            # I05 / I06 / I07
            if employed is not None:
                evaluated.append("W04")
                area.count(indicators, "I05", force.loc[force["employed"].to_numpy(), "行政区划代码"])
                moved_force = force[force["hh_reloc"].to_numpy()]
                area.ratio(indicators, "I06", moved_force["行政区划代码"], moved_force["employed"], 1)
                by_household = force.assign(willing=force["就业意愿"].eq(1)).groupby("户编号")
                willing, working = by_household["willing"].any(), by_household["employed"].any()
                zero = willing.index[(willing & ~working).to_numpy()]
                zero_hh = hh.loc[hh.index.isin(zero)]
                area.count(indicators, "I07", zero_hh["行政区划代码"])
                leads += _household_leads("W04", zero_hh[~zero_hh["skip"]], area)
                del moved_force, by_household
            del force
            # I08
            enrol = frames.get("health_insurance_enrollment")
            if enrol is not None:
                insured = enrol.loc[enrol["参保年度"].eq(period_end.year) & enrol["参保状态"].eq("参保"), "身份证号"]
                area.ratio(indicators, "I08", alive["行政区划代码"], alive["身份证号"].isin(insured), 1)
            # I09
            pension = frames.get("hrss_pension_enrollment")
            if pension is not None and in_school is not None:
                adults = alive[(alive["age"] >= 16).to_numpy() & ~alive["身份证号"].isin(in_school).to_numpy()]
                covered = pension.loc[pension["参保状态"].isin(["参保缴费", "待遇领取"]), "身份证号"]
                area.ratio(indicators, "I09", adults["行政区划代码"], adults["身份证号"].isin(covered), 1)
                del adults
            # I10 / W03
            if dropouts is not None:
                evaluated.append("W03")
                out = r[r["age"].between(6, 15).to_numpy() & r["身份证号"].isin(dropouts).to_numpy()]
                area.count(indicators, "I10", out.loc[~out["dead"].to_numpy(), "行政区划代码"])
                w03 = hh.loc[hh.index.isin(out["户编号"].unique())]
                leads += _household_leads("W03", w03[~w03["skip"]], area)
                del out
            # I11 / W05
            housing = frames.get("housing_safety")
            if housing is not None:
                evaluated.append("W05")
                unsafe = housing.loc[housing["鉴定等级"].isin(["C", "D"]) & ~housing["改造状态"].eq("已竣工"), "户主身份证号"]
                bad = hh[hh["户主身份证号"].isin(unsafe)]
                area.count(indicators, "I11", bad["行政区划代码"])
                leads += _household_leads("W05", bad[~bad["skip"]], area)
            # I16
            assistance = frames.get("civil_affairs_assistance")
            if assistance is not None:
                backed = assistance.loc[assistance["救助状态"].eq("在保")
                                        & assistance["救助类型"].isin(["农村低保", "特困供养"]), "身份证号"]
                people = alive.drop_duplicates("身份证号")
                area.count(indicators, "I16", people.loc[people["身份证号"].isin(backed).to_numpy(), "行政区划代码"])
                del people
            # W01
            evaluated.append("W01")
            per_capita = hh["家庭年纯收入"] / hh["家庭人口数"].where(hh["家庭人口数"] > 0)
            w01 = hh[(per_capita < t.w01_income_per_capita).to_numpy() & ~hh["skip"].to_numpy()]
            leads += _household_leads("W01", w01, area)
            # W02
            if claims is not None:
                evaluated.append("W02")
                leads += self._w02(month, r, hh, area)
            # W07 (roster side), W08
            if deaths is not None or self.deaths:
                evaluated.append("W07")
                leads += self._w07(r, frames.get("civil_affairs_assistance"), dead, hh, area)
            if jobs is not None:
                evaluated.append("W08")
                leads += self._w08(month, jobs, r, hh, area)
            # W06 / W09 need the roster to know who is outside it
            if assistance is not None:
                evaluated.append("W06")
                outside = assistance[assistance["救助状态"].eq("在保") & assistance["救助类型"].isin(["农村低保", "特困供养"])
                                     & ~assistance["身份证号"].isin(roster_keys)]
                outside = outside.drop_duplicates("身份证号")
                leads += [_lead("W06", "person", _id_text(k), a, area)
                          for k, a in zip(outside["身份证号"].tolist(), outside["行政区划代码"].tolist(), strict=True)]
            tickets = frames.get("hotline_tickets")
            if tickets is not None:
                evaluated.append("W09")
                leads += _w09(tickets, roster_keys, area)
        # Indicators of feeds that do not need the roster
        env = frames.get("housing_village_environment")
        if env is not None:
            area.ratio(indicators, "I12", env["行政区划代码"], env["卫生厕所户数"], env["总户数"])
            area.ratio(indicators, "I13", env["行政区划代码"], env["生活污水治理"].eq(1), 1)
            area.ratio(indicators, "I14", env["行政区划代码"], env["生活垃圾收运处置"].eq(1), 1)
        projects = frames.get("rural_projects")
        if projects is not None:
            due = projects[projects["计划完工日期"].ne(NO_DAY) & projects["计划完工日期"].le(end_days)]
            area.ratio(indicators, "I15.completion", due["行政区划代码"], due["项目状态"].eq("已完工"), 1)
            area.ratio(indicators, "I15.disbursement", projects["行政区划代码"], projects["已拨付"].fillna(0.0),
                       projects["计划投资"])
        water = frames.get("water_supply")
        if water is not None:
            area.ratio(indicators, "I21.tap_water", water["行政区划代码"], water["自来水入户户数"], water["总户数"])
            flagged = water["水质检测达标"].eq(0) | (water["本月断水天数"] > t.outage_days_flag)
            area.count(indicators, "I21.flagged_villages", water.loc[flagged.to_numpy(), "行政区划代码"])
        problems = frames.get("rectification_problems")
        if problems is not None:
            area.ratio(indicators, "I22.rectified", problems["行政区划代码"], problems["整改状态"].eq("已整改"), 1)
            overdue = (problems["整改时限"].ne(NO_DAY) & problems["整改时限"].lt(end_days)
                       & problems["整改状态"].isin(["未整改", "整改中"]))
            area.count(indicators, "I22.overdue", problems.loc[overdue.to_numpy(), "行政区划代码"])
        tickets = frames.get("hotline_tickets")
        if tickets is not None:
            help_ = tickets[tickets["诉求类型"].eq("涉贫求助")]
            closed = help_["办理状态"].eq("已办结")
            area.ratio(indicators, "I23.closed", help_["行政区划代码"], closed, 1)
            done = help_[closed.to_numpy() & help_["来电日期"].ne(NO_DAY).to_numpy() & help_["办结日期"].ne(NO_DAY).to_numpy()]
            area.median(indicators, "I23.median_days", done["行政区划代码"], done["办结日期"] - done["来电日期"])
        self._remember(month, indicators)
        return {
            "population": population,
            "leads": sorted(leads, key=lambda x: (x["rule"], x["key_type"], x["key"])),
            "rules_evaluated": sorted(set(evaluated)),
            "rules_not_evaluated": sorted({f"W0{i}" for i in range(1, 10)} - set(evaluated)),
            "feeds_without_live_delivery": missing,
            "indicators": {name: {str(code): cell for code, cell in sorted(cells.items())}
                           for name, cells in sorted(indicators.items())},
        }

    def _w02(self, month: int, r: pd.DataFrame, hh: pd.DataFrame, area: _Areas) -> list[dict[str, Any]]:
        t = self.thresholds
        window = [m for m in range(month - 11, month + 1) if m in self.out_of_pocket]
        costs = pd.concat([self.out_of_pocket[m] for m in window]).groupby(level=0).sum() if window else pd.Series(dtype=float)
        members = r[["身份证号", "户编号"]].drop_duplicates("身份证号")
        # The few deaths of the window are looked up in the roster's million keys, not the other way
        # round: no hash table of a million keys (or a Python set of them) for a few hundred look-ups.
        recent = [k for k, m in self.deaths.items() if month - 11 <= m <= month]
        current = set(members.loc[members["身份证号"].isin(recent).to_numpy(), "身份证号"].tolist())
        last = self.last_household[self.last_household.index.isin(recent)]
        extra = [(k, last[k]) for k in recent if k not in current and k in last.index]
        if extra:
            members = pd.concat([members, pd.DataFrame(extra, columns=["身份证号", "户编号"])])
        members = members.assign(cost=members["身份证号"].map(costs).fillna(0.0))
        per_household = members.groupby("户编号")["cost"].sum()
        income = hh["家庭年纯收入"].reindex(per_household.index)
        fires = (per_household > 0) & ((per_household >= t.w02_out_of_pocket)
                                       | (income.notna() & (per_household >= t.w02_income_share * income)))
        hit = hh.loc[hh.index.isin(per_household.index[fires.to_numpy()])]
        return _household_leads("W02", hit[~hit["skip"]], area)

    def _w07(self, r, assistance, dead, hh, area) -> list[dict[str, Any]]:
        leads = []
        on_roster = r[r["身份证号"].isin(dead)]
        for number in sorted(on_roster["户编号"].unique().tolist()):
            leads.append(_lead("W07", "household", number, hh.loc[number, "行政区划代码"], area))
        if assistance is not None:
            active = assistance[assistance["救助状态"].eq("在保") & assistance["身份证号"].isin(dead)
                                & ~assistance["身份证号"].isin(r["身份证号"])].drop_duplicates("身份证号")
            leads += [_lead("W07", "person", _id_text(k), a, area)
                      for k, a in zip(active["身份证号"].tolist(), active["行政区划代码"].tolist(), strict=True)]
        return leads

    def _w08(self, month, jobs, r, hh, area) -> list[dict[str, Any]]:
        t = self.thresholds
        welfare = jobs[jobs["就业形式"].eq("公益性岗位")]
        paid = welfare["公益性岗位工资发放至"]
        unpaid = np.where(paid >= 0, month - paid, month % 12 + 1)
        owed = welfare[unpaid >= t.w08_unpaid_months]
        household_of = r.drop_duplicates("身份证号").set_index("身份证号")["户编号"]
        leads: dict[tuple[str, str], dict[str, Any]] = {}
        for key in owed["身份证号"].tolist():
            number = household_of.get(key)
            if number is not None:
                leads[("household", number)] = _lead("W08", "household", number, hh.loc[number, "行政区划代码"], area)
            else:
                leads[("person", _id_text(key))] = _lead("W08", "person", _id_text(key), 0, area)
        return list(leads.values())

    def _growth(self, month: int, indicators: dict) -> None:
        before = self.history.get(month - 12)
        for name in ("I03", "I04"):
            if before is None or name not in before:
                continue
            for code, cell in indicators.get(name, {}).items():
                old = before[name].get(code)
                if old and old.get("value") and cell.get("value") is not None:
                    indicators.setdefault(f"{name}.growth", {})[code] = {
                        "numerator": cell["value"] - old["value"], "denominator": old["value"],
                        "value": cell["value"] / old["value"] - 1}

    def _remember(self, month: int, indicators: dict) -> None:
        self.history[month] = {k: dict(indicators[k]) for k in ("I03", "I04") if k in indicators}
        for old in [m for m in self.out_of_pocket if m < month - 11]:
            del self.out_of_pocket[old]


class _Areas:
    """Adds records to every level they belong to: their own code and its ancestors up to the city."""

    def __init__(self, levels: dict[int, str]) -> None:
        self.levels = levels
        self.counties = [c for c, lv in levels.items() if lv == "县"]

    def _rollup(self, codes: pd.Series) -> pd.DataFrame:
        codes = pd.Series(np.asarray(codes, dtype=np.int64))
        level = codes.map(self.levels)
        village = codes.where(level.eq("村"))
        town = codes.where(level.eq("镇"), (codes // 1000 * 1000).where(level.eq("村")))
        county = codes.where(level.eq("县"), (codes // 10**6 * 10**6).where(level.isin(["村", "镇"])))
        return pd.DataFrame({"village": village, "town": town, "county": county})

    def _fill(self, out: dict[int, dict[str, Any]], make) -> None:
        for code in [CITY_CODE, *self.counties]:
            out.setdefault(code, make())

    def count(self, indicators: dict, name: str, codes: pd.Series) -> None:
        levels = self._rollup(codes)
        out: dict[int, dict[str, Any]] = {CITY_CODE: _count(len(levels))}
        for column in ("county", "town", "village"):
            for code, n in levels[column].dropna().astype(np.int64).value_counts().items():
                out[int(code)] = _count(int(n))
        self._fill(out, lambda: _count(0))
        indicators[name] = out

    def ratio(self, indicators: dict, name: str, codes: pd.Series, numerator, denominator) -> None:
        levels = self._rollup(codes)
        num = pd.Series(np.asarray(numerator, dtype=float) if not np.isscalar(numerator) else np.full(len(levels), float(numerator)))
        den = pd.Series(np.asarray(denominator, dtype=float) if not np.isscalar(denominator) else np.full(len(levels), float(denominator)))
        keep = num.notna() & den.notna()
        levels, num, den = levels[keep.to_numpy()], num[keep], den[keep]
        out: dict[int, dict[str, Any]] = {CITY_CODE: _ratio(num.sum(), den.sum())}
        for column in ("county", "town", "village"):
            codes_ = levels[column]
            mask = codes_.notna().to_numpy()
            if not mask.any():
                continue
            grouped = pd.DataFrame({"c": codes_[mask].astype(np.int64).to_numpy(), "n": num[mask].to_numpy(),
                                    "d": den[mask].to_numpy()}).groupby("c").sum()
            for code, row in grouped.iterrows():
                out[int(code)] = _ratio(row["n"], row["d"])
        self._fill(out, lambda: _ratio(0.0, 0.0))
        indicators[name] = out

    def median(self, indicators: dict, name: str, codes: pd.Series, values: pd.Series) -> None:
        levels = self._rollup(codes)
        values = pd.Series(np.asarray(values, dtype=float))
        out: dict[int, dict[str, Any]] = {CITY_CODE: _median(values)}
        for column in ("county", "town", "village"):
            frame = pd.DataFrame({"c": levels[column].to_numpy(), "v": values.to_numpy()}).dropna()
            for code, part in frame.groupby("c")["v"]:
                out[int(code)] = _median(part)
        self._fill(out, lambda: _median(pd.Series(dtype=float)))
        indicators[name] = out

    def town_of(self, code: int) -> int | None:
        level = self.levels.get(int(code)) if code else None
        if level == "村":
            return int(code) // 1000 * 1000
        if level == "镇":
            return int(code)
        return None


def _count(n: int) -> dict[str, Any]:
    return {"numerator": n, "denominator": None, "value": n}


def _ratio(numerator: float, denominator: float) -> dict[str, Any]:
    numerator, denominator = _clean(numerator), _clean(denominator)
    return {"numerator": numerator, "denominator": denominator,
            "value": (numerator / denominator) if denominator else None}


def _median(values: pd.Series) -> dict[str, Any]:
    values = values.dropna()
    return {"numerator": None, "denominator": int(len(values)),
            "value": float(values.median()) if len(values) else None}


def _clean(x: float) -> float | int:
    x = float(round(float(x), 6))
    return int(x) if x.is_integer() else x


def _ages(keys: np.ndarray, on) -> np.ndarray:
    ymd = (keys // 1000) % 10**8
    y, md = ymd // 10_000, ymd % 10_000
    return on.year - y - ((on.month * 100 + on.day) < md)


def _id_text(key: int) -> str:
    """The normalised 18-character ID of a key."""
    body = f"{int(key):017d}"
    return body + check_char(body)


def _lead(rule: str, key_type: str, key: str, code: Any, area: _Areas) -> dict[str, Any]:
    code = int(code) if code is not None and not pd.isna(code) else 0
    return {"rule": rule, "key_type": key_type, "key": key, "area": str(code) if code else None,
            "town": (str(t) if (t := area.town_of(code)) else None)}


def _household_leads(rule: str, households: pd.DataFrame, area: _Areas) -> list[dict[str, Any]]:
    return [_lead(rule, "household", number, code, area)
            for number, code in zip(households.index.tolist(), households["行政区划代码"].tolist(), strict=True)]


def _w09(tickets: pd.DataFrame, roster_keys: pd.Index, area: _Areas) -> list[dict[str, Any]]:
    help_ = tickets[tickets["诉求类型"].eq("涉贫求助")]
    caller = help_["诉求人身份证号"]
    outside = help_[~caller.isin(roster_keys)]
    leads: dict[tuple[str, str], dict[str, Any]] = {}
    for key, number, status, code in zip(outside["诉求人身份证号"].tolist(), outside["工单编号"].tolist(),
                                         outside["办理状态"].tolist(), outside["行政区划代码"].tolist(), strict=True):
        if key >= 0:
            leads.setdefault(("person", _id_text(key)), _lead("W09", "person", _id_text(key), code, area))
        elif status != "已办结":
            leads[("ticket", number)] = _lead("W09", "ticket", number, code, area)
    return list(leads.values())


@dataclass
class _Coded:
    """A text column of few distinct values, held as a small integer per row between reading the delivery
    and building its frame (a pointer per cell adds up over a month's million-row feeds). Indexing gives
    back the original values, None for a null."""
    codes: np.ndarray
    values: np.ndarray

    @staticmethod
    def of(values: np.ndarray) -> np.ndarray | _Coded:
        codes, uniques = pd.factorize(values)
        if len(uniques) > 1_000:
            return values
        return _Coded(codes.astype(np.int16), np.array([*uniques.tolist(), None], dtype=object))

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self.values[self.codes[rows]]


def _frame(parsed: Parsed) -> pd.DataFrame:
    """The usable rows of a delivery, one column per known column; repetitive text as categories (a
    million-row roster would otherwise hold a pointer per cell in every column)."""
    columns = {}
    for name, values in parsed.columns.items():
        values = values[parsed.usable]
        if values.dtype == object:
            codes, uniques = pd.factorize(values)
            if len(uniques) <= 1_000:
                values = pd.Categorical.from_codes(codes, categories=uniques) if (codes >= 0).all() else \
                    pd.Categorical(values)
        columns[name] = values
    return pd.DataFrame(columns)


def _stamp(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, periods.CST).isoformat()
