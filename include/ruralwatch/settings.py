"""Where things live and which settings come from the environment.

Everything a deployment changes is an environment variable; nothing here reads a file that holds a
secret. Paths default to folders inside the project so that a fresh clone runs without set-up.
"""
from __future__ import annotations

import os
from pathlib import Path

# The package is installed in editable mode from include/, so the project root is two levels up.
PROJECT_ROOT = Path(os.environ.get("RURALWATCH_HOME", Path(__file__).resolve().parents[2]))
LOCAL_DIR = Path(os.environ.get("RURALWATCH_LOCAL_DIR", PROJECT_ROOT / ".local"))
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DAGS_DIR = PROJECT_ROOT / "dags"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DBT_LOG_DIR = LOCAL_DIR / "dbt-logs"
# dbt's threads: models that do not depend on each other build side by side. Two for the two cores of
# the development machine; a larger warehouse server can take more.
DBT_THREADS = int(os.environ.get("DBT_THREADS") or 2)
# How many feeds' ingest DAGs `ruralwatch run`, backfill, the demo and the benchmark run side by side,
# as a deployment's scheduler does with its workers. 1 runs them one after the other in this process.
INGEST_WORKERS = int(os.environ.get("RURALWATCH_INGEST_WORKERS") or 2)

# Telemetry would try the network, which is closed here; progress bars clutter task logs.
_QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "GX_ANALYTICS_ENABLED": "False",
    "SCARF_ANALYTICS": "false",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
}
for _key, _value in _QUIET_ENV.items():
    os.environ.setdefault(_key, _value)

# Airflow keeps its home and SQLite metadata inside the project unless told otherwise; this must be
# set before airflow is first imported.
os.environ.setdefault("AIRFLOW_HOME", str(LOCAL_DIR / "airflow"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_DIR))


def landing_dir() -> Path:
    """The city's landing folder (RURALWATCH_LANDING), or the demo's simulated one."""
    return Path(os.environ.get("RURALWATCH_LANDING", LOCAL_DIR / "landing"))


def reports_dir() -> Path:
    return Path(os.environ.get("RURALWATCH_REPORTS", LOCAL_DIR / "reports"))


def archive_dir() -> Path:
    """Every delivery's bytes are kept here by SHA-256, whatever became of it."""
    return Path(os.environ.get("RURALWATCH_ARCHIVE", LOCAL_DIR / "archive"))


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", LOCAL_DIR / "airflow"))
