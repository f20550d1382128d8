"""The engines: task order, concurrency, error rows and the budget, on `LocalEngine`
and on a real local Ray (`RayEngine`), which must give the same rows as `LocalEngine`."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from langchain_core.language_models import BaseChatModel

from aisle.engines import (
    Budget,
    BudgetMeter,
    Engine,
    LocalEngine,
    RowFunction,
    RowResult,
    failed_row,
    get_engine,
)
from aisle.llm import ainvoke_structured, load_chat_model

VERDICT = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["match", "partial", "none"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "keep": {"type": "boolean"},
    },
    "required": ["label", "score", "keep"],
}


class Judge(RowFunction):
    """Asks `fake:hash` a structured question built from the task; plain data until
    `setup`. `fail_on` tasks raise (an engine must keep them as error rows)."""

    def __init__(self, fail_on: frozenset[int] = frozenset()) -> None:
        self.fail_on = fail_on
        self.model: BaseChatModel | None = None

    def setup(self) -> None:
        self.model = load_chat_model("fake:hash", cache=False)

    async def __call__(self, task: Mapping[str, Any]) -> RowResult:
        assert self.model is not None, "setup() was not called"
        if task["id"] in self.fail_on:
            raise RuntimeError(f"task {task['id']} broke")
        start = time.perf_counter()
        prompt = f"Does the item '{task['item']}' suit a user who likes {task['likes']}?"
        answer = await ainvoke_structured(self.model, prompt, VERDICT)
        usage = answer.message.usage_metadata or {}
        return RowResult(value=answer.value, error=None,
                         prompt_tokens=usage.get("input_tokens", 0),
                         completion_tokens=usage.get("output_tokens", 0),
                         calls=answer.attempts, cached=False,
                         seconds=time.perf_counter() - start)


def make_tasks(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "item": f"item-{i}", "likes": ["hiking", "jazz", "tea"][i % 3]}
            for i in range(n)]


class Scripted(RowFunction):
    """No model: a row per task after `delay` seconds, counting rows in flight;
    tasks with `"cached": true` answer from the cache (no call)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, task: Mapping[str, Any]) -> RowResult:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        cached = bool(task.get("cached"))
        return RowResult(value=task["id"], error=None, prompt_tokens=0 if cached else 10,
                         completion_tokens=0 if cached else 2, calls=0 if cached else 1,
                         cached=cached, seconds=self.delay)


def values(rows: list[RowResult | None]) -> list[Any]:
    return [None if r is None else r["value"] for r in rows]


# LocalEngine


async def test_local_keeps_task_order_and_answers_every_task() -> None:
    rows = await LocalEngine().map(Judge(), make_tasks(30), concurrency=8)
    assert len(rows) == 30
    assert all(r is not None and r["error"] is None and r["calls"] == 1 for r in rows)
    again = await LocalEngine().map(Judge(), list(reversed(make_tasks(30))), concurrency=3)
    assert values(again) == list(reversed(values(rows)))  # each answer follows its task
    assert len({str(v) for v in values(rows)}) > 1  # fake:hash answers vary by prompt


@pytest.mark.parametrize("concurrency", [1, 4, 16])
async def test_local_respects_concurrency(concurrency: int) -> None:
    fn = Scripted(delay=0.01)
    rows = await LocalEngine().map(fn, make_tasks(40), concurrency=concurrency)
    assert values(rows) == list(range(40))
    assert fn.max_in_flight == concurrency


async def test_local_keeps_a_raising_row_as_an_error_row() -> None:
    rows = await LocalEngine().map(Judge(fail_on=frozenset({3})), make_tasks(6), concurrency=2)
    row = rows[3]
    assert row is not None
    assert row["value"] is None
    assert row["error"] == "RuntimeError: task 3 broke"
    assert all(r is not None and r["error"] is None for i, r in enumerate(rows) if i != 3)


async def test_local_budget_stops_after_n_calls_with_the_rest_none() -> None:
    meter = BudgetMeter(Budget(calls=7))
    rows = await LocalEngine().map(Judge(), make_tasks(20), concurrency=3, meter=meter)
    assert [r is not None for r in rows] == [True] * 7 + [False] * 13
    assert meter.calls == 7
    assert meter.stopped == "calls"


async def test_local_cached_answers_refund_their_reservation() -> None:
    tasks = [{**t, "cached": t["id"] % 2 == 0} for t in make_tasks(20)]  # 10 cached
    meter = BudgetMeter(Budget(calls=5))
    rows = await LocalEngine().map(Scripted(), tasks, concurrency=1, meter=meter)
    # A cached row reserves a call to start and gives it back: the 5 calls pay for
    # rows 1, 3, 5, 7, 9, and the cached rows between them run too (without the
    # refund the run would stop after row 4).
    assert values(rows) == list(range(10)) + [None] * 10
    assert meter.calls == 5
    assert meter.tokens == 5 * 12


def test_get_engine_rejects_unknown_names_and_local_options() -> None:
    from aisle.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown engine 'spark'"):
        get_engine("spark")
    with pytest.raises(ConfigurationError, match="takes no options"):
        get_engine("local", num_actors=2)


# RayEngine on a real local Ray

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed: pip install 'aisle[ray]'")
# Ray Data's own DataContext() sets fields it deprecates (Ray 2.60), on first use.
ray_warnings = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def ray_engine() -> Iterator[Engine]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield get_engine("ray", num_actors=2)
    finally:
        ray.shutdown()


class RayRun:
    """One run of 50 tasks on Ray, task 17 raising, with its progress reports."""

    def __init__(self, rows: list[RowResult | None], progress: list[tuple[int, int]]) -> None:
        self.rows = rows
        self.progress = progress


@pytest.fixture(scope="module")
def ray_run(ray_engine: Engine) -> RayRun:
    # One Ray Data pipeline serves three tests: each costs seconds of actor startup.
    seen: list[tuple[int, int]] = []
    rows = asyncio.run(ray_engine.map(Judge(fail_on=frozenset({17})), make_tasks(50),
                                      concurrency=8, progress=lambda d, n: seen.append((d, n))))
    return RayRun(rows, seen)


@needs_ray
@ray_warnings
async def test_ray_gives_the_same_rows_as_local(ray_run: RayRun) -> None:
    local = await LocalEngine().map(Judge(fail_on=frozenset({17})), make_tasks(50),
                                    concurrency=8)
    assert values(ray_run.rows) == values(local)
    assert [r and r["calls"] for r in ray_run.rows] == [r and r["calls"] for r in local]
    assert [r and r["prompt_tokens"] for r in ray_run.rows] == \
        [r and r["prompt_tokens"] for r in local]


@needs_ray
@ray_warnings
def test_ray_keeps_a_raising_row_as_an_error_row(ray_run: RayRun) -> None:
    row = ray_run.rows[17]
    assert row == failed_row("RuntimeError: task 17 broke", row["seconds"] if row else 0.0)
    assert [i for i, r in enumerate(ray_run.rows) if r is None or r["error"]] == [17]


@needs_ray
@ray_warnings
def test_ray_reports_progress_as_rows_come_back(ray_run: RayRun) -> None:
    assert ray_run.progress[-1] == (50, 50)
    done = [d for d, _ in ray_run.progress]
    assert done == sorted(done)
    assert len(done) > 1


@needs_ray
@ray_warnings
async def test_ray_budget_stops_after_n_calls_with_the_rest_none(ray_engine: Engine) -> None:
    # concurrency 2: windows of 8 tasks, so the budget runs out in the second window.
    meter = BudgetMeter(Budget(calls=10))
    rows = await ray_engine.map(Judge(), make_tasks(30), concurrency=2, meter=meter)
    assert [r is not None for r in rows] == [True] * 10 + [False] * 20
    assert meter.calls == 10
    assert meter.stopped == "calls"
    local = await LocalEngine().map(Judge(), make_tasks(10), concurrency=2)
    assert values(rows[:10]) == values(local)


@needs_ray
def test_ray_refuses_a_row_function_that_was_set_up() -> None:
    from aisle.engines.ray import RayEngine
    from aisle.errors import ConfigurationError

    fn = Judge()
    fn.setup()  # now holds a live client: not plain data any more
    with pytest.raises(ConfigurationError, match=r"does not pickle.*fresh one"):
        asyncio.run(RayEngine().map(fn, make_tasks(2), concurrency=2))


def test_ray_missing_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from aisle.engines.ray import RayEngine
    from aisle.errors import ConfigurationError

    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigurationError, match=r"pip install 'aisle\[ray\]'"):
        RayEngine()


@needs_ray
@ray_warnings
async def test_a_gdo_pipeline_gives_the_same_table_on_both_engines(ray_engine: Engine,
                                                                   tmp_path: Path) -> None:
    """The operators' own row function (`UDPCall`, model `fake:hash`) through the
    pipeline graph: same output table, row for row, on the local and the ray engine."""
    from aisle.agents.gdo import Pipeline
    from aisle.graphs.gdo import GDOContext, run_pipeline

    pipeline = Pipeline.from_yaml("""
model: fake:hash
concurrency: 4
steps:
  - op: extract
    name: specs
    attributes: {brand: string, megapixels: integer}
    udp: {prompt: "Specs of <t>{{ title }}</t>?"}
""")
    table = pd.DataFrame({"title": [f"product {i}" for i in range(40)]})
    local, _ = await run_pipeline(pipeline, table, context=GDOContext(
        engine="local", workdir=str(tmp_path / "local")))
    ray_out, state = await run_pipeline(pipeline, table, context=GDOContext(
        engine="ray", workdir=str(tmp_path / "ray")))
    assert [s["tasks"] for s in state["stats"]] == [40]
    assert local.equals(ray_out)
    assert local["megapixels"].nunique() > 1  # the answers really vary by row
