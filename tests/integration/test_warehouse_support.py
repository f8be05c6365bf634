"""Support for the warehouse tests (no tests here): a simulated city run through the warehouse, and
the simulator's truth to hold it against.

Shared by the warehouse test modules: generate deliveries (the department simulator), load and gate
them month by month with the same functions the ingest DAGs call (hrss_employment from the simulator's
API server), build with dbt, and compare what the marts say with `_truth/<YYYYMM>.json`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.conftest import _recreate_database

# Platform-dependent indicators the truth cannot know (I17, I18, I20); I19 is held against the truth
# feed by feed (see expected_timeliness).
PLATFORM_DEPENDENT = ("I17", "I18", "I20")


@dataclass
class City:
    url: str
    landing: Path
    reports: Path
    truth: dict[str, dict] = field(default_factory=dict)
    # What a module's fixture records on the way, for its tests to check.
    first_build: dict = field(default_factory=dict)
    september_lists: list[dict] = field(default_factory=list)
    feedback: list[dict] = field(default_factory=list)

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.url, **kwargs)


def simulate(out: Path, persons: int, months: str, seed: int, defects: str) -> None:
    from ruralwatch.simulate import Options, generate
    from ruralwatch.simulate.periods import parse_range

    generate(Options(out=out, persons=persons, months=parse_range(months), seed=seed, defects=defects))


def read_truth(landing: Path, label: str) -> dict:
    return json.loads((landing / "_truth" / f"{label}.json").read_text(encoding="utf-8"))


@contextlib.contextmanager
def city_warehouse(server_url: str, name: str, tmp: Path, *, persons: int, months: str, seed: int, defects: str):
    """A simulated city's deliveries, and a database of the module's own, with WAREHOUSE_URL, the reports
    folder and the simulator's API server set for as long as the module runs. The API client's page
    spool is kept in a temporary folder: the default (.local/api_spool) is shared by every run on this
    machine, and a spool left by another city for the same month would be loaded as this one's."""
    from ruralwatch.feeds import api
    from ruralwatch.simulate import start_server

    url = _recreate_database(server_url, name)
    spool = tmp / "api_spool"
    original_init = api.ApiClient.__init__

    def init_with_own_spool(self, config, path, spool_root=None, **kwargs):
        original_init(self, config, path, spool_root=spool, **kwargs)

    landing = tmp / "landing"
    simulate(landing, persons=persons, months=months, seed=seed, defects=defects)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WAREHOUSE_URL", url)
        patch.setenv("RURALWATCH_REPORTS", str(tmp / "reports"))
        patch.setattr(api.ApiClient, "__init__", init_with_own_spool)
        with start_server(landing) as server:
            patch.setenv("RURALWATCH_API_BASE_URL", server.url)
            patch.setenv("RURALWATCH_API_TOKEN", server.token)
            try:
                yield City(url=url, landing=landing, reports=tmp / "reports")
            finally:
                with psycopg.connect(server_url, autocommit=True) as conn:
                    conn.execute(f'drop database if exists "{name}" with (force)')


def load_month(landing: Path, month: dt.date, feeds: list[str] | None = None) -> None:
    """Every feed's deliveries of the month, loaded and gated as the ingest DAGs do."""
    from ruralwatch import pipeline
    from ruralwatch.feeds.registry import load_registry

    feeds = feeds or [f.name for f in load_registry() if f.name != "lead_feedback"]
    for feed in feeds:
        pipeline.load_feed(feed, month, landing)
    for feed in feeds:
        pipeline.gate_feed(feed)


# -- indicators -------------------------------------------------------------------------------------
def _same_number(truth, mine) -> bool:
    """Numerators and denominators: equal to the sixth decimal (the truth's own rounding)."""
    if truth is None or mine is None:
        return truth is None and mine is None
    return round(Decimal(str(truth)), 6) == round(Decimal(mine), 6)


def _same_value(truth, mine) -> bool:
    """Values: the truth is a float quotient; equal to float precision."""
    if truth is None or mine is None:
        return truth is None and mine is None
    return abs(float(truth) - float(mine)) <= 1e-9 * max(1.0, abs(float(truth)))


def indicator_mismatches(conn: psycopg.Connection, truth: dict) -> list[str]:
    """Every indicator cell of the truth against mart_indicator_values, both ways: a cell the truth
    has must match exactly; a cell only the mart has must have nothing to count (the truth omits
    towns and villages with nothing to count). I19 is compared by expected_timeliness."""
    period = dt.date.fromisoformat(truth["month"] + "-01")
    rows = conn.execute(
        "select measure_code, area_code, numerator, denominator, value from marts.mart_indicator_values "
        "where period = %s", (period,)).fetchall()
    mine = {(r[0], r[1]): r[2:] for r in rows}
    problems = []
    measures = {m: cells for m, cells in truth["indicators"].items() if m != "I19"}
    for measure, cells in measures.items():
        for code, cell in cells.items():
            got = mine.get((measure, code))
            if got is None:
                problems.append(f"{truth['month']} {measure} {code}: missing (truth {cell})")
            elif not (_same_number(cell["numerator"], got[0]) and _same_number(cell["denominator"], got[1])
                      and _same_value(cell["value"], got[2])):
                problems.append(f"{truth['month']} {measure} {code}: {got} (truth {cell})")
    for (measure, code), got in mine.items():
        indicator = measure.split(".")[0]
        if indicator in PLATFORM_DEPENDENT or indicator == "I19":
            continue
        if measure not in measures:
            problems.append(f"{truth['month']} {measure}: computed, but the truth has no such measure this month")
        elif code not in measures[measure] and (got[0] not in (0, None) or got[1] not in (0, None)):
            problems.append(f"{truth['month']} {measure} {code}: {got}, where the truth has nothing to count")
    return problems


def expected_timeliness(truth: dict) -> dict[str, tuple[int, int]]:
    """I19 per department (and 全部门) from the truth's feed-by-feed timeliness. An API delivery is dated
    by when the platform answered (feeds.md): the client takes the simulated platform's Date header,
    which is the truth's arrival, so the truth's on_time holds for both channels."""
    from ruralwatch.feeds.registry import load_registry

    departments = {f.name: f.department.name for f in load_registry()}
    counts: dict[str, list[int]] = {}
    for feed, row in truth["timeliness"].items():
        for department in (departments[feed], "全部门"):
            part = counts.setdefault(department, [0, 0])
            part[0] += int(row["on_time"])
            part[1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def timeliness_in_mart(conn: psycopg.Connection, month: str) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        "select breakdown_value, numerator, denominator from marts.mart_indicator_values "
        "where indicator_id = 'I19' and period_label = %s and area_level = '市'", (month,)).fetchall()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


# -- leads --------------------------------------------------------------------------------------------
def truth_leads(conn: psycopg.Connection, truth: dict) -> dict[tuple[str, str, str], tuple[str | None, str | None]]:
    """(rule, key type, key) → (area, town), with a person's resident ID turned into its person_key."""
    out = {}
    for lead in truth["leads"]:
        key = lead["key"]
        if lead["key_type"] == "person":
            key = conn.execute("select restricted.person_key(%s)", (key,)).fetchone()[0]
        out[(lead["rule"], lead["key_type"], key)] = (lead["area"], lead["town"])
    return out


def leads_in_mart(conn: psycopg.Connection, month: str) -> dict[tuple[str, str, str], tuple[str | None, str | None]]:
    rows = conn.execute(
        "select rule_id, lead_key_type, coalesce(household_code, person_key, ticket_id), area_code, town_code "
        "from marts.fct_warning_lead_month where to_char(data_month, 'YYYY-MM') = %s", (month,)).fetchall()
    return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}
