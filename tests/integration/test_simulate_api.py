"""The simulated data-sharing platform over real HTTP on 127.0.0.1: auth, paging, and its faults."""
from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import json
import urllib.error
import urllib.request

import pytest

from ruralwatch.simulate import Options, generate, periods, start_server
from ruralwatch.simulate.api import TOKEN_ENV

PERIOD = "2026-11"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    generate(Options(out=out, persons=1_500, months=periods.parse_range(PERIOD), seed=41, defects="none"))
    return out


@pytest.fixture(scope="module")
def file_items(data) -> list[dict]:
    lines = (data / "_api" / "hrss_employment_202611.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _get(base: str, query: str, token: str | None) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    request = urllib.request.Request(f"{base}/api/v1/employment{query}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_a_missing_or_wrong_token_gets_401(data):
    with start_server(data, token="right-token") as api:
        assert api.url.startswith("http://127.0.0.1:")
        for token in (None, "wrong-token", ""):
            status, headers, body = _get(api.url, f"?period={PERIOD}", token)
            assert status == 401 and "Bearer" in headers["WWW-Authenticate"] and body["error"]
        assert _get(api.url, f"?period={PERIOD}", "right-token")[0] == 200


def test_all_pages_together_are_the_file_without_duplicates(data, file_items):
    with start_server(data) as api:
        collected, page, total = [], 1, None
        while True:
            status, _, body = _get(api.url, f"?period={PERIOD}&page={page}&page_size=97", api.token)
            assert status == 200 and body["period"] == PERIOD and body["page"] == page and body["page_size"] == 97
            total = body["total"]
            if not body["items"]:
                break
            assert len(body["items"]) <= 97
            collected += body["items"]
            page += 1
    assert total == len(file_items) == len(collected)
    assert collected == file_items
    keys = [item["身份证号"] for item in collected]
    assert len(set(keys)) == len(keys)
    assert set(collected[0]) == {"身份证号", "姓名", "就业状态", "就业形式", "就业地点", "月均工资", "本年务工月数",
                                 "公益性岗位工资发放至"}


def test_429_with_retry_after_at_rate_one(data):
    with start_server(data, rate_429=1.0, retry_after=7) as api:
        for _ in range(5):
            status, headers, _ = _get(api.url, f"?period={PERIOD}", api.token)
            assert status == 429 and headers["Retry-After"] == "7"
        assert _get(api.url, f"?period={PERIOD}", "wrong")[0] == 401  # auth comes first


def test_503_at_rate_one(data):
    with start_server(data, rate_503=1.0) as api:
        assert {_get(api.url, f"?period={PERIOD}&page={k}", api.token)[0] for k in range(1, 6)} == {503}


def test_faults_replay_with_the_same_seed(data):
    def statuses(seed: int) -> list[int]:
        with start_server(data, rate_429=0.3, rate_503=0.3, seed=seed) as api:
            return [_get(api.url, f"?period={PERIOD}&page=1&page_size=5", api.token)[0] for _ in range(30)]

    first = statuses(5)
    assert first == statuses(5)
    assert {200, 429, 503} <= set(first)


def test_bad_parameters_get_400_and_unknown_periods_404(data):
    with start_server(data) as api:
        for query in ("", "?period=2026-13", "?period=202611", f"?period={PERIOD}&page=0",
                      f"?period={PERIOD}&page=x", f"?period={PERIOD}&page_size=100000"):
            status, _, body = _get(api.url, query, api.token)
            assert status == 400, query
            assert body["message"]
        assert _get(api.url, "?period=2025-01", api.token)[0] == 404


def test_the_connection_drops_mid_pagination_when_asked(data):
    with start_server(data, drop_after_pages=2) as api:
        host, port = api.url.removeprefix("http://").split(":")
        outcomes = []
        for page in range(1, 5):
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                connection.request("GET", f"/api/v1/employment?period={PERIOD}&page={page}&page_size=10",
                                   headers={"Authorization": f"Bearer {api.token}"})
                outcomes.append(connection.getresponse().status)
            except (http.client.RemoteDisconnected, ConnectionError):
                outcomes.append("dropped")
            finally:
                connection.close()
    assert outcomes == [200, 200, "dropped", 200]


def test_the_token_comes_from_the_environment_or_is_generated(data, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment")
    with start_server(data) as api:
        assert api.token == "from-the-environment"
    monkeypatch.delenv(TOKEN_ENV)
    with start_server(data) as one, start_server(data) as two:
        assert len(one.token) >= 20 and one.token != two.token


def test_answers_carry_the_moment_the_platform_answered_which_is_the_truths_arrival(data):
    """feeds.md: an API delivery arrives when the platform answered. The simulated platform answers a
    month at one planned moment and says so in the Date header of every answer carrying the month's
    items; the truth dates the API delivery by that same moment. Other answers carry the clock, also on
    a kept-alive connection that has just served a page."""
    truth = json.loads((data / "_truth" / "202611.json").read_text(encoding="utf-8"))
    delivery = next(d for d in truth["deliveries"] if d["channel"] == "api")
    arrival = dt.datetime.fromisoformat(delivery["arrival"])
    assert delivery["on_time"] == (arrival <= dt.datetime.fromisoformat(delivery["due"]))
    with start_server(data) as api:
        for page in (1, 2, 10_000):
            status, headers, _ = _get(api.url, f"?period={PERIOD}&page={page}&page_size=50", api.token)
            assert status == 200 and email.utils.parsedate_to_datetime(headers["Date"]) == arrival
        host, port = api.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            dates = []
            for query in (f"period={PERIOD}", "period=2025-01"):
                connection.request("GET", f"/api/v1/employment?{query}",
                                   headers={"Authorization": f"Bearer {api.token}"})
                response = connection.getresponse()
                response.read()
                dates.append((response.status, email.utils.parsedate_to_datetime(response.headers["Date"])))
        finally:
            connection.close()
    assert dates[0] == (200, arrival)
    assert dates[1][0] == 404 and abs((dates[1][1] - dt.datetime.now(dt.UTC)).total_seconds()) < 60
