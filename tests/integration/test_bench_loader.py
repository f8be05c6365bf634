"""The benchmarks' loader-alone run: one file into a database of its own, the caller's settings intact."""
from __future__ import annotations

import csv
import os

import psycopg
import pytest

pytestmark = pytest.mark.integration


def test_loader_alone_loads_one_file_and_leaves_the_callers_warehouse_and_archive(warehouse, server_url, landing):
    from ruralwatch.bench.ingest import loader_run
    from tests.conftest import _recreate_database

    path = landing / "rural_roster" / "rural_roster_202611.csv"
    with open(path, encoding="utf-8-sig", newline="") as handle:
        data_rows = sum(1 for _ in csv.reader(handle)) - 1
    archive = os.environ["RURALWATCH_ARCHIVE"]
    scratch = _recreate_database(server_url, f"ruralwatch_test_{os.getpid()}_alone")
    try:
        seconds, rows = loader_run(scratch, path, "rural_roster")
        assert rows == data_rows and seconds > 0
        # `make bench` measures between months of its own warehouse: that warehouse must stay the target.
        assert os.environ["WAREHOUSE_URL"] == warehouse
        assert os.environ["RURALWATCH_ARCHIVE"] == archive
        with psycopg.connect(scratch) as conn:
            assert conn.execute("select count(*) from raw.rural_roster").fetchone()[0] == data_rows
        with psycopg.connect(warehouse) as conn:
            assert conn.execute("select to_regclass('raw.deliveries')").fetchone()[0] is None
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{scratch.rsplit("/", 1)[1]}" with (force)')
