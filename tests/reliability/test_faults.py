"""Faults: the warehouse stops or crashes mid-load, the load task is killed, the API drops the
connection, a file cannot be read, the archive cannot be written or its disk is full.

Every load is one transaction (ledger row, batch table, COPY, attach), so each fault must leave either
the whole batch or nothing, and running the same step again must finish the job exactly once.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.deliveries import SAMPLE, sample_rows, write_csv
from tests.reliability.conftest import run_python, unprivileged

pytestmark = pytest.mark.integration

ROSTER = "rural_roster"
DEATHS = "civil_affairs_deaths"
MONTH = dt.date(2026, 11, 1)


def big_roster(folder: Path, megabytes: int, name: str = "rural_roster_202611.csv") -> tuple[Path, int]:
    """The committed sample roster's rows repeated to `megabytes`: cheap to write, a real CSV."""
    sample = SAMPLE.read_bytes()
    header, body = sample.split(b"\r\n", 1)
    copies = max(1, (megabytes << 20) // len(body))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with open(path, "wb") as handle:
        handle.write(header + b"\r\n")
        for _ in range(copies):
            handle.write(body)
    return path, body.count(b"\r\n") * copies


def deaths_delivery(landing: Path) -> Path:
    rows = [{"身份证号": r["身份证号"], "姓名": r["姓名"], "死亡日期": "2026-11-03", "行政区划代码": r["行政区划代码"]}
            for r in sample_rows()[:3]]
    return write_csv(landing / DEATHS / "civil_affairs_deaths_202611.csv", rows)


def ledger(url: str, feed: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("select status, row_count from raw.deliveries where feed = %s order by batch_key",
                            (feed,)).fetchall()


def leftovers(url: str, feed: str) -> dict[str, int]:
    """What a batch leaves behind in raw: its ledger row, its batch table and sequence, its rows."""
    with psycopg.connect(url) as conn:
        return {
            "ledger_rows": conn.execute("select count(*) from raw.deliveries where feed = %s", (feed,)).fetchone()[0],
            "batch_relations": conn.execute(
                "select count(*) from pg_class where relnamespace = 'raw'::regnamespace and relname like %s",
                (f"{feed}\\_\\_rows\\_%",)).fetchone()[0],
            "rows": conn.execute(f"select count(*) from raw.{feed}").fetchone()[0],  # noqa: S608 - our constant
        }


def assert_loaded_once(url: str, feed: str, rows: int) -> None:
    with psycopg.connect(url) as conn:
        deliveries = conn.execute("select status, row_count from raw.deliveries where feed = %s", (feed,)).fetchall()
        stored, distinct_rows = conn.execute(
            f"select count(*), count(distinct (_batch_key, _source_row)) from raw.{feed}").fetchone()  # noqa: S608
        partitions = conn.execute(
            "select count(*) from pg_inherits where inhparent = %s::regclass", (f"raw.{feed}__rows",)).fetchone()[0]
    assert deliveries == [("loaded", rows)]
    assert stored == distinct_rows == rows
    assert partitions == 1


def load(url: str, landing: Path, feed: str, progress=None):
    from ruralwatch.feeds.loader import Loader

    with psycopg.connect(url, autocommit=True) as conn:
        return Loader(conn, progress=progress).load_landing(landing, feed=feed)


# -- the warehouse stops or crashes mid-COPY -----------------------------------------------------------
def _kill_server(server) -> None:
    """SIGKILL the postmaster and every backend: a crash, not a shutdown (no checkpoint is written)."""
    import psutil

    pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    processes = [postmaster, *postmaster.children(recursive=True)]
    for process in processes:  # the postmaster first, so it cannot restart a backend
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    gone, alive = psutil.wait_procs(processes, timeout=20)
    assert not alive, f"server processes survived SIGKILL: {alive}"


@pytest.mark.parametrize("fault", ["stop", "kill"])
def test_warehouse_lost_mid_copy_rolls_back_whole_and_the_retry_loads_once(private_warehouse, private_server,
                                                                            tmp_path, fault, record_property):
    """The warehouse server goes away in the middle of a load.

    Tried: a 24 MB roster CSV streams into COPY; after 4 MiB another thread stops PostgreSQL (`pg_ctl stop -m
    fast`) or SIGKILLs the postmaster and every backend (a crash: WAL recovery on restart); the server is
    restarted and the same landing loaded again.
    Held: the load failed loudly; the server came back at the same address; the failed load left no ledger
    row, no batch table and no rows; a batch of another feed committed before it survived; the retry loaded
    every row exactly once in one partition.
    """
    record_property("tried", "a 24 MB roster CSV streams into COPY; after 4 MiB another thread " + (
        "stops PostgreSQL (pg_ctl stop -m fast)" if fault == "stop" else
        "SIGKILLs the postmaster and every backend (a crash: WAL recovery on restart)")
        + "; the server is restarted and the same landing loaded again")
    url = private_warehouse
    landing = tmp_path / "landing"
    deaths_delivery(landing)
    assert [o.status for o in load(url, landing, DEATHS)] == ["loaded"]
    _, rows = big_roster(landing / ROSTER, 24)
    fired = threading.Event()

    def progress(_name: str, written: int) -> None:
        if written >= 4 << 20 and not fired.is_set():
            action = private_server.stop if fault == "stop" else (lambda: _kill_server(private_server))
            stopper = threading.Thread(target=action)
            stopper.start()
            stopper.join()
            fired.set()

    try:
        with pytest.raises(psycopg.OperationalError):
            load(url, landing, ROSTER, progress=progress)
        assert fired.is_set(), "the server was not stopped mid-COPY: the test proved nothing"
    finally:
        private_server.start()
    # Same address after the restart: a client that kept the URL (WAREHOUSE_URL, Airflow's connection)
    # reaches it again (the restart used to move to another port while the old one sat in TIME_WAIT).
    assert private_server.url("reliability") == url
    assert leftovers(url, ROSTER) == {"ledger_rows": 0, "batch_relations": 0, "rows": 0}
    assert ledger(url, DEATHS) == [("loaded", 3)]
    again = load(url, landing, ROSTER)
    assert [(o.status, o.rows) for o in again] == [("loaded", rows)]
    assert_loaded_once(url, ROSTER, rows)


# -- the load task is killed -----------------------------------------------------------------------------
def _copy_in_progress(admin_url: str, database: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "select coalesce(max(p.bytes_processed), 0) from pg_stat_progress_copy p "
            "join pg_database d on d.oid = p.datid where d.datname = %s", (database,)).fetchone()
    return row[0]


def _wait_for_no_sessions(admin_url: str, database: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    with psycopg.connect(admin_url, autocommit=True) as conn:
        while conn.execute("select count(*) from pg_stat_activity where datname = %s", (database,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the killed loader's session is still open"
            time.sleep(0.05)


def test_load_task_killed_mid_copy_is_safe_to_rerun(private_warehouse, private_server, tmp_path):
    """A load task is killed mid-run.

    Tried: `ruralwatch load` in a subprocess on a 64 MB roster CSV, SIGKILLed while PostgreSQL reports its
    COPY in progress (pg_stat_progress_copy); then the same command run again, twice.
    Held: the killed run left no ledger row, batch table or rows; the re-run loaded every row once; the
    third run saw the delivery as already recorded and changed nothing.
    """
    url = private_warehouse
    landing = tmp_path / "landing"
    _, rows = big_roster(landing / ROSTER, 64)
    command = [str(Path(sys.executable).with_name("ruralwatch")), "load", "--landing", str(landing),
               "--feed", ROSTER, "--no-gate"]
    env = {**os.environ, "WAREHOUSE_URL": url}
    admin = private_server.url("postgres")
    killed = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while _copy_in_progress(admin, "reliability") < (1 << 20):
            assert killed.poll() is None, f"the load ended before it could be killed: {killed.stdout.read()}"
            assert time.monotonic() < deadline, "the COPY never started"
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.wait(timeout=30)
        killed.stdout.close()
    assert killed.returncode == -signal.SIGKILL
    _wait_for_no_sessions(admin, "reliability")
    assert leftovers(url, ROSTER) == {"ledger_rows": 0, "batch_relations": 0, "rows": 0}

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{ROSTER}/rural_roster_202611.csv: loaded, {rows:,} rows" in rerun.stdout
    assert_loaded_once(url, ROSTER, rows)
    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "seen" in third.stdout, third.stdout + third.stderr
    assert_loaded_once(url, ROSTER, rows)


# -- the API drops the connection mid-pagination -----------------------------------------------------------
@pytest.fixture(scope="module")
def api_city(tmp_path_factory):
    from tests.simulated import simulate

    return simulate(tmp_path_factory.mktemp("api-city"), persons=600, months="2026-11", seed=11)


def test_api_dropping_mid_pagination_resumes_through_load_feed(api_city, warehouse, monkeypatch, tmp_path):
    """The data-sharing API drops the connection mid-pagination (through `pipeline.load_feed`).

    Tried: hrss_employment from the simulator's real HTTP server with pages of 50 that drops the connection
    after 2 pages, one attempt per page: the feed's load task fails; run it again against a healthy server.
    Held: the failed run recorded nothing and kept its 2 pages; the retry fetched only the missing pages
    (its delivery carries the first run's answer time) and loaded every item once (no gaps, no
    duplicates); the spool was emptied; a third run asked again and changed nothing.
    """
    import dataclasses

    from ruralwatch import pipeline
    from ruralwatch.feeds import api
    from ruralwatch.simulate.api import start_server

    monkeypatch.setattr("ruralwatch.settings.LOCAL_DIR", tmp_path)
    original = api.ApiSettings.from_env.__func__
    monkeypatch.setattr(api.ApiSettings, "from_env", classmethod(
        lambda cls, page_size=500: dataclasses.replace(original(cls, page_size), page_size=50, max_attempts=1)))
    expected = [json.loads(line)["身份证号"] for line in
                (api_city / "_api" / "hrss_employment_202611.jsonl").read_text(encoding="utf-8").splitlines()]
    files_only_elsewhere = tmp_path / "landing"   # no CSV fallback: the API is the only channel here
    files_only_elsewhere.mkdir()
    spool = tmp_path / "api_spool" / "hrss_employment" / "202611"

    with start_server(api_city, drop_after_pages=2) as server:
        monkeypatch.setenv("RURALWATCH_API_BASE_URL", server.url)
        monkeypatch.setenv("RURALWATCH_API_TOKEN", server.token)
        with pytest.raises(api.ApiError, match="resumes"):
            pipeline.load_feed("hrss_employment", MONTH, files_only_elsewhere)
    kept = {p.name: p.stat().st_mtime_ns for p in spool.glob("page_*.json")}
    assert sorted(kept) == ["page_000001.json", "page_000002.json"]
    first_answer = dt.datetime.fromisoformat((spool / "answered_at").read_text())
    assert ledger(warehouse, "hrss_employment") == []

    with start_server(api_city) as server:
        monkeypatch.setenv("RURALWATCH_API_BASE_URL", server.url)
        loaded = pipeline.load_feed("hrss_employment", MONTH, files_only_elsewhere)
        again = pipeline.load_feed("hrss_employment", MONTH, files_only_elsewhere)
    assert [(o["status"], o["rows"]) for o in loaded] == [("loaded", len(expected))]
    assert [o["status"] for o in again] == ["seen"]
    # Page 1 was not asked for again: the delivery's arrival is the first run's answer.
    assert not list(spool.glob("page_*.json"))
    with psycopg.connect(warehouse) as conn:
        ids = [r[0] for r in conn.execute("select resident_id from raw.hrss_employment")]
        deliveries = conn.execute("select channel, status, arrived_at from raw.deliveries").fetchall()
    assert sorted(ids) == sorted(expected) and len(set(ids)) == len(ids)
    assert deliveries == [("api", "loaded", first_answer)]


# -- permissions ----------------------------------------------------------------------------------------
_LOAD_FEEDS = """
import datetime as dt, json, sys
from pathlib import Path
from ruralwatch import pipeline
landing, feeds = Path(sys.argv[1]), sys.argv[2].split(",")
for feed in feeds:
    try:
        outcomes = pipeline.load_feed(feed, dt.date(2026, 11, 1), landing)
    except Exception as exc:
        print(json.dumps({"feed": feed, "error": type(exc).__name__, "message": str(exc)}))
    else:
        print(json.dumps({"feed": feed, "outcomes": outcomes}))
"""


def load_feeds_elsewhere(landing: Path, archive: Path, feeds: list[str], preexec_fn=None) -> dict[str, dict]:
    """`pipeline.load_feed` in a subprocess (without root's file powers, or under a resource limit)."""
    code = f"import sys; sys.argv = ['load', {str(landing)!r}, {','.join(feeds)!r}]\n" + _LOAD_FEEDS
    result = run_python(code, {"RURALWATCH_ARCHIVE": str(archive)}, preexec_fn=preexec_fn)
    assert result.returncode == 0, result.stderr[-3000:]
    return {item["feed"]: item for item in map(json.loads, result.stdout.strip().splitlines())}


def ledger_statuses(url: str, feed: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("select status, count(*) from raw.deliveries where feed = %s group by status",
                                 (feed,)).fetchall())


def rejection_escalations(url: str, feed: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("select status, resolution from dq.escalations where kind = 'rejected_delivery' "
                            "and feed = %s", (feed,)).fetchall()


def open_landing(landing: Path) -> None:
    """Folders 755 and files 644, so the unprivileged user may read what it should."""
    for path in [landing, *landing.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_unreadable_delivery_is_rejected_naming_the_file_and_the_permission(warehouse, open_tmp):
    """A delivery file the loader's user may not read.

    Tried: a roster CSV with mode 000 next to a readable deaths CSV, each feed through `pipeline.load_feed`
    in a process that meets permission bits (as root: without CAP_DAC_OVERRIDE); then the file made readable, loaded again.
    Held: the run went on (the deaths file loaded); the roster was rejected, recorded with a reason naming
    the file and "permission denied", and escalated (rejected_delivery); once readable it loaded and the
    escalation was resolved as redelivered.
    """
    from ruralwatch import pipeline

    landing, archive = open_tmp / "landing", open_tmp / "archive"
    roster = write_csv(landing / ROSTER / "rural_roster_202611.csv", sample_rows())
    deaths_delivery(landing)
    open_landing(landing)
    archive.mkdir()
    archive.chmod(0o777)
    roster.chmod(0o000)
    pipeline.prepare_warehouse()   # as ourselves: the UDF cache is warm for the other user
    results = load_feeds_elsewhere(landing, archive, [ROSTER, DEATHS], preexec_fn=unprivileged())
    assert [o["status"] for o in results[DEATHS]["outcomes"]] == ["loaded"]
    (rejected,) = results[ROSTER]["outcomes"]
    assert rejected["status"] == "rejected"
    assert "rural_roster_202611.csv" in rejected["reason"] and "permission denied" in rejected["reason"]
    assert ledger_statuses(warehouse, ROSTER) == {"rejected": 1}
    assert rejection_escalations(warehouse, ROSTER) == [("open", None)]

    roster.chmod(0o644)
    again = load_feeds_elsewhere(landing, archive, [ROSTER], preexec_fn=unprivileged())
    assert [o["status"] for o in again[ROSTER]["outcomes"]] == ["loaded"]
    assert ledger_statuses(warehouse, ROSTER) == {"rejected": 1, "loaded": 1}
    assert rejection_escalations(warehouse, ROSTER) == [("resolved", "redelivered")]


def test_archive_folder_that_cannot_be_written_is_a_clear_error(warehouse, open_tmp):
    """The archive folder cannot be written.

    Tried: `pipeline.load_feed` of a roster CSV in a process that may not write the archive folder (mode 555; as root: without CAP_DAC_OVERRIDE).
    Held: the load stops with ArchiveError naming the file, the archive folder and "Permission denied";
    nothing was recorded, so the run once the folder is writable loads it.
    """
    from ruralwatch import pipeline

    landing, archive = open_tmp / "landing", open_tmp / "archive"
    write_csv(landing / ROSTER / "rural_roster_202611.csv", sample_rows())
    open_landing(landing)
    archive.mkdir()
    archive.chmod(0o555)
    pipeline.prepare_warehouse()
    result = load_feeds_elsewhere(landing, archive, [ROSTER], preexec_fn=unprivileged())[ROSTER]
    assert result.get("error") == "ArchiveError", result
    assert str(archive / ROSTER) in result["message"] or str(archive) in result["message"]
    assert "Permission denied" in result["message"] and "rural_roster_202611.csv" in result["message"]
    assert leftovers(warehouse, ROSTER)["ledger_rows"] == 0
    archive.chmod(0o777)
    again = load_feeds_elsewhere(landing, archive, [ROSTER], preexec_fn=unprivileged())[ROSTER]
    assert [o["status"] for o in again["outcomes"]] == ["loaded"]


def load_with_archive(url: str, landing: Path, archive: Path):
    from ruralwatch.feeds.loader import Loader

    with psycopg.connect(url, autocommit=True) as conn:
        return Loader(conn, archive=archive).load_landing(landing, feed=ROSTER)


# -- a full disk -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def tiny_filesystem(folder: Path, size: str = "2m"):
    """A 2 MB tmpfs at `folder` when this machine lets us mount one; None otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    try:
        yield folder if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


def _limit_file_size() -> None:
    # A process may not grow a file past 1 MB: writes fail with EFBIG instead of a SIGXFSZ kill.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def _prepare_big_landing(open_tmp: Path, megabytes: int) -> tuple[Path, int]:
    from ruralwatch import pipeline

    landing = open_tmp / "landing"
    _, rows = big_roster(landing / ROSTER, megabytes)
    open_landing(landing)
    pipeline.prepare_warehouse()
    return landing, rows


def _archive_refused_under_a_file_size_limit(warehouse: str, landing: Path, archive: Path) -> str:
    result = load_feeds_elsewhere(landing, archive, [ROSTER], preexec_fn=_limit_file_size)[ROSTER]
    assert result.get("error") == "ArchiveError", result
    assert list((archive / ROSTER).iterdir()) == [], "the half-written copy was left behind"
    return result["message"]


def test_full_disk_under_the_archive_is_a_clear_error(warehouse, open_tmp):
    """The disk under the archive is full.

    Tried: `Loader` on a 6 MB roster CSV whose archive copy lands on a 2 MB tmpfs (where this machine does
    not let us mount one: a subprocess whose file-size limit is 1 MB, as in the next scenario).
    Held: the load stops with ArchiveError saying what happened ("No space left on device") and where (the
    archive folder, the file); the half-written copy is removed from the full disk; nothing was recorded;
    with room again the same delivery loads.
    """
    from ruralwatch.feeds.loader import ArchiveError

    landing, rows = _prepare_big_landing(open_tmp, 6)
    with tiny_filesystem(open_tmp / "archive") as archive:
        if archive is not None:
            with pytest.raises(ArchiveError) as failure:
                load_with_archive(warehouse, landing, archive)
            message = str(failure.value)
            assert "No space left on device" in message
            assert list((archive / ROSTER).iterdir()) == [], "the half-written copy was left on the full disk"
        else:
            archive = open_tmp / "archive"
            message = _archive_refused_under_a_file_size_limit(warehouse, landing, archive)
            assert "File too large" in message
        assert str(archive / ROSTER) in message and "rural_roster_202611.csv" in message
        assert leftovers(warehouse, ROSTER)["ledger_rows"] == 0
    outcomes = load_with_archive(warehouse, landing, open_tmp / "archive-with-room")
    assert [(o.status, o.rows) for o in outcomes] == [("loaded", rows)]


def test_file_size_limit_on_the_archive_is_a_clear_error(warehouse, open_tmp):
    """The archive may not grow (a file-size limit: the portable stand-in for a full disk).

    Tried: `pipeline.load_feed` of a 3 MB roster CSV in a subprocess with RLIMIT_FSIZE at 1 MB (SIGXFSZ
    ignored, so the write fails with EFBIG).
    Held: ArchiveError saying "File too large" and naming the archive folder and the file; no half-written
    copy; nothing recorded; the same delivery loads once the limit is gone.
    """
    landing, rows = _prepare_big_landing(open_tmp, 3)
    archive = open_tmp / "archive"
    message = _archive_refused_under_a_file_size_limit(warehouse, landing, archive)
    assert "File too large" in message and str(archive / ROSTER) in message and "rural_roster_202611.csv" in message
    assert leftovers(warehouse, ROSTER)["ledger_rows"] == 0
    again = load_feeds_elsewhere(landing, archive, [ROSTER])[ROSTER]
    assert [(o["status"], o["rows"]) for o in again["outcomes"]] == [("loaded", rows)]
