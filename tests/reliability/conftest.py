"""Shared set-up of the reliability and security tests (issue 9).

Each test's docstring reads: a first line naming the scenario, then `Tried:` and `Held:` paragraphs.
They are recorded as junit properties, which `ruralwatch reliability` prints as its table.

Tests that stop or kill PostgreSQL do it to a private embedded server of their own (a fresh cluster
in a temp folder, its own port), never to the project's shared one: other engineers' test runs and
this test process use that one.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _docstring_parts(doc: str | None) -> dict[str, str]:
    lines = [line.strip() for line in (doc or "").strip().splitlines()]
    parts = {"scenario": lines[0] if lines else "", "tried": "", "held": ""}
    current = None
    for line in lines[1:]:
        for key in ("tried", "held"):
            if line.lower().startswith(f"{key}:"):
                current, line = key, line[len(key) + 1:].strip()
        if current and line:
            parts[current] = f"{parts[current]} {line}".strip()
    return parts


@pytest.fixture(autouse=True)
def _scenario_properties(request, record_property):
    parts = _docstring_parts(request.function.__doc__)
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None:
        parts["scenario"] = f"{parts['scenario']} [{callspec.id}]"
    for key, value in parts.items():
        record_property(key, value)


# -- a private PostgreSQL that may be stopped and killed ---------------------------------------------
@pytest.fixture(scope="session")
def private_server():
    from ruralwatch.db import EmbeddedServer

    root = Path(tempfile.mkdtemp(prefix="ruralwatch-reliability-pg-"))
    server = EmbeddedServer(root)
    server.start()
    yield server
    try:
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def private_warehouse(private_server, monkeypatch, tmp_path) -> str:
    """A fresh warehouse database on the private server; WAREHOUSE_URL and the archive point at it."""
    from ruralwatch import db
    from ruralwatch.pipeline import prepare_warehouse

    private_server.start()  # a test before may have left it stopped on failure
    admin = private_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        db.create_database(conn, "reliability", replace=True)
    url = private_server.url("reliability")
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("RURALWATCH_ARCHIVE", str(tmp_path / "archive"))
    prepare_warehouse()
    return url


# -- running code without root's power over permission bits -------------------------------------------
def _drop_file_powers() -> None:
    """preexec_fn: give up CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, with which root ignores a file's mode.

    Dropped from the bounding set before exec, so the child keeps uid 0 (it can reach the venv under
    /root) but meets permission bits like any other user: a 000 file is unreadable, a 555 folder unwritable.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def unprivileged():
    """A preexec_fn that makes a child meet permission bits: needed as root, nothing otherwise."""
    return _drop_file_powers if os.geteuid() == 0 else None


@pytest.fixture()
def open_tmp():
    """A temp folder everyone may enter (pytest's own tmp is 0700, closed to `nobody`)."""
    folder = Path(tempfile.mkdtemp(prefix="ruralwatch-reliability-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_python(code: str, env: dict[str, str], timeout: float = 120, preexec_fn=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                          timeout=timeout, cwd="/", preexec_fn=preexec_fn)
