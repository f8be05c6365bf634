"""hrss_employment through the data-sharing API: the simulator's real HTTP server on 127.0.0.1."""
from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

pytestmark = pytest.mark.integration

MONTH = dt.date(2026, 11, 1)
FEED = "hrss_employment"


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    from tests.simulated import simulate

    return simulate(tmp_path_factory.mktemp("city"), persons=600, months="2026-11", seed=11)


def _api_rows(city) -> list[dict]:
    path = city / "_api" / f"{FEED}_{MONTH:%Y%m}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _client(api, tmp_path, page_size=50, token=None, max_attempts=8, waits=None):
    from ruralwatch.feeds.api import ApiClient, ApiSettings

    config = ApiSettings(api.url, token or api.token, page_size=page_size, max_attempts=max_attempts,
                         backoff_seconds=0.5)
    return ApiClient(config, "/api/v1/employment", spool_root=tmp_path / "spool",
                     sleep=(waits.append if waits is not None else (lambda s: None)))


def test_every_page_is_fetched_and_assembled_once(city, tmp_path):
    from ruralwatch.simulate.api import start_server

    expected = _api_rows(city)
    with start_server(city) as api:
        client = _client(api, tmp_path)
        delivery = client.fetch(FEED, MONTH, key_field="身份证号")
    assert delivery.rows == len(expected)
    assembled = [json.loads(line) for line in delivery.path.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["身份证号"] for r in assembled) == sorted(r["身份证号"] for r in expected)
    pages = -(-len(expected) // 50)
    assert client.requests_made == pages


def test_a_bad_token_is_a_clear_401_error(city, tmp_path):
    from ruralwatch.feeds.api import ApiAuthError
    from ruralwatch.simulate.api import start_server

    with start_server(city) as api, pytest.raises(ApiAuthError, match="401"):
        _client(api, tmp_path, token="not-the-token").fetch(FEED, MONTH, key_field="身份证号")


def test_429_waits_as_long_as_retry_after_says(city, tmp_path):
    from ruralwatch.simulate.api import start_server

    waits: list[float] = []
    with start_server(city, rate_429=0.5, retry_after=7, seed=3) as api:
        delivery = _client(api, tmp_path, waits=waits).fetch(FEED, MONTH, key_field="身份证号")
    assert delivery.rows == len(_api_rows(city))
    assert waits and all(w == 7 for w in waits), waits


def test_503_backs_off_and_recovers(city, tmp_path):
    from ruralwatch.simulate.api import start_server

    waits: list[float] = []
    with start_server(city, rate_503=0.4, seed=5) as api:
        delivery = _client(api, tmp_path, waits=waits).fetch(FEED, MONTH, key_field="身份证号")
    assert delivery.rows == len(_api_rows(city))
    assert waits, "no 503 was drawn: the test proves nothing"
    assert max(waits) > min(waits) or len(waits) == 1


def test_a_dropped_connection_resumes_without_gaps_or_duplicates(city, tmp_path):
    from ruralwatch.feeds.api import ApiError
    from ruralwatch.simulate.api import start_server

    expected = _api_rows(city)
    with start_server(city, drop_after_pages=2) as api:
        first = _client(api, tmp_path, max_attempts=1)
        with pytest.raises(ApiError, match="resumes"):
            first.fetch(FEED, MONTH, key_field="身份证号")
    spooled = sorted((tmp_path / "spool" / FEED / "202611").glob("page_*.json"))
    assert len(spooled) == 2
    with start_server(city) as api:
        second = _client(api, tmp_path)
        delivery = second.fetch(FEED, MONTH, key_field="身份证号")
    pages = -(-len(expected) // 50)
    assert second.requests_made == pages - 2, "pages already spooled were fetched again"
    assembled = [json.loads(line)["身份证号"] for line in delivery.path.read_text(encoding="utf-8").splitlines()]
    assert len(assembled) == len(set(assembled)) == len(expected)


def test_the_api_delivery_stands_over_the_file(city, warehouse, monkeypatch, tmp_path):
    from ruralwatch import pipeline
    from ruralwatch.simulate.api import start_server

    monkeypatch.setattr("ruralwatch.settings.LOCAL_DIR", tmp_path)
    assert (city / FEED / f"{FEED}_{MONTH:%Y%m}.csv").exists(), "the simulator wrote no CSV fallback"
    with start_server(city) as api:
        monkeypatch.setenv("RURALWATCH_API_BASE_URL", api.url)
        monkeypatch.setenv("RURALWATCH_API_TOKEN", api.token)
        loaded = pipeline.load_feed(FEED, MONTH, city)
    assert sorted(o["status"] for o in loaded) == ["loaded", "loaded"]
    pipeline.gate_feed(FEED)
    with psycopg.connect(warehouse) as conn:
        rows = dict(conn.execute("select channel, status from raw.deliveries where feed = %s", (FEED,)).fetchall())
        live = conn.execute("select channel from raw.deliveries where is_live").fetchall()
    assert rows == {"api": "loaded", "file": "superseded"}
    assert live == [("api",)]
