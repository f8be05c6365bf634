"""Write the `area_codes` seed from an area reference in the exchange format (feeds.md: area_codes).

The city's reference arrives as CSV with the spec's Chinese headers (行政区划代码, 名称, 级别, 上级代码);
the seed keeps the same rows with English column names, sorted parents first, so a reviewer sees
what changed when the city's divisions change. For the simulated demo city:

    .venv/bin/python -m ruralwatch.simulate area-reference /tmp/area_codes.csv
    .venv/bin/python dbt_project/seeds/build_area_codes_seed.py /tmp/area_codes.csv

It reads the reference, not the simulator: a real city's reference file works the same way.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

SEED = Path(__file__).resolve().with_name("area_codes.csv")
HEADERS = {"行政区划代码": "area_code", "名称": "area_name", "级别": "area_level", "上级代码": "parent_code"}
LEVELS = ("市", "县", "镇", "村")


def convert(reference: Path, seed: Path = SEED) -> int:
    with reference.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = set(HEADERS) - set(rows[0] if rows else {})
    if missing:
        raise SystemExit(f"{reference}: missing columns {', '.join(sorted(missing))}")
    out = []
    for number, row in enumerate(rows, start=2):
        code, level = row["行政区划代码"].strip(), row["级别"].strip()
        if len(code) != 12 or not code.isdigit() or level not in LEVELS:
            raise SystemExit(f"{reference}, row {number}: code {code!r} / level {level!r} is not a 12-digit code "
                             f"with a level among {'/'.join(LEVELS)}")
        out.append({"area_code": code, "area_name": row["名称"].strip(), "area_level": level,
                    "parent_code": row["上级代码"].strip()})
    out.sort(key=lambda r: (LEVELS.index(r["area_level"]), r["area_code"]))
    with seed.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(HEADERS.values()), lineterminator="\n")
        writer.writeheader()
        writer.writerows(out)
    return len(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(f"{convert(Path(sys.argv[1]))} areas written to {SEED}")
