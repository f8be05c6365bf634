"""The platform's DDL runs when the declaration changes, not on every load: loads and gates of other
feeds hold locks on raw.deliveries and dq.escalations that the DDL would wait on, or deadlock with."""
from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration


def test_an_up_to_date_warehouse_is_left_alone_while_another_session_reads_the_ledger(warehouse):
    from ruralwatch.feeds.registry import load_registry
    from ruralwatch.warehouse import ensure_platform_tables

    registry = load_registry()
    with psycopg.connect(warehouse, autocommit=True) as conn:
        ensure_platform_tables(conn, registry)
    with psycopg.connect(warehouse) as reader, psycopg.connect(warehouse, autocommit=True) as conn:
        # Another feed's load in the middle of its transaction: it has read the ledger and the ledger.
        reader.execute("select count(*) from raw.deliveries").fetchone()
        reader.execute("select count(*) from dq.escalations").fetchone()
        conn.execute("set lock_timeout = '2s'")
        ensure_platform_tables(conn, registry)  # ALTER TABLE raw.deliveries would wait, then time out
        reader.rollback()


def test_a_column_declared_later_is_added_once(warehouse):
    from ruralwatch.feeds.registry import REGISTRY_PATH, parse_registry
    from ruralwatch.warehouse import ensure_platform_tables

    text = REGISTRY_PATH.read_text(encoding="utf-8")
    before = parse_registry(text)
    anchor = "      - {name: public_job_paid_through_month, header: 公益性岗位工资发放至, type: month}\n"
    assert anchor in text
    after = parse_registry(text.replace(anchor, anchor + "      - {name: job_title, header: 岗位名称, type: text}\n"))
    with psycopg.connect(warehouse, autocommit=True) as conn:
        ensure_platform_tables(conn, before)
        ensure_platform_tables(conn, after)
        columns = [r[0] for r in conn.execute(
            "select attname from pg_attribute where attrelid = 'raw.hrss_employment__rows'::regclass "
            "and attnum > 0 and not attisdropped order by attnum")]
        assert columns[-1] == "job_title"
        view = [r[0] for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' "
            "and table_name = 'hrss_employment' order by ordinal_position")]
        assert "job_title" in view
