"""Who may read what in the warehouse: three group roles, granted by schema.

- `ruralwatch_engineer`: everything (raw deliveries, staging with resident IDs, the pseudonymisation
  key, every model, the quality ledger).
- `ruralwatch_analyst`: the `published` schema only — views over the marts with pseudonymous keys, no
  resident IDs or names, village counts below the small-cell threshold suppressed. Not raw, staging,
  intermediate, the marts themselves, audit, dq or restricted.
- `ruralwatch_auditor`: the quality ledger (`dq`) and the auditors' models (`audit`: conflicts and
  flagged rows, IDs masked), plus what analysts see.

The roles are group roles (NOLOGIN): a deployment grants them to its login users
(`grant ruralwatch_analyst to alice`). Grants on today's tables are not enough, because dbt replaces
its tables and views on every build; default privileges for the role that builds (the one running
`apply`) cover every relation created in these schemas from now on.

Roles are cluster-wide in PostgreSQL, grants per database: `apply` is idempotent and safe to run
from several databases of the same server.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

log = logging.getLogger(__name__)

ENGINEER = "ruralwatch_engineer"
ANALYST = "ruralwatch_analyst"
AUDITOR = "ruralwatch_auditor"

# Every schema the platform creates (the loader's, the gates', dbt's).
ALL_SCHEMAS = ("raw", "dq", "restricted", "util", "staging", "intermediate", "marts", "audit", "published",
               "reference", "snapshots")


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    read_schemas: tuple[str, ...]
    write: bool = False


ROLES = (
    Role(ENGINEER, "数据工程师：全部数据（含原始报送、身份证号、假名密钥）", ALL_SCHEMAS, write=True),
    Role(ANALYST, "分析人员：仅发布视图（假名键，无身份证号和姓名，村级小数保护）", ("published",)),
    Role(AUDITOR, "审计人员：数据质量台账、冲突与标记数据（身份证号已脱敏）及发布视图", ("dq", "audit", "published")),
)


def ensure_roles(conn: psycopg.Connection) -> None:
    """Create the group roles that are missing (never alters an existing role's attributes)."""
    for role in ROLES:
        with conn.transaction():
            # One creator at a time across the cluster; a role made meanwhile by another session is fine.
            conn.execute("select pg_advisory_xact_lock(hashtext('ruralwatch.access.roles'))")
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role.name,)).fetchone()
            if exists:
                continue
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(role.name)))
            except errors.DuplicateObject:
                continue
            conn.execute(sql.SQL("comment on role {} is {}").format(sql.Identifier(role.name),
                                                                   sql.Literal(role.description)))


def apply(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Create the roles and grant each its schemas, now and for relations created later.

    Returns the schemas granted per role. The connection's user is the one whose future tables the
    default privileges cover: run it as the user dbt builds with.
    """
    ensure_roles(conn)
    granted: dict[str, list[str]] = {}
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('ruralwatch.access.grants'))")
        for schema in ALL_SCHEMAS:
            # dbt creates its schemas on first build; default privileges need the schema to exist.
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        for role in ROLES:
            name = sql.Identifier(role.name)
            for schema in ALL_SCHEMAS:
                s = sql.Identifier(schema)
                if schema not in role.read_schemas:
                    # A role never keeps more than its list, whatever was granted by hand before.
                    conn.execute(sql.SQL("revoke all on schema {} from {}").format(s, name))
                    conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(s, name))
                    conn.execute(sql.SQL("alter default privileges in schema {} revoke all on tables from {}")
                                 .format(s, name))
                    continue
                if role.write:
                    conn.execute(sql.SQL("grant usage, create on schema {} to {}").format(s, name))
                    conn.execute(sql.SQL("grant all on all tables in schema {} to {}").format(s, name))
                    conn.execute(sql.SQL("grant all on all sequences in schema {} to {}").format(s, name))
                    conn.execute(sql.SQL("grant execute on all functions in schema {} to {}").format(s, name))
                    conn.execute(sql.SQL("alter default privileges in schema {} grant all on tables to {}")
                                 .format(s, name))
                    conn.execute(sql.SQL("alter default privileges in schema {} grant all on sequences to {}")
                                 .format(s, name))
                else:
                    conn.execute(sql.SQL("grant usage on schema {} to {}").format(s, name))
                    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(s, name))
                    conn.execute(sql.SQL("alter default privileges in schema {} grant select on tables to {}")
                                 .format(s, name))
            granted[role.name] = list(role.read_schemas)
        # Functions are executable by PUBLIC unless revoked; the pseudonymisation function must not be:
        # whoever can call it with a guessed ID can test whether that person is in the warehouse.
        conn.execute("revoke all on all functions in schema restricted from public")
        conn.execute("alter default privileges in schema restricted revoke execute on functions from public")
    log.info("access applied: %s", ", ".join(f"{k}: {'/'.join(v)}" for k, v in granted.items()))
    return granted
