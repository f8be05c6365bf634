"""Test session set-up: a real PostgreSQL database of its own, and Airflow's home in a temp folder.

The environment is set before anything imports airflow or ruralwatch, because both read it once.
Tests use the project's embedded server (or WAREHOUSE_URL's server) but a database of their own,
`ruralwatch_test_<pid>`, so a test run never touches the demo's data or another test run's.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="ruralwatch-tests-"))
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["RURALWATCH_ARCHIVE"] = str(_SESSION_DIR / "archive")
os.environ["RURALWATCH_REPORTS"] = str(_SESSION_DIR / "reports")
os.environ.setdefault("RURALWATCH_PSEUDONYM_KEY", "test-only-pseudonym-key-not-a-secret")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

import psycopg  # noqa: E402
import pytest  # noqa: E402

# One database per test process, so parallel runs (two developers, CI and a benchmark) never collide.
TEST_DATABASE = f"ruralwatch_test_{os.getpid()}"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _server_url() -> str:
    """The server's maintenance URL: WAREHOUSE_URL's server, or the embedded one."""
    from ruralwatch import db

    base = os.environ.get("RURALWATCH_TEST_SERVER_URL") or os.environ.get("WAREHOUSE_URL")
    if base:
        parts = db.ConnectionParts.from_url(base)
        auth = parts.user + (f":{parts.password}" if parts.password else "")
        return f"postgresql://{auth}@{parts.host}:{parts.port}/postgres"
    return db.EmbeddedServer().start().rsplit("/", 1)[0] + "/postgres"


def pytest_configure(config):
    # build_warehouse's dbt starts from the parsed project (manifest and partial parse), built ahead of time.
    from ruralwatch.transform import ensure_manifest

    ensure_manifest()


@pytest.fixture(scope="session")
def server_url():
    url = _server_url()
    os.environ["RURALWATCH_TEST_SERVER_URL"] = url
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{TEST_DATABASE}" with (force)')


def _recreate_database(server_url: str, name: str) -> str:
    from ruralwatch import db

    with psycopg.connect(server_url, autocommit=True) as conn:
        db.create_database(conn, name, replace=True)
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture()
def warehouse(server_url, monkeypatch) -> str:
    """A fresh, empty warehouse database for one test; WAREHOUSE_URL points at it."""
    url = _recreate_database(server_url, TEST_DATABASE)
    monkeypatch.setenv("WAREHOUSE_URL", url)
    return url


@pytest.fixture()
def landing(tmp_path) -> Path:
    """A copy of the sample landing folder, so tests may add, change or break files."""
    import shutil

    target = tmp_path / "landing"
    shutil.copytree(FIXTURES / "landing", target)
    return target
