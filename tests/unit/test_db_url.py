from __future__ import annotations

import pytest

from ruralwatch.db import ConnectionParts, WarehouseError


def test_connection_parts_from_url():
    parts = ConnectionParts.from_url("postgresql://analyst:s%40cret@db.example:6543/city")
    assert (parts.host, parts.port, parts.user, parts.password, parts.dbname) == (
        "db.example", 6543, "analyst", "s@cret", "city")
    env = parts.dbt_env()
    assert env["RURALWATCH_PG_PORT"] == "6543" and env["RURALWATCH_PG_PASSWORD"] == "s@cret"


def test_non_postgres_url_is_refused():
    with pytest.raises(WarehouseError, match="postgresql://"):
        ConnectionParts.from_url("mysql://x@y/z")


def test_a_small_dev_shm_moves_parallel_workers_shared_memory_to_files(monkeypatch):
    import shutil
    from collections import namedtuple

    from ruralwatch import db

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(64 << 20, 0, 64 << 20))
    assert db._server_settings()["dynamic_shared_memory_type"] == "mmap"
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(24 << 30, 0, 24 << 30))
    assert "dynamic_shared_memory_type" not in db._server_settings()
    assert db._server_settings()["wal_level"] == "minimal"
