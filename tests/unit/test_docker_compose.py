"""No Docker engine runs here, so the compose file is checked as data: services, images, env, mounts."""
from __future__ import annotations

import re

import pytest
import yaml

from ruralwatch import settings

AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((settings.PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_services(compose):
    services = set(compose["services"])
    assert {"warehouse", "airflow-metadata", "redis", "airflow-init"} | AIRFLOW_SERVICES <= services


def test_the_warehouse_is_sized_for_bulk_loads(compose):
    warehouse = compose["services"]["warehouse"]
    options = dict(arg.split("=", 1) for arg in warehouse["command"] if "=" in arg)
    # At PostgreSQL's 1 GB default a million-row month checkpointed every few seconds.
    assert options["max_wal_size"] == "8GB" and options["work_mem"] == "64MB"
    assert warehouse["shm_size"] == "1gb"


def test_images(compose):
    services = compose["services"]
    assert services["warehouse"]["image"].startswith("postgres:")
    assert services["airflow-metadata"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name in AIRFLOW_SERVICES:
        assert services[name]["image"] == "ruralwatch-airflow:3.3.2", name
    dockerfile = (settings.PROJECT_ROOT / "Dockerfile").read_text()
    assert "apache/airflow:3.3.2-python3.11" in dockerfile and "requirements.lock" in dockerfile


def test_airflow_runs_celery_against_the_warehouse(compose):
    services = compose["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
        assert "@airflow-metadata:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert "@warehouse:5432/ruralwatch" in env["WAREHOUSE_URL"]
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/ruralwatch/dags"
        mounts = services[name]["volumes"]
        assert "./dags:/opt/ruralwatch/dags:ro" in mounts
        assert any(m.startswith("./dbt_project:") for m in mounts)
    commands = {name: services[name]["command"] for name in AIRFLOW_SERVICES}
    assert commands["airflow-worker"] == ["airflow", "celery", "worker"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert commands["airflow-apiserver"] == ["airflow", "api-server"]


def test_secrets_come_from_the_environment(compose):
    text = (settings.PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for secret in ("WAREHOUSE_PASSWORD", "AIRFLOW_DB_PASSWORD", "AIRFLOW_JWT_SECRET", "RURALWATCH_PSEUDONYM_KEY"):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be required from the environment"
    assert not re.search(r"PASSWORD:\s*[A-Za-z0-9]", text), "a literal password in docker-compose.yml"


def test_ports_bind_to_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"
