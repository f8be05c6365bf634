"""One loader for every feed: find deliveries, record each one, COPY its rows into `raw.<feed>`.

Semantics (feeds.md, "Rules that settle the edge cases"):
- the same bytes seen again under the same name are the same delivery: nothing happens;
- the same bytes under another name are a duplicate: recorded, nothing loaded;
- a structural break rejects the delivery: recorded with the reason, the file archived, nothing loaded;
- otherwise the rows are loaded as one batch, pending the quality gate, which decides what goes live.

A batch is loaded in one transaction into its own table, attached as a partition at the end, so a
crash leaves either the whole batch or nothing.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from ruralwatch import settings
from ruralwatch.feeds.headers import DeliveryName, DeliveryNameError, parse_delivery_name
from ruralwatch.feeds.readers import (
    CsvSource,
    DeliveryRejected,
    JsonlSource,
    XlsxSource,
    open_csv,
    open_jsonl,
    open_xlsx,
)
from ruralwatch.feeds.registry import Feed, Registry, load_registry
from ruralwatch.masking import mask_ids_in_text
from ruralwatch.warehouse import ensure_platform_tables, rows_table

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (file name, rows so far)


class ArchiveError(RuntimeError):
    """The archive folder cannot keep a delivery (not writable, or full); nothing was recorded."""


class _NotNew(Exception):
    """The file hashed alongside its COPY turned out not to be a new delivery; the normal path decides."""


class _NeedsRowPath(Exception):
    """The fast COPY cannot vouch for the file; the row-by-row path reads it and names what is wrong."""


# Python's csv reader refuses a cell over csv.field_size_limit() (128 KiB) as a structural break. The
# fast path hands bytes to COPY, which would take it, so a file with a line that long goes row by
# row: any 64 KiB aligned window without a newline means a line of at least 64 KiB, and a line of
# 128 KiB or more always covers one such window. memchr per window: nothing next to the COPY.
_LONG_LINE_WINDOW = 64 << 10


def _has_long_line(chunk: bytes) -> bool:
    return any(chunk.find(b"\n", start, start + _LONG_LINE_WINDOW) < 0
               for start in range(0, len(chunk) - _LONG_LINE_WINDOW + 1, _LONG_LINE_WINDOW))


def _outside_landing(path: Path) -> Path | None:
    """Where a delivery really is when a symbolic link takes it out of the landing folder, else None.

    `path` is `<landing>/<feed>/<file>` as `discover` builds it; a link (the file, or its feed folder)
    to anywhere else would make the loader read, archive and load a file nobody delivered.
    """
    real = Path(os.path.realpath(path))
    landing = Path(os.path.realpath(path.parent.parent))
    return None if real.is_relative_to(landing) else real


@dataclass
class DeliveryOutcome:
    feed: str
    file_name: str
    status: str                       # loaded | duplicate | rejected | seen (already recorded)
    batch_id: str | None = None
    data_month: dt.date | None = None
    rows: int = 0
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{self.feed}/{self.file_name}: {self.status}"
        if self.rows:
            text += f", {self.rows:,} rows"
        if self.reason:
            text += f" — {self.reason}"
        return text


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def batch_id_for(feed: str, file_name: str, sha256: str) -> str:
    """Deterministic, so re-running a month finds the batch it already made."""
    name_hash = hashlib.sha256(file_name.encode()).hexdigest()[:6]
    return f"{feed}-{sha256[:16]}-{name_hash}"


def discover(landing: Path, registry: Registry, feed: str | None = None,
             month: dt.date | None = None) -> list[tuple[Feed, Path]]:
    """Files in `<landing>/<feed>/`, oldest month and lowest version first."""
    found: list[tuple[tuple, Feed, Path]] = []
    feeds = [registry[feed]] if feed else list(registry)
    for f in feeds:
        folder = landing / f.name
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not path.is_file() or path.name.startswith((".", "~$")):
                continue
            try:
                name = parse_delivery_name(path.name, f.name, f.file_suffix is not None)
                order = (name.data_month, name.version, path.stat().st_mtime, path.name)
            except DeliveryNameError:
                name, order = None, (dt.date.max, 0, path.stat().st_mtime, path.name)
            if month and name is not None and name.data_month != month:
                continue
            # A file whose name does not parse belongs to no month, so every run picks it up, a
            # monthly one too: it is recorded as rejected and escalated, never silently dropped (the
            # ledger's batch id makes later runs see it and change nothing).
            found.append((order, f, path))
    return [(f, p) for _, f, p in sorted(found, key=lambda item: item[0])]


class Loader:
    def __init__(self, conn: psycopg.Connection, registry: Registry | None = None,
                 archive: Path | None = None, progress: Progress | None = None) -> None:
        self.conn = conn
        self.registry = registry or load_registry()
        self.archive = archive or settings.archive_dir()
        self.progress = progress
        ensure_platform_tables(conn, self.registry)

    # -- public ----------------------------------------------------------------------------------
    def load_landing(self, landing: Path, feed: str | None = None,
                     month: dt.date | None = None) -> list[DeliveryOutcome]:
        return [self.load_file(f, path) for f, path in discover(landing, self.registry, feed, month)]

    def load_file(self, feed: Feed, path: Path) -> DeliveryOutcome:
        outside = _outside_landing(path)
        if outside is not None:
            return self._reject_unread(
                feed, path, f"{path.name}: a symbolic link to {outside}, outside the landing folder "
                f"{path.parent.parent}; not read. The delivery must be a file in {path.parent}")
        loaded = self._load_while_hashing(feed, path)
        if loaded is not None:
            return loaded
        try:
            sha = sha256_of(path)
        except PermissionError as exc:
            return self._reject_unread(
                feed, path, f"{path.name}: permission denied reading {path} ({exc.strerror}); the loader's user "
                "cannot read it. Make the file readable (or ask the department to deliver it again), then re-run")
        batch_id = batch_id_for(feed.name, path.name, sha)
        arrived_at = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
        with self.conn.transaction():
            self._lock(feed)
            seen = self.conn.execute("select status from raw.deliveries where batch_id = %s", (batch_id,)).fetchone()
            if seen:
                return DeliveryOutcome(feed.name, path.name, "seen", batch_id, reason=f"already recorded as {seen[0]}")
            archived = self._archive(feed, path, sha)
            try:
                name = parse_delivery_name(path.name, feed.name, feed.file_suffix is not None)
            except DeliveryNameError as exc:
                return self._record_rejected(feed, path, batch_id, sha, None, arrived_at, archived, str(exc))
            original = self.conn.execute(
                "select batch_id, file_name, data_month, row_count from raw.deliveries "
                "where feed = %s and sha256 = %s and status <> 'duplicate' "
                "order by data_month is not distinct from %s desc, recorded_at limit 1",
                (feed.name, sha, name.data_month)).fetchone()
            # An event feed's empty month is a header and nothing else, so it is byte-identical to any
            # other empty month of that feed; it says "no events this month", not "last month again".
            empty_event_month = (original is not None and feed.kind == "event" and original[3] == 0
                                 and original[2] != name.data_month)
            if original and not empty_event_month:
                return self._record_duplicate(feed, path, batch_id, sha, name, arrived_at, archived, original[:3])
            if name.extension not in feed.formats:
                return self._record_rejected(
                    feed, path, batch_id, sha, name, arrived_at, archived,
                    f"{path.name}: format {name.extension} is not accepted for {feed.name} "
                    f"(accepted: {', '.join(feed.formats)})")
        # The load itself runs in its own transaction so a rejection can be recorded after a rollback.
        try:
            with self.conn.transaction():
                self._lock(feed)
                outcome = self._load_batch(feed, path, name, batch_id, sha, arrived_at, archived)
            return outcome
        except DeliveryRejected as exc:
            with self.conn.transaction():
                return self._record_rejected(feed, path, batch_id, sha, name, arrived_at, archived, str(exc))

    def _load_while_hashing(self, feed: Feed, path: Path) -> DeliveryOutcome | None:
        """The common case, a CSV never delivered under this name: COPY it while a thread hashes it.

        The SHA-256 names the batch and decides "seen" and "duplicate", so the path below hashes the
        whole file before reading it again for COPY: a tenth of a load's time on a large file. Here a
        thread hashes alongside the COPY (hashlib releases the GIL). If the hash says anything but
        "new" (seen, the same bytes as another delivery) or the load is rejected, the transaction rolls
        back and None hands the file to the normal path, which decides and records it as before.
        """
        if path.suffix.lower() != ".csv":
            return None
        try:
            name = parse_delivery_name(path.name, feed.name, feed.file_suffix is not None)
        except DeliveryNameError:
            return None
        if name.extension not in feed.formats or self.conn.execute(
                "select 1 from raw.deliveries where feed = %s and file_name = %s",
                (feed.name, path.name)).fetchone():
            return None
        arrived_at = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
        provisional = f"pending-{uuid.uuid4().hex}"
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            # The thread also keeps the bytes in the archive: by SHA-256, so a copy made for a file that
            # turns out to be known is the copy the normal path would have made.
            hashing = pool.submit(self._hash_and_archive, feed, path)
            try:
                with self.conn.transaction():
                    self._lock(feed)
                    outcome = self._load_batch(feed, path, name, provisional, provisional, arrived_at, None)
                    try:
                        sha, archived = hashing.result()
                    except OSError as exc:
                        raise _NotNew from exc
                    batch_id = batch_id_for(feed.name, path.name, sha)
                    if self.conn.execute(
                            "select 1 from raw.deliveries where batch_id = %s or (feed = %s and sha256 = %s "
                            "and status <> 'duplicate')", (batch_id, feed.name, sha)).fetchone():
                        raise _NotNew
                    self.conn.execute("update raw.deliveries set batch_id = %s, sha256 = %s, archive_path = %s "
                                      "where batch_id = %s", (batch_id, sha, archived, provisional))
            except (_NotNew, DeliveryRejected, OSError):
                return None
        outcome.batch_id = batch_id
        return outcome

    def _hash_and_archive(self, feed: Feed, path: Path) -> tuple[str, str]:
        sha = sha256_of(path)
        return sha, self._archive(feed, path, sha)

    def load_api(self, feed: Feed, delivery) -> DeliveryOutcome:
        """An assembled API delivery (feeds.api.ApiDelivery): same ledger, same COPY, channel 'api'."""
        path = delivery.path
        name = DeliveryName(feed.name, delivery.period, 1, None, "api")
        batch_id = batch_id_for(feed.name, path.name, delivery.sha256)
        with self.conn.transaction():
            self._lock(feed)
            seen = self.conn.execute("select status from raw.deliveries where batch_id = %s", (batch_id,)).fetchone()
            if seen:
                return DeliveryOutcome(feed.name, path.name, "seen", batch_id, reason=f"already recorded as {seen[0]}")
            # Archived before the verdict, rejected or not: the assembled file lives in the API spool,
            # which is cleared once the delivery is recorded, so the archive is its only lasting copy.
            archived = self._archive(feed, path, delivery.sha256)
        try:
            with self.conn.transaction():
                self._lock(feed)
                return self._load_batch(feed, path, name, batch_id, delivery.sha256, delivery.answered_at,
                                        archived, channel="api")
        except DeliveryRejected as exc:
            with self.conn.transaction():
                return self._record_rejected(feed, path, batch_id, delivery.sha256, name, delivery.answered_at,
                                             archived, str(exc), channel="api")

    # -- internals -------------------------------------------------------------------------------
    def _reject_unread(self, feed: Feed, path: Path, reason: str) -> DeliveryOutcome:
        """Record a delivery whose bytes the loader will not or cannot read: rejected, escalated.

        With no bytes to hash, the ledger's sha256 is of the reason: deterministic, so a re-run finds
        this record instead of adding another, and once the file can be read its own bytes make a new
        batch that supersedes the rejection.
        """
        sha = hashlib.sha256(f"not read: {reason}".encode()).hexdigest()
        batch_id = batch_id_for(feed.name, path.name, sha)
        arrived_at = dt.datetime.fromtimestamp(path.lstat().st_mtime, tz=dt.UTC)
        try:
            name = parse_delivery_name(path.name, feed.name, feed.file_suffix is not None)
        except DeliveryNameError:
            name = None
        with self.conn.transaction():
            self._lock(feed)
            seen = self.conn.execute("select status from raw.deliveries where batch_id = %s", (batch_id,)).fetchone()
            if seen:
                return DeliveryOutcome(feed.name, path.name, "seen", batch_id, reason=f"already recorded as {seen[0]}")
            return self._record_rejected(feed, path, batch_id, sha, name, arrived_at, None, reason)

    def _lock(self, feed: Feed) -> None:
        self.conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"ruralwatch.load.{feed.name}",))

    def _archive(self, feed: Feed, path: Path, sha: str) -> str:
        target = self.archive / feed.name / f"{sha}{path.suffix.lower()}"
        if not target.exists():
            tmp = target.with_suffix(target.suffix + ".part")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, tmp)
                tmp.replace(target)
            except OSError as exc:
                # A half-written copy would only take more of a full disk.
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
                raise ArchiveError(
                    f"{feed.name}/{path.name}: cannot keep a copy in the archive folder {target.parent}: "
                    f"{exc.strerror or exc}. Nothing was recorded; make the folder writable or free space on "
                    "its disk (RURALWATCH_ARCHIVE), then re-run") from exc
        return str(target)

    def _insert_delivery(self, **values) -> int:
        values.setdefault("warnings", [])
        values["warnings"] = json.dumps(values["warnings"], ensure_ascii=False)
        columns = list(values)
        return self.conn.execute(
            sql.SQL("insert into raw.deliveries ({}) values ({}) returning batch_key").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder(c) for c in columns)),
            values).fetchone()[0]

    def _record_rejected(self, feed, path, batch_id, sha, name: DeliveryName | None, arrived_at, archived,
                         reason: str, channel: str = "file") -> DeliveryOutcome:
        log.warning("rejected %s/%s: %s", feed.name, path.name, mask_ids_in_text(reason))
        self._insert_delivery(
            batch_id=batch_id, feed=feed.name, file_name=path.name, file_path=str(path), archive_path=archived,
            sha256=sha, data_month=name.data_month if name else None, slot=name.slot if name else None,
            version=name.version if name else None, status="rejected", gate_status="not_applicable",
            reason=reason, arrived_at=arrived_at, channel=channel)
        return DeliveryOutcome(feed.name, path.name, "rejected", batch_id,
                               name.data_month if name else None, reason=reason)

    def _record_duplicate(self, feed, path, batch_id, sha, name, arrived_at, archived, original) -> DeliveryOutcome:
        orig_batch, orig_file, orig_month = original
        reason = f"same bytes as {orig_file} (batch {orig_batch}); nothing changes"
        if orig_month and name.data_month != orig_month:
            reason += f"; {name.data_month:%Y-%m} still counts as not delivered"
        self._insert_delivery(
            batch_id=batch_id, feed=feed.name, file_name=path.name, file_path=str(path), archive_path=archived,
            sha256=sha, data_month=name.data_month, slot=name.slot, version=name.version, status="duplicate",
            gate_status="not_applicable", reason=reason, arrived_at=arrived_at, duplicate_of=orig_batch)
        return DeliveryOutcome(feed.name, path.name, "duplicate", batch_id, name.data_month, reason=reason)

    def _load_batch(self, feed, path, name: DeliveryName, batch_id, sha, arrived_at, archived,
                    channel: str = "file") -> DeliveryOutcome:
        started = time.perf_counter()
        openers = {"xlsx": open_xlsx, "csv": open_csv, "api": open_jsonl}
        source = openers[name.extension](feed, path)
        warnings = list(source.header.warnings)
        same_name = self.conn.execute(
            "select batch_id from raw.deliveries where feed = %s and file_name = %s and status <> 'duplicate'",
            (feed.name, path.name)).fetchone()
        if same_name:
            warnings.append(f"a file named {path.name} was delivered before with other bytes (batch "
                            f"{same_name[0]}); this one is a correction and supersedes it")
        loaded_at = dt.datetime.now(dt.UTC)
        encoding = source.encoding if isinstance(source, (CsvSource, JsonlSource)) else "xlsx"
        # The ledger row comes first, in the same transaction: its batch_key names the partition, and
        # a failure anywhere below rolls both back.
        batch_key = self._insert_delivery(
            batch_id=batch_id, feed=feed.name, file_name=path.name, file_path=str(path), archive_path=archived,
            sha256=sha, data_month=name.data_month, slot=name.slot, version=name.version, status="loaded",
            channel=channel, gate_status="pending", warnings=warnings, encoding=encoding,
            header_row=source.header.header_row,
            column_units=json.dumps(source.header.units, ensure_ascii=False),
            arrived_at=arrived_at, loaded_at=loaded_at)
        partition = self._create_batch_table(feed, batch_key)
        rows = self._copy(feed, partition, source)
        if rows == 0 and feed.kind == "snapshot":
            raise DeliveryRejected(
                f"{path.name}: a header but no data rows; an empty snapshot would wipe {name.data_month:%Y-%m} "
                f"of {feed.name}, so it is rejected", row=source.header.header_row + 1)
        self._attach(feed, partition, batch_key)
        self.conn.execute("update raw.deliveries set row_count = %s, load_seconds = %s where batch_key = %s",
                          (rows, time.perf_counter() - started, batch_key))
        return DeliveryOutcome(feed.name, path.name, "loaded", batch_id, name.data_month, rows, warnings=warnings)

    def _create_batch_table(self, feed: Feed, batch_key: int) -> str:
        part_name = f"{rows_table(feed)}_{batch_key}"
        part = sql.Identifier("raw", part_name)
        self.conn.execute(sql.SQL("create table {} (like {})").format(part, sql.Identifier("raw", rows_table(feed))))
        # A cached sequence numbers the rows of the fast path; without the cache, nextval() per row
        # costs as much as the COPY itself.
        self.conn.execute(sql.SQL("create sequence {} cache 10000").format(sql.Identifier("raw", f"{part_name}_row")))
        self.conn.execute(sql.SQL("alter table {} alter column _batch_key set default {}").format(
            part, sql.Literal(batch_key)))
        self.conn.execute(sql.SQL("alter table {} alter column _source_row set default nextval({})").format(
            part, sql.Literal(f"raw.{part_name}_row")))
        # Added while the table is empty, so it costs no scan; it lets ATTACH skip its validation scan
        # (a full read of the batch) after the COPY.
        self.conn.execute(sql.SQL("alter table {} add constraint {} check (_batch_key = {})").format(
            part, sql.Identifier(f"{part_name}_batch"), sql.Literal(batch_key)))
        return part_name

    def _copy(self, feed: Feed, part: str, source: CsvSource | XlsxSource | JsonlSource) -> int:
        if isinstance(source, CsvSource) and not source.header.has_extras:
            # Fast path: the file's own bytes go to COPY. Any surprise (a blank line, a ragged row,
            # a bad byte) rolls back to a savepoint and the row-by-row path finds and names it.
            # Only the server's primary message is logged: its CONTEXT quotes the whole line, resident
            # IDs and names included, and task logs are read by more people than raw is.
            try:
                with self.conn.transaction():
                    return self._copy_csv_bytes(part, source)
            except psycopg.errors.DataError as exc:
                log.info("fast COPY of %s fell back to row-by-row: %s", source.path.name, exc.diag.message_primary)
            except psycopg.errors.BadCopyFileFormat as exc:
                log.info("fast COPY of %s fell back to row-by-row: %s", source.path.name, exc.diag.message_primary)
            except _NeedsRowPath as exc:
                log.info("fast COPY of %s fell back to row-by-row: %s", source.path.name, exc)
        return self._copy_rows(feed, part, source)

    def _copy_csv_bytes(self, part: str, source: CsvSource) -> int:
        # Row numbers continue from the header, so `_source_row` is the row a spreadsheet shows.
        self.conn.execute(sql.SQL("alter sequence {} restart with {}").format(
            sql.Identifier("raw", f"{part}_row"), sql.Literal(source.header.header_row + 1)))
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in source.header.columns)
        statement = sql.SQL("copy {} ({}) from stdin with (format csv, encoding {})").format(
            sql.Identifier("raw", part), columns, sql.Literal(source.pg_encoding))
        written = 0
        with self.conn.cursor() as cur:
            with cur.copy(statement) as copy:
                for chunk in source.iter_bytes():
                    if _has_long_line(chunk):
                        raise _NeedsRowPath(f"a line of {_LONG_LINE_WINDOW >> 10} KiB or more")
                    copy.write(chunk)
                    written += len(chunk)
                    if self.progress:
                        self.progress(source.path.name, written)
            return cur.rowcount

    def _copy_rows(self, feed: Feed, part: str, source: CsvSource | XlsxSource | JsonlSource) -> int:
        header = source.header
        width = len(header.headers)
        known = [(i, c) for i, c in enumerate(header.columns) if c is not None]
        extra_positions = [(i, header.headers[i] or f"column_{i + 1}") for i, c in enumerate(header.columns)
                           if c is None]
        target = [c for _, c in known] + ["_source_row", "_numeric_cells", "_extra"]
        statement = sql.SQL("copy {} ({}) from stdin").format(
            sql.Identifier("raw", part), sql.SQL(", ").join(sql.Identifier(c) for c in target))
        rows = 0
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for item in self._iter_source(source):
                row_number, cells, numeric = item
                if len(cells) > width and any(c not in (None, "") for c in cells[width:]):
                    raise DeliveryRejected(
                        f"{source.path.name}: row {row_number}: {len(cells)} cells under a header of {width} "
                        "columns; the row is misaligned (an unquoted comma?)", row=row_number)
                if "\x00" in "".join(c for c in cells if c):
                    # PostgreSQL text cannot hold NUL; a NUL past the first MiB escapes detect_encoding.
                    raise DeliveryRejected(
                        f"{source.path.name}: row {row_number}: a NUL byte in a cell; binary content, not text",
                        row=row_number)
                if len(cells) < width:
                    cells = cells + [None] * (width - len(cells))
                values = [cells[i] for i, _ in known]
                numeric_cols = [header.columns[i] or header.headers[i] for i in numeric if i < width] or None
                extra = {name: cells[i] for i, name in extra_positions if cells[i] not in (None, "")}
                copy.write_row([*values, row_number, numeric_cols,
                                json.dumps(extra, ensure_ascii=False) if extra else None])
                rows += 1
                if self.progress and rows % 10000 == 0:
                    self.progress(source.path.name, rows)
        return rows

    @staticmethod
    def _iter_source(source: CsvSource | XlsxSource | JsonlSource) -> Iterable[tuple[int, list, list[int]]]:
        if isinstance(source, (XlsxSource, JsonlSource)):
            yield from source.iter_rows()
        else:
            for row_number, cells in source.iter_rows():
                yield row_number, cells, []

    def _attach(self, feed: Feed, part_name: str, batch_key: int) -> None:
        part = sql.Identifier("raw", part_name)
        self.conn.execute(sql.SQL("alter table {} alter column _source_row drop default, "
                                  "alter column _batch_key drop default").format(part))
        self.conn.execute(sql.SQL("drop sequence {}").format(sql.Identifier("raw", f"{part_name}_row")))
        self.conn.execute(sql.SQL("alter table {} attach partition {} for values in ({})").format(
            sql.Identifier("raw", rows_table(feed)), part, sql.Literal(batch_key)))
