"""The feed registry: every department feed declared once, validated when loaded.

A typo in `registry.yml` is an error naming the file and line, so the person who edited it can fix
it without reading a stack trace.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGISTRY_PATH = Path(__file__).with_name("registry.yml")

COLUMN_TYPES = {
    "text", "name", "resident_id", "area_code", "date", "event_date", "month", "amount", "integer",
    "yesno", "enum", "year", "school_year", "phone",
}
FEED_KINDS = {"snapshot", "event"}
FORMATS = {"csv", "xlsx", "api"}
SEVERITIES = {"critical", "warning"}
CHECK_NAMES = {"required_column_null", "key_unique", "resident_id_valid", "allowed_values", "value_format",
               "non_negative", "plausible_date", "unusable_rows"}
AREA_LEVELS = {"village", "town_or_village", "any"}
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


class RegistryError(ValueError):
    """The registry file is wrong; the message names the line."""


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    contact_email: str
    webhook_url: str | None = None


@dataclass(frozen=True)
class Column:
    name: str
    header: str
    type: str
    required: bool = False
    values: tuple[str, ...] = ()
    unit: str | None = None
    level: str | None = None
    description: str | None = None

    @property
    def is_personal(self) -> bool:
        return self.type in {"resident_id", "name", "phone"}


@dataclass(frozen=True)
class Feed:
    name: str
    title: str
    department: Department
    kind: str
    formats: tuple[str, ...]
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    due_day: int
    unusable_row_share: float
    severity: dict[str, str] = field(default_factory=dict)
    file_suffix: str | None = None  # e.g. lead_feedback's town code: `<feed>_<YYYYMM>_<town>`
    api: dict[str, Any] | None = None

    @property
    def owner(self) -> str:
        return self.department.name

    @property
    def raw_table(self) -> str:
        return self.name

    @property
    def required_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"feed {self.name} has no column {name!r}")

    @property
    def id_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.type == "resident_id")


@dataclass(frozen=True)
class Registry:
    feeds: dict[str, Feed]
    departments: dict[str, Department]
    path: Path

    def __getitem__(self, name: str) -> Feed:
        try:
            return self.feeds[name]
        except KeyError:
            raise KeyError(f"no feed named {name!r} in {self.path}; declared: {', '.join(self.feeds)}") from None

    def __iter__(self):
        return iter(self.feeds.values())

    def __len__(self) -> int:
        return len(self.feeds)


# -- YAML with line numbers ------------------------------------------------------------------------
class _Located(dict):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_located(loader: _LineLoader, node: yaml.MappingNode) -> _Located:
    mapping = _Located(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_located)


def _line(obj: Any) -> int:
    return getattr(obj, "line", 0)


def _fail(path: Path, obj: Any, message: str) -> RegistryError:
    return RegistryError(f"{path.name} line {_line(obj)}: {message}")


def _expect_keys(path: Path, obj: dict, where: str, allowed: set[str], required: set[str]) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise _fail(path, obj, f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = required - set(obj)
    if missing:
        raise _fail(path, obj, f"{where}: missing key(s) {sorted(missing)}")


def parse_registry(text: str, path: Path = REGISTRY_PATH) -> Registry:
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise RegistryError(f"{path.name}{where}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise RegistryError(f"{path.name}: expected a mapping with defaults, departments and feeds")
    _expect_keys(path, doc, "top level", {"defaults", "departments", "feeds"}, {"departments", "feeds"})

    defaults = doc.get("defaults") or _Located()
    _expect_keys(path, defaults, "defaults", {"due_day", "unusable_row_share", "severity"}, set())
    default_severity = _severity(path, defaults.get("severity") or _Located(), "defaults.severity")

    departments: dict[str, Department] = {}
    for code, dept in doc["departments"].items():
        if not isinstance(dept, dict):
            raise _fail(path, doc["departments"], f"department {code}: expected a mapping")
        _expect_keys(path, dept, f"department {code}", {"name", "contact_email", "webhook_url"},
                     {"name", "contact_email"})
        if "@" not in str(dept["contact_email"]):
            raise _fail(path, dept, f"department {code}: contact_email {dept['contact_email']!r} is not an address")
        departments[code] = Department(code, str(dept["name"]), str(dept["contact_email"]), dept.get("webhook_url"))

    feeds: dict[str, Feed] = {}
    for name, spec in doc["feeds"].items():
        feeds[name] = _parse_feed(path, name, spec, departments, defaults, default_severity)
    return Registry(feeds=feeds, departments=departments, path=path)


def _severity(path: Path, obj: dict, where: str) -> dict[str, str]:
    for check, level in obj.items():
        if check not in CHECK_NAMES:
            raise _fail(path, obj, f"{where}: unknown check {check!r}; known: {sorted(CHECK_NAMES)}")
        if level not in SEVERITIES:
            raise _fail(path, obj, f"{where}: severity of {check} must be one of {sorted(SEVERITIES)}, got {level!r}")
    return dict(obj)


FEED_KEYS = {"title", "department", "kind", "formats", "key", "columns", "due_day", "unusable_row_share",
             "severity", "file_suffix", "api"}
COLUMN_KEYS = {"name", "header", "type", "required", "values", "unit", "level", "description"}


def _parse_feed(path, name, spec, departments, defaults, default_severity) -> Feed:
    if not IDENTIFIER.match(str(name)):
        raise _fail(path, spec, f"feed name {name!r} must be lower_snake_case")
    if not isinstance(spec, dict):
        raise RegistryError(f"{path.name}: feed {name}: expected a mapping")
    _expect_keys(path, spec, f"feed {name}", FEED_KEYS, {"title", "department", "kind", "formats", "key", "columns"})
    if spec["department"] not in departments:
        raise _fail(path, spec, f"feed {name}: department {spec['department']!r} is not declared under departments")
    if spec["kind"] not in FEED_KINDS:
        raise _fail(path, spec, f"feed {name}: kind must be one of {sorted(FEED_KINDS)}, got {spec['kind']!r}")
    formats = tuple(spec["formats"])
    if not formats or set(formats) - FORMATS:
        raise _fail(path, spec, f"feed {name}: formats must be among {sorted(FORMATS)}, got {list(formats)}")

    columns: list[Column] = []
    seen_names: set[str] = set()
    seen_headers: set[str] = set()
    for col in spec["columns"]:
        if not isinstance(col, dict):
            raise _fail(path, spec, f"feed {name}: each column must be a mapping")
        _expect_keys(path, col, f"feed {name} column", COLUMN_KEYS, {"name", "header", "type"})
        cname = str(col["name"])
        where = f"feed {name} column {cname}"
        if not IDENTIFIER.match(cname) or cname.startswith("_"):
            raise _fail(path, col, f"{where}: name must be lower_snake_case")
        if col["type"] not in COLUMN_TYPES:
            raise _fail(path, col, f"{where}: unknown type {col['type']!r}; known: {sorted(COLUMN_TYPES)}")
        if col["type"] == "enum" and not col.get("values"):
            raise _fail(path, col, f"{where}: an enum needs values")
        if col["type"] == "amount" and col.get("unit", "元") not in {"元", "万元"}:
            raise _fail(path, col, f"{where}: unit must be 元 or 万元")
        if col["type"] == "area_code" and col.get("level", "any") not in AREA_LEVELS:
            raise _fail(path, col, f"{where}: level must be one of {sorted(AREA_LEVELS)}")
        from ruralwatch.feeds.headers import normalise_header

        header_key = normalise_header(str(col["header"]))
        if cname in seen_names or header_key in seen_headers:
            raise _fail(path, col, f"{where}: declared twice")
        seen_names.add(cname)
        seen_headers.add(header_key)
        columns.append(Column(
            name=cname, header=str(col["header"]), type=col["type"], required=bool(col.get("required", False)),
            values=tuple(str(v) for v in col.get("values") or ()),
            unit=col.get("unit", "元" if col["type"] == "amount" else None),
            level=col.get("level", "any" if col["type"] == "area_code" else None),
            description=col.get("description"),
        ))
    key = tuple(spec["key"])
    for k in key:
        if k not in seen_names:
            raise _fail(path, spec, f"feed {name}: key column {k!r} is not among its columns")
    severity = {**default_severity, **_severity(path, spec.get("severity") or _Located(), f"feed {name} severity")}
    return Feed(
        name=name, title=str(spec["title"]), department=departments[spec["department"]], kind=spec["kind"],
        formats=formats, key=key, columns=tuple(columns),
        due_day=int(spec.get("due_day", defaults.get("due_day", 5))),
        unusable_row_share=float(spec.get("unusable_row_share", defaults.get("unusable_row_share", 0.02))),
        severity=severity, file_suffix=spec.get("file_suffix"), api=spec.get("api"),
    )


@functools.cache
def load_registry(path: Path = REGISTRY_PATH) -> Registry:
    return parse_registry(path.read_text(encoding="utf-8"), path)
