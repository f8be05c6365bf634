"""Same seed, same bytes: every file of two runs (CSV, XLSX, JSON lines, manifests) is identical."""
from __future__ import annotations

import os
from pathlib import Path

from ruralwatch.simulate import Options, generate, periods


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_gives_the_same_bytes_and_mtimes(tmp_path):
    months = periods.parse_range("2026-10:2026-11")
    for name in ("a", "b"):
        generate(Options(out=tmp_path / name, persons=1_200, months=months, seed=21, defects="heavy"))
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert any(k.endswith(".xlsx") for k in a) and any(k.endswith(".jsonl") for k in a)
    different = [k for k in a if a[k] != b[k]]
    assert not different
    for k in a:
        if not k.startswith(("_truth/", "_reference/")):
            assert os.stat(tmp_path / "a" / k).st_mtime == os.stat(tmp_path / "b" / k).st_mtime


def test_another_seed_gives_another_city(tmp_path):
    month = periods.parse_range("2026-11")
    generate(Options(out=tmp_path / "a", persons=800, months=month, seed=1))
    generate(Options(out=tmp_path / "b", persons=800, months=month, seed=2))
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a["_reference/area_codes.csv"] == b["_reference/area_codes.csv"]  # the geography is fixed
    assert a["_api/hrss_employment_202611.jsonl"] != b["_api/hrss_employment_202611.jsonl"]
