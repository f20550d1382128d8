"""Where a benchmark writes its numbers: a new file per run, so a rerun never
overwrites a result the README quotes (it names the file it quotes)."""

from __future__ import annotations

import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def new_result_path(name: str) -> Path:
    """`benchmarks/results/<name>-<UTC time>.json`, never an existing file."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = RESULTS / f"{name}-{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = RESULTS / f"{name}-{stamp}-{n}.json"
    return path
