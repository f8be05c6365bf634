"""`make reliability` (`ruralwatch reliability`): run the reliability and security tests and print,
per scenario, what was tried, what held, and how long it took.

The tests live in `tests/reliability/`; each test's docstring names its scenario on its first line
and has `Tried:` and `Held:` paragraphs, which the tests record as junit properties. pytest runs in a
subprocess (the test session sets its own environment before anything is imported) and writes junit
XML; this module reads it back into the table.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ruralwatch import settings

TESTS_DIR = settings.PROJECT_ROOT / "tests" / "reliability"


@dataclass
class Scenario:
    scenario: str
    tried: str
    held: str
    result: str        # passed | failed | error | skipped
    seconds: float
    detail: str = ""   # the failure's first line, when it did not hold


def read_junit(path: Path) -> list[Scenario]:
    scenarios = []
    for case in ET.parse(path).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") or "" for p in case.iter("property")}
        result, detail = "passed", ""
        for outcome in ("failure", "error", "skipped"):
            element = case.find(outcome)
            if element is not None:
                result = {"failure": "failed"}.get(outcome, outcome)
                detail = (element.get("message") or "").strip().splitlines()[0][:200] if element.get("message") else ""
                break
        scenarios.append(Scenario(
            scenario=properties.get("scenario") or case.get("name", ""), tried=properties.get("tried", ""),
            held=properties.get("held", ""), result=result, seconds=float(case.get("time") or 0), detail=detail))
    return scenarios


def print_table(scenarios: list[Scenario], file=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = file or sys.stdout
    console = Console(file=out, width=None if out.isatty() else 180)
    table = Table(title="reliability and security: what was tried and what held", show_lines=True)
    table.add_column("scenario", ratio=2, overflow="fold")
    table.add_column("what was tried", ratio=4, overflow="fold")
    table.add_column("what held", ratio=4, overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    for s in scenarios:
        held = s.held if s.result == "passed" else f"{s.held}\nDID NOT HOLD: {s.detail}".strip()
        result = {"passed": "[green]PASS[/green]", "failed": "[red]FAIL[/red]", "error": "[red]ERROR[/red]",
                  "skipped": "[yellow]SKIP[/yellow]"}[s.result]
        # Texts are escaped: a test id like [binary_csv] is not rich markup.
        table.add_row(escape(s.scenario), escape(s.tried), escape(held), result, f"{s.seconds:.1f}")
    console.print(table)
    held = sum(s.result == "passed" for s in scenarios)
    console.print(f"{held} of {len(scenarios)} scenarios held in {sum(s.seconds for s in scenarios):.0f}s")


def main(pytest_args: list[str] | None = None) -> int:
    """Run tests/reliability; print the table; return pytest's exit code."""
    with tempfile.TemporaryDirectory(prefix="ruralwatch-reliability-") as folder:
        junit = Path(folder) / "junit.xml"
        command = [sys.executable, "-m", "pytest", str(TESTS_DIR), f"--junitxml={junit}", "-o", "junit_family=xunit1",
                   "-p", "no:cacheprovider", "-q", *(pytest_args or [])]
        returncode = subprocess.call(command, cwd=settings.PROJECT_ROOT)
        if not junit.exists():
            print(f"pytest wrote no results (exit {returncode}): {' '.join(command)}", file=sys.stderr)
            return returncode or 1
        print_table(read_junit(junit))
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
