"""The city's data-sharing platform, as far as hrss_employment goes: a paginated JSON API over HTTP.

GET /api/v1/employment?period=YYYY-MM&page=N&page_size=M with `Authorization: Bearer <token>` answers
{"period", "page", "page_size", "total", "items"} from DIR/_api/hrss_employment_<YYYYMM>.jsonl (items in
file order, so page k holds lines (k-1)*M+1 .. k*M). Faults for the warehouse's tests: 401 for a bad
token, 429 with Retry-After and 503 at settable rates (one seeded draw per authorised request, so a
seed replays the same sequence), and a connection dropped mid-pagination after every N pages served.

An API delivery arrives when the platform answered (feeds.md). In the simulated city the platform
answers a month at one moment, fixed by the generator (the mtime of the month's _api file): every answer
that carries the month's items says so in its HTTP `Date` header, and the truth's arrival of the API
delivery is that same moment (answer_time). Other answers (401, 404, 429, ...) carry the wall clock.
"""
from __future__ import annotations

import hmac
import json
import os
import random
import re
import secrets
import socket
import threading
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

TOKEN_ENV = "RURALWATCH_API_TOKEN"
PATH = "/api/v1/employment"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_503: float = 0.0
    retry_after: int = 1          # seconds, sent with every 429
    drop_after_pages: int | None = None
    seed: int = 0


def answer_time(path: Path) -> int:
    """When the platform answers for the month of an _api file (Unix seconds): the file's mtime, which
    the generator sets to the moment it planned. The truth's arrival and the server's `Date` both come
    from here."""
    return int(os.stat(path).st_mtime)


class _Period:
    """One month's items, served by seeking to line offsets instead of holding every item in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.answered = answer_time(path)
        offsets = [0]
        with path.open("rb") as handle:
            for line in handle:
                offsets.append(offsets[-1] + len(line))
        self.offsets = np.array(offsets, dtype=np.int64)

    @property
    def total(self) -> int:
        return len(self.offsets) - 1

    def items(self, start: int, stop: int) -> list[dict]:
        stop = min(stop, self.total)
        if start >= stop:
            return []
        with self.path.open("rb") as handle:
            handle.seek(int(self.offsets[start]))
            data = handle.read(int(self.offsets[stop] - self.offsets[start]))
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


class EmploymentServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, data: Path, address: tuple[str, int], token: str, faults: Faults, verbose: bool = False) -> None:
        super().__init__(address, _Handler)
        self.data = Path(data)
        self.token = token
        self.faults = faults
        self.verbose = verbose
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()
        self._periods: dict[str, _Period | None] = {}
        self._pages_served = 0

    def period(self, label: str) -> _Period | None:
        with self._lock:
            if label not in self._periods:
                path = self.data / "_api" / f"hrss_employment_{label}.jsonl"
                self._periods[label] = _Period(path) if path.exists() else None
            return self._periods[label]

    def draw_fault(self) -> int | None:
        f = self.faults
        with self._lock:
            if f.rate_429 and self._rng.random() < f.rate_429:
                return 429
            if f.rate_503 and self._rng.random() < f.rate_503:
                return 503
        return None

    def should_drop(self) -> bool:
        """Every (N+1)-th data page is not answered: the connection is closed mid-pagination."""
        n = self.faults.drop_after_pages
        if not n:
            return False
        with self._lock:
            if self._pages_served >= n:
                self._pages_served = 0
                return True
            self._pages_served += 1
            return False


class _Handler(BaseHTTPRequestHandler):
    server: EmploymentServer
    protocol_version = "HTTP/1.1"

    _answered: int | None = None    # the simulated moment this answer is sent at, when it carries a month

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header: the month's answer time for an answer carrying its items, else the clock."""
        if timestamp is None and self._answered is not None:
            return formatdate(self._answered, usegmt=True)
        return super().date_time_string(timestamp)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._answered = None  # one handler serves every request of a kept-alive connection
        url = urlsplit(self.path)
        if url.path != PATH:
            return self._error(HTTPStatus.NOT_FOUND, f"no such resource: {url.path}; use {PATH}")
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.server.token}".encode()):
            return self._error(HTTPStatus.UNAUTHORIZED, "missing or bad bearer token",
                               {"WWW-Authenticate": 'Bearer realm="data-sharing-platform"'})
        fault = self.server.draw_fault()
        if fault == 429:
            return self._error(HTTPStatus.TOO_MANY_REQUESTS, "called too fast; retry later",
                               {"Retry-After": str(self.server.faults.retry_after)})
        if fault == 503:
            return self._error(HTTPStatus.SERVICE_UNAVAILABLE, "the platform is busy; retry later")
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            label, period_text = _period(query)
            page = _positive_int(query, "page", 1)
            size = _positive_int(query, "page_size", DEFAULT_PAGE_SIZE)
            if size > MAX_PAGE_SIZE:
                raise ValueError(f"page_size may be at most {MAX_PAGE_SIZE}")
        except ValueError as error:
            return self._error(HTTPStatus.BAD_REQUEST, str(error))
        period = self.server.period(label)
        if period is None:
            return self._error(HTTPStatus.NOT_FOUND, f"no data for period {period_text}")
        if self.server.should_drop():
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        items = period.items((page - 1) * size, page * size)
        body = {"period": period_text, "page": page, "page_size": size, "total": period.total, "items": items}
        self._answered = period.answered
        return self._json(HTTPStatus.OK, body)

    def _error(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": status.phrase, "message": message}, headers)

    def _json(self, status: HTTPStatus, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the signature http.server calls
        if self.server.verbose:
            super().log_message(format, *args)


def _period(query: dict[str, list[str]]) -> tuple[str, str]:
    values = query.get("period")
    if not values or not values[0]:
        raise ValueError("period is required, as YYYY-MM")
    match = _PERIOD.match(values[0])
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"period must be YYYY-MM, not {values[0]!r}")
    return match.group(1) + match.group(2), values[0]


def _positive_int(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    if not values[0].isdigit() or int(values[0]) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {values[0]!r}")
    return int(values[0])


def default_token() -> tuple[str, bool]:
    """(token, generated): the RURALWATCH_API_TOKEN environment variable, else a fresh random one."""
    token = os.environ.get(TOKEN_ENV)
    return (token, False) if token else (secrets.token_urlsafe(24), True)


@dataclass
class RunningServer:
    url: str                      # base URL, e.g. http://127.0.0.1:50123
    token: str
    server: EmploymentServer
    thread: threading.Thread

    @property
    def endpoint(self) -> str:
        return self.url + PATH

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_server(data: str | Path, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                faults: Faults | None = None, verbose: bool = False) -> EmploymentServer:
    if not (Path(data) / "_api").is_dir():
        raise FileNotFoundError(f"{data} has no _api folder: run `ruralwatch simulate --out {data}` first")
    return EmploymentServer(Path(data), (host, port), token or default_token()[0], faults or Faults(), verbose)


def start_server(data: str | Path, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 rate_429: float = 0.0, rate_503: float = 0.0, seed: int = 0, drop_after_pages: int | None = None,
                 retry_after: int = 1) -> RunningServer:
    """Serve DIR/_api in a background thread (for tests): `with start_server(d) as api: ... api.url ...`."""
    faults = Faults(rate_429=rate_429, rate_503=rate_503, retry_after=retry_after,
                    drop_after_pages=drop_after_pages, seed=seed)
    server = make_server(data, host, port, token, faults)
    thread = threading.Thread(target=server.serve_forever, name="employment-api", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    return RunningServer(f"http://{bound_host}:{bound_port}", server.token, server, thread)
