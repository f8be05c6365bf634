"""Building a range of past months at once gives the same marts as running them one by one."""
from __future__ import annotations

import datetime as dt
import os

import psycopg
import pytest
from psycopg import sql

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MONTHS = [dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)]
# Columns that record when something ran, not what the data says.
VOLATILE = {"loaded_at", "built_at", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_scd_id",
            "checked_at", "recorded_at", "pushed_at", "generated_at"}


def _load_and_gate(landing, month):
    from ruralwatch import pipeline
    from ruralwatch.orchestration.runner import feeds_with_deliveries

    for feed in feeds_with_deliveries(landing, month):
        pipeline.load_feed(feed, month, landing)
        pipeline.gate_feed(feed)


def _mart_fingerprints(url: str) -> dict[str, tuple[int, str]]:
    """(rows, digest of the sorted rows) per mart table, without run-time columns."""
    prints = {}
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "and table_type = 'BASE TABLE' order by 1")]
        for table in tables:
            columns = [r[0] for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'marts' "
                "and table_name = %s order by ordinal_position", (table,)) if r[0] not in VOLATILE]
            row_text = sql.SQL("row({})::text").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
            count, digest = conn.execute(sql.SQL(
                "select count(*), md5(coalesce(string_agg(t, E'\\n' order by t), '')) "
                "from (select {} as t from {}) as rows").format(row_text, sql.Identifier("marts", table))).fetchone()
            prints[table] = (count, digest)
    return prints


def test_a_backfilled_range_equals_month_by_month(tmp_path, server_url, monkeypatch):
    from ruralwatch import pipeline
    from tests.conftest import _recreate_database
    from tests.simulated import simulate

    landing = simulate(tmp_path / "city", persons=500, months="2026-09:2026-11", seed=21, defects="default")

    one_by_one = _recreate_database(server_url, f"ruralwatch_test_{os.getpid()}_a")
    monkeypatch.setenv("WAREHOUSE_URL", one_by_one)
    for month in MONTHS:
        _load_and_gate(landing, month)
        pipeline.build_warehouse()
    expected = _mart_fingerprints(one_by_one)

    at_once = _recreate_database(server_url, f"ruralwatch_test_{os.getpid()}_b")
    monkeypatch.setenv("WAREHOUSE_URL", at_once)
    for month in MONTHS:
        _load_and_gate(landing, month)
    pipeline.build_warehouse()
    actual = _mart_fingerprints(at_once)

    assert expected, "no mart was built"
    assert {t: c for t, (c, _) in actual.items()} == {t: c for t, (c, _) in expected.items()}
    assert actual == expected
    with psycopg.connect(server_url, autocommit=True) as conn:
        for url in (one_by_one, at_once):
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(url.rsplit("/", 1)[1])))
