"""`aisle gdo run|eval`: LLM-GDO pipelines of user-defined prompts over tables."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from aisle.cli._common import (
    JSON_OPTION,
    aisle_errors,
    check_output_file,
    console,
    err_console,
    json_stdout,
    named_progress,
    resumable,
)

app = typer.Typer(help="LLM-GDO: user-defined-prompt operators (map, filter, extract, "
                       "classify, impute, detect_errors, match, resolve, aggregate) over "
                       "tables, as pipelines.", no_args_is_help=True)


class EngineName(StrEnum):
    local = "local"
    ray = "ray"


@app.command("run")
def run_cmd(
    pipeline_file: Path = typer.Argument(..., metavar="PIPELINE.yaml",
                                         help="The pipeline (YAML)."),
    input_file: Path = typer.Option(..., "--input", "-i",
                                    help="The input table: .csv, .jsonl, .json or .parquet."),
    output_file: Path | None = typer.Option(
        None, "--output", "-o", show_default=False,
        help="Where the output table goes (format by extension); required unless "
             "--dry-run."),
    engine: EngineName = typer.Option(EngineName.local, "--engine",
                                      help="local: asyncio here; ray: a Ray Data actor pool."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", show_default=False,
        help="An existing Ray cluster (ray://HOST:10001 or 'auto'); default: a local Ray."),
    ray_actors: int = typer.Option(2, "--ray-actors", min=1, help="Actors in the Ray pool."),
    limit: int | None = typer.Option(None, "--limit", min=1, show_default=False,
                                     help="Only the first N rows (trying a pipeline)."),
    model: str | None = typer.Option(None, "--model", "-m", show_default=False,
                                     help="Override the pipeline's default model."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Check everything and estimate calls and tokens per "
                                      "step; no model call."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a pipeline over a table. Rows whose answer failed are kept, with the reason
    in the step's `<step>_error` column. When the pipeline's budget runs out, the table
    as far as it got is written and the exit code is 2."""
    from aisle.agents.gdo import Pipeline, Runtime, read_table, write_table
    from aisle.agents.gdo import dry_run as estimate_steps
    from aisle.graphs.gdo import GDOContext, compile_pipeline

    if output_file is None and not dry_run:
        err_console.print("[red]error:[/] give --output FILE (or --dry-run)")
        raise typer.Exit(1)
    if output_file is not None:
        check_output_file(output_file, "--output")
    with aisle_errors(), json_stdout(as_json) as emit:
        pipeline = Pipeline.from_yaml(pipeline_file)
        if model is not None:
            pipeline = pipeline.model_copy(update={"model": model})
        table = read_table(input_file)
        if limit is not None:
            table = table.head(limit)
        if dry_run:
            estimates = estimate_steps(pipeline.steps, table, Runtime(
                model=pipeline.model, base_dir=pipeline.base_path))
            out: dict[str, Any] = {"pipeline": pipeline.name, "rows": len(table),
                                   "steps": estimates}
            if as_json:
                emit(out)
            else:
                _print_estimates(out)
            return
        assert output_file is not None
        context = GDOContext(pipeline=pipeline, engine=engine.value, ray_address=ray_address,
                             ray_actors=ray_actors)
        graph = compile_pipeline(pipeline)
        with resumable("answers (in the response cache)"), named_progress("tasks") as update:
            state = asyncio.run(_stream(graph, {"table": str(input_file)} if limit is None
                                        else {"rows": table.to_dict(orient="records")},
                                        context, update))
        from aisle.graphs.gdo import _load

        result = _load(str(state["output"]))
        write_table(result, output_file)
        out = {"pipeline": pipeline.name, "output": str(output_file), "rows": len(result),
               "steps": state["stats"], "spent": state["spent"], "stopped": state["stopped"]}
        if as_json:
            emit(out)
        else:
            _print_stats(out)
    if out.get("stopped"):
        raise typer.Exit(2)


async def _stream(graph: Any, given: dict[str, Any], context: Any,
                  update: Any) -> dict[str, Any]:
    state: dict[str, Any] = {}
    async for mode, chunk in graph.astream(given, context=context,
                                           stream_mode=["custom", "values"]):
        if mode == "custom" and isinstance(chunk, dict) and "done" in chunk:
            update(chunk["agent"], chunk["done"], chunk["total"])
        elif mode == "values":
            state = chunk
    return state


def _print_estimates(out: dict[str, Any]) -> None:
    table = Table(title=f"dry run: {escape(out['pipeline'])} on {out['rows']} rows "
                        "(upper bounds after a filter)")
    for column in ("step", "op", "tasks", "cascade decided", "LLM calls",
                   "prompt tokens (est.)", "max completion tokens"):
        table.add_column(column, justify="left" if column in ("step", "op") else "right")
    for s in out["steps"]:
        table.add_row(escape(s["step"]), s["op"], str(s["tasks"]), str(s["cascade_decided"]),
                      str(s["calls"]), str(s["prompt_tokens_estimate"]),
                      str(s["max_completion_tokens"]))
    console.print(table)


def _print_stats(out: dict[str, Any]) -> None:
    table = Table(title=f"{escape(out['pipeline'])}: {out['rows']} rows -> "
                        f"{escape(out['output'])}")
    for column in ("step", "op", "rows in", "rows out", "tasks", "LLM share", "calls",
                   "cache hits", "tokens", "failed", "not run", "s"):
        table.add_column(column, justify="left" if column in ("step", "op") else "right")
    for s in out["steps"]:
        table.add_row(escape(s["step"]), s["op"], str(s["rows_in"]), str(s["rows_out"]),
                      str(s["tasks"]), f"{s['llm_share']:.0%}", str(s["calls"]),
                      str(s["cache_hits"]), str(s["prompt_tokens"] + s["completion_tokens"]),
                      str(s["failed"]), str(s["not_run"]), f"{s['seconds']:.1f}")
    console.print(table)
    if out["stopped"]:
        err_console.print(f"[yellow]stopped:[/] {escape(out['stopped'])}; the output holds "
                          "what finished", soft_wrap=True)


class EvalTask(StrEnum):
    match = "match"
    impute = "impute"
    detect = "detect"


class Decide(StrEnum):
    json = "json"
    logprob = "logprob"


class EvalMethod(StrEnum):
    llm = "llm"
    cascade = "cascade"
    baseline = "baseline"


@app.command("eval")
def eval_cmd(
    task: EvalTask = typer.Option(..., "--task", help="match (er-magellan pair files), "
                                  "impute (train/valid/test.csv) or detect (the Hospital "
                                  "layout)."),
    data: Path = typer.Option(..., "--data", help="The dataset folder, e.g. "
                              "../shared/data/er-magellan/Beer."),
    method: EvalMethod = typer.Option(..., "--method", help="llm: the operator on every "
                                      "test row; cascade: a score decides the confident "
                                      "rows; baseline: no LLM."),
    model: str | None = typer.Option(None, "--model", "-m", show_default=False,
                                     help="The LLM (llm, cascade)."),
    out: Path = typer.Option(..., "--out", help="The result JSON; a run adds its method "
                             "under `metrics` (same task, dataset and sample)."),
    limit: int | None = typer.Option(None, "--limit", min=1, show_default=False,
                                     help="A fixed random sample of N test rows."),
    seed: int = typer.Option(2025, "--seed", help="The sample's seed."),
    column: str = typer.Option("manufacturer", "--column", help="impute: the column."),
    shots: int = typer.Option(4, "--shots", min=0, max=20,
                              help="Few-shot examples from the train split."),
    llm_share: float = typer.Option(1 / 3, "--llm-share", min=0.0, max=1.0,
                                    help="cascade: the share of validation rows sent to "
                                         "the LLM, at most (thresholds fit on validation; "
                                         "a share other than a third is named in the "
                                         "method's key, e.g. cascade_share25)."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Rows in flight."),
    decide: Decide = typer.Option(Decide.json, "--decide", help="match, detect: json (the model "
                               "writes the boolean) or logprob (P(Yes) against a threshold "
                               "fitted on --valid-limit validation rows)."),
    valid_limit: int = typer.Option(100, "--valid-limit", min=2,
                                    help="decide logprob: validation rows for the threshold."),
    replace: bool = typer.Option(False, "--replace",
                                 help="Replace this method's entry in --out."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Evaluate one method on a dataset's test split; the LLM's answers are cached as
    they come, so an interrupted run resumes where it stopped."""
    import json

    from aisle.evals.gdo_suite import GDOEvalConfig, check_merge, evaluate, merge_result

    check_output_file(out)
    with aisle_errors(), json_stdout(as_json) as emit:
        existing = json.loads(out.read_text()) if out.is_file() else None
        if method is not EvalMethod.baseline and model is None:
            err_console.print("[red]error:[/] --method llm and cascade need --model")
            raise typer.Exit(1)
        config = GDOEvalConfig(task=task.value, data=data, method=method.value, model=model,
                               limit=limit, seed=seed, column=column, shots=shots,
                               llm_share=llm_share, concurrency=concurrency,
                               decide=decide.value, valid_limit=valid_limit)
        check_merge(existing, config, replace=replace)  # before any work
        with resumable("answers (in the response cache)"), named_progress("rows") as update:
            config.progress = update
            run = asyncio.run(evaluate(config))
        merged = merge_result(existing, run, replace=replace)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(merged, indent=2) + "\n")
        if as_json:
            emit(run)
        else:
            m = run["metrics"]
            score = (f"accuracy {m['accuracy']:.3f}" if "accuracy" in m else
                     f"P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}")
            console.print(f"{task.value} {escape(run['dataset'])} {run['method']}: {score}  "
                          f"({m['rows']} rows, LLM share {m['llm_share']:.0%}, "
                          f"{m['calls']} calls, {m['seconds']:.1f} s) -> {escape(str(out))}",
                          soft_wrap=True)
