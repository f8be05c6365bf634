"""The tables the platform itself owns: raw landing tables, the delivery ledger, data-quality state.

These are not warehouse models (dbt builds those from here on); they are the loader's and the
gates' bookkeeping, so their DDL is derived from the registry in code. Identifiers are composed with
psycopg.sql, never pasted into strings.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from ruralwatch.feeds.registry import Feed, Registry

# What every stored raw row carries besides its values. The batch's own facts (id, file, SHA-256,
# data month, load time) live once in raw.deliveries and are joined back by the view raw.<feed>:
# repeating ~150 bytes of constants on every row would double what a load writes.
RAW_ROW_COLUMNS = [
    ("_batch_key", "bigint not null"),
    # The row as a spreadsheet shows it (title and header rows counted), so an error can point a
    # department at the exact row.
    ("_source_row", "bigint not null"),
    # The columns whose value arrived as a number (an XLSX numeric cell, a JSON number), not text. A
    # resident ID that reached us as a number has lost digits whatever it looks like; a number in a
    # date column is an Excel serial.
    ("_numeric_cells", "text[]"),
    # Unknown extra columns (schema drift), header → value; loaded, and warned about.
    ("_extra", "jsonb"),
]

PLATFORM_DDL = """
create schema if not exists raw;
create schema if not exists dq;
create table if not exists raw.deliveries (
    batch_id        text primary key,
    batch_key       bigint generated always as identity unique,
    feed            text not null,
    file_name       text not null,
    file_path       text,
    archive_path    text,
    sha256          text not null,
    channel         text not null default 'file' check (channel in ('file', 'api')),
    data_month      date,
    slot            text,
    version         integer,
    status          text not null check (status in
                        ('loaded', 'superseded', 'duplicate', 'rejected', 'quarantined')),
    gate_status     text not null default 'pending' check (gate_status in
                        ('pending', 'passed', 'failed', 'released', 'not_applicable')),
    is_live         boolean not null default false,
    reason          text,
    warnings        jsonb not null default '[]'::jsonb,
    encoding        text,
    header_row      integer,
    column_units    jsonb not null default '{}'::jsonb,
    row_count       bigint,
    arrived_at      timestamptz,
    recorded_at     timestamptz not null default now(),
    loaded_at       timestamptz,
    superseded_by   text,
    duplicate_of    text,
    released_by     text,
    release_reason  text,
    load_seconds    double precision,
    gate_seconds    double precision
);
-- Added after the first release: older warehouses get them on their next run.
alter table raw.deliveries add column if not exists load_seconds double precision;
alter table raw.deliveries add column if not exists gate_seconds double precision;
create index if not exists deliveries_feed_slot on raw.deliveries (feed, slot);
create index if not exists deliveries_feed_sha on raw.deliveries (feed, sha256);
create unique index if not exists deliveries_one_live_per_slot
    on raw.deliveries (feed, slot) where is_live;
comment on table raw.deliveries is '每一次部门报送及其处理结果（已入库/被替代/重复/拒收/隔离）';

create table if not exists dq.check_results (
    run_id           text not null,
    batch_id         text not null,
    feed             text not null,
    fingerprint      text not null,
    check_name       text not null,
    expectation_type text not null,
    column_name      text,
    arguments        jsonb not null default '{}'::jsonb,
    severity         text not null,
    success          boolean not null,
    element_count    bigint,
    unexpected_count bigint,
    sample           jsonb,
    checked_at       timestamptz not null default now(),
    primary key (run_id, fingerprint)
);
comment on table dq.check_results is '每次质量校验的每一条检查结果';

-- The pseudonymisation key's HMAC pads. Only engineers read this schema; the key itself comes from
-- RURALWATCH_PSEUDONYM_KEY (or a generated file in .local/secrets) and is never in the repository.
create schema if not exists restricted;
create table if not exists restricted.pseudonym_key (
    key_slot        integer primary key check (key_slot = 1),
    inner_pad       bytea not null,
    outer_pad       bytea not null,
    key_fingerprint text not null,
    created_at      timestamptz not null default now()
);
-- HMAC-SHA256 of the ID under the pads, as 32 hex digits. Staging joins the key row once and calls
-- this (the planner inlines it); person_key() looked the key up again for every ID it hashed.
create or replace function restricted.person_key_hmac(resident_id text, inner_pad bytea, outer_pad bytea)
returns text language sql immutable parallel safe as $fn$
    select case when resident_id is not null then
        left(encode(sha256(outer_pad || sha256(inner_pad || convert_to(resident_id, 'UTF8'))), 'hex'), 32) end
$fn$;
create or replace function restricted.person_key(resident_id text) returns text
language sql stable parallel safe as $fn$
    select restricted.person_key_hmac(resident_id, k.inner_pad, k.outer_pad)
    from restricted.pseudonym_key as k
    where k.key_slot = 1 and resident_id is not null
$fn$;
"""


def ensure_platform_tables(conn: psycopg.Connection, registry: Registry) -> None:
    """Create what is missing; never drops or rewrites what a department delivered.

    Every load calls this, and the DDL takes strong locks even where nothing changes (ALTER TABLE …
    IF NOT EXISTS and CREATE OR REPLACE VIEW take ACCESS EXCLUSIVE, CREATE INDEX IF NOT EXISTS takes
    SHARE) on tables that other feeds' loads and gates are using at the same moment: two ingest DAGs
    side by side deadlocked on raw.deliveries and dq.escalations. So the declaration's fingerprint is
    kept as the raw schema's comment, and a warehouse that already has it costs one query.
    """
    def apply() -> None:
        conn.execute(PLATFORM_DDL)
        ensure_quality_tables(conn)
        for feed in registry:
            ensure_raw_table(conn, feed)

    # The lock is the one escalations.ensure_tables takes for a fresh warehouse's ledger.
    apply_once_per_version(conn, "raw", f"ruralwatch platform {_platform_fingerprint(registry)}",
                           "ruralwatch.ensure_platform_tables", apply)


def apply_once_per_version(conn: psycopg.Connection, schema: str, marker: str, lock: str,
                           apply: Callable[[], object]) -> None:
    """Run `apply` (DDL) unless the schema's comment is `marker`, the version of what it creates, and
    record the marker with it. An up-to-date warehouse costs one query, and takes none of the locks
    the DDL would; one session at a time applies it (`lock`), so two loads starting together do not
    race on CREATE."""
    current = conn.execute("select obj_description(to_regnamespace(%s), 'pg_namespace')", (schema,)).fetchone()[0]
    if current == marker:
        return
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (lock,))
        apply()
        conn.execute(sql.SQL("comment on schema {} is {}").format(sql.Identifier(schema), sql.Literal(marker)))


def _platform_fingerprint(registry: Registry) -> str:
    """What ensure_platform_tables builds from: its DDL, the code that shapes raw tables, the feeds."""
    import hashlib
    import inspect

    from ruralwatch.quality.escalations import LEDGER_DDL
    from ruralwatch.quality.timeliness import TIMELINESS_DDL

    parts = [PLATFORM_DDL, LEDGER_DDL, TIMELINESS_DDL, repr(RAW_ROW_COLUMNS), inspect.getsource(ensure_raw_table),
             repr(list(registry))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def rows_table(feed: Feed) -> str:
    return f"{feed.raw_table}__rows"


def ensure_quality_tables(conn: psycopg.Connection) -> None:
    """The escalation ledger, its outbox and the timeliness table (ruralwatch.quality.escalations)."""
    from ruralwatch.quality.escalations import ensure_tables

    ensure_tables(conn)


def ensure_raw_table(conn: psycopg.Connection, feed: Feed) -> None:
    """`raw.<feed>__rows` holds the values, every declared column as text, one partition per batch;
    the view `raw.<feed>` adds each row's batch id, file, SHA-256, data month and load time.

    One partition per batch makes a load all-or-nothing without a second copy of the rows: the
    batch is COPYed into its own table and attached in the same transaction.
    """
    table = sql.Identifier("raw", rows_table(feed))
    columns = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in RAW_ROW_COLUMNS]
    columns += [sql.SQL("{} text").format(sql.Identifier(c.name)) for c in feed.columns]
    conn.execute(sql.SQL("create table if not exists {} ({}) partition by list (_batch_key)").format(
        table, sql.SQL(", ").join(columns)))
    # A column declared after the table was first made is added at its end, never dropped.
    existing = [r[0] for r in conn.execute(
        "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped "
        "order by attnum", (f"raw.{rows_table(feed)}",))]
    for col in feed.columns:
        if col.name not in existing:
            conn.execute(sql.SQL("alter table {} add column {} text").format(table, sql.Identifier(col.name)))
            existing.append(col.name)
    conn.execute(sql.SQL("comment on table {} is {}").format(
        table, sql.Literal(f"{feed.department.name}: {feed.title}（原样文本，按批次分区；经视图 raw.{feed.raw_table} 读取）")))
    values = [c for c in existing if not c.startswith("_")]
    conn.execute(sql.SQL(
        "create or replace view {view} as select batches.batch_id as _batch_id, rows._source_row, "
        "batches.file_name as _source_file, batches.sha256 as _sha256, batches.data_month as _data_month, "
        "batches.loaded_at as _loaded_at, rows._numeric_cells, rows._extra, rows._batch_key, {values} "
        "from {table} as rows join raw.deliveries as batches on batches.batch_key = rows._batch_key").format(
        view=sql.Identifier("raw", feed.raw_table), table=table,
        values=sql.SQL(", ").join(sql.SQL("rows.{}").format(sql.Identifier(c)) for c in values)))
    conn.execute(sql.SQL("comment on view {} is {}").format(
        sql.Identifier("raw", feed.raw_table),
        sql.Literal(f"{feed.department.name}: {feed.title}（原样文本，附批次、文件、SHA-256、统计月份、入库时间）")))


# -- pseudonymisation key --------------------------------------------------------------------------
class PseudonymKeyError(RuntimeError):
    pass


def pseudonym_key() -> bytes:
    """RURALWATCH_PSEUDONYM_KEY, else a random key generated once into .local/secrets (mode 600)."""
    import os
    import secrets

    from ruralwatch import settings

    value = os.environ.get("RURALWATCH_PSEUDONYM_KEY")
    if value:
        if len(value) < 16:
            raise PseudonymKeyError("RURALWATCH_PSEUDONYM_KEY must be at least 16 characters")
        return value.encode()
    path = settings.LOCAL_DIR / "secrets" / "pseudonym_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def ensure_pseudonym_key(conn: psycopg.Connection) -> None:
    """Store the key's HMAC pads; refuse a different key, which would re-key every person."""
    import hashlib

    key = pseudonym_key()
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in key)
    outer = bytes(b ^ 0x5C for b in key)
    fingerprint = hashlib.sha256(b"ruralwatch-key-fingerprint" + key).hexdigest()[:16]
    with conn.transaction():
        row = conn.execute("select key_fingerprint from restricted.pseudonym_key where key_slot = 1").fetchone()
        if row is None:
            conn.execute(
                "insert into restricted.pseudonym_key (key_slot, inner_pad, outer_pad, key_fingerprint) "
                "values (1, %s, %s, %s) on conflict do nothing", (inner, outer, fingerprint))
        elif row[0] != fingerprint:
            raise PseudonymKeyError(
                "the pseudonymisation key differs from the one this warehouse was built with (fingerprint "
                f"{row[0]}); every person_key would change. Restore the original RURALWATCH_PSEUDONYM_KEY, "
                "or rotate deliberately by rebuilding the warehouse.")


AREA_REFERENCE_SEED = "area_codes.csv"


def ensure_area_reference(conn: psycopg.Connection, seed_dir: Path | None = None) -> None:
    """Load the area reference shipped with the project before any delivery is gated.

    The dbt seed of the same name rebuilds it in every warehouse build, but the gates run before the
    first build: without this, the first months of a new warehouse were gated without the
    area-code check and later months with it, so a backfill gave other escalations than the same
    months run one by one. The seed file's digest is kept as the table's comment, so an unchanged
    reference costs one query.
    """
    import hashlib

    from ruralwatch import settings

    seed = (seed_dir or settings.DBT_PROJECT_DIR / "seeds") / AREA_REFERENCE_SEED
    data = seed.read_bytes()
    marker = "ruralwatch area reference " + hashlib.sha256(data).hexdigest()[:16]
    current = conn.execute("select obj_description(to_regclass('reference.area_codes'), 'pg_class')").fetchone()[0]
    if current == marker:
        return
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('ruralwatch.area_reference'))")
        conn.execute("create schema if not exists reference")
        # Column types as the seed declares them (_seeds.yml), so `dbt seed` truncates and refills
        # this table rather than fighting over its shape.
        conn.execute("create table if not exists reference.area_codes "
                     "(area_code text, area_name text, area_level text, parent_code text)")
        conn.execute("truncate reference.area_codes")
        header, _, body = data.decode("utf-8-sig").partition("\n")
        if header.strip() != "area_code,area_name,area_level,parent_code":
            raise ValueError(f"{seed}, row 1: expected the header area_code,area_name,area_level,parent_code, "
                             f"found {header.strip()!r}")
        with conn.cursor().copy("copy reference.area_codes (area_code, area_name, area_level, parent_code) "
                                "from stdin with (format csv)") as copy:
            copy.write(body.encode())
        conn.execute(f"comment on table reference.area_codes is '{marker}'")  # hex digest: safe
