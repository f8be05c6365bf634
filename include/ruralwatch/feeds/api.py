"""The city data-sharing platform's paginated JSON API (hrss_employment), as a delivery.

`GET <base>/api/v1/employment?period=YYYY-MM&page=N&page_size=M` with `Authorization: Bearer <token>`
answers `{"period", "page", "page_size", "total", "items": [...]}` (feeds.md). The platform answers 401
to a bad token, 429 with Retry-After when called too fast and now and then 503.

Pages are spooled to disk as they arrive, so a run that stops half-way (a dropped connection, a killed
task) resumes at the first missing page instead of starting over. Once every page is in, the pages are
assembled into one canonical JSON-lines file: that file is the delivery, with a SHA-256 like any other,
and the loader takes it from there (it keeps a copy in the archive, as it does for files). Once the
loader has recorded the delivery the spool is cleared (`clear_spool`): the spool is keyed by feed and
month only, so pages left behind would be served again as the month's data after the platform corrected
it.

Items are assembled exactly as the platform exported them. A key the platform exported twice is the
department's data defect, loaded and escalated by the quality gate's key_unique check like a file's; only
a count that disagrees with the platform's `total` means the pages were inconsistent with each other.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ruralwatch import settings

log = logging.getLogger(__name__)


class ApiError(RuntimeError):
    """The platform could not deliver; the message says what to do."""


class ApiAuthError(ApiError):
    pass


@dataclass(frozen=True)
class ApiSettings:
    base_url: str
    token: str
    page_size: int = 500
    max_attempts: int = 8          # per page, for 429/5xx/connection errors
    backoff_seconds: float = 1.0   # first retry; doubles each time, capped
    backoff_cap_seconds: float = 60.0
    timeout_seconds: float = 30.0

    @classmethod
    def from_env(cls, page_size: int = 500) -> ApiSettings | None:
        """RURALWATCH_API_BASE_URL and RURALWATCH_API_TOKEN; None when the API is not configured."""
        base = os.environ.get("RURALWATCH_API_BASE_URL")
        token = os.environ.get("RURALWATCH_API_TOKEN")
        if not base:
            return None
        if not token:
            raise ApiAuthError("RURALWATCH_API_BASE_URL is set but RURALWATCH_API_TOKEN is not; ask the "
                               "data-sharing platform for a token")
        return cls(base.rstrip("/"), token, page_size=page_size)


@dataclass
class ApiDelivery:
    path: Path             # the assembled JSON-lines file
    period: dt.date
    rows: int
    sha256: str
    answered_at: dt.datetime


def _retry_after(response: httpx.Response, fallback: float) -> float:
    value = response.headers.get("Retry-After")
    if not value:
        return fallback
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, (parsed - dt.datetime.now(dt.UTC)).total_seconds())


def _answered_at(response: httpx.Response) -> dt.datetime:
    """When the platform answered: its own Date header (feeds.md dates an API delivery by the platform's
    answer, not by our clock, which may run late behind a retrying task); our clock if it sent none."""
    value = response.headers.get("Date")
    if value:
        try:
            return email.utils.parsedate_to_datetime(value).astimezone(dt.UTC)
        except (TypeError, ValueError):
            log.warning("the platform's Date header %r does not parse; its answer is dated by our clock", value)
    return dt.datetime.now(dt.UTC)


class ApiClient:
    def __init__(self, config: ApiSettings, path: str, spool_root: Path | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.path = path
        self.spool_root = spool_root or settings.LOCAL_DIR / "api_spool"
        self.sleep = sleep
        self.requests_made = 0

    def _spool(self, feed: str, period: dt.date) -> Path:
        folder = self.spool_root / feed / period.strftime("%Y%m")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def clear_spool(self, feed: str, period: dt.date) -> None:
        """Forget the period's pages and assembled file, so the next fetch asks the platform again.

        Call it only once the loader has recorded the delivery (and so archived its bytes): until then
        the spool is what lets a failed run resume without asking the platform again.
        """
        self._clear(self.spool_root / feed / period.strftime("%Y%m"))

    def _get_page(self, client: httpx.Client, feed: str, period: dt.date,
                  page: int) -> tuple[dict, dt.datetime, bytes] | None:
        params = {"period": period.strftime("%Y-%m"), "page": page, "page_size": self.config.page_size}
        where = f"{feed} {params['period']} page {page}"
        delay = self.config.backoff_seconds
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                self.requests_made += 1
                response = client.get(self.path, params=params)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                wait = delay
            else:
                if response.status_code == 200:
                    try:
                        return response.json(), _answered_at(response), response.content
                    except ValueError as exc:
                        reason, wait = f"the answer is not JSON ({exc})", delay
                    else:
                        break
                elif response.status_code == 401:
                    raise ApiAuthError(f"{where}: the platform refused our token (401) for {self.path}; renew "
                                       "RURALWATCH_API_TOKEN with the data-sharing platform")
                elif response.status_code == 404:
                    return None
                elif response.status_code == 429:
                    reason, wait = "429 too many requests", _retry_after(response, delay)
                elif response.status_code >= 500:
                    reason, wait = f"{response.status_code} from the platform", _retry_after(response, delay)
                else:
                    raise ApiError(f"{where}: the platform answered {response.status_code}: "
                                   f"{response.text[:300]}")
            if attempt == self.config.max_attempts:
                raise ApiError(f"{where} failed {attempt} times (last: {reason}); "
                               "pages fetched so far are kept and the next run resumes from here")
            log.info("%s: %s; retrying in %.1fs (attempt %s)", where, reason, wait, attempt)
            self.sleep(min(wait, self.config.backoff_cap_seconds))
            delay = min(delay * 2, self.config.backoff_cap_seconds)
        raise AssertionError("unreachable")

    def fetch(self, feed: str, period: dt.date, key_field: str) -> ApiDelivery | None:
        """Every page of the period (resuming a spool), assembled; None when the platform has no data."""
        spool = self._spool(feed, period)
        with httpx.Client(base_url=self.config.base_url, timeout=self.config.timeout_seconds,
                          headers={"Authorization": f"Bearer {self.config.token}"}) as client:
            first = self._read_spooled(spool, 1) or self._fetch_and_spool(client, feed, spool, period, 1)
            if first is None:
                return None
            total = int(first["total"])
            pages = max(1, math.ceil(total / self.config.page_size))
            for page in range(2, pages + 1):
                if self._read_spooled(spool, page) is None:
                    got = self._fetch_and_spool(client, feed, spool, period, page)
                    if got is None:
                        raise ApiError(f"{feed} {period:%Y-%m} page {page} vanished (404) mid-pagination")
                    if int(got["total"]) != total:
                        self._clear(spool)
                        raise ApiError(f"{feed} {period:%Y-%m} page {page}: the period's total changed from "
                                       f"{total} to {got['total']} while we paged; the spool is cleared and "
                                       "the next run starts over")
        return self._assemble(feed, spool, period, pages, total, key_field)

    def _fetch_and_spool(self, client, feed: str, spool: Path, period: dt.date, page: int) -> dict | None:
        got = self._get_page(client, feed, period, page)
        if got is None:
            return None
        body, answered_at, content = got
        for field in ("total", "items"):
            if field not in body:
                raise ApiError(f"{feed} {period:%Y-%m} page {page} has no {field!r}: not the documented answer")
        # The page's bytes as the platform sent them (they parsed as JSON above): encoding the parsed
        # page again cost 2.7 s of a month's 1,272 pages.
        tmp = spool / f"page_{page:06d}.json.part"
        tmp.write_bytes(content)
        tmp.replace(spool / f"page_{page:06d}.json")
        if page == 1:
            (spool / "answered_at").write_text(answered_at.isoformat())
        return body

    @staticmethod
    def _read_spooled(spool: Path, page: int) -> dict | None:
        path = spool / f"page_{page:06d}.json"
        # Bytes, as httpx parsed them: json detects their encoding the same way.
        return json.loads(path.read_bytes()) if path.exists() else None

    @staticmethod
    def _clear(spool: Path) -> None:
        # answered_at goes too: it belongs to the cleared page 1, and the next page 1 writes its own.
        for pattern in ("page_*.json", "page_*.json.part", "*.api.jsonl", "answered_at"):
            for path in spool.glob(pattern):
                path.unlink(missing_ok=True)

    def _assemble(self, feed: str, spool: Path, period: dt.date, pages: int, total: int,
                  key_field: str) -> ApiDelivery:
        out = spool / f"{feed}_{period:%Y%m}.api.jsonl"
        digest = hashlib.sha256()
        keys: dict[str, int] = {}
        short_or_long: list[str] = []
        rows = 0
        # One encoder for every item: json.dumps with options builds a new one per call.
        encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
        with open(out, "w", encoding="utf-8") as handle:
            for page in range(1, pages + 1):
                items = self._read_spooled(spool, page)["items"]
                expected = min(self.config.page_size, max(0, total - (page - 1) * self.config.page_size))
                if len(items) != expected:
                    short_or_long.append(f"page {page}: {len(items)} items, expected {expected}")
                # Every item as delivered, repeats included: dropping a repeated key here would hide the
                # department's defect from the gate and make the month's count disagree with `total`.
                for item in items:
                    key = str(item.get(key_field))
                    keys[key] = keys.get(key, 0) + 1
                    line = encode(item) + "\n"
                    handle.write(line)
                    digest.update(line.encode())
                    rows += 1
        if rows != total:
            # The pages disagree with each other (the platform re-sorted or changed the period between
            # our calls); a resume would only mix the same inconsistent pages again, so start over.
            self._clear(spool)
            raise ApiError(f"{feed} {period:%Y-%m}: the pages held {rows} items but the platform reported a "
                           f"total of {total} ({'; '.join(short_or_long[:5]) or 'no page stands out'}); the "
                           "pages were inconsistent with each other, so the spool is cleared and the next run "
                           "fetches every page again")
        repeated = sum(1 for n in keys.values() if n > 1)
        if repeated:
            log.warning("%s %s: %s %s value(s) appear more than once among the %s items the platform exported; "
                        "loaded as delivered, the quality gate's key_unique check escalates them",
                        feed, f"{period:%Y-%m}", repeated, key_field, rows)
        answered = spool / "answered_at"
        answered_at = (dt.datetime.fromisoformat(answered.read_text()) if answered.exists()
                       else dt.datetime.now(dt.UTC))
        return ApiDelivery(out, period, rows, digest.hexdigest(), answered_at)
