"""A month of life in the city: deaths, births, incomes, jobs found and lost, risks eliminated, houses
rebuilt, assistance granted and stopped, calls to the hotline, projects and problems moving on."""
from __future__ import annotations

import datetime as dt

import numpy as np

from . import names, periods
from .population import (
    DAUGHTER,
    DROPPED_OUT,
    GRANDCHILD,
    HEAD,
    IN_SCHOOL,
    MONITORED,
    NOT_STARTED,
    OFF_ROSTER,
    OTHER,
    POVERTY_FREED,
    PUBLIC_WELFARE_JOB,
    REBUILDING,
    REBUILT,
    SON,
    SPOUSE,
    City,
    Ticket,
    _assign_ids,
    _wages,
    alive_at_end,
    new_problem,
    new_project,
    school_stage,
    school_year_start,
)
from .rng import stream

_ANNUAL_DEATH = ((1, 0.004), (40, 0.0008), (60, 0.003), (70, 0.01), (80, 0.03), (90, 0.08), (200, 0.2))


def advance(city: City, month: int) -> None:
    """Move the city from the start of `month` to its end."""
    rng = stream(city.seed, "month", month)
    first = periods.to_days(periods.first_day(month))
    days = periods.days_in(month)
    _deaths(rng, city, month, first, days)
    _births(rng, city, month, first, days)
    _new_heads(city, month)
    _monitoring(rng, city, month, first, days)
    _incomes(rng, city)
    _jobs(rng, city, month)
    _school(rng, city, month)
    _housing(rng, city, month, first, days)
    _assistance(rng, city, month)
    _villages(rng, city)
    _tickets(rng, city, month, first, days)
    _projects(rng, city, month, first, days)
    _problems(rng, city, first, days)
    city.month = month


def _deaths(rng, city: City, month: int, first: int, days: int) -> None:
    p = city.persons
    alive = alive_at_end(city, month - 1) & (p.born_month < month)
    age = periods.ages(p.birth, periods.first_day(month))
    annual = np.select([age < bound for bound, _ in _ANNUAL_DEATH], [q for _, q in _ANNUAL_DEATH])
    annual = annual * np.where(p.chronic, 1.6, 1.0)
    dies = alive & (rng.random(len(p)) < annual / 12)
    n = int(dies.sum())
    p.death[dies] = first + rng.integers(0, days, n)
    p.death_month[dies] = month
    # Registers lag: most deaths leave the roster and the assistance list in the month they happen,
    # some a month or two later (which is what W07 finds).
    p.roster_until[dies] = month + rng.choice([-1, 0, 1], size=n, p=[0.65, 0.25, 0.10])
    p.assist_until[dies] = month + rng.choice([-1, 0, 1], size=n, p=[0.6, 0.3, 0.1])


def _births(rng, city: City, month: int, first: int, days: int) -> None:
    p, hh = city.persons, city.households
    age = periods.ages(p.birth, periods.first_day(month))
    mothers = (alive_at_end(city, month) & ~p.male & (age >= 20) & (age <= 40)
               & np.isin(p.role, (HEAD, SPOUSE, OTHER)))
    mothers &= rng.random(len(p)) < 0.006
    mother = np.flatnonzero(mothers)
    n = len(mother)
    if not n:
        return
    male = rng.random(n) < 0.52
    birth = (first + rng.integers(0, days, n)).astype(np.int32)
    household = p.hh[mother]
    role = np.where(p.role[mother] == OTHER, GRANDCHILD, np.where(male, SON, DAUGHTER)).astype(np.int8)
    county6 = city.geo.village_codes[hh.village[household]] // 10**6
    pid = _assign_ids(rng, county6, birth, male, first_slot=400, slots=100)
    given1, given2 = names.draw_given(rng, n)
    inherits_dibao = (p.assist[mother] == 0) & p.assist_active[mother]
    city.persons.append(
        hh=household, role=role, male=male, birth=birth, pid=pid,
        surname=p.surname[hh.head[household]], given1=given1, given2=given2,
        death=np.full(n, -1), death_month=np.full(n, -1), roster_until=np.full(n, 1 << 30),
        assist_until=np.full(n, 1 << 30), born_month=np.full(n, month), labour=np.full(n, 4),
        willing=np.zeros(n, bool), willing_known=np.zeros(n, bool), chronic=np.zeros(n, bool),
        stage=np.full(n, -1), grade=np.zeros(n), school_status=np.zeros(n), school_pick=np.zeros(n),
        aided=np.zeros(n, bool), employed=np.zeros(n, bool), job_form=np.full(n, -1),
        job_place=np.zeros(n), wage=np.zeros(n), work_months=np.zeros(n), paid_to=np.full(n, -1),
        in_jobs_feed=np.zeros(n, bool), insurance=np.zeros(n), pension=np.full(n, 4),
        pension_tier=np.full(n, 100), in_housing_check=np.zeros(n, bool),
        assist=np.where(inherits_dibao, 0, -1), assist_active=inherits_dibao,
        assist_start=np.where(inherits_dibao, month, -1), assist_end=np.full(n, -1),
        assist_amount=p.assist_amount[mother], temp_month=np.full(n, -1), temp_amount=np.zeros(n),
    )


def _new_heads(city: City, month: int) -> None:
    """A head who has left the roster is succeeded by the spouse, else the oldest member alive."""
    p, hh = city.persons, city.households
    head = hh.head
    gone = np.flatnonzero((p.death_month[head] >= 0) & (p.roster_until[head] < month))
    if not len(gone):
        return
    alive = alive_at_end(city, month)
    order = np.argsort(p.hh, kind="stable")
    sorted_hh = p.hh[order]
    for h in gone.tolist():
        members = order[np.searchsorted(sorted_hh, h):np.searchsorted(sorted_hh, h, side="right")]
        members = members[alive[members]]
        if not len(members):
            continue
        spouses = members[p.role[members] == SPOUSE]
        new = int(spouses[0]) if len(spouses) else int(members[np.argmin(p.birth[members])])
        p.role[new] = HEAD
        hh.head[h] = new


def _monitoring(rng, city: City, month: int, first: int, days: int) -> None:
    hh = city.households
    n = len(hh)
    sizes = np.bincount(city.persons.hh[alive_at_end(city, month)], minlength=n)
    day = first + rng.integers(0, days, n)
    joins = (hh.kind == OFF_ROSTER) & (sizes > 0) & (rng.random(n) < 0.0015)
    slips = (hh.kind == POVERTY_FREED) & (rng.random(n) < 0.0008)
    hh.category[joins] = np.where(rng.random(int(joins.sum())) < 0.7, 1, 2)
    hh.category[slips] = np.where(rng.random(int(slips.sum())) < 0.7, 0, 2)
    hh.income[joins] = np.round(sizes[joins] * rng.uniform(6_000, 11_000, int(joins.sum()))) * 100
    hh.grade[joins & (hh.grade < 0)] = 1
    hh.assessed_on[joins & (hh.assessed_on < 0)] = first
    changed = joins | slips
    hh.kind[changed] = MONITORED
    hh.included[changed] = day[changed]
    hh.cleared[changed] = False
    hh.cleared_on[changed] = -1
    hh.joined_month[joins] = month
    clears = (hh.kind == MONITORED) & ~hh.cleared & ~changed & (rng.random(n) < 0.025)
    hh.cleared[clears] = True
    hh.cleared_on[clears] = np.maximum(day[clears], hh.included[clears] + 1)


def _incomes(rng, city: City) -> None:
    hh = city.households
    revised = (hh.kind != OFF_ROSTER) & (rng.random(len(hh)) < 0.02)
    factor = rng.uniform(0.85, 1.2, int(revised.sum()))
    hh.income[revised] = (np.round(hh.income[revised] * factor / 100) * 100).astype(np.int64)


def _jobs(rng, city: City, month: int) -> None:
    p = city.persons
    n = len(p)
    age = periods.ages(p.birth, periods.first_day(month))
    able = (age >= 16) & (age <= 64) & (p.labour <= 2) & ~((p.stage >= 0) & (p.school_status == IN_SCHOOL))
    u = rng.random(n)
    loses = p.employed & (u < 0.015)
    finds = ~p.employed & able & p.willing & (u > 0.85)
    p.employed[loses] = False
    p.job_form[loses] = -1
    new_form = rng.choice(6, size=n, p=[0.28, 0.24, 0.30, 0.07, 0.04, 0.07]).astype(np.int8)
    p.job_form[finds] = new_form[finds]
    p.employed[finds] = True
    p.wage[finds] = _wages(rng, p.job_form)[finds]
    p.in_jobs_feed[finds & (city.households.kind[p.hh] != OFF_ROSTER)] = True
    if month % 12 == 0:
        p.work_months[:] = p.employed
    else:
        p.work_months[:] = np.minimum(p.work_months + p.employed, month % 12 + 1)
    welfare = p.job_form == PUBLIC_WELFARE_JOB
    pays = welfare & (rng.random(n) < 0.9)
    paid_to = month - rng.choice([0, 1], size=n, p=[0.4, 0.6])
    p.paid_to[pays] = np.maximum(p.paid_to[pays], paid_to[pays])
    started = finds & welfare
    p.paid_to[started] = month - 1


def _school(rng, city: City, month: int) -> None:
    p = city.persons
    n = len(p)
    if month % 12 == 8:  # September: a new school year
        start = school_year_start(month)
        stage, grade = school_stage(periods.ages(p.birth, dt.date(start, 8, 31)), rng)
        compulsory = (stage == 1) | (stage == 2)
        stayed_out = (p.school_status == DROPPED_OUT) & compulsory
        p.stage[:] = stage
        p.grade[:] = grade
        p.school_status[:] = np.where(stayed_out, DROPPED_OUT, IN_SCHOOL)
        on_roster = city.households.kind[p.hh] != OFF_ROSTER
        p.aided[:] = (stage >= 0) & (rng.random(n) < np.where(on_roster, 0.7, 0.08))
    compulsory = (p.stage == 1) | (p.stage == 2)
    u = rng.random(n)
    drops = compulsory & (p.school_status == IN_SCHOOL) & (u < 0.0006)
    returns = (p.school_status == DROPPED_OUT) & (u > 0.95)
    p.school_status[drops] = DROPPED_OUT
    p.school_status[returns] = IN_SCHOOL


def _housing(rng, city: City, month: int, first: int, days: int) -> None:
    hh = city.households
    n = len(hh)
    u = rng.random(n)
    day = first + rng.integers(0, days, n)
    finishes = (hh.rebuild == REBUILDING) & (u < 0.12)
    starts = (hh.rebuild == NOT_STARTED) & (u > 0.94)
    hh.rebuild[finishes] = REBUILT
    hh.rebuilt_on[finishes] = np.maximum(day[finishes], hh.assessed_on[finishes] + 1)
    hh.rebuild[starts] = REBUILDING
    degraded = (hh.kind != OFF_ROSTER) & (hh.grade >= 0) & (hh.grade <= 1) & (rng.random(n) < 0.0004)
    hh.grade[degraded] = 2
    hh.rebuild[degraded] = NOT_STARTED
    hh.assessed_on[degraded] = day[degraded]


def _assistance(rng, city: City, month: int) -> None:
    p, hh = city.persons, city.households
    n = len(p)
    ended = p.assist_active & (p.death_month >= 0) & (p.assist_until < month)
    p.assist_active[ended] = False
    p.assist_end[ended] = month
    n_hh = len(hh)
    stop_hh = rng.random(n_hh) < 0.006
    stops = p.assist_active & (p.assist == 0) & stop_hh[p.hh]
    p.assist_active[stops] = False
    p.assist_end[stops] = month
    alive = alive_at_end(city, month)
    sizes = np.bincount(p.hh[alive], minlength=n_hh)
    poor = (hh.income / 100 / np.maximum(sizes, 1)) < 9_000
    has = np.bincount(p.hh[p.assist_active], minlength=n_hh) > 0
    chance = np.where(hh.kind == OFF_ROSTER, 0.0003, np.where(poor, 0.004, 0.0002))
    start_hh = ~has & (sizes > 0) & (rng.random(n_hh) < chance)
    starts = start_hh[p.hh] & alive
    p.assist[starts] = 0
    p.assist_active[starts] = True
    p.assist_start[starts] = month
    p.assist_end[starts] = -1
    p.assist_amount[starts] = rng.integers(38, 61, int(starts.sum())) * 1000
    temp = alive & (rng.random(n) < 0.0006)
    p.temp_month[temp] = month
    p.temp_amount[temp] = rng.integers(5, 50, int(temp.sum())) * 10_000


def _villages(rng, city: City) -> None:
    v = city.villages
    n = len(v)
    total = city.geo.village_households
    v.toilets[:] = np.minimum(v.toilets + rng.binomial(np.maximum(total - v.toilets, 0), 0.01), total)
    v.sewage[:] = v.sewage | (rng.random(n) < 0.005)
    v.outage[:] = rng.choice([0, 1, 2, 3, 4, 6, 9], size=n, p=[0.86, 0.05, 0.03, 0.02, 0.02, 0.015, 0.005])
    v.water_ok[:] = rng.random(n) > 0.015
    v.tap[:] = np.minimum(v.tap + rng.binomial(np.maximum(v.water_total - v.tap, 0), 0.02), v.water_total)


_SUMMARIES = {
    "涉贫求助": ("家中老人生病住院，医疗费用负担重，申请救助", "家庭成员务工受伤无法工作，收入骤减，请求帮扶",
               "房屋漏雨开裂，申请危房改造", "孩子上学费用困难，咨询资助政策", "因灾导致农作物绝收，生活困难",
               "家中无劳动力，收入无法维持基本生活"),
    "政策咨询": ("咨询城乡居民医保缴费标准", "咨询雨露计划申请条件", "咨询公益性岗位招聘", "咨询小额信贷贴息政策",
               "咨询养老保险代缴政策"),
    "投诉举报": ("反映村里低保评定不公", "反映公益性岗位工资拖欠", "反映项目施工质量问题", "反映帮扶干部走访不到位"),
    "其他": ("反映村道路灯损坏", "反映自来水水压不足", "建议增加农村客运班次"),
}
_KINDS = ("涉贫求助", "政策咨询", "投诉举报", "其他")


def _phone(rng) -> str:
    return f"1{int(rng.choice([3, 5, 7, 8, 9]))}{int(rng.integers(0, 10))}{int(rng.integers(0, 10**8)):08d}"


def _tickets(rng, city: City, month: int, first: int, days: int) -> None:
    end = first + days - 1
    for ticket in city.tickets:
        if ticket.closed >= 0:
            continue
        if rng.random() < 0.7:
            ticket.closed = min(max(ticket.opened + int(rng.integers(1, 25)), first), end)
            ticket.status = "已办结"
        elif ticket.status == "待核查":
            ticket.status = "核查中"
    city.tickets = [t for t in city.tickets if t.closed < 0 or t.closed >= first]
    p, hh, geo = city.persons, city.households, city.geo
    alive = np.flatnonzero(alive_at_end(city, month))
    count = int(rng.poisson(len(alive) * 0.0025 + 3))
    roster = hh.kind[p.hh[alive]] != OFF_ROSTER
    # Callers from outside the roster call about as often as the roster's own people.
    weights = np.where(roster, 1.0, 2.5)
    callers = rng.choice(alive, size=count, p=weights / weights.sum()) if len(alive) else np.array([], int)
    for caller in callers.tolist():
        opened = first + int(rng.integers(0, days))
        kind = _KINDS[int(rng.choice(4, p=[0.4, 0.35, 0.15, 0.1]))]
        from_outside = rng.random() < 0.04
        village = int(hh.village[p.hh[caller]])
        level = rng.random()
        if level < 0.8:
            area = int(geo.village_codes[village])
        elif level < 0.95:
            area = int(geo.town_codes[geo.village_town[village]])
        else:
            area = int(geo.county_codes[geo.village_county[village]])
        shown = str(rng.choice(["valid", "missing", "partial"], p=[0.72, 0.18, 0.10]))
        ticket = Ticket(
            number=f"{periods.from_days(opened):%Y%m%d}{city.next_serial(f'ticket{month}'):05d}",
            opened=opened, person=-1 if from_outside else caller,
            # Callers often give only a family name: 张先生, 李女士.
            caller_name=("title" if rng.random() < 0.25 else "full") if not from_outside else (
                names.SURNAMES[int(rng.integers(len(names.SURNAMES)))] + ("先生" if rng.random() < 0.5 else "女士")),
            id_shown="missing" if from_outside else shown, phone=_phone(rng), area=area, kind=kind,
            summary=_SUMMARIES[kind][int(rng.integers(len(_SUMMARIES[kind])))],
        )
        u = rng.random()
        if u < 0.55:
            ticket.closed = min(opened + int(rng.integers(0, 12)), end)
            ticket.status = "已办结"
        elif u < 0.8:
            ticket.status = "核查中"
        city.tickets.append(ticket)


def _projects(rng, city: City, month: int, first: int, days: int) -> None:
    end = first + days - 1
    for project in city.projects:
        u = rng.random()
        if project.status == 0 and u < 0.15:
            project.status = 1
            project.paid_wan = int(project.planned_wan * rng.uniform(0.1, 0.3))
        elif project.status == 1:
            project.paid_wan = min(int(project.paid_wan + project.planned_wan * rng.uniform(0.05, 0.15)),
                                   int(project.planned_wan * 0.95))
            if u < (0.25 if project.planned_end <= end else 0.06):
                project.status = 2
                project.finished = first + int(rng.integers(0, days))
                project.paid_wan = int(project.planned_wan * rng.uniform(0.9, 1.0))
    for _ in range(3 * len(city.geo.county_codes)):
        city.projects.append(new_project(rng, city, first + int(rng.integers(0, days))))


def _problems(rng, city: City, first: int, days: int) -> None:
    for problem in city.problems:
        u = rng.random()
        if problem.status == 0 and u < 0.3:
            problem.status = 1
        elif problem.status == 1 and u < 0.2:
            problem.status = 2
            problem.done = max(first + int(rng.integers(0, days)), problem.found)
        elif problem.status in (0, 1) and u > 0.98:
            problem.status = 3
    for _ in range(int(rng.integers(5, 12))):
        city.problems.append(new_problem(rng, city, first + int(rng.integers(0, days))))
