"""The feed suites: committed GX JSON equals what the registry and expectations/*.yml generate, and
every hand-written query survives GX's `{batch}` substitution. No database needed."""
from __future__ import annotations

import re

import pytest
import yaml

from ruralwatch import settings
from ruralwatch.feeds.registry import load_registry
from ruralwatch.quality.checks import checks_for, handwritten_checks
from ruralwatch.quality.data_docs import SUITES_DIR, render_suite

REGISTRY = load_registry()


@pytest.mark.parametrize("feed", [f.name for f in REGISTRY])
def test_committed_suite_equals_the_generated_one(feed):
    committed = SUITES_DIR / f"{feed}.json"
    assert committed.exists(), f"{committed} is missing: run `ruralwatch suites export`"
    assert committed.read_text(encoding="utf-8") == render_suite(REGISTRY[feed]), (
        f"{committed} is stale: run `ruralwatch suites export` and commit the result")


def test_no_suite_file_without_a_declared_feed():
    assert {p.stem for p in SUITES_DIR.glob("*.json")} == {f.name for f in REGISTRY}


def test_every_expectations_file_belongs_to_a_declared_feed_and_every_feed_has_one():
    files = {p.stem for p in settings.EXPECTATIONS_DIR.glob("*.yml")}
    assert files <= {f.name for f in REGISTRY}
    # lead_feedback's rules need the warehouse's pushed leads, which another model owns.
    assert {f.name for f in REGISTRY} - files <= {"lead_feedback"}


@pytest.mark.parametrize("feed", [f.name for f in REGISTRY])
def test_hand_written_queries_survive_gx_substitution(feed):
    """GX fills `{batch}` with str.format and aliases the batch itself unless the query has a JOIN;
    the gate's sampler always aliases it. So: `{batch}` and no other brace, no JOIN, no alias on it."""
    for check in handwritten_checks(REGISTRY[feed]):
        query = check.unexpected_rows_query
        assert "{batch}" in query, check.name
        assert re.sub(r"\{batch\}", "", query).count("{") == 0 and "}" not in re.sub(r"\{batch\}", "", query), check.name
        assert not re.search(r"\bjoin\b", query, re.IGNORECASE), check.name
        following = re.findall(r"\{batch\}\s*([^\s)]*)", query)
        assert all(word.lower() in {"", "where", "group", "order", "limit"} for word in following), check.name
        assert check.severity in {"critical", "warning"} and check.description and check.column, check.name


def test_a_hand_written_check_without_source_row_is_refused(tmp_path):
    feed = REGISTRY["water_supply"]
    (tmp_path / "water_supply.yml").write_text(yaml.safe_dump({"checks": [{
        "name": "no_row_number", "description": "缺少行号", "column": "area_code",
        "unexpected_rows": "select area_code from {batch} where area_code is null"}]}, allow_unicode=True),
        encoding="utf-8")
    with pytest.raises(ValueError, match="must return _source_row"):
        handwritten_checks(feed, tmp_path)


def test_hand_written_check_names_are_unique_per_feed():
    for path in settings.EXPECTATIONS_DIR.glob("*.yml"):
        names = [c["name"] for c in yaml.safe_load(path.read_text(encoding="utf-8"))["checks"]]
        assert len(names) == len(set(names)), path.name


def test_the_spec_consistency_rules_are_in_the_suites():
    names = {(c.feed, c.name) for feed in REGISTRY for c in checks_for(feed)}
    for rule in [("rural_roster", "household_one_head"), ("rural_roster", "household_size_matches_rows"),
                 ("health_medical_claims", "claim_total_adds_up"), ("health_medical_claims", "discharge_not_before_visit"),
                 ("housing_village_environment", "sanitary_toilets_within_households"),
                 ("water_supply", "tap_water_within_households"), ("water_supply", "outage_days_within_month"),
                 ("housing_safety", "unsafe_house_needs_rebuild"),
                 ("hrss_employment", "public_job_pay_only_for_public_jobs")]:
        assert rule in names, rule


def test_every_area_code_column_is_checked_against_the_reference_when_it_exists():
    for feed in REGISTRY:
        areas = [c.name for c in feed.columns if c.type == "area_code"]
        lookups = [c for c in checks_for(feed) if c.name == "area_code_in_reference"]
        assert [c.column for c in lookups] == areas
        assert all(c.requires == ("reference.area_codes",) for c in lookups)
        # Where the check reads from is not what it checks: the fingerprint ignores `requires`.
        assert all("reference.area_codes" in c.unexpected_rows_query for c in lookups)


def test_the_gate_substitutes_batch_as_gx_does():
    """A literal brace a check writes `{{` for GX must read the same when the gate runs the query itself."""
    from ruralwatch.quality.gate import _over

    query = "select _source_row from {batch} where tags @> '{{贫困户}}'"
    assert _over(query, 'raw."_gate_x_1"') == "select _source_row from raw.\"_gate_x_1\" where tags @> '{贫困户}'"
