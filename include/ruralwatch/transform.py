"""Run dbt against the warehouse, with credentials from the environment, never from files."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ruralwatch import settings
from ruralwatch.feeds.dbt_sources import write_sources


class DbtError(RuntimeError):
    pass


@dataclass
class DbtResult:
    args: list[str]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


MANIFEST_PATH = settings.DBT_PROJECT_DIR / "target" / "manifest.json"


def dbt_env(extra: dict[str, str] | None = None, connect: bool = True) -> dict[str, str]:
    """The environment dbt runs in; `connect=False` for commands that never open a connection
    (parse, compile of a macro), so they do not start the embedded server."""
    env = dict(os.environ)
    if connect:
        from ruralwatch import db  # not at import: DAG files import this module's paths

        env.update(db.connection_parts().dbt_env())
    env["DBT_PROFILES_DIR"] = str(settings.DBT_PROJECT_DIR)
    env["DBT_PROJECT_DIR"] = str(settings.DBT_PROJECT_DIR)
    env.setdefault("DBT_LOG_PATH", str(settings.DBT_LOG_DIR))
    env["DBT_THREADS"] = str(settings.DBT_THREADS)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    env.update(extra or {})
    return env


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(args: Sequence[str], *, check: bool = True, echo: bool = False,
            extra_env: dict[str, str] | None = None, connect: bool = True) -> DbtResult:
    """`dbt <args>` in the project; raises DbtError with dbt's own output when it fails."""
    write_sources()
    cmd = [dbt_executable(), *args]
    proc = subprocess.Popen(cmd, cwd=settings.DBT_PROJECT_DIR, env=dbt_env(extra_env, connect), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if echo:
            print(line, end="", flush=True)
    returncode = proc.wait()
    result = DbtResult(list(args), returncode, "".join(lines))
    if check and not result.ok:
        raise DbtError(f"dbt {' '.join(args)} failed (exit {returncode}):\n{result.output[-6000:]}")
    return result


def udf_sql() -> tuple[str, str]:
    """(version, SQL) of the util.* functions, rendered by dbt from its macro and cached by content.

    The gates need these functions before any model is built, and a fresh database (a test, a new
    deployment) needs them at once; rendering costs a dbt start-up, so the SQL is kept per version.
    """
    import hashlib

    sources = [settings.DBT_PROJECT_DIR / "macros" / "udfs" / "create_udfs.sql",
               settings.DBT_PROJECT_DIR / "dbt_project.yml"]
    version = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    cache = settings.LOCAL_DIR / "cache" / f"udfs-{version}.sql"
    if not cache.exists():
        result = run_dbt(["--quiet", "compile", "--inline", "{{ create_udfs() }}"])
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".part")
        tmp.write_text(result.output, encoding="utf-8")
        tmp.replace(cache)
    return version, cache.read_text(encoding="utf-8")


def build_manifest() -> Path:
    """`dbt parse` ahead of time → target/manifest.json and dbt's partial-parse file, which the build
    task's dbt (through Cosmos) starts from instead of parsing the whole project again."""
    run_dbt(["parse", "--quiet"], connect=False)
    return MANIFEST_PATH


def manifest_is_stale() -> bool:
    if not MANIFEST_PATH.exists():
        return True
    built = MANIFEST_PATH.stat().st_mtime
    inputs = [settings.DBT_PROJECT_DIR / "dbt_project.yml", settings.PROJECT_ROOT / "include" / "ruralwatch"
              / "feeds" / "registry.yml"]
    for folder in ("models", "macros", "seeds", "snapshots", "tests"):
        inputs += [p for p in (settings.DBT_PROJECT_DIR / folder).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in inputs if p.exists())


def ensure_manifest() -> Path:
    """Rebuild the manifest when any dbt input is newer; cheap when it is current."""
    return build_manifest() if manifest_is_stale() else MANIFEST_PATH
