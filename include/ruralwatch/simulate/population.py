"""One synthetic population: households and persons as columns of numpy arrays.

Arrays rather than objects so that a million persons fit in a few hundred megabytes and every monthly
step is a handful of vectorised operations. Code values index the vocabularies below (the spec's own
Chinese terms); -1 means "none".
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from . import ids, names, periods
from .geography import Geography, geography
from .rng import stream

ROLES = ("户主", "配偶", "子", "女", "父母", "孙子女", "兄弟姐妹", "其他")
HEAD, SPOUSE, SON, DAUGHTER, PARENT, GRANDCHILD, SIBLING, OTHER = range(8)
KINDS = ("脱贫户", "监测户", "一般户")  # 一般户: not on the roster
POVERTY_FREED, MONITORED, OFF_ROSTER = range(3)
CATEGORIES = ("脱贫不稳定户", "边缘易致贫户", "突发严重困难户")
LABOUR = ("普通劳动力", "技能劳动力", "弱劳动力或半劳动力", "丧失劳动力", "无劳动力")
STAGES = ("学前", "小学", "初中", "高中", "中职", "高校")
SCHOOL_STATUS = ("在读", "休学", "辍学", "毕业", "转学")
IN_SCHOOL, SUSPENDED, DROPPED_OUT, GRADUATED, TRANSFERRED = range(5)
JOB_FORMS = ("县内务工", "省内县外务工", "省外务工", "公益性岗位", "自主创业", "灵活就业")
PUBLIC_WELFARE_JOB = 3
INSURANCE = ("参保", "未参保", "中断")  # 3: absent from the feed, 4: only last year's row
PENSION = ("参保缴费", "待遇领取", "未参保", "暂停")  # 4: absent from the feed
GRADES = ("A", "B", "C", "D")
REBUILD = ("无需改造", "未改造", "改造中", "已竣工")
NO_NEED, NOT_STARTED, REBUILDING, REBUILT = range(4)
ASSISTANCE = ("农村低保", "特困供养", "临时救助")

_SIZE_P = np.array([0.15, 0.22, 0.21, 0.19, 0.12, 0.07, 0.04])


class Table:
    """Named equal-length numpy columns that can grow (births, new households)."""

    def __init__(self, **columns: np.ndarray) -> None:
        self.__dict__["_cols"] = dict(columns)

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self._cols[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: np.ndarray) -> None:
        self._cols[name] = value

    def __len__(self) -> int:
        return len(next(iter(self._cols.values())))

    def append(self, **columns: np.ndarray) -> np.ndarray:
        """Append rows; columns not given get their -1/False/empty default. Returns the new indices."""
        n = len(next(iter(columns.values())))
        start = len(self)
        for name, old in self._cols.items():
            new = columns.get(name)
            if new is None:
                new = np.full(n, -1 if old.dtype.kind in "iu" else (False if old.dtype == bool else 0),
                              dtype=old.dtype)
            self._cols[name] = np.concatenate([old, np.asarray(new, dtype=old.dtype)])
        return np.arange(start, start + n)


@dataclass
class Ticket:
    number: str
    opened: int            # epoch days
    person: int            # -1: a caller the city's population does not contain
    caller_name: str        # "full" (the person's name), "title" (张先生) or the name an outsider gave
    id_shown: str          # "valid", "missing" or "partial"
    phone: str
    area: int
    kind: str
    summary: str
    closed: int = -1       # epoch days, -1 while open
    status: str = "待核查"


@dataclass
class Project:
    number: str
    name: str
    kind: str
    area: int              # 0: the whole city (blank)
    planned_wan: int       # hundredths of 万元
    paid_wan: int
    planned_end: int       # epoch days
    status: int            # 0 未开工, 1 在建, 2 已完工
    finished: int = -1
    households: int = 0


@dataclass
class Problem:
    number: str
    source: str
    text: str
    unit: str
    area: int              # 0: blank
    found: int
    deadline: int
    status: int            # index into 未整改/整改中/已整改/长期坚持
    done: int = -1


@dataclass
class City:
    seed: int
    geo: Geography
    persons: Table
    households: Table
    villages: Table
    tickets: list[Ticket] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    month: int = -1
    counters: dict[str, int] = field(default_factory=dict)

    def next_serial(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]


def household_number(geo: Geography, village: np.ndarray, serial: np.ndarray) -> np.ndarray:
    """户编号: the village code followed by a 4-digit serial (16 digits, always written as text)."""
    return geo.village_codes[village] * 10_000 + serial


def build_city(persons: int, seed: int, first_month: int) -> City:
    """The population as it stands on the first day of the first simulated month."""
    geo = geography()
    rng = stream(seed, "population")
    ref = periods.to_days(periods.first_day(first_month))

    sizes = _household_sizes(rng, persons)
    n_hh = len(sizes)
    weights = geo.village_households / geo.village_households.sum()
    village = np.sort(rng.choice(len(geo.village_codes), size=n_hh, p=weights)).astype(np.int32)
    serial = np.zeros(n_hh, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(village)) + 1]
    serial[:] = np.arange(n_hh) - np.repeat(starts, np.diff(np.r_[starts, n_hh])) + 1

    hh_of, role, age, male = _compose(rng, sizes)
    n = len(hh_of)
    # Ages are clipped at their bounds; a year's jitter keeps the clipped ones from sharing a birthday.
    birth = ref - np.floor((age + rng.random(n) * 0.999) * 365.2425).astype(np.int64) - 1
    birth = np.minimum(birth, ref - 1).astype(np.int32)
    county6 = (geo.village_codes[village[hh_of]] // 10**6).astype(np.int64)
    pid = _assign_ids(rng, county6, birth, male, first_slot=1, slots=398)

    surname = names.draw_surnames(rng, n)
    family_surname = surname[np.r_[0, np.cumsum(sizes)[:-1]]]
    blood = np.isin(role, (HEAD, SON, DAUGHTER, GRANDCHILD, SIBLING)) | ((role == PARENT) & male)
    surname = np.where(blood, family_surname[hh_of], surname).astype(np.int16)
    given1, given2 = names.draw_given(rng, n)

    kind = np.where(rng.random(n_hh) < 0.13, OFF_ROSTER,
                    np.where(rng.random(n_hh) < 0.045, MONITORED, POVERTY_FREED)).astype(np.int8)
    hh = _households(rng, geo, village, serial, kind, sizes, ref)
    hh.head = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int32)

    p = Table(
        hh=hh_of.astype(np.int32), role=role.astype(np.int8), male=male, birth=birth, pid=pid,
        surname=surname, given1=given1, given2=given2, death=np.full(n, -1, np.int32),
        death_month=np.full(n, -1, np.int32), roster_until=np.full(n, 1 << 30, np.int32),
        assist_until=np.full(n, 1 << 30, np.int32), born_month=np.full(n, -1, np.int32),
    )
    city = City(seed=seed, geo=geo, persons=p, households=hh, villages=_villages(rng, geo))
    age_now = periods.ages(birth, periods.first_day(first_month))
    _traits(rng, city, age_now, first_month)
    _assistance(rng, city, age_now, first_month)
    _initial_projects(rng, city, ref)
    _initial_problems(rng, city, ref)
    return city


def _household_sizes(rng: np.random.Generator, persons: int) -> np.ndarray:
    estimate = int(persons / 3.2) + 10
    sizes = rng.choice(np.arange(1, 8), size=estimate, p=_SIZE_P / _SIZE_P.sum())
    while sizes.sum() < persons:
        sizes = np.concatenate([sizes, rng.choice(np.arange(1, 8), size=estimate // 10 + 10,
                                                  p=_SIZE_P / _SIZE_P.sum())])
    cut = int(np.searchsorted(np.cumsum(sizes), persons))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= sizes.sum() - persons
    if sizes[-1] <= 0:
        sizes = sizes[:-1]
    return sizes.astype(np.int32)


def _compose(rng: np.random.Generator, sizes: np.ndarray):
    """Who lives in each household: a head, usually a spouse, children, elders, sometimes a married
    son with his wife (其他) and their children (孙子女). Ages are in years at the reference day."""
    n_hh = len(sizes)
    head_age = np.clip(rng.normal(54, 13, n_hh), 22, 92)
    head_male = rng.random(n_hh) < 0.86
    # Drawn at once (the stream stays what it was) but turned into Python floats a block at a time: as
    # one nested list, a million persons' draws would take a quarter of a gigabyte.
    draws = _rows(rng.random((n_hh, 24)))
    hh_of: list[int] = []
    role: list[int] = []
    age: list[float] = []
    male: list[bool] = []

    def add(h: int, r: int, a: float, m: bool) -> None:
        hh_of.append(h)
        role.append(r)
        age.append(max(a, 0.02))
        male.append(m)

    for h, (size, a, hm, r) in enumerate(zip(sizes.tolist(), head_age.tolist(), head_male.tolist(), draws,
                                             strict=True)):
        add(h, HEAD, a, hm)
        rest = size - 1
        if rest and r[0] < (0.9 if a < 72 else 0.6):
            add(h, SPOUSE, a + (r[1] - 0.65) * 9, not hm)
            rest -= 1
        if rest and a < 56 and r[2] < 0.3:
            n_parents = 1 if rest == 1 or r[3] < 0.5 else 2
            for k in range(n_parents):
                add(h, PARENT, min(a + 24 + r[4 + k] * 9, 96), k == 1 if n_parents == 2 else r[6] < 0.4)
            rest -= n_parents
        if rest >= 3 and a >= 46 and r[7] < 0.55:
            son = a - 22 - r[8] * 8
            add(h, SON, son, True)
            add(h, OTHER, son + (r[9] - 0.6) * 5, False)
            rest -= 2
            for k in range(rest):
                add(h, GRANDCHILD, max(son - 23 - r[10 + k] * 6 - k * 2.5, 0.3 + r[17 + k] * 2), r[12 + k] < 0.52)
            rest = 0
        child = a - 23 - r[14] * 9
        k = 0
        while rest:
            if child > 0.2:
                is_son = r[15 + k % 8] < 0.52
                add(h, SON if is_son else DAUGHTER, child, is_son)
                child -= 1.5 + r[18 + k % 6] * 4
            else:
                add(h, SIBLING if r[20] < 0.6 else OTHER, a + (r[21] - 0.5) * 16, r[22] < 0.5)
            rest -= 1
            k += 1
    return (np.array(hh_of, dtype=np.int32), np.array(role, dtype=np.int8), np.array(age),
            np.array(male, dtype=bool))


def _rows(array: np.ndarray, block: int = 4096) -> Iterator[list[float]]:
    for start in range(0, len(array), block):
        yield from array[start:start + block].tolist()


def _assign_ids(rng: np.random.Generator, county6: np.ndarray, birth: np.ndarray, male: np.ndarray,
                first_slot: int, slots: int) -> np.ndarray:
    """Unique IDs: the 3-digit sequence is 2 * slot + (1 for men), the slot unique per (county, birth
    date, sex). The initial population uses slots 1-398 and newborns 400-499 (sequences 800-999), so
    a newborn can never collide with anyone born before the simulation started."""
    order = np.lexsort((male, birth, county6))
    key = np.stack([county6[order], birth[order], male[order].astype(np.int64)])
    new_group = np.r_[True, np.any(key[:, 1:] != key[:, :-1], axis=0)]
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    rank = np.arange(len(order)) - starts[group]
    offset = rng.integers(0, slots, size=len(starts))[group]
    seq = np.empty(len(order), dtype=np.int64)
    seq[order] = 2 * ((offset + rank) % slots + first_slot) + male[order]
    y, m, d = periods.ymd(birth)
    return ids.make_ids(county6, y * 10000 + m * 100 + d, seq)


def _households(rng, geo, village, serial, kind, sizes, ref) -> Table:
    n = len(village)
    category = np.where(kind == MONITORED, rng.choice(3, size=n, p=[0.35, 0.45, 0.20]), -1).astype(np.int8)
    included = np.where(kind == MONITORED, ref - rng.integers(20, 5 * 365, n), -1).astype(np.int32)
    cleared = (kind == MONITORED) & (rng.random(n) < 0.6)
    cleared_on = np.where(cleared, np.minimum(included + rng.integers(60, 900, n), ref - 1), -1).astype(np.int32)
    resettled = geo.village_resettlement[village]
    relocated = (kind != OFF_ROSTER) & (rng.random(n) < np.where(resettled, 0.6, 0.03))
    median = np.select([kind == POVERTY_FREED, (kind == MONITORED) & cleared, kind == MONITORED],
                       [15_500, 11_500, 8_200], 21_000)
    spread = np.where(kind == OFF_ROSTER, 0.5, 0.38)
    per_capita = np.exp(rng.normal(np.log(median), spread))
    income = np.maximum(per_capita * sizes, 2_500) * 100
    whole = rng.random(n) < 0.75
    income = np.where(whole, np.round(income / 100) * 100, np.round(income)).astype(np.int64)

    assessed = (kind != OFF_ROSTER) | (rng.random(n) < 0.3)
    grade = np.where(assessed, rng.choice(4, size=n, p=[0.52, 0.34, 0.11, 0.03]), -1).astype(np.int8)
    bad = grade >= 2
    status = np.where(bad, rng.choice([REBUILT, REBUILDING, NOT_STARTED], size=n, p=[0.88, 0.07, 0.05]),
                      NO_NEED).astype(np.int8)
    assessed_on = np.where(assessed, ref - rng.integers(90, 7 * 365, n), -1).astype(np.int32)
    rebuilt_on = np.where(status == REBUILT, np.minimum(assessed_on + rng.integers(90, 700, n), ref - 1),
                          -1).astype(np.int32)
    return Table(
        village=village, serial=serial, number=household_number(geo, village, serial), kind=kind,
        category=category, included=included, cleared=cleared, cleared_on=cleared_on, relocated=relocated,
        income=income, grade=grade, rebuild=status, assessed_on=assessed_on, rebuilt_on=rebuilt_on,
        head=np.zeros(n, np.int32), joined_month=np.full(n, -1, np.int32),
    )


def _villages(rng: np.random.Generator, geo: Geography) -> Table:
    n = len(geo.village_codes)
    total = geo.village_households.astype(np.int32)
    central = rng.random(n) < 0.85
    return Table(
        toilets=(total * rng.uniform(0.55, 0.97, n)).astype(np.int32),
        sewage=rng.random(n) < 0.45,
        garbage=rng.random(n) < 0.93,
        central_water=central,
        tap=(total * np.where(central, rng.uniform(0.9, 1.0, n), rng.uniform(0.3, 0.8, n))).astype(np.int32),
        # The water bureau counts households its own way: a few villages differ from the housing bureau.
        water_total=total.copy(),
        outage=np.zeros(n, np.int16),
        water_ok=np.ones(n, bool),
    )


def _traits(rng: np.random.Generator, city: City, age: np.ndarray, month: int) -> None:
    """Labour, health, schooling, work, insurance and pension, by age and household."""
    p, hh = city.persons, city.households
    n = len(p)
    kind = hh.kind[p.hh]
    working_age = (age >= 16) & (age <= 64)
    labour = np.full(n, 4, np.int8)
    labour[working_age] = rng.choice(5, size=int(working_age.sum()), p=[0.58, 0.17, 0.13, 0.06, 0.06])
    old = age >= 65
    labour[old] = rng.choice([2, 3, 4], size=int(old.sum()), p=[0.35, 0.25, 0.40])
    p.labour = labour
    able = working_age & (labour <= 2)
    p.willing = np.where(able, rng.random(n) < 0.9, np.where(working_age, rng.random(n) < 0.1, False))
    # 就业意愿 is only asked of people of working age; it is blank for children and the old.
    p.willing_known = working_age
    p.chronic = rng.random(n) < np.select([age < 40, age < 60], [0.03, 0.10], 0.22)

    _schooling(rng, city, age, month)
    student = p.stage >= 0
    p.labour[student & (age < 16)] = 4
    p.labour[student & (age >= 16) & (rng.random(n) < 0.6)] = 4

    on_roster = kind != OFF_ROSTER
    employed = np.where(able & p.willing, rng.random(n) < 0.93, able & (rng.random(n) < 0.1))
    employed |= old & (age <= 72) & (labour == 2) & (rng.random(n) < 0.15)
    employed &= ~(student & (p.school_status == IN_SCHOOL))
    p.employed = employed
    form = rng.choice(6, size=n, p=[0.28, 0.24, 0.30, 0.07, 0.04, 0.07]).astype(np.int8)
    form[old] = 5
    p.job_form = np.where(employed, form, -1).astype(np.int8)
    p.job_place = rng.integers(0, 1000, n).astype(np.int16)
    p.wage = _wages(rng, p.job_form)
    y, mo = periods.year_month(month)
    p.work_months = np.where(employed, rng.integers(max(mo - 4, 0), mo, n) + 1, 0).astype(np.int8)
    lag = rng.choice([0, 1, 2, 3, -1], size=n, p=[0.55, 0.35, 0.055, 0.025, 0.02])
    p.paid_to = np.where(lag >= 0, month - lag, -1).astype(np.int32)
    # The 人社局 lists the roster's people of working age (and the older ones still working).
    p.in_jobs_feed = on_roster & (working_age | employed) & (rng.random(n) < 0.98)

    insured = rng.choice(5, size=n, p=[0.987, 0.004, 0.003, 0.003, 0.003]).astype(np.int8)
    p.insurance = insured
    p.pension = np.where(age < 16, 4, np.where(age >= 60, rng.choice([1, 2], size=n, p=[0.95, 0.05]),
                                               rng.choice([0, 2, 3], size=n, p=[0.85, 0.10, 0.05]))).astype(np.int8)
    p.pension[student & (p.school_status == IN_SCHOOL) & (age < 60)] = 4
    p.pension_tier = np.where(on_roster, rng.choice([100, 200, 300, 500], size=n, p=[0.7, 0.15, 0.1, 0.05]),
                              rng.choice([100, 200, 300, 500, 1000], size=n)).astype(np.int16)
    p.in_housing_check = np.zeros(n, bool)


def _wages(rng: np.random.Generator, form: np.ndarray) -> np.ndarray:
    low = np.array([2500, 3500, 4500, 600, 3000, 1500, 0])[form]
    high = np.array([4500, 5500, 7500, 1000, 8000, 3500, 1])[form]
    return np.round(rng.uniform(low, high) / 10).astype(np.int32) * 10


def school_stage(age_sep1: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Stage and grade for a school year from the completed age on 1 September (-1: not in school)."""
    n = len(age_sep1)
    u = rng.random(n)
    stage = np.full(n, -1, np.int8)
    grade = np.zeros(n, np.int8)
    rules = [  # (min age, max age, stage, enrolment share, first grade age)
        (3, 5, 0, 0.75, 3), (6, 11, 1, 0.998, 6), (12, 14, 2, 0.995, 12),
    ]
    for lo, hi, st, share, first in rules:
        hit = (age_sep1 >= lo) & (age_sep1 <= hi) & (u < share)
        stage[hit] = st
        grade[hit] = age_sep1[hit] - first + 1
    upper = (age_sep1 >= 15) & (age_sep1 <= 17)
    stage[upper & (u < 0.55)] = 3
    stage[upper & (u >= 0.55) & (u < 0.9)] = 4
    grade[upper] = age_sep1[upper] - 14
    college = (age_sep1 >= 18) & (age_sep1 <= 21) & (u < 0.45)
    stage[college] = 5
    grade[college] = age_sep1[college] - 17
    grade[stage < 0] = 0
    return stage, grade


def school_year_start(month: int) -> int:
    y, mo = periods.year_month(month)
    return y if mo >= 9 else y - 1


def _schooling(rng: np.random.Generator, city: City, age: np.ndarray, month: int) -> None:
    p = city.persons
    start = school_year_start(month)
    age_sep1 = periods.ages(p.birth, dt.date(start, 8, 31))
    stage, grade = school_stage(age_sep1, rng)
    p.stage, p.grade = stage, grade
    status = np.full(len(p), IN_SCHOOL, np.int8)
    compulsory = (stage == 1) | (stage == 2)
    u = rng.random(len(p))
    status[compulsory & (u < 0.008)] = DROPPED_OUT
    status[(stage >= 0) & (u > 0.996)] = SUSPENDED
    status[(stage >= 0) & (u > 0.993) & (u <= 0.996)] = TRANSFERRED
    p.school_status = status
    p.school_pick = rng.integers(0, 6, len(p)).astype(np.int8)
    on_roster = city.households.kind[p.hh] != OFF_ROSTER
    p.aided = (stage >= 0) & (rng.random(len(p)) < np.where(on_roster, 0.7, 0.08))


def _assistance(rng: np.random.Generator, city: City, age: np.ndarray, month: int) -> None:
    """农村低保 for whole poor households, 特困供养 for old people living alone, and a few stopped
    cases; some off-roster households get 低保 too (the 应纳未纳 that W06 looks for)."""
    p, hh = city.persons, city.households
    n_hh = len(hh)
    members = np.bincount(p.hh, minlength=n_hh)
    per_capita = hh.income / 100 / np.maximum(members, 1)
    poor = per_capita < 11_000
    share = np.select([hh.kind == OFF_ROSTER, poor], [0.015, 0.35], 0.07)
    dibao_hh = rng.random(n_hh) < share
    alone_old = (members == 1) & (age[hh.head] >= 60) & (hh.kind != OFF_ROSTER)
    tekun_hh = alone_old & (rng.random(n_hh) < 0.35)
    dibao_hh &= ~tekun_hh
    if not (dibao_hh | tekun_hh)[hh.kind != OFF_ROSTER].any():
        # Even a small city has someone on 低保: an empty snapshot would be rejected, not "no one".
        roster = np.flatnonzero(hh.kind != OFF_ROSTER)
        dibao_hh[roster[np.argmin(per_capita[roster])]] = True
    kind = np.full(len(p), -1, np.int8)
    kind[dibao_hh[p.hh]] = 0
    kind[tekun_hh[p.hh]] = 1
    p.assist = kind
    p.assist_active = kind >= 0
    p.assist_start = np.where(kind >= 0, month - rng.integers(1, 96, len(p)), -1).astype(np.int32)
    p.assist_end = np.full(len(p), -1, np.int32)
    stopped = (kind >= 0) & (rng.random(len(p)) < 0.04)
    p.assist_active &= ~stopped
    p.assist_end[stopped] = month - rng.integers(1, 10, int(stopped.sum()))
    p.assist_start = np.minimum(p.assist_start, np.where(stopped, p.assist_end, p.assist_start))
    p.assist_amount = np.where(kind == 1, rng.integers(90, 111, len(p)) * 1000,
                               rng.integers(38, 61, len(p)) * 1000).astype(np.int32)
    p.temp_month = np.full(len(p), -1, np.int32)
    p.temp_amount = np.zeros(len(p), np.int32)


_PROJECT_KINDS = ("产业发展", "就业帮扶", "乡村建设", "易地搬迁后续扶持", "其他")
_PROJECT_NAMES = {
    "产业发展": ("{v}特色种植基地建设项目", "{v}食用菌大棚项目", "{v}肉牛养殖合作社项目", "{v}茶园提质增效项目"),
    "就业帮扶": ("{v}帮扶车间建设项目", "{v}劳务输出补助项目", "{v}技能培训项目"),
    "乡村建设": ("{v}产业路硬化项目", "{v}饮水安全巩固提升项目", "{v}村组道路建设项目", "{v}污水管网项目"),
    "易地搬迁后续扶持": ("{v}安置点配套设施项目", "{v}安置点就业帮扶车间项目"),
    "其他": ("{v}小额信贷贴息项目", "{v}防贫保险项目"),
}


def new_project(rng: np.random.Generator, city: City, today: int) -> Project:
    geo = city.geo
    kind = _PROJECT_KINDS[int(rng.choice(5, p=[0.45, 0.12, 0.3, 0.08, 0.05]))]
    v = int(rng.integers(len(geo.village_codes)))
    level = rng.random()
    if level < 0.7:
        area, place = int(geo.village_codes[v]), geo.village_names[v]
    elif level < 0.95:
        t = int(geo.village_town[v])
        area, place = int(geo.town_codes[t]), geo.town_names[t]
    else:
        area, place = 0, "示范市"
    template = _PROJECT_NAMES[kind][int(rng.integers(len(_PROJECT_NAMES[kind])))]
    county = int(geo.village_county[v])
    serial = city.next_serial(f"project{county}")
    year = periods.from_days(today).year
    planned = int(np.exp(rng.normal(np.log(80), 0.9)) * 100)
    return Project(
        number=f"XM{year}{int(geo.county_codes[county]) // 10**6}{serial:04d}",
        name=template.format(v=place), kind=kind, area=area, planned_wan=max(planned, 500), paid_wan=0,
        planned_end=today + int(rng.integers(60, 540)), status=0, households=int(rng.integers(0, 120)),
    )


def _initial_projects(rng: np.random.Generator, city: City, ref: int) -> None:
    for _ in range(40 * len(city.geo.county_codes)):
        project = new_project(rng, city, ref - int(rng.integers(30, 500)))
        progress = rng.random()
        if progress < 0.2:
            continue_status = 0
        elif progress < 0.65 or project.planned_end >= ref:
            continue_status = 1
        else:
            continue_status = 2
        project.status = continue_status
        if continue_status == 1:
            project.paid_wan = int(project.planned_wan * rng.uniform(0.1, 0.8))
        elif continue_status == 2:
            project.paid_wan = int(project.planned_wan * rng.uniform(0.85, 1.0))
            project.finished = min(project.planned_end + int(rng.integers(-60, 60)), ref - 1)
        city.projects.append(project)


_PROBLEM_SOURCES = ("国家后评估", "省级督帮", "市级督帮", "审计", "部门数据比对")
_PROBLEM_TEXTS = (
    "部分监测户帮扶措施落实不到位", "{v}饮水工程季节性缺水问题未彻底解决", "{v}部分脱贫户收入核算不准确",
    "衔接资金项目资产后续管护机制不健全", "{v}帮扶车间带动就业人数不达标", "{v}易地搬迁安置点配套设施不完善",
    "防返贫监测信息比对核查不及时", "{v}危房改造户档案资料不完整", "部分公益性岗位工资发放不及时",
    "{v}低保对象动态调整不及时",
)


def new_problem(rng: np.random.Generator, city: City, found: int) -> Problem:
    geo = city.geo
    v = int(rng.integers(len(geo.village_codes)))
    t = int(geo.village_town[v])
    c = int(geo.village_county[v])
    level = rng.random()
    if level < 0.4:
        area, place = int(geo.village_codes[v]), geo.village_names[v]
    elif level < 0.65:
        area, place = int(geo.town_codes[t]), geo.town_names[t]
    elif level < 0.9:
        area, place = int(geo.county_codes[c]), geo.county_names[c]
    else:
        area, place = 0, ""
    text = _PROBLEM_TEXTS[int(rng.integers(len(_PROBLEM_TEXTS)))].format(v=place)
    unit = (geo.town_names[t] + "人民政府") if area and level < 0.65 else (
        geo.county_names[c] + ("乡村振兴局", "民政局", "住建局", "水务局")[int(rng.integers(4))])
    year = periods.from_days(found).year
    return Problem(
        number=f"WT{year}{city.next_serial(f'problem{year}'):05d}",
        source=_PROBLEM_SOURCES[int(rng.choice(5, p=[0.1, 0.2, 0.3, 0.15, 0.25]))],
        text=text, unit=unit, area=area, found=found, deadline=found + int(rng.integers(30, 200)), status=0,
    )


def _initial_problems(rng: np.random.Generator, city: City, ref: int) -> None:
    for _ in range(120):
        problem = new_problem(rng, city, ref - int(rng.integers(10, 400)))
        u = rng.random()
        if u < 0.55:
            problem.status, problem.done = 2, min(problem.found + int(rng.integers(10, 200)), ref - 1)
        elif u < 0.65:
            problem.status = 3
        elif u < 0.85:
            problem.status = 1
        city.problems.append(problem)


def alive_at_end(city: City, month: int) -> np.ndarray:
    p = city.persons
    return ((p.death_month < 0) | (p.death_month > month)) & (p.born_month <= month)


def alive_during(city: City, month: int) -> np.ndarray:
    """Alive for at least part of the month (someone who died in it still saw a doctor before)."""
    p = city.persons
    return ((p.death_month < 0) | (p.death_month >= month)) & (p.born_month <= month)


def on_roster(city: City, month: int) -> np.ndarray:
    """Member rows of the month's roster: the household is 脱贫户/监测户, and the person is alive or
    died so recently that the 乡村振兴局 has not removed them yet (the case W07 looks for)."""
    p = city.persons
    kind = city.households.kind[p.hh]
    alive_or_lingering = alive_at_end(city, month) | ((p.death_month >= 0) & (p.roster_until >= month))
    return (kind != OFF_ROSTER) & alive_or_lingering & (p.born_month <= month)
