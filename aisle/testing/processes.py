"""Process checks for tests that start servers: is anything of a process group left?"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["live_group_members"]


def live_group_members(pgid: int, wait: float = 10.0) -> list[int]:
    """Processes in group `pgid` that are neither gone nor zombies, after up to `wait` s
    (Linux `/proc`)."""
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
                alive.append(int(stat.parent.name))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)
