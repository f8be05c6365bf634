"""Write test deliveries in every format the spec names, from the committed sample rows."""
from __future__ import annotations

import csv
import os
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE = FIXTURES / "landing" / "rural_roster" / "rural_roster_202611.csv"


def sample_rows() -> list[dict[str, str]]:
    with open(SAMPLE, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8", headers: list[str] | None = None,
              mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    headers = headers or list(rows[0])
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([row.get(h, "") for h in headers])
    if mtime:
        os.utime(path, (mtime, mtime))
    return path


def write_xlsx(path: Path, rows: list[dict], title_rows: list[str] = (), numeric_columns: set[str] = frozenset(),
               headers: list[str] | None = None) -> Path:
    import openpyxl

    path.parent.mkdir(parents=True, exist_ok=True)
    headers = headers or list(rows[0])
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for title in title_rows:
        sheet.append([title])
    sheet.append(headers)
    for row in rows:
        values = []
        for h in headers:
            value = row.get(h, "")
            if h in numeric_columns and value and value.replace(".", "", 1).isdigit():
                value = float(value) if "." in value else int(value)
            values.append(value if value != "" else None)
        sheet.append(values)
    workbook.save(path)
    return path
