"""Each batch's values parsed once, kept for the gate and for staging.

A delivery's values are text; what they mean (a valid resident ID, a date, an amount) is decided by
the util.* parsers. At a million persons a month the parse is most of the work of both the gate and
the warehouse build, and it was done twice: the gate parsed a batch to check it, and every read of a
staging view parsed it again. Now the gate keeps the parse of the batch it checks as a partition of
`raw.<feed>__parsed` (the rows of the view `raw.<feed>__parser`, rendered by dbt from the staging
macro `parsed_rows`), evaluates its checks over those values, and staging reads them.

The parse belongs to a version of the parsers (the util functions' version, kept as the parent
table's comment): when the parsers change, the old parses are dropped, and
`ensure_parsed` — which the warehouse build runs first — parses every live batch again. It also parses
a live batch the gate never parsed (a warehouse from before this table, a batch loaded by hand).
"""
from __future__ import annotations

import logging
import time

import psycopg
from psycopg import sql

from ruralwatch.feeds.registry import Feed, Registry

log = logging.getLogger(__name__)

_UTIL_MARKER = "ruralwatch util functions "


def parsed_table(feed: Feed) -> str:
    return f"{feed.raw_table}__parsed"


def parser_view(feed: Feed) -> str:
    return f"{feed.raw_table}__parser"


def partition_name(feed: Feed, batch_key: int) -> str:
    return f"{parsed_table(feed)}_{int(batch_key)}"


def parser_version(conn: psycopg.Connection) -> str:
    """The version of the util functions and parser views installed (prepare_warehouse)."""
    marker = conn.execute("select obj_description(to_regnamespace('util'), 'pg_namespace')").fetchone()[0] or ""
    if not marker.startswith(_UTIL_MARKER):
        raise RuntimeError("the util.* parsers are not installed in this warehouse: `ruralwatch load` or "
                           "`ruralwatch build` installs them (pipeline.prepare_warehouse)")
    return marker[len(_UTIL_MARKER):]


def _lock(conn: psycopg.Connection, feed: Feed) -> None:
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"ruralwatch.parsed:{feed.name}",))


def _ensure_parent(conn: psycopg.Connection, feed: Feed, version: str) -> None:
    """The partitioned table in the shape of the current parser view. Batches parsed by older parsers
    are dropped; the parent itself only when its columns changed, since staging's views depend on it
    (dropped with it, until the build that follows makes them again)."""
    parent = sql.Identifier("raw", parsed_table(feed))
    name = f'raw."{parsed_table(feed)}"'
    comment = conn.execute("select obj_description(to_regclass(%s), 'pg_class')", (name,)).fetchone()[0]
    if comment == f"{_UTIL_MARKER}{version}":
        return
    if comment is not None and _columns(conn, name) == _columns(conn, f'raw."{parser_view(feed)}"'):
        for (partition,) in conn.execute("select inhrelid::regclass::text from pg_inherits where inhparent = %s::regclass",
                                         (name,)).fetchall():
            conn.execute(sql.SQL("drop table {}").format(sql.SQL(partition)))
    else:
        conn.execute(sql.SQL("drop table if exists {} cascade").format(parent))
        conn.execute(sql.SQL("create table {} (like {}) partition by list (_batch_key)").format(
            parent, sql.Identifier("raw", parser_view(feed))))
    conn.execute(sql.SQL("comment on table {} is {}").format(parent, sql.Literal(f"{_UTIL_MARKER}{version}")))


def _columns(conn: psycopg.Connection, relation: str) -> list[tuple[str, str]]:
    return conn.execute("select attname, format_type(atttypid, atttypmod) from pg_attribute "
                        "where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
                        (relation,)).fetchall()


def parse_batch(conn: psycopg.Connection, feed: Feed, batch_key: int) -> float:
    """Parse one batch into its partition of raw.<feed>__parsed (again, if it was); returns seconds.

    CREATE TABLE … AS runs the parsers in parallel workers (an INSERT would run them in one process),
    and the new table is attached to the parent in the same transaction: a reader sees the batch
    parsed whole or not at all.
    """
    started = time.perf_counter()
    version = parser_version(conn)
    with conn.transaction():
        _lock(conn, feed)
        _ensure_parent(conn, feed, version)
        partition = sql.Identifier("raw", partition_name(feed, batch_key))
        conn.execute(sql.SQL("drop table if exists {}").format(partition))
        conn.execute(sql.SQL("create table {} as select * from {} where _batch_key = {}").format(
            partition, sql.Identifier("raw", parser_view(feed)), sql.Literal(int(batch_key))))
        conn.execute(sql.SQL("alter table {} attach partition {} for values in ({})").format(
            sql.Identifier("raw", parsed_table(feed)), partition, sql.Literal(int(batch_key))))
    return time.perf_counter() - started


def ensure_parsed(conn: psycopg.Connection, registry: Registry) -> list[tuple[str, int]]:
    """Parse every live batch that has no parse of the current parsers; returns (feed, batch key)
    of those it parsed. Cheap when the gates parsed them all: one query per feed."""
    version = parser_version(conn)
    parsed: list[tuple[str, int]] = []
    for feed in registry:
        with conn.transaction():
            _lock(conn, feed)
            _ensure_parent(conn, feed, version)
        missing = [r[0] for r in conn.execute(
            "select batch_key from raw.deliveries where feed = %s and is_live and to_regclass("
            "format('raw.%%I', %s || '_' || batch_key)) is null order by batch_key",
            (feed.name, parsed_table(feed))).fetchall()]
        for batch_key in missing:
            seconds = parse_batch(conn, feed, batch_key)
            log.info("%s: batch %s parsed for staging in %.1f s (the gate had not parsed it with these parsers)",
                     feed.name, batch_key, seconds)
            parsed.append((feed.name, batch_key))
    return parsed
