"""Two feeds whose checks compare one with the other are gated one at a time, whatever runs them."""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import multiprocessing
from pathlib import Path

import psycopg
import pytest

from tests.simulated import simulate

pytestmark = pytest.mark.integration

MONTH = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    # Default defects plant a village whose 总户数 water_supply states differently from
    # housing_village_environment: the pair's comparison has something to find.
    return simulate(tmp_path_factory.mktemp("city"), persons=300, months="2026-11", seed=5, defects="default")


PAIR = ("housing_village_environment", "water_supply")
PAIR_CHECKS = ("total_households_agree_with_water_supply", "total_households_agree_with_village_environment")


def test_gates_of_two_feeds_that_compare_with_each_other_take_turns(warehouse, city):
    """Gated at the same moment in two processes, the second still finds the disagreement."""
    from ruralwatch import pipeline

    for feed in PAIR:
        pipeline.load_feed(feed, MONTH, city)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        gated = list(pool.map(pipeline.gate_feed, PAIR))
    assert [g[0]["decision"] for g in gated] == ["live", "live"]
    with psycopg.connect(warehouse) as conn:
        verdicts = conn.execute("select check_name, success, unexpected_count from dq.check_results "
                                "where check_name = any(%s)", (list(PAIR_CHECKS),)).fetchall()
    assert len(verdicts) == 2
    # The first gated found no live batch of the other feed to compare with; the second found it.
    assert sorted(v[1] for v in verdicts) == [False, True]
    assert [v[2] for v in verdicts if not v[1]][0] >= 1
