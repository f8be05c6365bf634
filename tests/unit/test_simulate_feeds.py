"""Department builders against feeds.md, where the rule is about what a department may send."""
from __future__ import annotations

from ruralwatch.simulate import periods
from ruralwatch.simulate.defects import preset
from ruralwatch.simulate.feeds import Context, civil_affairs_deaths
from ruralwatch.simulate.population import build_city
from ruralwatch.simulate.rng import stream
from ruralwatch.simulate.schema import FEEDS
from ruralwatch.simulate.timeline import advance

# feeds.md, "Area codes are always 12 digits": these need village codes; every other area column takes
# any level.
VILLAGE_REQUIRED = {"rural_roster", "civil_affairs_assistance", "housing_safety",
                    "housing_village_environment", "water_supply"}


def test_area_levels_are_the_ones_feeds_md_names():
    for feed in FEEDS.values():
        if any(c.kind == "area" for c in feed.columns):
            assert feed.area_level == ("village" if feed.name in VILLAGE_REQUIRED else "any"), feed.name


def test_deaths_are_registered_with_village_town_county_or_no_code_each_the_persons_own():
    months = periods.parse_range("2026-10:2026-12")
    city = build_city(60_000, 3, months[0])
    geo = city.geo
    levels = {"village": 0, "town": 0, "county": 0, "blank": 0}
    for month in months:
        advance(city, month)
        ctx = Context(city, month, preset("none"), stream(3, "test", month))
        row_of = {pid: i for i, pid in enumerate(city.persons.pid.tolist())}
        for chunk in civil_affairs_deaths(ctx):
            pid = chunk.data["身份证号"]
            village = {p: geo.village_codes[city.households.village[city.persons.hh[row_of[p]]]]
                       for p in pid.tolist()}
            for p, code in zip(pid.tolist(), chunk.data["行政区划代码"].tolist(), strict=True):
                own = int(village[p])
                if code == 0:
                    levels["blank"] += 1
                elif code == own:
                    levels["village"] += 1
                elif code == own // 1000 * 1000:
                    levels["town"] += 1
                else:
                    assert code == own // 10**6 * 10**6, (p, code, own)
                    levels["county"] += 1
    total = sum(levels.values())
    assert total > 100
    assert levels["village"] > total / 2 and min(levels.values()) > 0, levels
