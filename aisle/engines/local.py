"""The local engine: asyncio in this process, `concurrency` rows in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aisle.engines._base import BudgetMeter, Engine, Progress, RowFunction, RowResult, failed_row

__all__ = ["LocalEngine"]


class LocalEngine(Engine):
    """Rows as asyncio tasks in this process; the model client's own concurrency limit
    (per backend) still applies beneath `concurrency`.

    Example:
        >>> import asyncio
        >>> from aisle.engines import RowResult
        >>> class Upper(RowFunction):
        ...     async def __call__(self, task):
        ...         return RowResult(value=task["s"].upper(), error=None, prompt_tokens=0,
        ...                          completion_tokens=0, calls=1, cached=False, seconds=0.0)
        >>> out = asyncio.run(LocalEngine().map(Upper(), [{"s": "a"}, {"s": "b"}], concurrency=2))
        >>> [r["value"] for r in out]
        ['A', 'B']
    """

    name = "local"

    def __init__(self) -> None:
        self._ready: set[int] = set()

    async def map(self, fn: RowFunction, tasks: Sequence[Mapping[str, Any]], *,
                  concurrency: int, meter: BudgetMeter | None = None,
                  progress: Progress | None = None) -> list[RowResult | None]:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency}")
        if id(fn) not in self._ready:
            await asyncio.to_thread(fn.setup)
            self._ready.add(id(fn))
        meter = meter or BudgetMeter()
        results: list[RowResult | None] = [None] * len(tasks)
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(i: int) -> None:
            nonlocal done
            try:
                start = time.perf_counter()
                try:
                    result = await fn(tasks[i])
                except Exception as e:  # a RowFunction should not raise; keep the row anyway
                    result = failed_row(f"{type(e).__name__}: {e}", time.perf_counter() - start)
                meter.settle(result)
                results[i] = result
                done += 1
                if progress is not None:
                    progress(done, len(tasks))
            finally:
                gate.release()

        running: list[asyncio.Task[None]] = []
        for i in range(len(tasks)):
            await gate.acquire()
            if not meter.reserve():
                gate.release()
                break
            running.append(asyncio.create_task(one(i)))
        await asyncio.gather(*running)
        return results
