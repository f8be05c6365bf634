"""Simulated cities for tests, made through the simulator's command line (its public contract)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def simulate(out: Path, persons: int = 600, months: str = "2026-11", seed: int = 11, defects: str = "none",
             *extra: str) -> Path:
    cmd = [sys.executable, "-m", "ruralwatch.simulate", "--persons", str(persons), "--months", months,
           "--seed", str(seed), "--out", str(out), "--defects", defects, "--quiet", *extra]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the simulator failed: {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
    return out
