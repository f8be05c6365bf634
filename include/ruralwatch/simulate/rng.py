"""Named random streams: each part of the simulation draws from its own stream, derived from the seed.

A stream depends only on (seed, its name parts), so adding a feed or drawing more numbers in one place
never shifts the numbers another place gets, and regenerating a file gives the same bytes.
"""
from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *parts: object) -> np.random.Generator:
    keys = [zlib.crc32(str(part).encode()) for part in parts]
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *keys]))
