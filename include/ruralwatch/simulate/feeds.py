"""What each department would export for a month: canonical rows, in chunks, from the one population.

Builders only read the city (the timeline has already moved it to the month's end). Their own data
draws come from streams keyed by (seed, feed, month), so a re-delivery rebuilds the same rows; the
feed-specific defects (two 户主, totals that do not add up, ...) draw from the delivery's stream.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import ids as idlib
from . import names, periods
from .defects import Preset
from .deliver import Chunk, Mark
from .population import (
    ASSISTANCE,
    CATEGORIES,
    GRADES,
    HEAD,
    INSURANCE,
    JOB_FORMS,
    KINDS,
    LABOUR,
    MONITORED,
    OFF_ROSTER,
    PENSION,
    PUBLIC_WELFARE_JOB,
    REBUILD,
    REBUILT,
    ROLES,
    SCHOOL_STATUS,
    STAGES,
    City,
    alive_at_end,
    alive_during,
    on_roster,
    school_year_start,
)
from .rng import stream
from .spellings import NULL

CHUNK_ROWS = 100_000
# Departments export big tables as CSV: an XLSX sheet holds at most 1,048,576 rows, and a file of a few
# hundred thousand rows is already slow to open. Above this many rows a feed that may come as XLSX comes
# as CSV.
XLSX_MAX_ROWS = 200_000


@dataclass
class Context:
    city: City
    month: int
    preset: Preset
    rng: np.random.Generator          # the delivery's stream: feed-specific defects
    unusable_cap: float | None = None

    @property
    def seed(self) -> int:
        return self.city.seed


def person_names(city: City, idx: np.ndarray) -> np.ndarray:
    p = city.persons
    return names.render(p.surname[idx], p.given1[idx], p.given2[idx], p.male[idx])


def _chunks(idx: np.ndarray, size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    for start in range(0, len(idx), size):
        yield idx[start:start + size]


def _pick(rng: np.random.Generator, candidates: np.ndarray, rate: float, limit: int | None = None) -> np.ndarray:
    if rate <= 0 or not len(candidates):
        return np.array([], dtype=np.int64)
    k = int(rng.binomial(len(candidates), min(rate, 1.0)))
    if limit is not None:
        k = min(k, limit)
    return np.sort(rng.choice(candidates, size=k, replace=False)) if k else np.array([], dtype=np.int64)


def _dates(days: list[int]) -> np.ndarray:
    """Epoch days with the state's -1 ("not yet") as a null date (state dates all lie after 1970)."""
    values = np.array(days, dtype=np.int64)
    return np.where(values >= 0, values, NULL)


def _or_null(present: np.ndarray, values: np.ndarray) -> np.ndarray:
    """int64 values where present, else NULL. The widening comes first: the city keeps its dates and
    amounts in narrower integers, where np.where would wrap NULL (int64's minimum) to 0 — a blank date
    written as 1970-01-01."""
    return np.where(present, np.asarray(values, dtype=np.int64), NULL)


def _village_code(city: City, households: np.ndarray) -> np.ndarray:
    return city.geo.village_codes[city.households.village[households]]


# -- 乡村振兴局: the roster ---------------------------------------------------------------------------
def rural_roster(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    p, hh = city.persons, city.households
    rows = np.flatnonzero(on_roster(city, month))
    h = p.hh[rows]
    not_head = hh.head[h] != rows
    order = np.lexsort((p.birth[rows], p.role[rows], not_head, hh.serial[h], hh.village[h]))
    rows = rows[order]
    h = p.hh[rows]
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    sizes = np.diff(np.r_[starts, len(rows)])
    size_of_row = np.repeat(sizes, sizes)
    # Chunks end at household boundaries, so a household's rows are always checked together.
    cut = [0]
    for s in starts.tolist():
        if s - cut[-1] >= CHUNK_ROWS:
            cut.append(s)
    cut.append(len(rows))
    for a, b in zip(cut[:-1], cut[1:], strict=True):
        yield _roster_chunk(ctx, rows[a:b], size_of_row[a:b])


def _roster_chunk(ctx: Context, idx: np.ndarray, size: np.ndarray) -> Chunk:
    city = ctx.city
    p, hh = city.persons, city.households
    h = p.hh[idx]
    n = len(idx)
    is_head = hh.head[h] == idx
    kind = hh.kind[h]
    monitored = kind == MONITORED
    relation = np.array(ROLES, dtype=object)[p.role[idx]]
    relation[~is_head & (p.role[idx] == HEAD)] = "其他"
    relation[is_head] = "户主"
    risk = np.where(monitored, hh.cleared[h].astype(np.int8), -1).astype(np.int8)
    # Some towns leave 风险是否消除 blank on households still at risk: the spec reads that as 否.
    blank_risk = monitored & ~hh.cleared[h] & (hh.serial[h] % 3 == 0)
    risk[blank_risk] = -1
    data = {
        "户编号": hh.number[h].astype(str).astype(object),
        "户主身份证号": p.pid[hh.head[h]],
        "身份证号": p.pid[idx].copy(),
        "姓名": person_names(city, idx),
        "与户主关系": relation,
        "性别": np.where(p.male[idx], "男", "女").astype(object),
        "出生日期": p.birth[idx].astype(np.int64),
        "行政区划代码": _village_code(city, h),
        "户类型": np.array(KINDS, dtype=object)[kind],
        "监测对象类别": np.where(monitored, np.array(CATEGORIES + ("",), dtype=object)[hh.category[h]], None),
        "识别纳入日期": _or_null(monitored, hh.included[h]),
        "风险是否消除": risk,
        "风险消除日期": _or_null(monitored & hh.cleared[h], hh.cleared_on[h]),
        "是否易地搬迁": hh.relocated[h].astype(np.int8),
        "劳动技能": np.array(LABOUR, dtype=object)[p.labour[idx]],
        "就业意愿": np.where(p.willing_known[idx], p.willing[idx].astype(np.int8), -1).astype(np.int8),
        "家庭人口数": size.astype(np.int64),
        "家庭年纯收入": hh.income[h].astype(np.int64),
    }
    chunk = Chunk(data=data, n=n, group=h.astype(np.int64), taken=np.zeros(n, bool),
                  plant={"户主身份证号": ~is_head, "行政区划代码": ~is_head})
    chunk.variants = [Mark(int(i), "风险是否消除", "risk_blank_means_no") for i in np.flatnonzero(blank_risk)]
    _roster_defects(ctx, chunk, is_head)
    return chunk


def _roster_defects(ctx: Context, chunk: Chunk, is_head: np.ndarray) -> None:
    """Household-level defects: each household gets at most one, and then no cell-level defect."""
    rng, preset, data = ctx.rng, ctx.preset, chunk.data
    h = chunk.group
    first = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    size = np.diff(np.r_[first, chunk.n])
    free = np.ones(len(first), bool)

    def households(cls: str, min_size: int, limit: int | None = None) -> list[int]:
        chosen = _pick(rng, np.flatnonzero(free & (size >= min_size)), preset.rate(cls), limit)
        free[chosen] = False
        return chosen.tolist()

    def members(k: int) -> range:
        return range(int(first[k]), int(first[k] + size[k]))

    def take(k: int) -> None:
        chunk.taken[first[k]:first[k] + size[k]] = True

    number = data["户编号"]
    for k in households("two_heads", 2):
        i = int(first[k] + rng.integers(1, size[k]))
        data["与户主关系"][i] = "户主"
        chunk.marks.append(Mark(i, "与户主关系", "two_heads", {"household": number[i]}))
        take(k)
    for k in households("household_size_mismatch", 1):
        wrong = int(size[k]) + (1 if size[k] == 1 or rng.random() < 0.6 else -1)
        for i in members(k):
            data["家庭人口数"][i] = wrong
            chunk.marks.append(Mark(i, "家庭人口数", "household_size_mismatch",
                                    {"household": number[i], "member_rows": int(size[k])}))
        take(k)
    for k in households("household_income_inconsistent", 2):
        i = int(first[k] + rng.integers(1, size[k]))
        true = int(data["家庭年纯收入"][i])
        data["家庭年纯收入"][i] = true + int(rng.choice([-1, 1])) * int(rng.integers(5, 60)) * 10_000
        chunk.marks.append(Mark(i, "家庭年纯收入", "household_income_inconsistent",
                                {"household": number[i], "household_value": true / 100}))
        take(k)
    budget = None if ctx.unusable_cap is None else int(ctx.unusable_cap * chunk.n) // 2
    for k in households("duplicate_key", 3, budget):
        a, b = sorted(rng.choice(np.arange(first[k] + 1, first[k] + size[k]), size=2, replace=False).tolist())
        for values in data.values():
            values[b] = values[a]
        chunk.marks.append(Mark(b, None, "duplicate_key", {"duplicate_of_index": a, "household": number[b]}))
        chunk.unusable += 2
        take(k)
    for k in households("id_birth_mismatch", 1):
        i = int(first[k] + rng.integers(0, size[k]))
        true = int(data["出生日期"][i])
        data["出生日期"][i] = true + int(rng.choice([-1, 1])) * int(rng.integers(20, 2000))
        chunk.marks.append(Mark(i, "出生日期", "id_birth_mismatch",
                                {"true_value": periods.from_days(true).isoformat()}))
        take(k)
    for k in households("gender_mismatch", 1):
        i = int(first[k] + rng.integers(0, size[k]))
        data["性别"][i] = "女" if data["性别"][i] == "男" else "男"
        chunk.marks.append(Mark(i, "性别", "gender_mismatch"))
        take(k)


# -- 民政局 --------------------------------------------------------------------------------------------
def civil_affairs_assistance(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    p, hh = city.persons, city.households
    born = p.born_month <= month
    regular = np.flatnonzero(born & (p.assist >= 0) & (p.assist_active | (p.assist_end >= month - 11)))
    temporary = np.flatnonzero(born & (p.temp_month >= 0) & (p.temp_month >= month - 5))
    person = np.concatenate([regular, temporary])
    is_temp = np.r_[np.zeros(len(regular), bool), np.ones(len(temporary), bool)]
    village = hh.village[p.hh[person]]
    order = np.lexsort((p.pid[person], village))
    person, is_temp = person[order], is_temp[order]
    for part in _chunks(np.arange(len(person))):
        idx, temp = person[part], is_temp[part]
        active = np.where(temp, p.temp_month[idx] == month, p.assist_active[idx])
        # Some grants in force already carry their planned end, which lies in the future.
        planned_end = np.where(idlib_hash(p.pid[idx]) % 5 == 0, month + 1 + idlib_hash(p.pid[idx]) % 12, -1)
        end = np.where(temp, p.temp_month[idx], np.where(active, planned_end, p.assist_end[idx]))
        yield Chunk(n=len(idx), data={
            "身份证号": p.pid[idx].copy(),
            "姓名": person_names(city, idx),
            "救助类型": np.where(temp, ASSISTANCE[2], np.array(ASSISTANCE, dtype=object)[np.maximum(p.assist[idx], 0)]),
            "行政区划代码": _village_code(city, p.hh[idx]),
            "保障起始月份": np.where(temp, p.temp_month[idx], p.assist_start[idx]).astype(np.int64),
            "保障终止月份": end.astype(np.int64),
            "月保障金额": np.where(temp, p.temp_amount[idx], p.assist_amount[idx]).astype(np.int64),
            "救助状态": np.where(active, "在保", "停保").astype(object),
        })


def idlib_hash(pid: np.ndarray) -> np.ndarray:
    """A stable per-person number from the ID (the sequence digits): deterministic, no extra draws."""
    return (pid.astype("S17").astype(np.int64) // 10) % 1000


def civil_affairs_deaths(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    p = city.persons
    idx = np.flatnonzero(p.death_month == month)
    idx = idx[np.argsort(p.death[idx], kind="stable")]
    # feeds.md asks no level of this feed's optional area code: the registry office records the
    # village mostly, sometimes only the town or the county, and sometimes leaves it out.
    geo, village = city.geo, city.households.village[p.hh[idx]]
    pick = idlib_hash(p.pid[idx]) % 20
    area = np.select([pick % 10 == 0, (pick % 10 == 1) | (pick % 10 == 2), pick == 3],
                     [0, geo.town_codes[geo.village_town[village]], geo.county_codes[geo.village_county[village]]],
                     geo.village_codes[village]).astype(np.int64)
    yield Chunk(n=len(idx), data={
        "身份证号": p.pid[idx].copy(), "姓名": person_names(city, idx), "死亡日期": p.death[idx].astype(np.int64),
        "行政区划代码": area,
    })


# -- 医保局 --------------------------------------------------------------------------------------------
def health_insurance_enrollment(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    p, hh = city.persons, city.households
    year = periods.year_month(month)[0]
    idx_all = np.flatnonzero(alive_during(city, month) & (p.insurance != 3))
    for idx in _chunks(idx_all):
        state = p.insurance[idx]
        kind = hh.kind[p.hh[idx]]
        dibao = p.assist_active[idx] & (p.assist[idx] == 0)
        tekun = p.assist_active[idx] & (p.assist[idx] == 1)
        subsidy = np.select([tekun, dibao, kind == MONITORED, kind == 0], [400, 300, 300, 200], 0) * 100
        status = np.array(INSURANCE + ("参保",), dtype=object)[np.where(state == 4, 3, state)]
        paying = state != 1
        yield Chunk(n=len(idx), data={
            "身份证号": p.pid[idx].copy(), "姓名": person_names(city, idx),
            "参保年度": np.where(state == 4, year - 1, year).astype(np.int64),
            "参保状态": status,
            "个人缴费": _or_null(paying, 40_000 - subsidy),
            "资助缴费": _or_null(paying & (subsidy > 0), subsidy),
        })


def health_medical_claims(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    p, hh = city.persons, city.households
    first = periods.to_days(periods.first_day(month))
    days = periods.days_in(month)
    people = np.flatnonzero(alive_during(city, month))
    age_all = periods.ages(p.birth, periods.last_day(month))
    serial = 0
    for number, idx in enumerate(_chunks(people, CHUNK_ROWS * 2)):
        rng = stream(ctx.seed, "claims", month, number)
        age = age_all[idx]
        chronic = p.chronic[idx]
        lam_out = np.select([age < 6, age < 40, age < 60], [0.5, 0.25, 0.4], 0.7)
        lam_in = np.select([age < 40, age < 60], [0.006, 0.012], 0.03) * np.where(chronic, 2.0, 1.0)
        counts = np.stack([rng.poisson(lam_out), rng.poisson(np.where(chronic, 0.9, 0.0)), rng.poisson(lam_in)])
        kind = np.concatenate([np.full(counts[k].sum(), k, np.int8) for k in range(3)])
        who = np.concatenate([np.repeat(idx, counts[k]) for k in range(3)])
        n = len(who)
        last_day = np.where(p.death_month[who] == month, p.death[who] - first, days - 1)
        day = first + (rng.random(n) * (last_day + 1)).astype(np.int64)
        stay = rng.integers(1, 21, n)
        visit = np.where(kind == 2, day - stay, day)
        discharge = _or_null(kind == 2, day)
        helped = (p.assist_active[who] & (p.assist[who] <= 1)) | (hh.kind[p.hh[who]] == MONITORED)
        on_list = hh.kind[p.hh[who]] != OFF_ROSTER
        total, basic, serious, aid, own = _claim_amounts(rng, kind, helped, on_list)
        order = np.lexsort((who, day))
        serial_numbers = np.array([f"YB{periods.label(month)}{serial + k + 1:09d}" for k in range(n)], dtype=object)
        serial += n
        sel = order
        data = {
            "结算流水号": serial_numbers,
            "身份证号": p.pid[who[sel]],
            "姓名": person_names(city, who[sel]),
            "就诊类型": np.array(["门诊", "门诊慢特病", "住院"], dtype=object)[kind[sel]],
            "就诊日期": visit[sel], "出院日期": discharge[sel],
            "医疗总费用": total[sel], "基本医保支付": basic[sel], "大病保险支付": serious[sel],
            "医疗救助支付": aid[sel], "个人自付": own[sel],
        }
        outpatient = kind[sel] != 2
        chunk = Chunk(n=n, data=data, taken=np.zeros(n, bool),
                      plant={"就诊日期": outpatient, "出院日期": ~outpatient})
        _claim_defects(ctx, chunk, outpatient)
        yield chunk


def _claim_amounts(rng, kind, helped, on_list):
    """Settlement in fen: basic insurance first, then serious-illness insurance on what is left above
    a threshold (lower for the roster), then medical assistance for those entitled; the rest is paid
    by the patient. The parts always add up to the total."""
    n = len(kind)
    mean = np.array([np.log(120), np.log(450), np.log(8000)])[kind]
    sigma = np.array([0.8, 0.6, 1.05])[kind]
    total = np.clip(np.exp(rng.normal(mean, sigma)), 10, 400_000)
    total = np.round(total * 100).astype(np.int64)
    share = np.where(kind == 0, 0.5, np.where(kind == 1, 0.65, rng.uniform(0.55, 0.75, n)))
    deductible = np.where(kind == 2, 80_000, 0)
    basic = np.floor(np.maximum(total - deductible, 0) * share).astype(np.int64)
    rest = total - basic
    threshold = np.where(on_list, 500_000, 1_000_000)
    serious = np.where(kind == 2, np.floor(np.maximum(rest - threshold, 0) * 0.6), 0).astype(np.int64)
    rest -= serious
    aid_share = np.where(kind == 2, 0.7, 0.1)
    aid = np.where(helped & (kind >= 1), np.minimum(np.floor(rest * aid_share), 3_000_000), 0).astype(np.int64)
    own = total - basic - serious - aid
    return total, basic, serious, aid, own


def _claim_defects(ctx: Context, chunk: Chunk, outpatient: np.ndarray) -> None:
    rng, preset, data = ctx.rng, ctx.preset, chunk.data
    for i in _pick(rng, np.arange(chunk.n), preset.rate("claim_total_mismatch")).tolist():
        true = int(data["医疗总费用"][i])
        delta = int(rng.integers(1, 500)) * 100
        data["医疗总费用"][i] = true + delta if rng.random() < 0.5 or true <= 2 * delta else true - delta
        chunk.marks.append(Mark(i, "医疗总费用", "claim_total_mismatch", {"parts_sum": true / 100}))
        chunk.taken[i] = True
    candidates = np.flatnonzero(~outpatient & ~chunk.taken)
    for i in _pick(rng, candidates, preset.rate("discharge_before_admission")).tolist():
        data["就诊日期"][i], data["出院日期"][i] = data["出院日期"][i], data["就诊日期"][i]
        chunk.marks.append(Mark(i, "出院日期", "discharge_before_admission"))
        chunk.taken[i] = True


# -- 教育局 --------------------------------------------------------------------------------------------
_GRADE_NAMES = {
    0: ("小班", "中班", "大班"), 1: ("一年级", "二年级", "三年级", "四年级", "五年级", "六年级"),
    2: ("七年级", "八年级", "九年级"), 3: ("高一", "高二", "高三"), 4: ("一年级", "二年级", "三年级"),
    5: ("大一", "大二", "大三", "大四"),
}
_COLLEGES = ("示范职业技术学院", "示范学院", "省农业大学", "省师范大学", "省理工大学", "省医科大学")
_AID = {0: ("学前教育幼儿资助", 1_000), 1: ("义务教育家庭经济困难学生生活补助", 1_000),
        2: ("义务教育家庭经济困难学生生活补助", 1_250), 3: ("普通高中国家助学金", 2_000),
        4: ("中职国家助学金", 2_000), 5: ("国家助学金", 3_300)}


def _school_names(city: City, idx: np.ndarray) -> list[str]:
    p, geo = city.persons, city.geo
    village = city.households.village[p.hh[idx]]
    town = geo.village_town[village]
    county = geo.town_county[town]
    out = []
    for st, v, t, c, pick in zip(p.stage[idx].tolist(), village.tolist(), town.tolist(), county.tolist(),
                                 p.school_pick[idx].tolist(), strict=True):
        if st == 0:
            out.append(geo.village_names[v] + "幼儿园" if pick % 2 else geo.town_names[t] + "中心幼儿园")
        elif st == 1:
            out.append(geo.town_names[t] + ("中心小学" if pick % 3 else "第二小学"))
        elif st == 2:
            out.append(geo.town_names[t] + "初级中学" if pick % 2 else geo.county_names[c][:-1] + "县第二中学")
        elif st == 3:
            out.append(geo.county_names[c] + ("第一中学" if pick % 2 else "第三中学"))
        elif st == 4:
            out.append(geo.county_names[c] + "职业中学")
        else:
            out.append(_COLLEGES[pick % len(_COLLEGES)])
    return out


def education_students(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    p, hh = city.persons, city.households
    idx_all = np.flatnonzero(alive_during(city, month) & (p.stage >= 0))
    start = school_year_start(month)
    for idx in _chunks(idx_all):
        stage = p.stage[idx]
        grade = [_GRADE_NAMES[s][min(max(g, 1), len(_GRADE_NAMES[s])) - 1]
                 for s, g in zip(stage.tolist(), p.grade[idx].tolist(), strict=True)]
        roster = hh.kind[p.hh[idx]] != OFF_ROSTER
        aided = p.aided[idx]
        item = np.array([_AID[s][0] for s in stage.tolist()], dtype=object)
        amount = np.array([_AID[s][1] for s in stage.tolist()], dtype=np.int64) * 100
        rain_dew = roster & ((stage == 4) | (stage == 5))  # 雨露计划: the roster's vocational and college students
        item[rain_dew] = "雨露计划"
        amount[rain_dew] = 300_000
        yield Chunk(n=len(idx), data={
            "身份证号": p.pid[idx].copy(), "姓名": person_names(city, idx), "学校名称": _school_names(city, idx),
            "学段": np.array(STAGES, dtype=object)[stage], "年级": grade,
            "学籍状态": np.array(SCHOOL_STATUS, dtype=object)[p.school_status[idx]],
            "资助项目": np.where(aided, item, None), "资助金额": _or_null(aided, amount),
            "学年": np.full(len(idx), start, dtype=np.int64),
        })


# -- 人社局 --------------------------------------------------------------------------------------------
_FAR = ("广东省深圳市", "广东省东莞市", "浙江省宁波市", "江苏省苏州市", "福建省厦门市", "上海市", "北京市", "浙江省义乌市")
_NEAR = ("示范市", "省会市", "东平市", "北山市")


def _job_places(city: City, idx: np.ndarray) -> list[str | None]:
    p, geo = city.persons, city.geo
    village = city.households.village[p.hh[idx]]
    out: list[str | None] = []
    for form, v, pick in zip(p.job_form[idx].tolist(), village.tolist(), p.job_place[idx].tolist(), strict=True):
        county = geo.county_names[int(geo.village_county[v])]
        if form < 0:
            out.append(None)
        elif form == 0 or form >= 4:
            out.append(county + geo.town_names[int(geo.village_town[v])])
        elif form == 1:
            out.append(_NEAR[pick % len(_NEAR)])
        elif form == 2:
            out.append(_FAR[pick % len(_FAR)])
        else:
            out.append(geo.village_names[v] + "公益性岗位")
    return out


def hrss_employment(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    p = city.persons
    age = periods.ages(p.birth, periods.last_day(month))
    idx_all = np.flatnonzero(alive_during(city, month) & p.in_jobs_feed & (age >= 16))
    for idx in _chunks(idx_all):
        employed = p.employed[idx]
        form = p.job_form[idx]
        welfare = form == PUBLIC_WELFARE_JOB
        yield Chunk(n=len(idx), data={
            "身份证号": p.pid[idx].copy(), "姓名": person_names(city, idx),
            "就业状态": np.where(employed, "已就业", "未就业").astype(object),
            "就业形式": np.where(employed, np.array(JOB_FORMS + ("",), dtype=object)[form], None),
            "就业地点": _job_places(city, idx),
            "月均工资": _or_null(employed, p.wage[idx].astype(np.int64) * 100),
            "本年务工月数": p.work_months[idx].astype(np.int64),
            "公益性岗位工资发放至": np.where(welfare, p.paid_to[idx], -1).astype(np.int64),
        })


def hrss_pension_enrollment(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    p, hh = city.persons, city.households
    age = periods.ages(p.birth, periods.last_day(month))
    idx_all = np.flatnonzero(alive_during(city, month) & (p.pension < 4) & (age >= 16))
    for idx in _chunks(idx_all):
        state = p.pension[idx]
        paying = state == 0
        roster = hh.kind[p.hh[idx]] != OFF_ROSTER
        tier = p.pension_tier[idx].astype(np.int64)
        yield Chunk(n=len(idx), data={
            "身份证号": p.pid[idx].copy(), "姓名": person_names(city, idx),
            "参保状态": np.array(PENSION, dtype=object)[state],
            "缴费档次": _or_null(paying, tier * 100),
            "政府代缴": np.where(paying, (roster & (tier == 100)).astype(np.int8), -1).astype(np.int8),
        })


# -- 住建局 --------------------------------------------------------------------------------------------
def housing_safety(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    p, hh = city.persons, city.households
    head = hh.head
    present = alive_at_end(city, month)[head] | on_roster(city, month)[head]
    households = np.flatnonzero((hh.grade >= 0) & present & (hh.assessed_on <= periods.to_days(periods.last_day(month))))
    households = households[np.lexsort((hh.serial[households], hh.village[households]))]
    for h in _chunks(households):
        grade = hh.grade[h]
        status = hh.rebuild[h]
        chunk = Chunk(n=len(h), taken=np.zeros(len(h), bool), data={
            "户主身份证号": p.pid[head[h]], "户主姓名": person_names(city, head[h]),
            "行政区划代码": _village_code(city, h),
            "鉴定等级": np.array(GRADES, dtype=object)[grade], "鉴定日期": hh.assessed_on[h].astype(np.int64),
            "改造状态": np.array(REBUILD, dtype=object)[status],
            "竣工日期": _or_null(status == REBUILT, hh.rebuilt_on[h]),
        })
        bad = np.flatnonzero(grade >= 2)
        for i in _pick(ctx.rng, bad, ctx.preset.rate("cd_house_no_rebuild_needed")).tolist():
            true = chunk.data["改造状态"][i]
            chunk.data["改造状态"][i] = "无需改造"
            chunk.data["竣工日期"][i] = NULL
            chunk.marks.append(Mark(i, "改造状态", "cd_house_no_rebuild_needed", {"true_value": true}))
            chunk.taken[i] = True
        yield chunk


def housing_village_environment(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    geo, v = city.geo, city.villages
    n = len(geo.village_codes)
    toilets = v.toilets.astype(np.int64).copy()
    chunk = Chunk(n=n, taken=np.zeros(n, bool), data={
        "行政区划代码": geo.village_codes.copy(), "村名": list(geo.village_names),
        "总户数": geo.village_households.astype(np.int64), "卫生厕所户数": toilets,
        "生活污水治理": v.sewage.astype(np.int8), "生活垃圾收运处置": v.garbage.astype(np.int8),
        "统计年度": np.full(n, periods.year_month(month)[0], dtype=np.int64),
    })
    for i in _pick(ctx.rng, np.arange(n), ctx.preset.rate("toilets_exceed_households")).tolist():
        toilets[i] = chunk.data["总户数"][i] + int(ctx.rng.integers(1, 60))
        chunk.marks.append(Mark(i, "卫生厕所户数", "toilets_exceed_households"))
        chunk.taken[i] = True
    yield chunk


# -- 水务局 --------------------------------------------------------------------------------------------
def water_supply(ctx: Context) -> Iterator[Chunk]:
    city, month = ctx.city, ctx.month
    geo, v = city.geo, city.villages
    n = len(geo.village_codes)
    total = v.water_total.astype(np.int64).copy()
    tap = np.minimum(v.tap.astype(np.int64), total)
    outage = v.outage.astype(np.int64).copy()
    chunk = Chunk(n=n, taken=np.zeros(n, bool), data={
        "行政区划代码": geo.village_codes.copy(), "村名": list(geo.village_names),
        "供水方式": np.where(v.central_water, "集中供水", "分散供水").astype(object), "总户数": total,
        "自来水入户户数": tap, "水质检测达标": v.water_ok.astype(np.int8), "本月断水天数": outage,
        "统计月份": np.full(n, month, dtype=np.int64),
    })
    rng, preset = ctx.rng, ctx.preset
    for i in _pick(rng, np.arange(n), preset.rate("tap_exceeds_households")).tolist():
        tap[i] = total[i] + int(rng.integers(1, 40))
        chunk.marks.append(Mark(i, "自来水入户户数", "tap_exceeds_households"))
        chunk.taken[i] = True
    for i in _pick(rng, np.flatnonzero(~chunk.taken), preset.rate("outage_days_out_of_range")).tolist():
        true = int(outage[i])
        outage[i] = -int(rng.integers(1, 4)) if rng.random() < 0.7 else periods.days_in(month) + int(rng.integers(1, 15))
        chunk.marks.append(Mark(i, "本月断水天数", "outage_days_out_of_range", {"true_value": true}))
        chunk.taken[i] = True
    # The water bureau's own household count: a warning-level disagreement with the housing bureau.
    for i in _pick(rng, np.flatnonzero(~chunk.taken), preset.rate("cross_feed_total_mismatch")).tolist():
        housing_total = int(total[i])
        total[i] = housing_total + int(rng.integers(3, 40))
        chunk.marks.append(Mark(i, "总户数", "cross_feed_total_mismatch",
                                {"other_feed": "housing_village_environment", "other_value": housing_total}))
        chunk.taken[i] = True
    yield chunk


# -- 乡村振兴局: projects and problems -------------------------------------------------------------------
_PROJECT_STATUS = ("未开工", "在建", "已完工")
_PROBLEM_STATUS = ("未整改", "整改中", "已整改", "长期坚持")


def rural_projects(ctx: Context) -> Iterator[Chunk]:
    projects = ctx.city.projects
    n = len(projects)
    yield Chunk(n=n, data={
        "项目编号": [x.number for x in projects], "项目名称": [x.name for x in projects],
        "项目类型": [x.kind for x in projects], "行政区划代码": np.array([x.area for x in projects], np.int64),
        "计划投资": np.array([x.planned_wan for x in projects], np.int64),
        "已拨付": np.array([x.paid_wan if (x.paid_wan or x.status) else NULL for x in projects], np.int64),
        "计划完工日期": np.array([x.planned_end for x in projects], np.int64),
        "实际完工日期": _dates([x.finished for x in projects]),
        "项目状态": [_PROJECT_STATUS[x.status] for x in projects],
        "带动脱贫户数": np.array([x.households for x in projects], np.int64),
    })


def rectification_problems(ctx: Context) -> Iterator[Chunk]:
    problems = ctx.city.problems
    yield Chunk(n=len(problems), data={
        "问题编号": [x.number for x in problems], "问题来源": [x.source for x in problems],
        "问题描述": [x.text for x in problems], "责任单位": [x.unit for x in problems],
        "行政区划代码": np.array([x.area for x in problems], np.int64),
        "发现日期": np.array([x.found for x in problems], np.int64),
        "整改时限": np.array([x.deadline for x in problems], np.int64),
        "整改状态": [_PROBLEM_STATUS[x.status] for x in problems],
        "整改完成日期": _dates([x.done for x in problems]),
    })


# -- 12345 热线 ----------------------------------------------------------------------------------------
def hotline_tickets(ctx: Context) -> Iterator[Chunk]:
    city = ctx.city
    p = city.persons
    tickets = sorted(city.tickets, key=lambda t: t.number)
    n = len(tickets)
    person = np.array([max(t.person, 0) for t in tickets], dtype=np.int64)
    full_names = person_names(city, person) if n else np.array([], dtype=object)
    caller_ids: list[str] = []
    caller_names: list[str] = []
    marks: list[Mark] = []
    honour_partial = ctx.preset.rate("id_partial") > 0
    for i, t in enumerate(tickets):
        pid = p.pid[t.person].decode() if t.person >= 0 else ""
        if t.caller_name == "full":
            caller_names.append(str(full_names[i]))
        elif t.caller_name == "title":
            caller_names.append(str(full_names[i])[0] + ("先生" if p.male[t.person] else "女士"))
        else:
            caller_names.append(t.caller_name)
        if t.id_shown == "valid":
            caller_ids.append(pid)
        elif t.id_shown == "partial" and honour_partial:
            caller_ids.append(idlib.partial(pid, int(t.number[-3:])))
            marks.append(Mark(i, "诉求人身份证号", "id_partial"))
        else:
            caller_ids.append("")
    poverty = np.array([t.kind == "涉贫求助" for t in tickets], dtype=bool)
    chunk = Chunk(n=n, taken=np.zeros(n, bool), marks=marks, data={
        "工单编号": [t.number for t in tickets], "来电日期": np.array([t.opened for t in tickets], np.int64),
        "诉求人姓名": caller_names, "诉求人身份证号": np.array([c.encode() for c in caller_ids], dtype="S18"),
        "联系电话": [t.phone for t in tickets], "行政区划代码": np.array([t.area for t in tickets], np.int64),
        "诉求类型": [t.kind for t in tickets], "诉求摘要": [t.summary for t in tickets],
        "办理状态": [t.status for t in tickets], "办结日期": _dates([t.closed for t in tickets]),
    })
    # Dates and areas are damaged only on tickets that are not 涉贫求助, so I23 and W09 stay exact.
    chunk.plant = {"来电日期": ~poverty, "办结日期": ~poverty, "行政区划代码": ~poverty}
    for m in marks:
        chunk.taken[m.index] = True
    yield chunk


BUILDERS = {
    "rural_roster": rural_roster, "civil_affairs_assistance": civil_affairs_assistance,
    "civil_affairs_deaths": civil_affairs_deaths, "health_insurance_enrollment": health_insurance_enrollment,
    "health_medical_claims": health_medical_claims, "education_students": education_students,
    "hrss_employment": hrss_employment, "hrss_pension_enrollment": hrss_pension_enrollment,
    "housing_safety": housing_safety, "housing_village_environment": housing_village_environment,
    "rural_projects": rural_projects, "water_supply": water_supply, "hotline_tickets": hotline_tickets,
    "rectification_problems": rectification_problems,
}


def estimated_rows(feed: str, city: City, month: int) -> int:
    """Rows a feed will have this month (roughly), to decide whether it can come as XLSX."""
    p, hh = city.persons, city.households
    if feed == "rural_roster":
        return int(on_roster(city, month).sum())
    if feed == "education_students":
        return int((p.stage >= 0).sum())
    if feed == "housing_safety":
        return int((hh.grade >= 0).sum())
    if feed == "hotline_tickets":
        return len(city.tickets)
    if feed in ("rural_projects", "rectification_problems"):
        return len(city.projects) + len(city.problems)
    return len(p)
