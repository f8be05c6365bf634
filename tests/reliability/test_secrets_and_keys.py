"""No secret in the repository; the pseudonymisation key, SMTP and API credentials come from the
environment (or, for local runs only, a generated file under the git-ignored .local/)."""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import stat
from pathlib import Path

import psycopg
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXCLUDED_DIRS = {".git", ".venv", ".local", "target", "dbt_packages", "logs", "__pycache__", ".pytest_cache",
                 ".ruff_cache", ".hypothesis", "node_modules", "build"}
SCANNED_SUFFIXES = {".py", ".sql", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".env", ".json", ".md", ".sh", ".txt",
                    ".example", ".in", ".lock"}
SCANNED_NAMES = {"Dockerfile", "Makefile", ".env", ".gitignore"}

# Each pattern is a thing that should never be committed; the named group `value` is what the
# allowlist judges.
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key": re.compile(r"\b(?P<value>(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16})\b"),
    "JWT": re.compile(r"\b(?P<value>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"),
    "URL with a password": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"`]+:(?P<value>[^\s@/'\"`]+)@"),
    "secret assigned a literal": re.compile(
        r"(?i)\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
        r"pseudonym[_-]?key|credential)s?\b[\"']?[ \t]*(?::|=)[ \t]*[\"'](?P<value>[^\"'\s]{6,})[\"']"),
    "secret handed to the environment": re.compile(
        r"[\"'][A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|_KEY)[A-Z0-9_]*[\"'][ \t]*,[ \t]*[\"'](?P<value>[^\"'\s]{6,})[\"']"),
    "secret in an env file": re.compile(
        r"(?im)^[ \t]*(?:export[ \t]+)?[A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|_KEY)[A-Z0-9_]*[ \t]*=[ \t]*(?P<value>[^\s#]{6,})"),
}
ENV_FILE_ONLY = {"secret in an env file"}
# Documented placeholders and templates (${VAR}, {{ env_var() }}, <...>, an environment variable's own
# name), and the throwaway values tests use: tiny on purpose.
PLACEHOLDER = re.compile(r"\$\{|\{\{|\{[^}]*\}|%\(|<[^>]+>|^\*+$|env_var|os\.environ|getenv")
ENV_VAR_NAME = re.compile(r"[A-Z][A-Z0-9_]+")
THROWAWAY = {
    "test-only-pseudonym-key-not-a-secret",   # tests/conftest.py: the test session's pseudonym key
    "not-the-token",                          # tests/integration/test_api_feed.py: a wrong bearer token
    "right-token",                            # tests/integration/test_simulate_api.py: the simulator's token
    "test-token",                             # tests/integration/test_quality_notify.py: a local webhook's token
    "s%40cret",                               # tests/unit/test_db_url.py: a URL-escaped password being parsed
}


def scanned_files() -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(PROJECT_ROOT):
        dirs[:] = [d for d in dirs if d not in EXCLUDED_DIRS and not d.endswith(".egg-info")]
        for name in names:
            path = Path(folder, name)
            if path.suffix in SCANNED_SUFFIXES or name in SCANNED_NAMES or name.startswith(".env"):
                files.append(path)
    return files


def is_env_file(path: Path) -> bool:
    return path.name.startswith(".env") or path.suffix in {".env", ".sh"} or path.name in {"Dockerfile", "Makefile"}


def findings(text: str, env_file: bool = True) -> list[tuple[str, str]]:
    found = []
    for label, pattern in SECRET_PATTERNS.items():
        if label in ENV_FILE_ONLY and not env_file:
            continue
        for match in pattern.finditer(text):
            value = match.groupdict().get("value") or match.group(0)
            if PLACEHOLDER.search(value) or value in THROWAWAY:
                continue
            if label in {"secret assigned a literal", "secret handed to the environment"} and ENV_VAR_NAME.fullmatch(value):
                continue  # `"RURALWATCH_SMTP_PASSWORD": "RURALWATCH_SMTP_PASSWORD"`-style mappings of names
            found.append((label, value))
    return found


def test_the_secret_scanner_finds_what_it_looks_for():
    """The secret scanner itself (so a clean scan means something).

    Tried: the scanner on planted secrets of every kind, and on the placeholders the project uses.
    Held: a private key, an AKIA key, a JWT, a URL with a password, a literal password, token and key, and a
    filled-in .env line are all found; ${VAR}, {{ env_var() }}, os.environ reads and blank .env lines are not.
    """
    # Assembled at run time, so that this file itself stays clean for the scan below.
    begin, jwt_part = "-----BEGIN", "eyJ" + "hbGciOiJIUzI1NiJ9"
    planted = "\n".join([
        f"{begin} OPENSSH PRIVATE KEY-----", "aws = 'AKIA" + "IOSFODNN7EXAMPLF'",
        f"jwt = '{jwt_part}.eyJ" + "zdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36P'",
        "WAREHOUSE_URL: postgresql://ruralwatch:" + "hunter2hunter2@db:5432/ruralwatch",
        'password = "' + 's3cr3t-passw0rd"', "api_token: '" + "ab12cd34ef56'",
        '"RURALWATCH_PSEUDONYM_KEY": "' + '0123456789abcdef"', "RURALWATCH_SMTP_PASSWORD=" + "realpassword",
        'monkeypatch.setenv("RURALWATCH_API_TOKEN", "' + 'abcdef123456")',
    ])
    assert {label for label, _ in findings(planted)} == set(SECRET_PATTERNS)
    assert len(findings(planted)) == 10
    harmless = "\n".join([
        "url: postgresql://ruralwatch:${WAREHOUSE_PASSWORD}@warehouse:5432/ruralwatch",
        "password: \"{{ env_var('RURALWATCH_PG_PASSWORD', '') }}\"", "token = os.environ.get('RURALWATCH_API_TOKEN')",
        "RURALWATCH_SMTP_PASSWORD=", "AIRFLOW_JWT_SECRET=", 'os.environ.setdefault("RURALWATCH_PSEUDONYM_KEY", '
        '"test-only-pseudonym-key-not-a-secret")', 'tables = ("restricted.pseudonym_key", "reference.area_codes")',
    ])
    assert findings(harmless) == []


def test_no_secret_in_any_project_file():
    """No secret committed.

    Tried: every py, sql, yml/yaml, toml, cfg, ini, json, md, sh, txt, env and Dockerfile/Makefile under the
    project (not .venv, .local, dbt's target) scanned for private keys, AWS keys, JWTs, URLs with passwords,
    and passwords/tokens/keys assigned literal values; a tiny allowlist of documented placeholders and a few
    throwaway test values.
    Held: no finding; .local/ (the generated key, the embedded server) and .env are git-ignored.
    """
    files = scanned_files()
    assert len(files) > 100, "the scan walked almost nothing: the test proves nothing"
    problems = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        problems += [f"{path.relative_to(PROJECT_ROOT)}: {label}: {value[:12]}…"
                     for label, value in findings(text, is_env_file(path))]
    assert problems == []
    ignored = (PROJECT_ROOT / ".gitignore").read_text().split()
    assert ".local/" in ignored and ".env" in ignored


# -- the pseudonymisation key --------------------------------------------------------------------------
def _person_key(url: str, resident_id: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("select restricted.person_key(%s)", (resident_id,)).fetchone()[0]


def test_person_keys_follow_the_key_in_the_environment(server_url, monkeypatch, tmp_path):
    """The pseudonymisation key comes from RURALWATCH_PSEUDONYM_KEY.

    Tried: two warehouses prepared with two different RURALWATCH_PSEUDONYM_KEY values (LOCAL_DIR pointed
    at an empty folder); then the second key against the first warehouse.
    Held: person_key is HMAC-SHA256 of the ID under the key from the environment (an independent Python
    HMAC agrees) and changes with the key; nothing was written under .local/secrets; a warehouse refuses
    a different key rather than re-key every person.
    """
    from ruralwatch import pipeline, settings
    from ruralwatch.warehouse import PseudonymKeyError
    from tests.conftest import _recreate_database

    if (settings.LOCAL_DIR / "cache").is_dir():  # the rendered util.* SQL: saves a dbt start-up
        shutil.copytree(settings.LOCAL_DIR / "cache", tmp_path / "cache")
    monkeypatch.setattr("ruralwatch.settings.LOCAL_DIR", tmp_path)
    resident_id = "990101196503041030"
    urls, keys = [], ["reliability-key-one-0123456789", "reliability-key-two-9876543210"]
    for number, key in enumerate(keys):
        url = _recreate_database(server_url, f"ruralwatch_keys_{os.getpid()}_{number}")
        urls.append(url)
        monkeypatch.setenv("WAREHOUSE_URL", url)
        monkeypatch.setenv("RURALWATCH_PSEUDONYM_KEY", key)
        pipeline.prepare_warehouse()
    try:
        person_keys = [_person_key(url, resident_id) for url in urls]
        expected = [hmac.new(k.encode(), resident_id.encode(), hashlib.sha256).hexdigest()[:32] for k in keys]
        assert person_keys == expected and person_keys[0] != person_keys[1]
        assert not (tmp_path / "secrets").exists()
        monkeypatch.setenv("WAREHOUSE_URL", urls[0])
        with pytest.raises(PseudonymKeyError, match="differs"):
            pipeline.prepare_warehouse()
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            for url in urls:
                conn.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')


def test_without_the_variable_a_local_key_is_generated_private_and_outside_the_repository(monkeypatch, tmp_path):
    """Local runs without RURALWATCH_PSEUDONYM_KEY.

    Tried: pseudonym_key() with the variable unset and LOCAL_DIR in a temp folder, twice; then a too-short key.
    Held: a random 64-hex key is generated once into LOCAL_DIR/secrets (folder 700, file 600) and reused;
    a key under 16 characters is refused.
    """
    from ruralwatch.warehouse import PseudonymKeyError, pseudonym_key

    monkeypatch.delenv("RURALWATCH_PSEUDONYM_KEY", raising=False)
    monkeypatch.setattr("ruralwatch.settings.LOCAL_DIR", tmp_path)
    first, second = pseudonym_key(), pseudonym_key()
    path = tmp_path / "secrets" / "pseudonym_key"
    assert first == second and re.fullmatch(rb"[0-9a-f]{64}", first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    monkeypatch.setenv("RURALWATCH_PSEUDONYM_KEY", "short")
    with pytest.raises(PseudonymKeyError, match="16"):
        pseudonym_key()


# -- SMTP, webhook, API and warehouse credentials ---------------------------------------------------------
def test_credentials_are_read_from_the_environment_only(monkeypatch):
    """SMTP, webhook, API and warehouse credentials come from the environment.

    Tried: SmtpSettings / WebhookSettings / ApiSettings.from_env with and without their variables; dbt's
    profiles.yml and the Airflow connection the runner sets for dbt.
    Held: each password or token is exactly the environment's value and absent without it (an API URL
    without a token is refused); profiles.yml takes every credential from env_var(); the warehouse
    connection for Airflow is built from WAREHOUSE_URL.
    """
    import yaml

    from ruralwatch.feeds.api import ApiAuthError, ApiSettings
    from ruralwatch.quality.notify import SmtpSettings, WebhookSettings

    for name in ("RURALWATCH_SMTP_PASSWORD", "RURALWATCH_WEBHOOK_TOKEN", "RURALWATCH_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RURALWATCH_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RURALWATCH_SMTP_USER", "ruralwatch@example.invalid")
    monkeypatch.setenv("RURALWATCH_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("RURALWATCH_API_BASE_URL", "http://127.0.0.1:9")
    assert SmtpSettings.from_env().password is None and WebhookSettings.from_env().token is None
    with pytest.raises(ApiAuthError, match="RURALWATCH_API_TOKEN"):
        ApiSettings.from_env()
    values = [f"{os.getpid()}-only-in-the-environment-{n}" for n in range(4)]
    monkeypatch.setenv("RURALWATCH_SMTP_PASSWORD", values[0])
    monkeypatch.setenv("RURALWATCH_WEBHOOK_TOKEN", values[1])
    monkeypatch.setenv("RURALWATCH_API_TOKEN", values[2])
    assert SmtpSettings.from_env().password == values[0]
    assert WebhookSettings.from_env().token == values[1]
    assert ApiSettings.from_env().token == values[2]

    profile = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text())["ruralwatch"]["outputs"]
    for output in profile.values():
        for field in ("host", "user", "dbname", "password"):
            assert "env_var(" in str(output[field]), (field, output[field])

    from ruralwatch.orchestration.factory import WAREHOUSE_CONN_ID
    from ruralwatch.orchestration.runner import ensure_warehouse_connection

    monkeypatch.setenv("WAREHOUSE_URL", f"postgresql://analyst:{values[3]}@127.0.0.1:5/warehouse")
    monkeypatch.delenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}", raising=False)
    ensure_warehouse_connection()
    assert os.environ[f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"] == f"postgres://analyst:{values[3]}@127.0.0.1:5/warehouse"
