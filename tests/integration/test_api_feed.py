"""hrss_employment through the data-sharing API: the simulator's real HTTP server on 127.0.0.1."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

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


def test_the_delivery_is_dated_by_when_the_platform_answered(city, tmp_path):
    from ruralwatch.simulate.api import answer_time, start_server

    answered = answer_time(city / "_api" / f"{FEED}_{MONTH:%Y%m}.jsonl")
    with start_server(city) as api:
        delivery = _client(api, tmp_path).fetch(FEED, MONTH, key_field="身份证号")
    # The platform's own answer time (its Date header), not the moment this test ran.
    assert delivery.answered_at == dt.datetime.fromtimestamp(answered, dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - delivery.answered_at).total_seconds()) > 60


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
    gated = pipeline.gate_feed(FEED)
    with psycopg.connect(warehouse) as conn:
        rows = dict(conn.execute("select channel, status from raw.deliveries where feed = %s", (FEED,)).fetchall())
        live = conn.execute("select channel from raw.deliveries where is_live").fetchall()
        checked = dict(conn.execute(
            "select d.channel, count(r.*) from raw.deliveries d left join dq.check_results r using (batch_id) "
            "where d.feed = %s group by d.channel", (FEED,)).fetchall())
        file_gate = conn.execute("select gate_status, superseded_by is not null, reason from raw.deliveries "
                                 "where channel = 'file'").fetchone()
    assert rows == {"api": "loaded", "file": "superseded"}
    assert live == [("api",)]
    # The file could not go live whatever its checks said: it is kept, recorded, and not gated.
    assert sorted(g["decision"] for g in gated) == ["live", "superseded"]
    assert checked["api"] > 0 and checked["file"] == 0
    assert file_gate[:2] == ("not_applicable", True) and "API" in file_gate[2]


def test_a_quarantined_api_delivery_leaves_the_month_to_the_file(city, warehouse, monkeypatch, tmp_path):
    """The API's delivery stands only once it is live: quarantined, the file is gated and goes live."""
    from ruralwatch import pipeline
    from ruralwatch.simulate.api import start_server

    def wrong_check_characters(lines):
        items = [json.loads(line) for line in lines]
        for item in items[::10]:  # a tenth of the rows unusable: over the 2% that quarantines a batch
            resident_id = item["身份证号"]
            item["身份证号"] = resident_id[:17] + ("1" if resident_id[17] == "0" else "0")
        return [json.dumps(item, ensure_ascii=False) for item in items]

    with start_server(_platform(city, tmp_path, wrong_check_characters)) as api:
        _use_api(monkeypatch, tmp_path, api.url, api.token)
        pipeline.load_feed(FEED, MONTH, city)
    gated = pipeline.gate_feed(FEED)
    with psycopg.connect(warehouse) as conn:
        ledger = {row[0]: row[1:] for row in conn.execute(
            "select channel, status, gate_status, is_live from raw.deliveries where feed = %s", (FEED,))}
    assert sorted(g["decision"] for g in gated) == ["live", "quarantined"]
    assert ledger == {"api": ("quarantined", "failed", False), "file": ("loaded", "passed", True)}


# -- the spool, repeated keys, inconsistent pages and the file fallback ------------------------------------
def _platform(city, tmp_path, edit=None):
    """A copy of the simulator's API data that a test may change (the module's city is shared)."""
    source = city / "_api" / f"{FEED}_{MONTH:%Y%m}.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()
    data = tmp_path / "platform"
    (data / "_api").mkdir(parents=True, exist_ok=True)
    (data / "_api" / source.name).write_text("\n".join(edit(lines) if edit else lines) + "\n", encoding="utf-8")
    return data


def _use_api(monkeypatch, tmp_path, url, token):
    monkeypatch.setattr("ruralwatch.settings.LOCAL_DIR", tmp_path)
    monkeypatch.setenv("RURALWATCH_API_BASE_URL", url)
    monkeypatch.setenv("RURALWATCH_API_TOKEN", token)
    return tmp_path / "api_spool" / FEED / f"{MONTH:%Y%m}"


def _no_files(tmp_path):
    empty = tmp_path / "no_files"
    empty.mkdir(exist_ok=True)
    return empty


class _ShiftingPlatform:
    """A platform whose pages disagree with its total: the last page lacks its first item, as if the
    item had moved to an earlier page between our calls (the simulator always serves consistent pages).
    `consistent = True` mends it."""

    def __init__(self, items: list[dict], token: str = "t0ken") -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        platform = self
        self.items, self.token, self.consistent, self.requests = items, token, False, 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                platform.requests += 1
                query = parse_qs(urlsplit(self.path).query)
                page, size = int(query["page"][0]), int(query["page_size"][0])
                items = platform.items[(page - 1) * size:page * size]
                if page == -(-len(platform.items) // size) and not platform.consistent:
                    items = items[1:]
                body = json.dumps({"period": query["period"][0], "page": page, "page_size": size,
                                   "total": len(platform.items), "items": items}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_corrected_month_is_fetched_again_not_served_from_the_spool(city, warehouse, monkeypatch, tmp_path):
    from ruralwatch import pipeline
    from ruralwatch.feeds.loader import sha256_of
    from ruralwatch.simulate.api import start_server

    with start_server(_platform(city, tmp_path)) as api:
        spool = _use_api(monkeypatch, tmp_path, api.url, api.token)
        first = pipeline.load_feed(FEED, MONTH, _no_files(tmp_path))
    assert [o["status"] for o in first] == ["loaded"]
    assert list(spool.iterdir()) == [], "the spool outlived the load that recorded it"
    pipeline.gate_feed(FEED)

    def corrected(lines):
        item = json.loads(lines[0])
        item["月均工资"] = "4321"
        return [json.dumps(item, ensure_ascii=False), *lines[1:]]

    person = _api_rows(city)[0]["身份证号"]
    with start_server(_platform(city, tmp_path, corrected)) as api:
        monkeypatch.setenv("RURALWATCH_API_BASE_URL", api.url)
        second = pipeline.load_feed(FEED, MONTH, _no_files(tmp_path))
    assert [o["status"] for o in second] == ["loaded"], "the stale spool answered instead of the platform"
    pipeline.gate_feed(FEED)
    with psycopg.connect(warehouse) as conn:
        ledger = conn.execute("select batch_id, status, sha256, archive_path from raw.deliveries "
                              "where feed = %s order by recorded_at", (FEED,)).fetchall()
        wage = conn.execute("select r.monthly_wage_yuan from raw.hrss_employment r join raw.deliveries d "
                            "on d.batch_id = r._batch_id where d.is_live and r.resident_id = %s", (person,)).fetchall()
    assert [(b, s) for b, s, _, _ in ledger] == [(first[0]["batch_id"], "superseded"), (second[0]["batch_id"], "loaded")]
    assert wage == [("4321",)]
    # Nothing is lost: every assembled delivery is kept in the archive, byte for byte.
    for _, _, sha, archived in ledger:
        assert sha256_of(Path(archived)) == sha
    assert not any(spool.iterdir())


def test_an_item_exported_twice_reaches_raw_and_the_gate_reports_it(city, warehouse, monkeypatch, tmp_path):
    from ruralwatch import pipeline
    from ruralwatch.simulate.api import start_server

    expected = _api_rows(city)
    twice = expected[7]["身份证号"]
    with start_server(_platform(city, tmp_path, lambda lines: [*lines, lines[7]])) as api:
        delivery = _client(api, tmp_path).fetch(FEED, MONTH, key_field="身份证号")
        assert delivery.rows == len(expected) + 1
        _use_api(monkeypatch, tmp_path, api.url, api.token)
        loaded = pipeline.load_feed(FEED, MONTH, _no_files(tmp_path))
    assert [(o["status"], o["rows"]) for o in loaded] == [("loaded", len(expected) + 1)]
    with psycopg.connect(warehouse) as conn:
        copies = conn.execute("select count(*) from raw.hrss_employment where resident_id = %s", (twice,)).fetchone()
    assert copies == (2,)
    gated = pipeline.gate_feed(FEED)
    assert len(gated) == 1 and "key_unique" in gated[0]["failed"], gated


def test_inconsistent_pages_clear_the_spool_and_the_next_run_starts_over(city, tmp_path):
    from ruralwatch.feeds.api import ApiClient, ApiError, ApiSettings

    items = _api_rows(city)[:120]
    with _ShiftingPlatform(items) as platform:
        client = ApiClient(ApiSettings(platform.url, platform.token, page_size=50), "/api/v1/employment",
                           spool_root=tmp_path / "spool", sleep=lambda s: None)
        with pytest.raises(ApiError, match=r"hrss_employment 2026-11: .*page 3: 19 items, expected 20"):
            client.fetch(FEED, MONTH, key_field="身份证号")
        assert list((tmp_path / "spool" / FEED / "202611").iterdir()) == []
        platform.consistent, platform.requests = True, 0
        delivery = client.fetch(FEED, MONTH, key_field="身份证号")
    assert platform.requests == 3, "the next run resumed from inconsistent pages"
    assert delivery.rows == 120


def test_an_api_failure_falls_back_to_the_months_file(city, warehouse, monkeypatch, tmp_path, caplog):
    from ruralwatch import pipeline

    with _ShiftingPlatform(_api_rows(city)) as platform:
        _use_api(monkeypatch, tmp_path, platform.url, platform.token)
        with caplog.at_level("WARNING", logger="ruralwatch.pipeline"):
            loaded = pipeline.load_feed(FEED, MONTH, city)
    assert [(o["file"], o["status"]) for o in loaded] == [(f"{FEED}_{MONTH:%Y%m}.csv", "loaded")]
    warned = [r for r in caplog.records if r.name == "ruralwatch.pipeline" and "could not deliver" in r.getMessage()]
    assert [r.levelname for r in warned] == ["WARNING"] and "page 1" in warned[0].getMessage()


def test_an_api_failure_with_no_file_fails_the_load(city, warehouse, monkeypatch, tmp_path):
    from ruralwatch import pipeline
    from ruralwatch.feeds.api import ApiError

    with _ShiftingPlatform(_api_rows(city)) as platform:
        _use_api(monkeypatch, tmp_path, platform.url, platform.token)
        with pytest.raises(ApiError, match=r"(?s)hrss_employment 2026-11: .*page 1.*No file in .* either"):
            pipeline.load_feed(FEED, MONTH, _no_files(tmp_path))
    with psycopg.connect(warehouse) as conn:
        assert conn.execute("select count(*) from raw.deliveries").fetchone() == (0,)


def test_a_refused_token_still_lets_the_file_load_and_is_logged_as_an_error(city, warehouse, monkeypatch, tmp_path,
                                                                           caplog):
    from ruralwatch import pipeline
    from ruralwatch.feeds.api import ApiAuthError
    from ruralwatch.simulate.api import start_server

    with start_server(city) as api:
        _use_api(monkeypatch, tmp_path, api.url, "not-the-token")
        with caplog.at_level("WARNING", logger="ruralwatch.pipeline"):
            loaded = pipeline.load_feed(FEED, MONTH, city)
        with pytest.raises(ApiAuthError, match="401.*RURALWATCH_API_TOKEN"):
            pipeline.load_feed(FEED, dt.date(2026, 10, 1), city)   # no file of October: nothing delivered
    assert [o["status"] for o in loaded] == ["loaded"]
    refused = [r for r in caplog.records if r.name == "ruralwatch.pipeline" and "401" in r.getMessage()]
    assert [r.levelname for r in refused] == ["ERROR"]
