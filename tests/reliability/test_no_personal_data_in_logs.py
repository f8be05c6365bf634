"""Logs and reports never show a full resident ID or name (feeds.md: masking wherever a person who is
not an engineer reads). A simulated month runs through the DAGs in a subprocess with its own Airflow
home, reports folder and local folder, at the production log level (INFO); then every file it wrote
and everything it printed is searched for the IDs and names of the landing files."""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

pytestmark = pytest.mark.integration

MONTH = dt.date(2026, 11, 1)
FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")
RESIDENT_ID = re.compile(r"(?<![0-9])([0-9]{17}[0-9X]|[0-9]{15})(?![0-9])")
PERSON_NAME = re.compile(r"[\u4e00-\u9fff·]{2,6}")

# What `ruralwatch run` does for a month: every DAG, dbt's output included. The hrss_employment API is
# served by the simulator, as in the demo.
MONTH_SCRIPT = """
import datetime as dt, os, sys
from pathlib import Path
from ruralwatch.demo import print_month_summary
from ruralwatch.orchestration.runner import feeds_with_deliveries, run_dag
from ruralwatch.simulate.api import start_server

landing, month = Path(sys.argv[1]), dt.date(2026, 11, 1)
with start_server(landing) as api:
    os.environ["RURALWATCH_API_BASE_URL"], os.environ["RURALWATCH_API_TOKEN"] = api.url, api.token
    for feed in feeds_with_deliveries(landing, month):
        result = run_dag(f"ingest_{feed}", month=month, landing=landing)
        print(f"ingest_{feed}: {result.state}", flush=True)
print(f"build_warehouse: {run_dag('build_warehouse').state}", flush=True)
print(f"publish_reports: {run_dag('publish_reports', month=month).state}", flush=True)
print_month_summary(month)
"""


def landing_people(landing: Path) -> tuple[set[str], set[str]]:
    """Every resident ID (normalised) and name in the landing files' 身份证号 / 姓名 columns."""
    import openpyxl

    ids, names = set(), set()
    for path in sorted(landing.glob("[!_]*/*")):
        if path.suffix == ".csv":
            raw = path.read_bytes()
            text = next((raw.decode(e) for e in ("utf-8-sig", "gb18030") if _decodes(raw, e)), None)
            rows = list(csv.reader(io.StringIO(text))) if text else []
        else:
            workbook = openpyxl.load_workbook(path, read_only=True)
            rows = [["" if v is None else str(v) for v in r] for r in workbook.worksheets[0].iter_rows(values_only=True)]
            workbook.close()
        header_at = next((i for i, row in enumerate(rows[:10]) if any("身份证号" in c or "姓名" in c for c in row)), None)
        if header_at is None:
            continue
        header = [h.strip() for h in rows[header_at]]
        for row in rows[header_at + 1:]:
            for column, value in zip(header, row, strict=False):
                value = value.strip().translate(FULL_WIDTH).upper()
                if "身份证号" in column and RESIDENT_ID.fullmatch(value):
                    ids.add(value)
                if "姓名" in column and PERSON_NAME.fullmatch(value):
                    names.add(value)
    return ids, names


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def texts_of(path: Path):
    """(label, text) of a file; XLSX/zip members one by one."""
    if zipfile.is_zipfile(path) and path.suffix in {".xlsx", ".zip", ".docx"}:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                yield f"{path}!{member}", archive.read(member).decode("utf-8", "replace")
    else:
        yield str(path), path.read_bytes().decode("utf-8", "replace")


def leaks(label_texts, ids: set[str], names: set[str]) -> dict[str, list[str]]:
    name_pattern = re.compile("|".join(sorted(map(re.escape, names), key=len, reverse=True)))
    found: dict[str, list[str]] = {}
    for label, text in label_texts:
        hits = [i for i in RESIDENT_ID.findall(text.translate(FULL_WIDTH).upper()) if i in ids]
        hits += name_pattern.findall(text)
        if hits:
            found[label] = sorted(set(hits))[:5]
    return found


def _plant_a_ragged_row(landing: Path) -> None:
    """A row with one cell too many (an unquoted comma): the fast COPY fails on it and PostgreSQL's error
    quotes the whole line, ID and name included, which the loader used to log."""
    path = landing / "health_insurance_enrollment" / "health_insurance_enrollment_202611.csv"
    lines = path.read_bytes().split(b"\n")
    lines.insert(5, lines[4].rstrip(b"\r") + b",extra" + (b"\r" if lines[4].endswith(b"\r") else b""))
    path.write_bytes(b"\n".join(lines))


@dataclass
class MonthRun:
    url: str
    landing: Path
    folders: dict[str, Path]
    stdout: str
    stderr: str
    ids: set[str]
    names: set[str]


@pytest.fixture(scope="module")
def month_run(server_url, tmp_path_factory):
    """One simulated month through the DAGs in a subprocess; its warehouse stays up for the module."""
    from ruralwatch import settings
    from tests.conftest import _recreate_database
    from tests.simulated import simulate

    tmp_path = tmp_path_factory.mktemp("month")
    landing = simulate(tmp_path / "city", persons=300, months="2026-11", seed=5, defects="default")
    _plant_a_ragged_row(landing)
    ids, names = landing_people(landing)
    database = f"ruralwatch_leaks_{os.getpid()}"
    url = _recreate_database(server_url, database)
    folders = {"AIRFLOW_HOME": tmp_path / "airflow", "RURALWATCH_LOCAL_DIR": tmp_path / "local",
               "RURALWATCH_REPORTS": tmp_path / "reports", "RURALWATCH_ARCHIVE": tmp_path / "archive"}
    if (settings.LOCAL_DIR / "cache").is_dir():  # the rendered util.* SQL: saves a dbt start-up
        shutil.copytree(settings.LOCAL_DIR / "cache", folders["RURALWATCH_LOCAL_DIR"] / "cache")
    env = {**os.environ, **{k: str(v) for k, v in folders.items()}, "WAREHOUSE_URL": url,
           "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("AIRFLOW__CORE__SQL_ALCHEMY_CONN", None)
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    try:
        run = subprocess.run([sys.executable, "-c", MONTH_SCRIPT, str(landing)], env=env, capture_output=True,
                             text=True, timeout=600, cwd=tmp_path)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        yield MonthRun(url, landing, folders, run.stdout, run.stderr, ids, names)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')


def test_a_month_run_prints_and_writes_no_full_resident_id_or_name(month_run):
    """No full resident ID or name in logs, reports or notifications.

    Tried: a simulated city of 300 persons (default defects, plus one ragged row in a CSV) through every
    ingest DAG (dag.test), dbt build and the publish_reports DAG in a subprocess at log level INFO, with its
    own AIRFLOW_HOME, RURALWATCH_LOCAL_DIR and RURALWATCH_REPORTS; then its stdout/stderr, every file under
    those folders (Airflow logs and metadata, dbt logs, HTML/JSON/XLSX reports, GX data docs) and the
    escalations, samples and outbox messages in the warehouse searched for the landing files' 身份证号 and
    姓名 values.
    Held: none found (masked forms like 990101********1234 and 张** are fine); the run really took the
    paths that used to leak (the fast COPY's fallback was logged, escalations and reports were written).
    """
    run, folders, ids, names = month_run, month_run.folders, month_run.ids, month_run.names
    assert len(ids) > 250 and len(names) > 250
    with psycopg.connect(run.url) as conn:
        stored = [("dq.escalations", " ".join(map(str, r))) for r in conn.execute(
            "select title, sample::text, detail::text from dq.escalations")]
        stored += [("dq.outbox", " ".join(map(str, r))) for r in conn.execute(
            "select subject, body, payload::text from dq.outbox")]
        stored += [("dq.check_results", str(r[0])) for r in conn.execute(
            "select sample::text from dq.check_results where sample is not null")]

    written = [p for folder in ("AIRFLOW_HOME", "RURALWATCH_REPORTS") for p in folders[folder].rglob("*") if p.is_file()]
    written += [p for p in (folders["RURALWATCH_LOCAL_DIR"] / "dbt-logs").rglob("*") if p.is_file()]
    reports = [p for p in written if p.suffix in {".html", ".xlsx", ".json"} and "reports" in p.parts]
    assert any(p.name.endswith(".log") for p in written), "dbt wrote no log: the search proves nothing"
    assert len(reports) > 10 and any(p.suffix == ".xlsx" or p.name.endswith("report.html") for p in reports)
    assert "fell back to row-by-row" in run.stdout + run.stderr, "the fallback that used to leak did not run"
    assert any(label == "dq.escalations" for label, _ in stored) and len(stored) > 10

    sources = [("stdout", run.stdout), ("stderr", run.stderr), *stored]
    for path in written:
        sources += list(texts_of(path))
    assert leaks(sources, ids, names) == {}
    # And the search does find what it looks for: a full ID and a full name in the same texts would show.
    some_id, some_name = sorted(ids)[0], sorted(names)[0]
    assert leaks([("planted", f"{some_id} {some_name}")], ids, names) == {"planted": sorted([some_id, some_name])}


# -- who may read what -----------------------------------------------------------------------------------
MASKED_ID = re.compile(r"(?<![0-9])[0-9]{6}\*{8}[0-9X]{4}(?![0-9])")


def _as_role(conn: psycopg.Connection, role: str, query: sql.Composable | str) -> list[tuple]:
    conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.execute("reset role")


def _relations(conn: psycopg.Connection, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "select table_name from information_schema.tables where table_schema = %s order by 1", (schema,))]


def _denied(conn: psycopg.Connection, role: str, query: str) -> bool:
    try:
        _as_role(conn, role, query)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def _rows_as_text(conn, role: str, schema: str) -> list[tuple[str, str]]:
    texts = []
    for relation in _relations(conn, schema):
        query = sql.SQL("select row_to_json(t)::text from {} as t").format(sql.Identifier(schema, relation))
        texts += [(f"{schema}.{relation}", row[0]) for row in _as_role(conn, role, query)]
    return texts


def test_analysts_and_auditors_read_only_what_their_role_allows(month_run):
    """Analyst and auditor roles (ruralwatch.access, applied by every build).

    Tried: the built month's warehouse read as ruralwatch_analyst and ruralwatch_auditor (SET ROLE): raw,
    staging, intermediate, marts, restricted (the key and person_key()), dq and audit, and every published
    view; every row an analyst or auditor can read searched for the landing files' IDs and names.
    Held: the analyst reads the published views (rows there) and nothing else; the auditor reads dq, audit and
    published but not raw, staging, marts or restricted; neither sees a full resident ID or name; the
    auditor sees IDs masked (990101********1234).
    """
    from ruralwatch.access import ANALYST, AUDITOR

    with psycopg.connect(month_run.url, autocommit=True) as conn:
        some = {schema: _relations(conn, schema)[0] for schema in
                ("raw", "staging", "intermediate", "marts", "dq", "audit", "published")}
        forbidden = {schema: f"select * from {schema}.{relation} limit 1" for schema, relation in some.items()}
        forbidden["restricted"] = "select * from restricted.pseudonym_key"
        forbidden["person_key()"] = "select restricted.person_key('990101196503041030')"
        forbidden["raw.deliveries"] = "select * from raw.deliveries limit 1"
        forbidden["staging roster"] = "select * from staging.stg_rural_roster__persons limit 1"
        analyst_denied = {name: _denied(conn, ANALYST, query) for name, query in forbidden.items()}
        auditor_denied = {name: _denied(conn, AUDITOR, query) for name, query in forbidden.items()}
        assert analyst_denied == {**dict.fromkeys(forbidden, True), "published": False}
        assert auditor_denied == {**dict.fromkeys(forbidden, True), "dq": False, "audit": False, "published": False}

        published = _rows_as_text(conn, ANALYST, "published")
        audited = _rows_as_text(conn, AUDITOR, "audit") + _rows_as_text(conn, AUDITOR, "dq")
    assert len({label for label, _ in published}) >= 5 and len(published) > 100
    assert leaks(published, month_run.ids, month_run.names) == {}
    assert leaks(audited, month_run.ids, month_run.names) == {}
    assert any(MASKED_ID.search(text) for _, text in audited), "the auditor sees no (masked) IDs at all"
