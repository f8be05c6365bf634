"""The checks that gate a feed's batch: generated from its declaration, plus hand-written ones.

A check is one expectation on one feed. It is identified by a fingerprint of what it checks (feed,
check, expectation type, column, arguments), never by GX's ids, which change from run to run; the
escalation ledger keys on that fingerprint.

Predicates call the same `util.*` SQL functions that dbt staging uses (dbt_project/macros/udfs), so a
gate and a staging flag cannot disagree about what a valid ID or date is.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ruralwatch import settings
from ruralwatch.feeds.registry import Column, Feed

PARSEABLE = {
    "date": "util.parse_date({c}, {n}) is null",
    "event_date": "util.parse_date({c}, {n}) is null",
    "month": "util.parse_month({c}) is null",
    "amount": "util.parse_amount({c}) is null",
    "integer": "util.parse_integer({c}) is null",
    "yesno": "util.parse_yesno({c}) is null",
    "year": "util.parse_year({c}) is null",
    "school_year": "util.parse_school_year({c}) is null",
}


@dataclass(frozen=True)
class Check:
    feed: str
    name: str                 # the check family, which sets the default severity
    severity: str
    description: str          # Chinese, as auditors and departments read it
    column: str | None = None
    predicate: str | None = None     # rows failing it: `where <predicate>` over the batch
    query: str | None = None         # or a whole unexpected-rows query using {batch}
    mostly: float | None = None      # for the share-of-usable-rows check
    arguments: dict[str, Any] = field(default_factory=dict)
    # Relations the check reads besides the batch (e.g. reference.area_codes). A check whose relation
    # does not exist yet is left out of the run, not failed: another team's seed may not be built.
    # Not part of the fingerprint: where a check reads from does not change what it checks.
    requires: tuple[str, ...] = ()

    @property
    def expectation_type(self) -> str:
        return "expect_column_values_to_be_in_set" if self.mostly is not None else "unexpected_rows_expectation"

    @property
    def unexpected_rows_query(self) -> str | None:
        if self.query:
            return self.query.strip()
        if self.predicate:
            return self.rows_where(self.predicate)
        return None

    def rows_where(self, condition: str) -> str:
        """The failing rows' query for a row check: the row number and the checked column's value."""
        cols = ", ".join(dict.fromkeys(["_source_row", *([self.column] if self.column else [])]))
        return f"select {cols} from {{batch}} where {condition}"

    @property
    def fingerprint(self) -> str:
        identity = {
            "feed": self.feed, "check": self.name, "expectation_type": self.expectation_type,
            "column": self.column, "arguments": self.arguments or {
                "query": self.unexpected_rows_query, "mostly": self.mostly},
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


def _numeric(col: Column) -> str:
    return f"coalesce('{col.name}' = any(_numeric_cells), false)"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def usable_row_parts(feed: Feed) -> tuple[str, str]:
    """A row is unusable when a resident ID column is invalid after normalisation or its key repeats.

    Two halves, for the gate's two levels: per-row columns (the IDs' validity, the key's values), and
    the verdict over them, whose key count is a window across the batch. Apart, the per-row half runs
    in parallel workers; in the window's query it ran after the window, in one process.
    """
    ids = [f"util.resident_id_problem({_q(c.name)}, {_numeric(c)}) is null" for c in feed.id_columns
           if c.required]
    row = [f"({' and '.join(f'({p})' for p in ids) if ids else 'true'}) as _gate_ids_valid"]
    row += [f"{_key_expression(feed.column(k))} as _gate_key_{i}" for i, k in enumerate(feed.key)]
    key = ", ".join(f"_gate_key_{i}" for i in range(len(feed.key)))
    return ", ".join(row), f"_gate_ids_valid and count(*) over (partition by {key}) = 1"


def _key_expression(col: Column) -> str:
    if col.type == "resident_id":
        return f"util.normalize_resident_id({_q(col.name)})"
    return f"util.clean_text({_q(col.name)})"


def generated_checks(feed: Feed) -> list[Check]:
    sev = feed.severity
    checks: list[Check] = []
    for col in feed.columns:
        c = _q(col.name)
        if col.required:
            checks.append(Check(feed.name, "required_column_null", sev["required_column_null"],
                                f"必填列“{col.header}”不得为空", col.name, f"util.clean_text({c}) is null"))
        if col.type == "resident_id":
            checks.append(Check(
                feed.name, "resident_id_valid", sev["resident_id_valid"],
                f"“{col.header}”须为有效身份证号（校验码、出生日期、地址码）",
                col.name,
                f"util.clean_text({c}) is not null and util.resident_id_problem({c}, {_numeric(col)}) is not null"))
        elif col.type == "enum":
            values = ", ".join("'" + v.replace("'", "''") + "'" for v in col.values)
            checks.append(Check(feed.name, "allowed_values", sev["allowed_values"],
                                f"“{col.header}”取值须为：{'/'.join(col.values)}", col.name,
                                f"util.clean_text({c}) not in ({values})"))
        elif col.type == "area_code":
            checks.append(Check(feed.name, "value_format", sev["value_format"],
                                f"“{col.header}”须为12位行政区划代码" + ("（村级）" if col.level == "village" else ""),
                                col.name, f"util.area_code_problem({c}, '{col.level}') is not null"))
            # Only well-formed codes are looked up: a malformed one already fails value_format.
            # `not in` rather than a correlated `not exists`: the reference's own area_code column
            # would shadow the batch's inside the subquery.
            checks.append(Check(
                feed.name, "area_code_in_reference", sev.get("area_code_in_reference", "warning"),
                f"“{col.header}”须为行政区划参考表中的代码", col.name,
                f"util.clean_text({c}) is not null and util.area_code_problem({c}, 'any') is null "
                f"and util.clean_text({c}) not in (select ref.area_code::text from reference.area_codes as ref "
                f"where ref.area_code is not null)",
                requires=("reference.area_codes",)))
        elif col.type in PARSEABLE:
            checks.append(Check(feed.name, "value_format", sev["value_format"],
                                f"“{col.header}”的值须可识别（{col.type}）", col.name,
                                f"util.clean_text({c}) is not null and "
                                + PARSEABLE[col.type].format(c=c, n=_numeric(col))))
        if col.type in {"amount", "integer"}:
            parse = "util.parse_amount" if col.type == "amount" else "util.parse_integer"
            checks.append(Check(feed.name, "non_negative", sev.get("non_negative", "warning"),
                                f"“{col.header}”不得为负数", col.name, f"{parse}({c}) < 0"))
        if col.type == "event_date":
            checks.append(Check(feed.name, "plausible_date", sev.get("plausible_date", "warning"),
                                f"“{col.header}”不得晚于统计月份最后一天", col.name,
                                f"util.parse_date({c}, {_numeric(col)}) > "
                                "(_data_month + interval '1 month' - interval '1 day')::date"))
    key_cols = [feed.column(k) for k in feed.key]
    key = ", ".join(_key_expression(k) for k in key_cols)
    checks.append(Check(
        feed.name, "key_unique", sev["key_unique"],
        f"主键（{'+'.join(k.header for k in key_cols)}）在一次报送内不得重复", ",".join(feed.key),
        query=(f"select _source_row from (select _source_row, count(*) over (partition by {key}) as n "
               f"from {{batch}}) as keyed where n > 1")))
    share = feed.unusable_row_share
    checks.append(Check(
        feed.name, "unusable_rows", sev.get("unusable_rows", "critical"),
        f"不可用行（身份证号无效或主键重复）占比不得超过{share:.0%}", "_row_is_usable",
        mostly=round(1 - share, 6), arguments={"unusable_row_share": share}))
    return checks


def handwritten_checks(feed: Feed, folder: Path | None = None) -> list[Check]:
    """`expectations/<feed>.yml`: the spec's consistency rules that no declaration can express."""
    path = (folder or settings.EXPECTATIONS_DIR) / f"{feed.name}.yml"
    if not path.exists():
        return []
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    checks = []
    for i, item in enumerate(doc.get("checks", []), start=1):
        missing = {"name", "description", "unexpected_rows"} - set(item)
        if missing:
            raise ValueError(f"{path.name}: check {i}: missing {sorted(missing)}")
        if "_source_row" not in item["unexpected_rows"]:
            # The gate keeps a check's failing rows and matches them back to the batch by row number.
            raise ValueError(f"{path.name}: check {item['name']}: its query must return _source_row, the "
                             "failing row's number in the delivery")
        if item.get("severity", "warning") not in {"critical", "warning"}:
            raise ValueError(f"{path.name}: check {item['name']}: severity must be critical or warning")
        checks.append(Check(
            feed.name, item["name"], item.get("severity", "warning"), item["description"],
            item.get("column"), query=item["unexpected_rows"], requires=tuple(item.get("requires") or ())))
    return checks


def checks_for(feed: Feed) -> list[Check]:
    checks = generated_checks(feed) + handwritten_checks(feed)
    seen: set[str] = set()
    for check in checks:
        if check.fingerprint in seen:
            raise ValueError(f"{feed.name}: two checks with one fingerprint ({check.name} on {check.column})")
        seen.add(check.fingerprint)
    return checks


_RAW_RELATION = re.compile(r"\braw\.([a-z_][a-z0-9_]*)")


def comparison_partners(registry) -> dict[str, set[str]]:
    """For each feed, the feeds it is compared with: its checks read their raw rows, or theirs read its
    (a village's 总户数 as water_supply and housing_village_environment state it). Read from the
    checks' SQL, so a new comparison needs no second declaration; the gate and the runner both keep
    such a pair apart."""
    names = {feed.name for feed in registry}
    partners: dict[str, set[str]] = {name: set() for name in names}
    for feed in registry:
        for check in checks_for(feed):
            read = set(_RAW_RELATION.findall(check.unexpected_rows_query or ""))
            read.update(r.split(".", 1)[1] for r in check.requires if r.startswith("raw."))
            for other in (read & names) - {feed.name}:
                partners[feed.name].add(other)
                partners[other].add(feed.name)
    return partners
