"""`aisle ensemble fit|apply|extract|eval`: LLM-ensemble from the command line."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from aisle.agents.ensemble import AGENTS_VERSION, Example
from aisle.cli._common import (
    DATA_OPTION,
    DECODING_OPTION,
    JSON_OPTION,
    aisle_errors,
    check_output_file,
    check_text_file,
    console,
    data_root,
    err_console,
    fail,
    json_stdout,
)
from aisle.cli._eval import (
    REPORT_ONLY_OPTION,
    compute_answers,
    results_root_option,
    warn_failures,
    write_report,
)
from aisle.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd

    from aisle.evals.runner import Failure

app = typer.Typer(help="LLM-ensemble: extract attributes with several labelers, learn "
                       "labeler weights, aggregate labels, evaluate.", no_args_is_help=True)


class FitMethod(StrEnum):
    """`ensemble fit --method` (`aisle.tools.aggregation.Method`)."""

    mv = "mv"
    iwmv = "iwmv"
    ds = "ds"


ANSWERS_FILE = "a CSV of answers (task,labeler,label)"
WEIGHTS_FILE = "the weights JSON written by `aisle ensemble fit`"


def _read_answers(path: Path) -> pd.DataFrame:
    from aisle.evals.crowd_truth import read_answers_csv

    frame = read_answers_csv(path)
    labelers = frame["labeler"].nunique()
    if labelers < 2:
        fail(f"{path}: {labelers} labeler(s); an ensemble needs answers from at least two")
    return frame


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


@app.command("fit")
def fit(
    answers: Path = typer.Option(..., "--answers", help="CSV: task,labeler,label (or the "
                                 "crowd-truth question,worker,answer)."),
    out: Path = typer.Option(..., "--out", help="Weights JSON to write."),
    method: FitMethod = typer.Option(FitMethod.iwmv, "--method",
                                     help="mv (majority vote), iwmv (iterative weighted "
                                          "vote) or ds (Dawid-Skene)."),
    n_classes: int | None = typer.Option(None, "--n-classes", min=2, show_default=False,
                                         help="iwmv: K for closed label sets."),
    labels_out: Path | None = typer.Option(None, "--labels-out", show_default=False,
                                           help="Also write the fitted tasks' labels CSV."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Learn per-labeler weights from an answers file (no truth needed)."""
    from aisle.tools.aggregation import aggregate, weights_table

    check_output_file(out)
    if labels_out is not None:
        check_output_file(labels_out, "--labels-out")
    check_text_file(answers, "--answers", ANSWERS_FILE)
    with aisle_errors(), json_stdout(as_json) as emit:
        frame = _read_answers(answers)
        result = aggregate(frame, method=method.value, n_classes=n_classes)
        result.weights.save(out)
        files = [out]
        if labels_out is not None:
            result.to_frame().to_csv(labels_out, index=False)
            files.append(labels_out)
        rows: list[dict[str, Any]] = [
            {"labeler": str(r.labeler), "weight": float(r.weight),
             "accuracy": None if r.accuracy is None else float(r.accuracy),
             "answers": int(r.n_answers)}
            for r in weights_table(result.weights).itertuples()]
        if as_json:
            emit({"method": method.value, "tasks": len(result.tasks),
                  "iterations": result.iterations, "converged": result.converged,
                  "labelers": rows, "files": [str(f) for f in files]})
            return
    table = Table(title=f"{method.value}: {len(result.tasks)} tasks, {result.iterations} "
                        f"iterations{'' if result.converged else ' (NOT converged)'}")
    for col in ("labeler", "weight", "accuracy", "answers"):
        table.add_column(col)
    for row in rows:
        table.add_row(escape(row["labeler"]), f"{row['weight']:.3f}",
                      "" if row["accuracy"] is None else f"{row['accuracy']:.3f}",
                      str(row["answers"]))
    console.print(table)
    console.print("wrote " + ", ".join(str(f) for f in files), soft_wrap=True)


@app.command("apply")
def apply(
    answers: Path = typer.Option(..., "--answers", help="CSV: task,labeler,label."),
    weights: Path = typer.Option(..., "--weights", help="Weights JSON from `ensemble fit`."),
    out: Path = typer.Option(..., "--out", help="Labels CSV to write: task,label,confidence."),
    ignore_unknown: bool = typer.Option(False, "--ignore-unknown",
                                        help="Drop answers of labelers the weights lack."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Aggregate new answers with saved weights (no refitting)."""
    from aisle.tools.aggregation import load_weights

    check_output_file(out)
    check_text_file(answers, "--answers", ANSWERS_FILE)
    check_text_file(weights, "--weights", WEIGHTS_FILE)
    with aisle_errors(), json_stdout(as_json) as emit:
        fitted = load_weights(weights)
        frame = _read_answers(answers)
        result = fitted.apply(frame, unknown_labelers="ignore" if ignore_unknown else "error")
        result.to_frame().to_csv(out, index=False)
        if as_json:
            emit({"method": fitted.method, "tasks": len(result.tasks), "files": [str(out)]})
            return
    console.print(f"wrote {len(result.tasks)} labels to {out}", soft_wrap=True)


EXAMPLES_FILE = 'a JSON list of {"title": ..., "values": {"Brand": ..., ...}}'


def _read_examples(path: Path) -> list[Example]:
    """Worked examples for fewshot labelers, checked before any model call."""
    from pydantic import TypeAdapter, ValidationError

    if not path.is_file():
        fail(f"examples file not found: {path}; pass --examples with {EXAMPLES_FILE}")
    check_text_file(path, "--examples", EXAMPLES_FILE)
    try:
        shots = TypeAdapter(list[Example]).validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        fail(f"{path}: {first['msg']} at {where or 'the top level'}; pass {EXAMPLES_FILE}")
    if not shots:
        fail(f"{path} holds no examples; pass {EXAMPLES_FILE}")
    return shots


@app.command("extract")
def extract(
    title: str = typer.Option(..., "--title", help="Product title."),
    attributes: str = typer.Option(..., "--attributes", help="Comma-separated, e.g. Brand,Color."),
    labelers: str = typer.Option(..., "--labelers",
                                 help="Comma-separated MODEL_SPEC\\[@VARIANT] labelers, e.g. "
                                      "local:smollm2-135m@fewshot (variant default: "
                                      "zeroshot)."),
    category: str = typer.Option("", "--category", help="Product category."),
    weights: Path | None = typer.Option(None, "--weights", show_default=False,
                                        help="Weights JSON from `ensemble fit`; default "
                                             "majority vote."),
    examples: Path | None = typer.Option(
        None, "--examples", show_default=False,
        help='Worked examples for @fewshot labelers: a JSON list of {"title": ..., '
             '"values": {"Brand": ..., ...}}.'),
    as_json: bool = JSON_OPTION,
) -> None:
    """Extract attribute values with several labelers and aggregate them."""
    from aisle.graphs.ensemble import EnsembleContext, build_ensemble_graph

    attrs = _split(attributes)
    if not attrs:
        fail("--attributes is empty; pass comma-separated names, e.g. Brand,Color")
    if weights is not None:
        check_text_file(weights, "--weights", WEIGHTS_FILE)
    shots = _read_examples(examples) if examples is not None else []
    with aisle_errors(), json_stdout(as_json) as emit:
        ctx = EnsembleContext(labelers=_split(labelers),
                              weights=str(weights) if weights is not None else None)
        ctx.fitted_weights()  # a missing or malformed weights file fails before any call
        fewshot = [spec.name for spec in ctx.parsed() if spec.variant == "fewshot"]
        if fewshot and not shots:
            fail(f"{', '.join(fewshot)} use(s) the fewshot prompt, which needs worked "
                 f"examples: pass --examples FILE ({EXAMPLES_FILE})")
        product = {"title": title, "category": category or "product"}
        out = asyncio.run(build_ensemble_graph().ainvoke(
            {"product": product, "attributes": attrs, "examples": shots}, context=ctx))
        for a in out["answers"]:
            if a["values"] is None:
                err_console.print(f"[yellow]{escape(a['labeler'])} gave no valid answer:[/] "
                                  f"{escape(a['error'] or '')}", soft_wrap=True)
        if as_json:
            emit({"product": product, "attributes": attrs, "method": out["method"],
                  "result": out["result"], "answers": out["answers"]})
            return
    table = Table(title=f"{escape(title)} ({out['method']})")
    for col in ("attribute", "value", "confidence", "agreeing", "other answers"):
        table.add_column(col)
    for attr, r in out["result"].items():
        others = "; ".join(f"{v}: {', '.join(n)}" for v, n in r["votes"].items()
                           if v != r["value"])
        table.add_row(escape(attr), escape(r["value"]), f"{r['confidence']:.2f}",
                      escape(", ".join(r["agreeing"])), escape(others))
    console.print(table)


@app.command("eval")
def eval_ensemble(
    data: Path | None = DATA_OPTION,
    labelers: str = typer.Option("", "--labelers",
                                 help="Local labelers MODEL_SPEC\\[@VARIANT],...; empty: "
                                      "published runs only."),
    offers: int = typer.Option(491, "--offers", min=1,
                               help="Seeded random subset of the OA-Mine test offers for "
                                    "the local labelers (491 = all)."),
    seed: int = typer.Option(0, "--seed", help="Subset seed."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Offers labelled at once."),
    deterministic: bool = DECODING_OPTION,
    agents_version: int | None = typer.Option(
        None, "--agents-version", min=1, max=AGENTS_VERSION, show_default=False,
        help=f"Agents version whose stored answers to use (default: the code's, "
             f"{AGENTS_VERSION}); an earlier one can only be reported (--report-only)."),
    out: Path | None = results_root_option("ensemble", "report.json, report.md"),
    report_only: bool = REPORT_ONLY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Crowd-truth aggregation and the OA-Mine LLM ensemble; resumable (Ctrl-C keeps the
    stored answers; rerun the same command to continue)."""
    from aisle.evals.ensemble_suite import EnsembleEvalConfig, EnsembleSuite
    from aisle.evals.runner import EvalRunner

    root = out if out is not None else get_settings().home / "results"
    with aisle_errors(), json_stdout(as_json) as emit:
        config = EnsembleEvalConfig(data=data_root(data), labelers=tuple(_split(labelers)),
                                    n_offers=offers, seed=seed, concurrency=concurrency,
                                    deterministic=deterministic,
                                    agents_version=agents_version or AGENTS_VERSION)
        EvalRunner.check_writable(root)
        suite = EnsembleSuite(config)
        if offers > len(suite.offers):  # a silent cap would report fewer than asked for
            fail(f"--offers {offers} is more than the {len(suite.offers)} OA-Mine test "
                 f"offers; pass --offers {len(suite.offers)} or fewer")
        runner = EvalRunner(suite, root)
        failures: list[Failure] = []
        if report_only:
            empty = [task for task, stored in runner.answers().items() if not stored]
            if empty:
                fail(f"no answers are stored for this run's labeler(s) {', '.join(empty)} "
                     f"under {runner.paths.store}; run without --report-only to compute them")
        else:
            failures = compute_answers(runner, "offers", every=20)
        warn_failures(failures, "(labeler, offer)", "offer")
        report = runner.report()
        invalid = {k: v for k, v in report["oa_mine"]["local_failures"].items() if v}
        if invalid:
            err_console.print(f"[yellow]labeler answers that failed validation count as no "
                              f"answer:[/] {escape(str(invalid))}", soft_wrap=True)
        files = write_report(runner, report, failures, emit if as_json else None)
        if as_json:
            return
    console.print(suite.markdown(report), markup=False, highlight=False)
    console.print("wrote " + ", ".join(str(f) for f in files), soft_wrap=True)

