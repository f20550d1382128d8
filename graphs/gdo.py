"""LLM-GDO pipelines as LangGraph graphs: a pipeline of UDP operators over a table.

Two shapes, one step function:

- `compile_pipeline(pipeline)`: one node per step, named after it (`load -> brand ->
  games_only -> finish`), so LangGraph Studio and the snapshot show the pipeline.
- the registered `gdo` graph (`langgraph.json`, the HTTP API): `load -> run_step` in a
  loop bounded by the number of steps, with the pipeline itself in the context (JSON),
  so one served graph runs any pipeline.

State carries a reference to the current table (a Parquet file in the run's work folder,
JSON-serialisable, so a checkpointer can store the state), each step's stats, and what
the pipeline has spent. After a step that ran out of budget the graph goes straight to
`finish`: the output is the table as that step left it (finished rows answered, the
rest marked in the step's error column), and `stopped` says why.
"""

from __future__ import annotations

import asyncio
import operator
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import Field
from typing_extensions import TypedDict

from aisle.agents.gdo.operators import Operator
from aisle.agents.gdo.pipeline import Pipeline, read_table
from aisle.agents.gdo.runner import Runtime as StepRuntime
from aisle.agents.gdo.runner import run_operator
from aisle.engines import BudgetMeter, Engine, get_engine
from aisle.errors import ConfigurationError
from aisle.graphs._context import GraphContext, ModelRef
from aisle.graphs._registry import GraphSpec, register_graph
from aisle.settings import get_settings

__all__ = ["GDOContext", "GDOInput", "GDOState", "build_gdo_graph", "compile_pipeline",
           "graph", "run_pipeline"]

GDOAgent = Literal["udp"]
"""GDO's agents are the user's UDPs; models go per UDP in the pipeline itself."""


class GDOContext(GraphContext):
    """Run-scoped settings, as JSON.

    Attributes:
        pipeline: the pipeline (required by the registered graph; a compiled
            pipeline's graph takes it from `compile_pipeline`).
        model: overrides the pipeline's default model (UDPs that name their own keep it).
        engine: `local` (asyncio here) or `ray` (a Ray Data actor pool).
        ray_address: an existing Ray cluster (`ray://HOST:10001`, `auto`); None starts
            a local Ray.
        ray_actors: actors in the pool, each with its own model client.
        workdir: where step tables are written; default `AISLE_HOME/gdo/runs/<id>`.
        limit: only the first `limit` rows of the input (trying a pipeline).
    """

    pipeline: Pipeline | None = None
    model: ModelRef | None = None
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    ray_actors: int = Field(2, ge=1, le=1024)
    workdir: str | None = None
    limit: int | None = Field(None, ge=1)


class GDOInput(TypedDict, total=False):
    """The input table: a file path (CSV, JSON Lines, JSON, Parquet) or rows."""

    table: str
    rows: list[dict[str, Any]]


class GDOState(TypedDict, total=False):
    table: str
    rows: list[dict[str, Any]]
    workdir: str
    step: int
    stats: Annotated[list[dict[str, Any]], operator.add]
    spent: dict[str, int]
    stopped: str | None
    output: str | None


def _pipeline(runtime: Runtime[GDOContext], fixed: Pipeline | None) -> Pipeline:
    pipeline = fixed or (runtime.context.pipeline if runtime.context else None)
    if pipeline is None:
        raise ConfigurationError("no pipeline: pass GDOContext(pipeline=...)")
    return pipeline


def _save(table: pd.DataFrame, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    try:
        table.to_parquet(path, index=False)
    except (ValueError, TypeError, ImportError):  # mixed or nested cells Arrow will not type
        path = folder / f"{name}.pkl"
        table.to_pickle(path)
    return str(path)


def _load(path: str) -> pd.DataFrame:
    table = pd.read_pickle(path) if path.endswith(".pkl") else pd.read_parquet(path)
    return table.astype(object).where(table.notna(), None)


@lru_cache(maxsize=1)
def _embed() -> Any:
    from aisle.tools.retrieval import Embedder

    return Embedder().embed


def _engine(context: GDOContext) -> Engine:
    if context.engine == "ray":
        return get_engine("ray", address=context.ray_address, num_actors=context.ray_actors)
    return get_engine("local")


def _make_load(fixed: Pipeline | None):  # type: ignore[no-untyped-def]
    async def load(state: GDOState, runtime: Runtime[GDOContext]) -> dict[str, Any]:
        context = runtime.context or GDOContext()
        _pipeline(runtime, fixed)
        if state.get("table") and state.get("rows"):
            raise ConfigurationError("give the input as 'table' (a file) or 'rows', not both")
        if state.get("rows") is not None:
            table = pd.DataFrame(state["rows"])
        elif state.get("table"):
            table = await asyncio.to_thread(read_table, state["table"])
        else:
            raise ConfigurationError("no input table: give 'table' (a file path) or 'rows'")
        if context.limit is not None:
            table = table.head(context.limit)
        if table.empty:
            raise ConfigurationError("the input table is empty")
        workdir = Path(context.workdir or get_settings().home / "gdo" / "runs" /
                       uuid.uuid4().hex[:12])
        path = await asyncio.to_thread(_save, table.reset_index(drop=True), workdir, "00-input")
        return {"table": path,
                "workdir": str(workdir), "step": 0, "stats": [],
                "spent": {"calls": 0, "tokens": 0}, "stopped": None, "rows": []}
    return load


def _make_step(fixed: Pipeline | None, index: int | None):  # type: ignore[no-untyped-def]
    async def run_step(state: GDOState, runtime: Runtime[GDOContext]) -> dict[str, Any]:
        context = runtime.context or GDOContext()
        pipeline = _pipeline(runtime, fixed)
        i = state["step"] if index is None else index
        op: Operator = pipeline.steps[i]
        table = await asyncio.to_thread(_load, state["table"])
        spent = state.get("spent") or {"calls": 0, "tokens": 0}
        budget = pipeline.budget.budget() if pipeline.budget else None
        meter = BudgetMeter(budget, calls=spent["calls"], tokens=spent["tokens"])
        try:
            writer = get_stream_writer()
        except RuntimeError:  # called outside a graph run
            writer = None

        def progress(agent: str, done: int, total: int) -> None:
            if writer is not None:
                writer({"step": op.step, "agent": agent, "done": done, "total": total})

        needs_embed = (op.op in ("match", "resolve") and getattr(op, "blocking", "") != "tfidf"
                       ) or (op.cascade is not None and op.cascade.score == "embedding")
        rt = StepRuntime(model=context.model or pipeline.model, engine=_engine(context),
                         concurrency=pipeline.concurrency, meter=meter,
                         base_dir=pipeline.base_path,
                         embed=_embed() if needs_embed else None, progress=progress,
                         allow_empty=True)
        result = await run_operator(op, table, rt)
        path = await asyncio.to_thread(_save, result.table, Path(state["workdir"]),
                                       f"{i + 1:02d}-{op.step}")
        stopped = (f"budget ({result.stopped}) ran out in step {op.step!r}"
                   if result.stopped else None)
        return {"table": path, "step": i + 1, "stats": [result.stats],
                "spent": {"calls": meter.calls, "tokens": meter.tokens}, "stopped": stopped}
    return run_step


async def finish(state: GDOState) -> dict[str, Any]:
    return {"output": state["table"]}


def next_step(state: GDOState, runtime: Runtime[GDOContext]) -> Literal["run_step", "finish"]:
    """Loop while steps remain and the budget lasts."""
    if state.get("stopped"):
        return "finish"
    pipeline = _pipeline(runtime, None)
    return "run_step" if state["step"] < len(pipeline.steps) else "finish"


def build_gdo_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """The registered graph: any pipeline, given in the context.

    Invoke with `await graph.ainvoke({"table": "in.csv"}, context=GDOContext(pipeline=p))`;
    the output table's file is under `"output"`.
    """
    builder = StateGraph(GDOState, context_schema=GDOContext, input_schema=GDOInput)
    builder.add_node("load", _make_load(None))
    builder.add_node("run_step", _make_step(None, None))
    builder.add_node("finish", finish)
    builder.add_edge(START, "load")
    builder.add_edge("load", "run_step")
    builder.add_conditional_edges("run_step", next_step, ["run_step", "finish"])
    builder.add_edge("finish", END)
    return builder.compile(name="gdo")


def compile_pipeline(pipeline: Pipeline) -> CompiledStateGraph[Any, Any, Any, Any]:
    """One node per step, named after it; a router after each goes on or, when the
    budget ran out, to `finish`."""
    builder = StateGraph(GDOState, context_schema=GDOContext, input_schema=GDOInput)
    names = [s.step for s in pipeline.steps]
    reserved = {"load", "finish"} & set(names)
    if reserved:
        raise ConfigurationError(f"a step cannot be named {sorted(reserved)[0]!r}")
    builder.add_node("load", _make_load(pipeline))
    builder.add_node("finish", finish)
    builder.add_edge(START, "load")
    builder.add_edge("load", names[0])
    for i, name in enumerate(names):
        builder.add_node(name, _make_step(pipeline, i))
        following = names[i + 1] if i + 1 < len(names) else "finish"
        if following == "finish":
            builder.add_edge(name, "finish")
        else:
            builder.add_conditional_edges(name, _router(following), [following, "finish"])
    builder.add_edge("finish", END)
    return builder.compile(name=pipeline.name)


def _router(following: str):  # type: ignore[no-untyped-def]
    def go_on(state: GDOState) -> str:
        return "finish" if state.get("stopped") else following
    go_on.__name__ = f"after_{following}"
    return go_on


async def run_pipeline(pipeline: Pipeline, table: pd.DataFrame | str, *,
                       context: GDOContext | None = None) -> tuple[pd.DataFrame, GDOState]:
    """Run a pipeline on a table (a DataFrame or a file path): the output table and the
    final state (stats per step, spent, stopped)."""
    graph_ = compile_pipeline(pipeline)
    context = (context or GDOContext()).model_copy(update={"pipeline": pipeline})
    given: GDOInput = ({"table": table} if isinstance(table, str)
                       else {"rows": table.to_dict(orient="records")})
    state: GDOState = await graph_.ainvoke(given, context=context)  # type: ignore[assignment]
    return _load(str(state["output"])), state


graph = build_gdo_graph()


register_graph(GraphSpec(
    name="gdo",
    description="LLM-GDO: a pipeline of user-defined-prompt operators (map, filter, extract, "
                "classify, impute, detect_errors, match, resolve, aggregate) over a table.",
    build=build_gdo_graph, input_schema=GDOInput, context_schema=GDOContext,
    agents=GDOAgent, module="gdo"))
