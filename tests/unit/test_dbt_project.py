"""The dbt project's house rules, read from its files (no database): every model has a tested grain,
every mart column a Chinese description, thresholds live in seeds, sources are read in staging only,
and no model asks the clock what period it is."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

DBT = Path(__file__).resolve().parents[2] / "dbt_project"
MODELS = DBT / "models"
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _properties() -> dict[str, dict]:
    """Every model's properties, from every YAML file under models/."""
    out: dict[str, dict] = {}
    for path in MODELS.rglob("*.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in doc.get("models", []):
            out[model["name"]] = model
    return out


def _unit_tests() -> list[dict]:
    tests = []
    for path in MODELS.rglob("*.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        tests += doc.get("unit_tests", [])
    return tests


def _model_files() -> dict[str, Path]:
    return {p.stem: p for p in MODELS.rglob("*.sql")}


def _tests_of(entry) -> list:
    return entry.get("data_tests", entry.get("tests", [])) or []


def _has_grain(props: dict) -> bool:
    for test in _tests_of(props):
        if isinstance(test, dict) and "unique_combination_of_columns" in test:
            return True
    return any("unique" in _tests_of(column) for column in props.get("columns", []))


def test_every_model_has_properties_and_a_tested_grain():
    props = _properties()
    files = _model_files()
    assert set(files) <= set(props), f"models without properties: {sorted(set(files) - set(props))}"
    views_of_marts = {name for name, path in files.items() if "published" in path.parts}
    missing = sorted(name for name in files if name not in views_of_marts and not _has_grain(props[name]))
    assert missing == []


def test_each_staging_view_tests_its_grain_on_its_own_feeds_newest_month():
    """A feed's staging view is tested on the feed's newest live month (macros/tests): a grain test
    naming another feed, or none, would test the wrong month or parse the feed's whole history."""
    props = _properties()
    for path in (MODELS / "staging").glob("*/*.sql"):
        feed = path.parent.name
        if feed == "platform":
            continue
        grains = [t["unique_combination_of_columns"] for t in _tests_of(props[path.stem])
                  if isinstance(t, dict) and "unique_combination_of_columns" in t]
        assert [g["arguments"].get("newest_month_of") for g in grains] == [feed], path.stem


@pytest.mark.parametrize("folder", ["marts/core", "marts/leads", "marts/indicators", "marts/audit"])
def test_every_mart_and_column_is_described_in_chinese(folder):
    props = _properties()
    for path in (MODELS / folder).glob("*.sql"):
        model = props[path.stem]
        assert CHINESE.search(model.get("description", "")), path.stem
        columns = model.get("columns", [])
        assert columns, path.stem
        undescribed = [c["name"] for c in columns if not CHINESE.search(c.get("description", ""))]
        assert undescribed == [], f"{path.stem}: {undescribed}"


def test_mart_yaml_lists_every_column_the_model_selects():
    """The final select of a mart names its columns; each must be documented (persist_docs writes the
    descriptions as PostgreSQL comments, so an undocumented column reaches analysts bare)."""
    props = _properties()
    for folder in ("marts/core", "marts/leads", "marts/indicators", "marts/audit"):
        for path in (MODELS / folder).glob("*.sql"):
            sql = path.read_text(encoding="utf-8")
            final = sql[sql.rfind("final as ("):] if "final as (" in sql else ""
            select = final[final.find("select"):final.find("\n    from ")]
            lines = [line.rstrip() for line in select.splitlines() if line.strip()]
            # A select item ends a line with a comma (or is the last line); lines inside an expression do not.
            items = [line for line in lines[1:-1] if line.endswith(",")] + lines[-1:]
            selected = {m.group(1) for line in items
                        if (m := re.search(r"(?:\bas\s+|\.|^\s+)([a-z_][a-z0-9_]*),?$", line))}
            documented = {c["name"] for c in props[path.stem].get("columns", [])}
            assert selected <= documented, f"{path.stem}: {sorted(selected - documented)}"


def test_sources_are_read_in_staging_only():
    offenders = [str(p.relative_to(DBT)) for p in MODELS.rglob("*.sql")
                 if "source(" in p.read_text(encoding="utf-8") and "staging" not in p.parts]
    assert offenders == []


def test_no_model_reads_the_clock():
    """The period is the data month (conventions): no now(), current_date or current_timestamp."""
    clock = re.compile(r"\b(now\(\)|current_date|current_timestamp|localtimestamp|clock_timestamp)\b", re.I)
    offenders = [str(p.relative_to(DBT)) for p in [*MODELS.rglob("*.sql"), *(DBT / "snapshots").rglob("*.sql")]
                 if clock.search(re.sub(r"--[^\n]*", "", p.read_text(encoding="utf-8")))]
    assert offenders == []


def test_thresholds_are_seeds_not_literals():
    """indicators.md's defaults (7,500 元, 20,000 元, 50%, 2 months, 15 days, 5) are rows of
    policy_thresholds; no model spells them."""
    seed = (DBT / "seeds" / "policy_thresholds.csv").read_text(encoding="utf-8")
    for value in ("7500", "20000", "0.5", "15", ",5,", ",2,"):
        assert value in seed
    # (percentile_cont(0.5) is the median, not a threshold.)
    literal = re.compile(r"(?<![\w.'(-])(7500|7,500|20000|20,000|0\.5)(?![\w.'])")
    offenders = [str(p.relative_to(DBT)) for p in MODELS.rglob("*.sql")
                 if literal.search(re.sub(r"--[^\n]*", "", p.read_text(encoding="utf-8")))]
    assert offenders == []


def test_unit_tests_cover_ids_age_income_and_every_rule():
    tests = _unit_tests()
    names = {t["name"] for t in tests}
    assert all(len(name) <= 63 for name in names), "PostgreSQL truncates relation names at 63 characters"
    models = {t["model"] for t in tests}
    assert {"stg_civil_affairs__deaths", "int_roster_members_placed", "int_household_warnings_detected",
            "int_offroster_warnings_detected", "int_lead_episodes_identified"} <= models
    rules_expected = set()
    for test in tests:
        for row in (test.get("expect", {}).get("rows") or []):
            if isinstance(row, dict) and "rule_id" in row:
                rules_expected.add(row["rule_id"])
    assert rules_expected == {f"W0{i}" for i in range(1, 10)}
