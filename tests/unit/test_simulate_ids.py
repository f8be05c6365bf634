"""Resident IDs of the simulator: every generated one passes GB 11643, every damaged one fails it."""
from __future__ import annotations

import numpy as np
import pytest

from ruralwatch.simulate import ids, periods
from ruralwatch.simulate.population import build_city
from ruralwatch.simulate.timeline import advance


@pytest.fixture(scope="module")
def city():
    month = periods.parse_month("2026-11")
    city = build_city(3_000, seed=4, first_month=month)
    advance(city, month)  # births too
    return city


def test_the_standard_example_has_check_character_x():
    assert ids.check_char("11010519491231002") == "X"
    assert ids.is_valid_id("11010519491231002X")
    assert not ids.is_valid_id("110105194912310021")


def test_every_generated_id_is_valid_unique_and_agrees_with_the_person(city):
    p = city.persons
    pids = [x.decode() for x in p.pid]
    assert all(ids.is_valid_id(x) for x in pids)
    assert len(set(pids)) == len(pids)
    # The sequence's parity is the sex (odd = male), and the birth date is the person's.
    assert all(int(x[16]) % 2 == int(m) for x, m in zip(pids, p.male.tolist(), strict=True))
    y, m, d = periods.ymd(p.birth)
    assert [x[6:14] for x in pids] == [f"{a:04d}{b:02d}{c:02d}" for a, b, c in zip(y, m, d, strict=True)]
    # The address code is the county of the household's village.
    village = city.geo.village_codes[city.households.village[p.hh]]
    assert [x[:6] for x in pids] == [str(v // 10**6) for v in village.tolist()]


def test_newborns_get_ids_too(city):
    born = np.flatnonzero(city.persons.born_month >= 0)
    assert len(born) > 0
    assert all(ids.is_valid_id(city.persons.pid[i].decode()) for i in born)


@pytest.mark.parametrize("pick", range(10))
def test_a_wrong_check_character_always_fails(city, pick):
    for raw in city.persons.pid[:300]:
        good = raw.decode()
        bad = ids.wrong_check(good, pick)
        assert bad[:17] == good[:17] and not ids.is_valid_id(bad)
        assert not ids.is_valid_id(ids.wrong_check(good[:17] + good[17].lower(), pick).upper())


def test_legacy_15_digit_ids_upgrade_back_to_the_person(city):
    old = [x.decode() for x in city.persons.pid if x.decode()[6:8] == "19"][:500]
    assert old
    for good in old:
        legacy = ids.to_legacy15(good)
        assert len(legacy) == 15 and legacy.isdigit()
        assert ids.upgrade15(legacy) == good


def test_excel_mangled_ids_lose_their_digits(city):
    good = next(x.decode() for x in city.persons.pid if x.decode()[-1].isdigit())
    shown = ids.scientific(good)
    assert shown.startswith(good[0] + ".") and shown.endswith("E+17") and len(shown) == 11
    assert not ids.is_valid_id(shown)
    number = ids.as_number(good)
    assert isinstance(number, float) and str(int(number)) != good or int(number) == int(good)
    assert ids.fullwidth(good) != good and ids.fullwidth(good).translate(
        str.maketrans("０１２３４５６７８９Ｘ", "0123456789X")) == good
