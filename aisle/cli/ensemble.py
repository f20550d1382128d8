"""`aisle ensemble fit|apply`, `aisle extract` and `aisle eval ensemble`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from aisle.cli._common import aisle_errors, console, err_console, fail, named_progress

app = typer.Typer(help="Learn labeler weights and aggregate labels (LLM-ensemble).",
                  no_args_is_help=True)

METHODS = ("mv", "iwmv", "ds")


def _read_answers(path: Path) -> Any:
    from aisle.evals.crowd_truth import read_answers_csv

    frame = read_answers_csv(path)
    labelers = frame["labeler"].nunique()
    if labelers < 2:
        fail(f"{path}: {labelers} labeler(s); an ensemble needs answers from at least two")
    return frame


@app.command("fit")
def fit(
    answers: Path = typer.Option(..., "--answers", help="CSV: task,labeler,label (or the "
                                 "crowd-truth question,worker,answer)."),
    out: Path = typer.Option(..., "--out", help="Weights JSON to write."),
    method: str = typer.Option("iwmv", "--method", help="mv, iwmv or ds."),
    n_classes: int | None = typer.Option(None, "--n-classes",
                                         help="iwmv: K for closed label sets."),
    labels_out: Path | None = typer.Option(None, "--labels-out",
                                           help="Also write the fitted tasks' labels CSV."),
) -> None:
    """Learn per-labeler weights from an answers file (no truth needed)."""
    from aisle.tools.aggregation import aggregate, weights_table

    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    with aisle_errors():
        frame = _read_answers(answers)
        result = aggregate(frame, method=method, n_classes=n_classes)  # type: ignore[arg-type]
    out.parent.mkdir(parents=True, exist_ok=True)
    result.weights.save(out)
    if labels_out is not None:
        result.to_frame().to_csv(labels_out, index=False)
    table = Table(title=f"{method}: {len(result.tasks)} tasks, {result.iterations} iterations"
                        f"{'' if result.converged else ' (NOT converged)'}")
    for col in ("labeler", "weight", "accuracy", "answers"):
        table.add_column(col)
    for row in weights_table(result.weights).itertuples():
        table.add_row(str(row.labeler), f"{row.weight:.3f}",
                      "" if row.accuracy is None else f"{row.accuracy:.3f}", str(row.n_answers))
    console.print(table)
    console.print(f"wrote {out}")


@app.command("apply")
def apply(
    answers: Path = typer.Option(..., "--answers", help="CSV: task,labeler,label."),
    weights: Path = typer.Option(..., "--weights", help="Weights JSON from `ensemble fit`."),
    out: Path = typer.Option(..., "--out", help="Labels CSV: task,label,confidence."),
    ignore_unknown: bool = typer.Option(False, "--ignore-unknown",
                                        help="Drop answers of labelers the weights lack."),
) -> None:
    """Aggregate new answers with saved weights (no refitting)."""
    from aisle.tools.aggregation import load_weights

    with aisle_errors():
        fitted = load_weights(weights)
        frame = _read_answers(answers)
        result = fitted.apply(frame, unknown_labelers="ignore" if ignore_unknown else "error")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_frame().to_csv(out, index=False)
    console.print(f"wrote {len(result.tasks)} labels to {out}")


def extract(
    title: str = typer.Option(..., "--title", help="Product title."),
    attributes: str = typer.Option(..., "--attributes", help="Comma-separated, e.g. Brand,Color."),
    labelers: str = typer.Option(..., "--labelers",
                                 help="Comma-separated MODEL_SPEC[@VARIANT] labelers."),
    category: str = typer.Option("", "--category", help="Product category."),
    weights: Path | None = typer.Option(None, "--weights",
                                        help="Weights JSON; default majority vote."),
) -> None:
    """Extract attribute values with several labelers and aggregate them."""
    from aisle.tools.aggregation import load_weights
    from aisle.graphs.ensemble import EnsembleContext, build_ensemble_graph
    from aisle.llm import load_chat_model

    attrs = [a.strip() for a in attributes.split(",") if a.strip()]
    specs = [s.strip() for s in labelers.split(",") if s.strip()]
    if not attrs:
        fail("--attributes is empty")
    if not specs:
        fail("--labelers is empty")
    with aisle_errors():
        fitted = load_weights(weights) if weights else None
        ctx = EnsembleContext.from_specs(specs, load_chat_model, weights=fitted)
        out = asyncio.run(build_ensemble_graph().ainvoke(
            {"product": {"title": title, "category": category or "product"},
             "attributes": attrs}, context=ctx))
    table = Table(title=f"{title} ({out['method']})")
    for col in ("attribute", "value", "confidence", "agreeing", "other answers"):
        table.add_column(col)
    for attr, r in out["result"].items():
        others = "; ".join(f"{v}: {', '.join(n)}" for v, n in r["votes"].items()
                           if v != r["value"])
        table.add_row(attr, r["value"], f"{r['confidence']:.2f}", ", ".join(r["agreeing"]),
                      others)
    console.print(table)
    for a in out["answers"]:
        if a["values"] is None:
            err_console.print(f"[yellow]{a['labeler']} gave no valid answer:[/] {a['error']}",
                              soft_wrap=True)


def eval_ensemble(
    data: Path = typer.Option(..., "--data", help="The shared data folder (holds "
                              "crowd-truth/ and attribute-extraction/)."),
    out: Path = typer.Option(..., "--out", help="Result JSON (markdown goes beside it)."),
    labelers: str = typer.Option("", "--labelers",
                                 help="Local labelers MODEL_SPEC@VARIANT,...; empty: "
                                      "published runs only."),
    offers: int = typer.Option(491, "--offers", help="Seeded random subset of OA-Mine "
                               "test offers for the local labelers (491 = all)."),
    seed: int = typer.Option(0, "--seed", help="Subset seed."),
    concurrency: int = typer.Option(4, help="Offers labelled at once."),
    report_only: bool = typer.Option(False, "--report-only",
                                     help="Write the report from stored answers; run nothing."),
) -> None:
    """Crowd-truth aggregation and the OA-Mine LLM ensemble; resumable (rerun to continue)."""
    from aisle.agents.ensemble import LabelerSpec
    from aisle.evals.ensemble_suite import N_SHOTS, OAMineEval, crowd_truth_report
    from aisle.evals.report import ensemble_markdown
    from aisle.evals.store import ResultStore
    from aisle.llm import load_chat_model
    from aisle.prompts import fingerprint

    specs = [LabelerSpec.parse(s) for s in labelers.split(",") if s.strip()]
    with aisle_errors():
        crowd = crowd_truth_report(data / "crowd-truth")
        run_key = json.dumps({"prompts": fingerprint("ensemble"), "shots": N_SHOTS},
                             sort_keys=True)
        runner = OAMineEval(data, ResultStore(out.with_suffix(".runs.sqlite")),
                            n_offers=offers, seed=seed, run_key=run_key,
                            offer_concurrency=concurrency)
        if specs and not report_only:
            with named_progress("offers", every=20) as update:
                for spec in specs:
                    model = load_chat_model(spec.model)
                    asyncio.run(runner.run_labeler(spec, model, progress=update))
        oa = runner.report([s.name for s in specs])
    if runner.backend_errors:
        err_console.print(f"[yellow]{len(runner.backend_errors)} offers hit backend errors and "
                          "were not stored; rerun the same command to retry them. First: "
                          f"{runner.backend_errors[0]}", soft_wrap=True)
    if runner.failures:
        err_console.print(f"[yellow]{len(runner.failures)} labeler answers failed validation "
                          f"and count as no answer; first: {runner.failures[0]}",
                          soft_wrap=True)
    result = {"crowd_truth": crowd, "oa_mine": oa,
              "run": {"data": str(data), "labelers": [s.name for s in specs],
                      "offers": len(runner.subset), "seed": seed,
                      "prompts": fingerprint("ensemble"), "shots": N_SHOTS}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(ensemble_markdown(result))
    console.print(out.with_suffix(".md").read_text())
    console.print(f"wrote {out}, {out.with_suffix('.md')}")
