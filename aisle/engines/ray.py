"""The Ray engine: rows on a Ray Data actor pool, on this machine or a cluster.

Each actor gets the pickled `RowFunction` (cloudpickle), calls its `setup()` once and
runs the rows of every batch it is handed with asyncio, up to
ceil(concurrency / num_actors) in flight. Every actor opens its own client to the
model, so point the row function at one shared OpenAI-compatible endpoint (one vLLM
server, a gateway, a hosted API): the model server, not Ray, then bounds throughput,
and more actors only help while that server has room.

The budget is kept in the driver. With no budget every task goes to Ray at once, in
one pipeline (its actors start once); with one, tasks go in windows of
`concurrency * 4`, one Ray Data pipeline each: one call per task is reserved before
its window starts (the first refusal ends the run; later tasks get None), so cached
answers give their calls back before the next window, and a token cap is overshot by
at most one window's calls. Results are settled, and progress reported, as each batch
comes back.

Where Ray runs:

- `RayEngine()` starts a local Ray (or reuses the one this process already started),
  without the dashboard.
- `RayEngine(address="ray://HOST:10001")` connects to a running cluster's Ray Client
  server; on a cluster node, `ray start --head` and then `RayEngine(address="auto")`
  joins it. The cluster's workers need `aisle` installed (the same version), since
  the row function is unpickled there.

Example:
    >>> from aisle.engines import get_engine
    >>> engine = get_engine("ray", num_actors=4)  # doctest: +SKIP
    >>> rows = await engine.map(fn, tasks, concurrency=32)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from aisle.engines._base import BudgetMeter, Engine, Progress, RowFunction, RowResult, failed_row
from aisle.errors import ConfigurationError

__all__ = ["RayEngine"]

WINDOW_PER_SLOT = 4
"""Under a budget, a window holds `concurrency * WINDOW_PER_SLOT` tasks."""

_INDEX = "index"
_TASK = "task"
_RESULT = "result"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ConfigurationError(
            "the ray engine needs Ray Data, which is not installed: pip install 'aisle[ray]'"
        ) from e
    return ray


def _check_picklable(fn: RowFunction) -> None:
    ray = _import_ray()
    try:
        ray.cloudpickle.dumps(fn)
    except Exception as e:
        raise ConfigurationError(
            f"the row function {type(fn).__name__} does not pickle ({type(e).__name__}: {e}), "
            "so it cannot reach Ray's actors: keep it plain data until setup(), and pass "
            "the ray engine a fresh one, not one another engine has already set up"
        ) from e


def _decode(text: str) -> RowResult:
    row: RowResult = json.loads(text)
    return row


class _RowActor:
    """One actor of the pool: the row function, set up once, and an event loop on a
    thread of its own that keeps the model client's connections between batches."""

    def __init__(self, fn: RowFunction, in_flight: int) -> None:
        fn.setup()
        self.fn = fn
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="aisle-row-actor",
                         daemon=True).start()
        self.gate: asyncio.Semaphore | None = None
        self.in_flight = in_flight

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        indices = [int(i) for i in batch[_INDEX]]
        tasks = [json.loads(t) for t in batch[_TASK]]
        future: Future[list[str]] = asyncio.run_coroutine_threadsafe(self._run(tasks),
                                                                     self.loop)
        return {_INDEX: indices, _RESULT: future.result()}

    async def _run(self, tasks: list[dict[str, Any]]) -> list[str]:
        if self.gate is None:  # made on the loop it serves
            self.gate = asyncio.Semaphore(self.in_flight)
        return list(await asyncio.gather(*(self._one(task, self.gate) for task in tasks)))

    async def _one(self, task: dict[str, Any], gate: asyncio.Semaphore) -> str:
        async with gate:
            start = time.perf_counter()
            try:
                result = await self.fn(task)
            except Exception as e:  # a RowFunction should not raise; keep the row anyway
                result = failed_row(f"{type(e).__name__}: {e}", time.perf_counter() - start)
            try:
                return json.dumps(result)
            except (TypeError, ValueError) as e:
                return json.dumps(failed_row(f"row result is not JSON: {e}",
                                             time.perf_counter() - start))


class RayEngine(Engine):
    """Rows on a Ray Data actor pool of `num_actors` actors, each with its own model
    client; same results, in the same order, as `LocalEngine`.

    Args:
        address: a running cluster (`"ray://HOST:10001"`, or `"auto"` on a node of a
            cluster started with `ray start --head`); None starts a local Ray. Either
            way, a process already connected to a Ray (`ray.init` called) keeps using
            that one.
        num_actors: actors in the pool; each asks Ray for `num_cpus_per_actor` CPUs.
        batch_size: rows handed to an actor at once; None: four times the rows it
            keeps in flight (fewer when the tasks are few).
        num_cpus_per_actor: CPUs each actor reserves. The rows wait on a model
            server, so an actor needs little CPU; on a cluster, 1 spreads the actors
            over the nodes.

    Raises:
        ConfigurationError: Ray Data is not installed, or an option is out of range.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_actors: int = 2,
                 batch_size: int | None = None, num_cpus_per_actor: float = 0.5) -> None:
        _import_ray()
        if num_actors < 1:
            raise ConfigurationError(f"num_actors must be >= 1, not {num_actors}")
        if batch_size is not None and batch_size < 1:
            raise ConfigurationError(f"batch_size must be >= 1 or None, not {batch_size}")
        if num_cpus_per_actor <= 0:
            raise ConfigurationError(
                f"num_cpus_per_actor must be > 0, not {num_cpus_per_actor}")
        self.address = address
        self.num_actors = num_actors
        self.batch_size = batch_size
        self.num_cpus_per_actor = num_cpus_per_actor

    def __repr__(self) -> str:
        return (f"RayEngine(address={self.address!r}, num_actors={self.num_actors}, "
                f"batch_size={self.batch_size})")

    def _connect(self) -> None:
        ray = _import_ray()
        if ray.is_initialized():
            return
        if self.address is None:
            cpus = max(2, math.ceil(self.num_actors * self.num_cpus_per_actor))
            ray.init(ignore_reinit_error=True, include_dashboard=False, num_cpus=cpus,
                     log_to_driver=False)
        else:
            ray.init(address=self.address, ignore_reinit_error=True)

    async def map(self, fn: RowFunction, tasks: Sequence[Mapping[str, Any]], *,
                  concurrency: int, meter: BudgetMeter | None = None,
                  progress: Progress | None = None) -> list[RowResult | None]:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency}")
        encoded = []
        for i, task in enumerate(tasks):
            try:
                encoded.append(json.dumps(task))
            except (TypeError, ValueError) as e:
                raise ConfigurationError(
                    f"task {i} is not plain JSON ({e}); the ray engine sends tasks as JSON"
                ) from e
        meter = meter or BudgetMeter()
        results: list[RowResult | None] = [None] * len(tasks)
        if not tasks:
            return results
        _check_picklable(fn)
        await asyncio.to_thread(self._connect)
        loop = asyncio.get_running_loop()
        done = 0

        def finished(rows: list[tuple[int, RowResult]]) -> None:
            # In the thread that drives Ray; the progress callback runs on the loop.
            nonlocal done
            for i, row in rows:
                meter.settle(row)
                results[i] = row
            done += len(rows)
            if progress is not None:
                loop.call_soon_threadsafe(progress, done, len(tasks))

        # Unlimited: one window. A budget: windows of a few rows per slot, so cached
        # answers give calls back in time and a token cap is overshot by little.
        window = len(tasks) if meter.budget.unlimited else concurrency * WINDOW_PER_SLOT
        in_flight = math.ceil(concurrency / self.num_actors)
        start = 0
        while start < len(tasks):
            stop = min(start + window, len(tasks))
            end = start
            while end < stop and meter.reserve():
                end += 1
            if end > start:
                await asyncio.to_thread(self._run_window, fn, encoded, start, end, in_flight,
                                        finished)
            if end < stop:
                break  # the budget refused a task: the rest are not started
            start = end
        return results

    def _run_window(self, fn: RowFunction, encoded: Sequence[str], start: int, end: int,
                    in_flight: int,
                    finished: Callable[[list[tuple[int, RowResult]]], None]) -> None:
        """Run tasks `start:end` on a fresh Ray Data pipeline, handing each batch's
        (index, result) pairs to `finished` as they come back."""
        ray = _import_ray()
        n = end - start
        # A few waves of an actor's slots per batch: an actor runs one batch at a time,
        # so its slots idle only while a batch's last rows finish, and results (and
        # progress) come back as batches finish, not once at the end.
        batch = self.batch_size or min(math.ceil(n / self.num_actors), in_flight * 4)
        items = [{_INDEX: i, _TASK: encoded[i]} for i in range(start, end)]
        context = ray.data.DataContext.get_current()
        bars = context.enable_progress_bars
        context.enable_progress_bars = False  # aisle reports its own progress
        try:
            dataset = ray.data.from_items(items, override_num_blocks=math.ceil(n / batch))
            mapped = dataset.map_batches(
                _RowActor,
                batch_size=batch,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.num_actors),
                num_cpus=self.num_cpus_per_actor,
                fn_constructor_kwargs={"fn": fn, "in_flight": in_flight},
            )
            seen: set[int] = set()
            for out in mapped.iter_batches(batch_size=None, batch_format="numpy"):
                rows = [(int(i), _decode(r))
                        for i, r in zip(out[_INDEX], out[_RESULT], strict=True)]
                seen.update(i for i, _ in rows)
                finished(rows)
        finally:
            context.enable_progress_bars = bars
        if seen != set(range(start, end)):
            raise RuntimeError(f"ray returned {len(seen)} distinct rows for the "
                               f"{n} tasks {start}..{end - 1}")
