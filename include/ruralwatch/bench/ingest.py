"""`make bench-ingest`: the loader's rows/s against a bare COPY of the same file into the same table.

The file is the largest feed (health_medical_claims): a simulated month's file when a landing folder is
given, else one generated here. Both runs start from an empty database, so neither benefits from the
other's cache of catalog or table pages beyond what the OS page cache gives both equally.
"""
from __future__ import annotations

import json
import random
import resource
import time
from pathlib import Path

import psycopg
from psycopg import sql

from ruralwatch import db, settings

FEED = "health_medical_claims"
HEADERS = ["结算流水号", "身份证号", "姓名", "就诊类型", "就诊日期", "出院日期", "医疗总费用", "基本医保支付",
           "大病保险支付", "医疗救助支付", "个人自付"]


def generate_claims(path: Path, rows: int, seed: int = 7) -> Path:
    """A plain claims CSV: realistic widths, no defects; enough to measure throughput."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(HEADERS) + "\n")
        lines = []
        for i in range(rows):
            total = round(rng.uniform(20, 30000), 2)
            basic = round(total * 0.6, 2)
            own = round(total - basic, 2)
            day = rng.randint(1, 28)
            lines.append(f"JS2026110{i:09d},99010{rng.randint(1, 9)}19{rng.randint(40, 99)}0{rng.randint(1, 9)}"
                         f"{day:02d}{rng.randint(100, 999)}{rng.randint(0, 9)},张三,门诊,2026-11-{day:02d},,"
                         f"{total},{basic},,,{own}\n")
            if len(lines) == 10000:
                handle.writelines(lines)
                lines.clear()
        handle.writelines(lines)
    return path


def _fresh_database(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        db.create_database(conn, name, replace=True)
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def bare_copy(url: str, path: Path) -> float:
    """COPY the file's bytes into a plain table with the raw table's data columns."""
    from ruralwatch.feeds.registry import load_registry

    feed = load_registry()[FEED]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("create table bare ({})").format(
            sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c.name)) for c in feed.columns)))
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy("copy bare from stdin with (format csv, header true)") as copy:
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
        return time.perf_counter() - started


def loader_run(url: str, path: Path, feed: str = FEED) -> tuple[float, int]:
    """The loader alone on one file, into the (empty) database at `url`: seconds and rows."""
    import os
    import shutil
    import tempfile

    from ruralwatch.feeds.loader import Loader
    from ruralwatch.feeds.registry import load_registry
    from ruralwatch.warehouse import ensure_platform_tables

    saved = {name: os.environ.get(name) for name in ("WAREHOUSE_URL", "RURALWATCH_ARCHIVE")}
    os.environ["WAREHOUSE_URL"] = url
    # A fresh archive folder per run: keeping the delivery's bytes is part of loading it, and an archive
    # that already holds the file (the previous run's) would skip that copy.
    archive = os.environ["RURALWATCH_ARCHIVE"] = tempfile.mkdtemp(prefix="ruralwatch-bench-archive-")
    try:
        registry = load_registry()
        with psycopg.connect(url, autocommit=True) as conn:
            ensure_platform_tables(conn, registry)
            loader = Loader(conn, registry)
            started = time.perf_counter()
            outcome = loader.load_file(registry[feed], path)
            elapsed = time.perf_counter() - started
    finally:
        shutil.rmtree(archive, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if outcome.status != "loaded":
        raise RuntimeError(f"the loader did not load the file: {outcome.describe()}")
    return elapsed, outcome.rows


def run(rows: int = 2_000_000, landing: Path | None = None, repeat: int = 2) -> dict:
    from ruralwatch import db

    if landing:
        candidates = sorted((landing / FEED).glob(f"{FEED}_*.csv"), key=lambda p: p.stat().st_size)
        if not candidates:
            raise FileNotFoundError(f"no {FEED} CSV under {landing}")
        path = candidates[-1]
    else:
        path = settings.LOCAL_DIR / "bench" / f"{FEED}_202611.csv"
        marker = path.with_suffix(".rows")
        if not path.exists() or not marker.exists() or marker.read_text() != str(rows):
            print(f"generating {rows:,} claim rows into {path} …", flush=True)
            generate_claims(path, rows)
            marker.write_text(str(rows))
    server = db.warehouse_url().rsplit("/", 1)[0] + "/postgres"
    size_mb = path.stat().st_size / 1e6
    bare_times, loader_times, loaded = [], [], 0
    for attempt in range(1, repeat + 1):
        bare_url = _fresh_database(server, "ruralwatch_bench_bare")
        bare_times.append(bare_copy(bare_url, path))
        loader_url = _fresh_database(server, "ruralwatch_bench_loader")
        elapsed, loaded = loader_run(loader_url, path)
        loader_times.append(elapsed)
        print(f"run {attempt}: bare COPY {bare_times[-1]:.2f}s, loader {loader_times[-1]:.2f}s", flush=True)
    bare, loader = min(bare_times), min(loader_times)
    result = {
        "feed": FEED, "file": str(path), "file_mb": round(size_mb, 1), "rows": loaded,
        "bare_copy_seconds": round(bare, 3), "bare_copy_rows_per_s": round(loaded / bare),
        "loader_seconds": round(loader, 3), "loader_rows_per_s": round(loaded / loader),
        "ratio": round(bare / loader, 3), "target_ratio": 0.8,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    return result


def main(rows: int, landing: Path | None) -> None:
    result = run(rows, landing)
    print()
    print(f"{'feed':<24}{result['feed']}")
    print(f"{'file':<24}{result['file']} ({result['file_mb']} MB, {result['rows']:,} rows)")
    print(f"{'bare COPY':<24}{result['bare_copy_rows_per_s']:>12,} rows/s  ({result['bare_copy_seconds']} s)")
    print(f"{'loader':<24}{result['loader_rows_per_s']:>12,} rows/s  ({result['loader_seconds']} s)")
    print(f"{'ratio loader/bare':<24}{result['ratio']:>12}  (target ≥ {result['target_ratio']})")
    print(f"{'peak RSS (this process)':<24}{result['peak_rss_mb']:>12} MB")
    out = settings.LOCAL_DIR / "bench" / "ingest.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"written: {out}")
