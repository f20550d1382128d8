"""Run one operator over a table: checks, cascade, rendering, engine, ensemble, usage.

Order of work, so that every bad input fails before the first model call: the table and
the options are checked, the tasks planned, every prompt rendered (a template variable
that is not a column, or a cell that is not text, fails here), and only then does the
engine call the model. A dry run stops after rendering and estimates calls and tokens.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from langchain_core.language_models import BaseChatModel

from aisle.agents.gdo.cascade import Thresholds, decide
from aisle.agents.gdo.operators import Operator, Plan
from aisle.agents.gdo.udp import (
    UDP,
    UDPCall,
    UDPChoiceCall,
    compile_template,
    render_shots,
    template_variables,
)
from aisle.engines import BudgetMeter, Engine, LocalEngine, Progress, RowResult
from aisle.errors import ConfigurationError

__all__ = ["OperatorResult", "Runtime", "dry_run", "estimate", "run_operator"]

CHARS_PER_TOKEN = 4.0
"""The dry run's token estimate: characters / 4 (English text on BPE tokenizers; the
real count shows in the usage after a run)."""

_SCALARS = (str, int, float, bool)


@dataclass
class Runtime:
    """What a step runs with.

    Attributes:
        model: the default model (a spec or a chat model) for UDPs without one.
        engine: where the rows run.
        concurrency: rows in flight.
        meter: the pipeline's budget meter, shared by its steps.
        base_dir: where relative prompt files resolve.
        embed: texts -> vectors, for blocking and embedding scores (loaded when first
            needed: `aisle.tools.retrieval.Embedder`).
        right: the right table of a match step, from Python.
        pairs: explicit candidate pairs for a match step (skips blocking).
        cells: explicit (row, column) cells for detect_errors.
        thresholds: cascade thresholds by step, fitted in Python (`fit_cascade`).
        progress: called with (step, done, total).
        allow_empty: an empty table passes through with no tasks instead of being an
            error (a pipeline's later steps, after a filter that kept nothing).
    """

    model: str | BaseChatModel | None = None
    engine: Engine | None = None
    concurrency: int = 4
    meter: BudgetMeter | None = None
    base_dir: Path | None = None
    embed: Callable[[Sequence[str]], Any] | None = None
    right: pd.DataFrame | None = None
    pairs: Sequence[tuple[int, int]] | None = None
    cells: Sequence[tuple[int, str]] | None = None
    thresholds: Mapping[str, Thresholds] | None = None
    progress: Callable[[str, int, int], None] | None = None
    allow_empty: bool = False

    def embedder(self) -> Callable[[Sequence[str]], Any]:
        if self.embed is None:
            from aisle.tools.retrieval import Embedder

            self.embed = Embedder().embed
        return self.embed


@dataclass
class OperatorResult:
    """A step's output table and what it cost.

    Attributes:
        table: the output table.
        stats: rows in and out, tasks, how many the cascade decided and the share sent
            to the LLM, calls, tokens, cache hits, failed and not-run tasks (and up to
            three distinct reasons), seconds.
        stopped: why the pipeline must stop after this step (the budget), or None.
        answers: each task's answer (None where it failed), in task order: with
            `decide: logprob` they carry `p_yes`, which fitting a threshold needs.
        keys: what each task stands for (a row position, a cell, a pair, a group).
    """

    table: pd.DataFrame
    stats: dict[str, Any]
    stopped: str | None = None
    answers: list[Any] = field(default_factory=list)
    keys: list[Any] = field(default_factory=list)


def _check_variables(op: Operator, text: str, table: pd.DataFrame, where: str) -> None:
    names = template_variables(text)
    columns = {str(c) for c in table.columns}
    reserved = op.reserved() | ({"rows", "n_rows"} if op.op == "aggregate" else set())
    unknown = sorted(names - columns - reserved)
    if unknown:
        raise ConfigurationError(f"{where}: the template uses {unknown[0]!r}, which is not a "
                                 f"column of the table (columns: {', '.join(sorted(columns))})")


def _check_cells(variables: Sequence[Mapping[str, Any]], names: set[str], where: str) -> None:
    for n, task in enumerate(variables):
        for name in names:
            value = task.get(name)
            if value is None or isinstance(value, _SCALARS):
                continue
            if isinstance(value, dict | list):  # pairs' records, groups' rows
                inner = value.values() if isinstance(value, dict) else [
                    v for r in value if isinstance(r, dict) for v in r.values()]
                bad = next((v for v in inner if v is not None and not isinstance(v, _SCALARS)),
                           None)
                if bad is None:
                    continue
                value = bad
            raise ConfigurationError(f"{where}: task {n}: the value of {name!r} is a "
                                     f"{type(value).__name__}, not text or a number")


def _udps(op: Operator) -> list[tuple[str, UDP]]:
    if op.ensemble is None:
        return [(op.step, op.udp)]
    return [(f"{op.step}.{v.name}", v.apply(op.udp)) for v in op.ensemble.variants]


def _prepare(op: Operator, table: pd.DataFrame, rt: Runtime,
             ) -> tuple[Plan, list[tuple[str, UDP, UDPCall]], list[bool | None]]:
    where = f"step {op.step!r}"
    op.check(table, rt.allow_empty)
    schema = op.answer_schema()
    right = rt.right
    if right is None and getattr(op, "right", None):
        from aisle.agents.gdo.pipeline import read_table

        path = Path(op.right)  # type: ignore[attr-defined]
        right = read_table(path if path.is_absolute() or rt.base_dir is None
                           else rt.base_dir / path)
    context: dict[str, Any] = {"right": right, "pairs": rt.pairs, "cells": rt.cells,
                               "blocking": {}}
    if (op.op in ("match", "resolve") and getattr(op, "blocking", "") != "tfidf") or (
            op.cascade and op.cascade.score == "embedding") or rt.pairs is not None:
        context["embed"] = rt.embedder()
    plan = op.plan(table, context)
    plan.extra.setdefault("blocking", context["blocking"])
    decided: list[bool | None] = [None] * len(plan.variables)
    if op.cascade is not None:
        thresholds = (rt.thresholds or {}).get(op.step)
        if thresholds is None and op.cascade.low is not None and op.cascade.high is not None:
            thresholds = Thresholds(op.cascade.low, op.cascade.high)
        if thresholds is None:
            raise ConfigurationError(f"{where}: the cascade has no thresholds: give low and "
                                     "high, or fit them on validation rows (fit_cascade)")
        scores = plan.scores
        if op.cascade.score.startswith("column:"):
            column = op.cascade.score.split(":", 1)[1]
            if column not in table.columns:
                raise ConfigurationError(f"{where}: no column {column!r} for the cascade score")
            scores = [float(table.iloc[k][column]) for k in plan.keys]
        if scores is None:
            raise ConfigurationError(f"{where}: no cascade score for this operator")
        plan.scores = list(scores)
        decided = decide(plan.scores, thresholds)
    calls: list[tuple[str, UDP, UDPCall]] = []
    for agent, udp in _udps(op):
        text = udp.template_text(rt.base_dir)
        template = compile_template(text, where)
        _check_variables(op, text, table, where)
        names = template_variables(text)
        _check_cells(plan.variables, names, where)
        logprob = op.decide == "logprob"
        shots = render_shots(template, udp, schema, where,
                             yes_no=op.decision if logprob else None)
        model = udp.model or rt.model
        if model is None:
            raise ConfigurationError(f"{where}: no model: give the UDP a 'model' or the "
                                     "pipeline one")
        rendered = []
        for n, variables in enumerate(plan.variables):
            if decided[n] is not None:
                continue
            try:
                rendered.append(template.render(**variables))
            except jinja2.UndefinedError as e:
                raise ConfigurationError(f"{where}: task {n}: {e.message}") from e
            except jinja2.TemplateError as e:
                raise ConfigurationError(f"{where}: task {n}: {e}") from e
        kind = UDPChoiceCall if logprob else UDPCall
        call = kind(agent=agent, schema=schema, model=model, shots=shots,
                    max_tokens=1 if logprob else udp.max_tokens, temperature=udp.temperature)
        calls.append((agent, udp, call))
        plan.extra.setdefault("prompts", {})[agent] = rendered
    return plan, calls, decided


def estimate(op: Operator, table: pd.DataFrame, rt: Runtime | None = None) -> dict[str, Any]:
    """The dry run: tasks, how many reach the LLM, calls and an estimate of tokens,
    without any model call (every check runs, so a dry run also finds bad input).

    Example:
        >>> from aisle.agents.gdo.operators import MapOp
        >>> op = MapOp(udp=UDP(prompt="Brand of <t>{{ title }}</t>", output={"brand": "string"}))
        >>> table = pd.DataFrame({"title": ["Sony A7", "Nikon Z5"]})
        >>> e = estimate(op, table, Runtime(model="fake"))
        >>> e["tasks"], e["calls"], e["max_completion_tokens"]
        (2, 2, 512)
    """
    rt = rt or Runtime()
    plan, calls, decided = _prepare(op, table, rt)
    llm_tasks = sum(d is None for d in decided)
    prompt_chars = 0
    for agent, _, call in calls:
        shots_chars = sum(len(u) + len(a) for u, a in call.shots)
        prompt_chars += sum(len(p) + shots_chars for p in plan.extra["prompts"][agent])
    return {
        "step": op.step, "op": op.op, "rows": len(table), "tasks": len(plan.variables),
        "cascade_decided": len(plan.variables) - llm_tasks, "llm_tasks": llm_tasks,
        "calls": llm_tasks * len(calls),
        "prompt_tokens_estimate": math.ceil(prompt_chars / CHARS_PER_TOKEN),
        "max_completion_tokens": llm_tasks * sum(c.max_tokens for _, _, c in calls),
        **({"blocking": plan.extra["blocking"]} if plan.extra.get("blocking") else {}),
    }


def _combine(op: Operator, per_variant: list[list[RowResult | None]], n: int,
             ) -> tuple[list[Any], list[str | None]]:
    """One answer per task: the only variant's, or the ensemble's weighted vote on the
    decision field."""
    if len(per_variant) == 1:
        return ([r["value"] if r and r["error"] is None else None for r in per_variant[0]],
                [None if r and r["error"] is None else (
                    r["error"] if r else "not run: the budget ran out")
                 for r in per_variant[0]])
    from aisle.tools.aggregation import aggregate

    assert op.ensemble is not None
    assert op.decision is not None
    names = [v.name for v in op.ensemble.variants]
    triples = []
    for name, results in zip(names, per_variant, strict=True):
        for t, r in enumerate(results):
            if r is not None and r["error"] is None and isinstance(r["value"], dict):
                triples.append((t, name, repr(r["value"].get(op.decision))))
    values: list[Any] = [None] * n
    errors: list[str | None] = [None] * n
    labels: dict[int, str] = {}
    if triples:
        import ast

        result = aggregate(triples, method=op.ensemble.method, min_labelers=1)
        labels = {int(t): label for t, label in result.as_dict().items()}
        for t, label in labels.items():
            values[t] = {op.decision: ast.literal_eval(label)}
    for t in range(n):
        if t not in labels:
            reasons = {r["error"] for res in per_variant if (r := res[t]) is not None
                       and r["error"]} or {"not run: the budget ran out"}
            errors[t] = "every ensemble variant failed: " + "; ".join(sorted(reasons))
    return values, errors


async def run_operator(op: Operator, table: pd.DataFrame, rt: Runtime | None = None,
                       ) -> OperatorResult:
    """Run one step.

    Raises:
        ConfigurationError: bad input (before any model call).
    """
    rt = rt or Runtime()
    start = time.perf_counter()
    # checks, blocking and rendering are CPU and file work: off the event loop
    plan, calls, decided = await asyncio.to_thread(_prepare, op, table, rt)
    engine = rt.engine or LocalEngine()
    meter = rt.meter or BudgetMeter()
    undecided = [n for n, d in enumerate(decided) if d is None]
    per_variant: list[list[RowResult | None]] = []
    for agent, _, call in calls:
        tasks = [{"prompt": p} for p in plan.extra["prompts"][agent]]
        progress: Progress | None = None
        if rt.progress is not None:
            progress = partial(rt.progress, agent)
        results = await engine.map(call, tasks, concurrency=rt.concurrency, meter=meter,
                                   progress=progress)
        full: list[RowResult | None] = [None] * len(plan.variables)
        for n, r in zip(undecided, results, strict=True):
            if r is not None and op.decide == "logprob" and r["value"] is not None:
                p = float(r["value"]["p_yes"])
                r = RowResult(**{**r, "value": {str(op.decision): p >= op.threshold,
                                                "p_yes": p}})
            full[n] = r
        per_variant.append(full)
    values, errors = _combine(op, per_variant, len(plan.variables))
    assert op.decision is not None or all(d is None for d in decided)
    for n, d in enumerate(decided):
        if d is not None:
            answer: dict[str, Any] = {str(op.decision): d}
            if op.op == "filter":
                answer["reason"] = "decided by the cascade score"
            values[n] = answer
            errors[n] = None
    out = await asyncio.to_thread(op.apply, table, plan, values, errors)
    answers = list(values)
    flat = [r for results in per_variant for r in results if r is not None]
    not_run = sum(1 for n in undecided for res in per_variant if res[n] is None)
    stats = {
        "step": op.step, "op": op.op, "rows_in": len(table), "rows_out": len(out),
        "tasks": len(plan.variables), "cascade_decided": len(plan.variables) - len(undecided),
        "llm_share": len(undecided) / len(plan.variables) if plan.variables else 0.0,
        "variants": len(calls),
        "calls": sum(r["calls"] for r in flat),
        "cache_hits": sum(1 for r in flat if r["cached"]),
        "prompt_tokens": sum(r["prompt_tokens"] for r in flat),
        "completion_tokens": sum(r["completion_tokens"] for r in flat),
        "failed": sum(1 for e in errors if e is not None),
        # the first few distinct reasons, so a run's stats say why rows failed
        "errors": sorted({e for e in errors if e is not None})[:3],
        "not_run": not_run,
        "seconds": round(time.perf_counter() - start, 3),
        **({"blocking": plan.extra["blocking"]} if plan.extra.get("blocking") else {}),
    }
    return OperatorResult(out, stats, meter.stopped if not_run else None, answers, plan.keys)


def dry_run(steps: Sequence[Operator], table: pd.DataFrame, rt: Runtime | None = None,
            ) -> list[dict[str, Any]]:
    """Every step's `estimate`, in order, without model calls: each later step is
    estimated on the table shape the earlier ones give (their new columns, empty; a
    filter keeping every row, so counts are upper bounds)."""
    rt = rt or Runtime()
    out = []
    for op in steps:
        out.append(estimate(op, table, rt))
        plan, _, _ = _prepare(op, table, rt)
        n = len(plan.variables)
        table = op.apply(table, plan, [None] * n, [None] * n)
    return out
