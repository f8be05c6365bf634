"""Render dbt's source declarations from the feed registry.

dbt cannot read our registry, so the registry is rendered into
`dbt_project/models/staging/_raw__sources.yml` (committed; a unit test fails when it is stale).
The staging macro `typed_feed()` reads each column's `meta` from there, so a staging model never
repeats a feed's columns, types or units.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from ruralwatch import settings
from ruralwatch.feeds.registry import Registry, load_registry

SOURCES_PATH = settings.DBT_PROJECT_DIR / "models" / "staging" / "_raw__sources.yml"
HEADER = ("# Generated from include/ruralwatch/feeds/registry.yml by `ruralwatch dbt-sources`.\n"
          "# Do not edit by hand: change the registry and regenerate.\n")


def render_sources(registry: Registry | None = None) -> str:
    registry = registry or load_registry()
    tables = [{
        "name": "deliveries",
        "description": "每一次部门报送及其处理结果；is_live 标记各月当前生效的批次。",
    }]
    for feed in registry:
        tables.append({
            "name": feed.raw_table,
            "description": f"{feed.department.name}：{feed.title}（原样文本）",
            "meta": {
                "feed": feed.name, "kind": feed.kind, "department": feed.department.code,
                "key": list(feed.key),
                # What the warehouse's timeliness indicator (I19) and lead marts need to know of
                # a feed without a second copy of the registry: who owns it, when it is due, and
                # whether a month without it is late (towns answer leads when they have answers).
                "title": feed.title, "department_name": feed.department.name, "due_day": feed.due_day,
                "expected_monthly": feed.file_suffix is None,
            },
            "columns": [
                {
                    "name": col.name,
                    "description": col.header,
                    "meta": {k: v for k, v in {
                        "header": col.header, "type": col.type, "required": col.required,
                        "values": list(col.values) or None, "unit": col.unit, "level": col.level,
                    }.items() if v not in (None, False)},
                }
                for col in feed.columns
            ],
        })
    doc = {"version": 2, "sources": [{
        "name": "raw",
        "schema": "raw",
        "description": "部门报送原始数据：每个值按报送原样存为文本，附批次元数据。",
        "tables": tables,
    }]}
    return HEADER + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=110)


def write_sources(path: Path = SOURCES_PATH) -> bool:
    """Write the file if it changed; True when it did."""
    text = render_sources()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True
