"""Hold the reader's findings against the generator's claims, file by file and cell by cell.

Every cell the reader flags must be a planted defect, and every planted defect must be flagged where the
manifest says it is; 15-digit IDs must come back as notes and nothing else. A mismatch is a bug in the
simulator (or in its reading of the spec), so the manifest carries the result and the tests require it
to be clean.
"""
from __future__ import annotations

from typing import Any

from .readback import header_name

# Classes the reader checks only when both feeds of a comparison are live.
_CROSS_FEED = {"cross_feed_total_mismatch"}


def compare(parsed: dict[str, dict[str, Any]], defects: list[dict[str, Any]], accepted: list[dict[str, Any]],
            live: set[str]) -> dict[str, Any]:
    """parsed: file -> {"flags", "notes", "extra_columns", "header_row"} for every file the reader read."""
    problems: list[dict[str, Any]] = []
    for file, found in sorted(parsed.items()):
        expected: set[tuple[int | None, str | None, str]] = set()
        extras: set[str] = set()
        for d in defects:
            if d["file"] != file:
                continue
            cls = d["class"]
            if cls == "extra_unknown_column":
                extras.add(header_name(d["column"])[0])
            elif cls == "duplicate_key":
                expected.add((d["data_row"], None, cls))
                expected.add((d["duplicate_of_row"] - found["header_row"], None, cls))
            elif cls in _CROSS_FEED and (not _both_live(file, live) or d["data_row"] in found["uncheckable"]):
                continue  # the other feed's row is not live or not usable: nothing to compare with
            elif d["data_row"] is not None:
                expected.add((d["data_row"], d["column"], cls))
        notes = {(a["data_row"], a["column"]) for a in accepted if a["file"] == file and a["class"] == "id_15_digit"}
        flags = set(found["flags"])
        for row, column, cls in sorted(expected - flags, key=str):
            problems.append({"file": file, "data_row": row, "column": column, "class": cls, "problem": "not flagged"})
        for row, column, cls in sorted(flags - expected, key=str):
            problems.append({"file": file, "data_row": row, "column": column, "class": cls, "problem": "not planted"})
        actual_notes = {(r, c) for r, c, _ in found["notes"]}
        for row, column in sorted(notes ^ actual_notes, key=str):
            problems.append({"file": file, "data_row": row, "column": column, "class": "id_15_digit",
                             "problem": "note mismatch"})
        if set(found["extra_columns"]) != extras:
            problems.append({"file": file, "class": "extra_unknown_column", "problem": "columns differ",
                             "expected": sorted(extras), "found": sorted(found["extra_columns"])})
    return {"ok": not problems, "files_checked": len(parsed), "mismatches": problems[:100],
            "mismatch_count": len(problems)}


def _both_live(file: str, live: set[str]) -> bool:
    return file in live and any(f.startswith("housing_village_environment/") for f in live)
