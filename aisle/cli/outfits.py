"""`aisle outfits plan|eval`: character-based outfit planning (LVA-COG)."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from aisle.cli._common import (
    DATA_OPTION,
    DECODING_OPTION,
    JSON_OPTION,
    MODEL_OPTION,
    aisle_errors,
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
    from aisle.evals.runner import Failure

app = typer.Typer(help="Character-based outfit planning (LVA-COG): character profile -> "
                       "stylist -> per-slot catalog retrieval -> critic -> a text-to-image "
                       "prompt (POAC).", no_args_is_help=True)


class Age(StrEnum):
    """The wearer's age group."""

    child = "child"
    teen = "teen"
    adult = "adult"
    senior = "senior"


class Gender(StrEnum):
    """The wearer's gender (the catalog's departments are women's and men's)."""

    female = "female"
    male = "male"


@app.command("plan")
def plan_cmd(
    character: str = typer.Option(..., "--character", "-c", show_default=False,
                                  help='The character, e.g. "Sherlock Holmes".'),
    age: Age = typer.Option(Age.adult, "--age", help="The wearer's age group."),
    gender: Gender = typer.Option(..., "--gender", show_default=False,
                                  help="The wearer's gender."),
    styles: int = typer.Option(1, "--styles", min=1, max=5,
                               help="Outfits in distinct style directions (diverse-style "
                                    "mode from 2); repeats are dropped."),
    revisions: int = typer.Option(1, "--revisions", min=0, max=5,
                                  help="The most times the critic sends an outfit back."),
    note: str | None = typer.Option(None, "--note", show_default=False,
                                    help="A hint about the character (era, source)."),
    model: str | None = MODEL_OPTION,
    data: Path | None = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Plan an outfit that evokes a character, from the clothing catalog
    (DATA/bundles/clothing). Every item printed is a catalog item; a slot the catalog
    has nothing for is listed as missing. The image step runs only where an image
    endpoint is configured (AISLE_IMAGE_BASE_URL, AISLE_IMAGE_MODEL; AISLE_VLM_MODEL for
    the vision-enhanced round); otherwise the result says it was skipped."""
    from aisle.graphs.outfits import (
        OutfitsConfig,
        OutfitsContext,
        build_outfits_graph,
        validate_input,
    )

    with aisle_errors(), json_stdout(as_json) as emit:
        state: dict[str, Any] = {"character": character, "gender": gender.value,
                                 "age": age.value,
                                 "note": note, "styles": styles}
        validate_input(state)  # type: ignore[arg-type]
        catalog = data_root(data) / "bundles" / "clothing"
        context = OutfitsContext(model=model, catalog=str(catalog),
                                 config=OutfitsConfig(styles=styles,
                                                      max_revisions=revisions))
        out = asyncio.run(build_outfits_graph().ainvoke(state, context=context))
        result = out["result"]
        if as_json:
            emit({**result, "failures": out.get("failures", [])})
            return
    _print_plan(result, out.get("failures", []))


def _print_plan(result: dict[str, Any], failures: list[dict[str, Any]]) -> None:
    from aisle.agents.outfits import Wearer

    age, noun = Wearer.words(result["wearer"]["gender"], result["wearer"]["age"])
    console.print(f"[bold]{escape(result['character'])}[/] for {age} {noun}", soft_wrap=True)
    if not result["outfits"]:
        err_console.print("[yellow]no outfit:[/] every style failed (see failures below)")
    for outfit in result["outfits"]:
        head = f"style {outfit['style_index'] + 1}"
        if outfit.get("style"):
            head += f": {outfit['style']}"
        console.print(f"\n[bold]{escape(head)}[/]", soft_wrap=True)
        for item in outfit["items"]:
            found = (f"{escape(item['title'])} [dim](id {escape(item['item_id'])})[/]"
                     if item["item_id"] else "[yellow]nothing in the catalog[/]")
            console.print(f"  {item['slot']:<10} {found}\n"
                          f"  {'':<10} [dim]planned: {escape(item['garment'])}; expresses: "
                          f"{escape(item['trait'])}[/]", soft_wrap=True, highlight=False)
        if outfit["missing"]:
            console.print(f"  [yellow]missing:[/] {escape(', '.join(outfit['missing']))}",
                          soft_wrap=True)
        critique = outfit.get("critique")
        if critique:
            console.print(f"  critic: faithfulness {critique['faithfulness']}/5, coherence "
                          f"{critique['coherence']}/5, wearability {critique['wearability']}"
                          f"/5 - {escape(critique['feedback'])}", soft_wrap=True)
    for outfit in result.get("dropped", []):
        why = "failed" if outfit["status"] == "failed" else "too close to a kept style"
        console.print(f"[dim]style {outfit['style_index'] + 1} dropped: {why}[/]")
    if result.get("image_prompt"):
        console.print(f"\n[bold]image prompt:[/] {escape(result['image_prompt']['prompt'])}",
                      soft_wrap=True)
    image = result.get("image") or {}
    console.print(f"[bold]image:[/] {image.get('status')}"
                  + (f" - {escape(str(image.get('reason')))}" if image.get("reason") else ""),
                  soft_wrap=True)
    for f in failures:
        err_console.print(f"  [yellow]{escape(f['agent'])} failed[/] (style {f['style']}): "
                          f"{escape(f['error'][:120])}", soft_wrap=True)


class EvalVariant(StrEnum):
    baseline = "baseline"
    graph = "graph"
    diverse = "diverse"


@app.command("eval")
def eval_cmd(
    characters: Path | None = typer.Option(
        None, "--characters", show_default=False,
        help="A characters file (YAML, the shape of evals/outfits_characters.yaml); "
             "default: the shipped one."),
    data: Path | None = DATA_OPTION,
    limit: int | None = typer.Option(None, "--limit", min=1, show_default=False,
                                     help="The first N characters only (each with its "
                                          "gender-swapped twin)."),
    model: str = typer.Option("local:qwen2.5-coder-0.5b", "--model", "-m",
                              help="The model under test."),
    judge: str | None = typer.Option(
        None, "--judge", show_default=False,
        help="The pairwise judge's model (default: the same spec as --model; give "
             "another where one is available)."),
    variants: list[EvalVariant] | None = typer.Option(
        None, "--variant", show_default=False,
        help="A variant to run; repeat for several. Default: baseline, graph, diverse."),
    styles: int = typer.Option(3, "--styles", min=2, max=5,
                               help="The diverse variant's style directions."),
    revisions: int = typer.Option(1, "--revisions", min=0, max=5,
                                  help="The critic's bound."),
    deterministic: bool = DECODING_OPTION,
    concurrency: int = typer.Option(1, "--concurrency", min=1,
                                    help="Characters at once (not part of any key)."),
    out: Path | None = results_root_option("outfits", "report.json, report.md"),
    report_only: bool = REPORT_ONLY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Baseline, graph and diverse-style outfits for each character and its
    gender-swapped twin: slot completeness, category and wearer consistency of the
    retrieved items, a pairwise judge in both orders, diversity among styles, and the
    bias audit; 95% intervals. Resumable (Ctrl-C keeps the stored answers; rerun the
    same command to continue)."""
    from aisle.evals.outfits_suite import OutfitsEvalConfig, OutfitsSuite, Variant
    from aisle.evals.runner import EvalRunner

    root = out if out is not None else get_settings().home / "results"
    chosen = tuple(Variant(v.value) for v in dict.fromkeys(variants or list(EvalVariant)))
    with aisle_errors(), json_stdout(as_json) as emit:
        config = OutfitsEvalConfig(
            data=data_root(data), characters=characters, limit=limit, model=model,
            judge=judge or model, variants=chosen, styles=styles, max_revisions=revisions,
            deterministic=deterministic, concurrency=concurrency)
        EvalRunner.check_writable(root)
        suite = OutfitsSuite(config)
        runner = EvalRunner(suite, root)
        failures: list[Failure] = []
        if report_only:
            if not any(runner.answers().values()):
                fail(f"no answers are stored for this run under {runner.paths.store}; run "
                     "without --report-only to compute them")
        else:
            failures = compute_answers(runner, "characters", every=2)
        warn_failures(failures, "(task, character)")
        report = runner.report()
        files = write_report(runner, report, failures, emit if as_json else None)
        if as_json:
            return
    console.print(suite.markdown(report), markup=False, highlight=False)
    console.print("wrote " + ", ".join(str(f) for f in files), soft_wrap=True)
