from __future__ import annotations

import pytest

from ruralwatch.feeds.registry import REGISTRY_PATH, RegistryError, load_registry, parse_registry


def test_registry_loads_and_names_owner():
    registry = load_registry()
    roster = registry["rural_roster"]
    assert roster.owner == "乡村振兴局"
    assert roster.key == ("resident_id",)
    assert {c.name for c in roster.required_columns} >= {"household_code", "resident_id", "area_code"}


def _with(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_a_typo_in_a_column_type_names_its_line():
    text = REGISTRY_PATH.read_text(encoding="utf-8")
    broken = _with(text, "type: integer, required: true}", "type: integr, required: true}")
    with pytest.raises(RegistryError) as err:
        parse_registry(broken)
    assert f"line {_line_of(broken, 'type: integr')}" in str(err.value)
    assert "integr" in str(err.value)


def test_an_unknown_department_is_an_error_naming_the_feed():
    text = REGISTRY_PATH.read_text(encoding="utf-8")
    broken = _with(text, "department: rural_revitalization\n    kind: snapshot",
                   "department: rural_revitalisation\n    kind: snapshot")
    with pytest.raises(RegistryError, match="rural_roster.*rural_revitalisation"):
        parse_registry(broken)


def test_an_unknown_key_is_an_error():
    text = REGISTRY_PATH.read_text(encoding="utf-8")
    broken = _with(text, "    kind: snapshot\n", "    kind: snapshot\n    shedule: monthly\n")
    with pytest.raises(RegistryError, match="shedule"):
        parse_registry(broken)


def test_key_must_be_a_declared_column():
    text = REGISTRY_PATH.read_text(encoding="utf-8")
    broken = _with(text, "key: [resident_id]", "key: [resident_idd]")
    with pytest.raises(RegistryError, match="resident_idd"):
        parse_registry(broken)


def test_dbt_sources_are_generated_from_the_registry_and_current():
    from ruralwatch.feeds.dbt_sources import SOURCES_PATH, render_sources

    assert SOURCES_PATH.read_text(encoding="utf-8") == render_sources(), (
        "dbt_project/models/staging/_raw__sources.yml is stale: run `ruralwatch dbt-sources`")
