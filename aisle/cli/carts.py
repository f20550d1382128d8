"""`aisle carts title|eval`: carousel titles by generate, refine and arbitrate (CARTS)."""

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

app = typer.Typer(help="Carousel titles (CARTS): features -> candidates -> a refinement "
                       "circle with a hard length limit -> arbiters' vote.",
                  no_args_is_help=True)


class BundleDomain(StrEnum):
    """The bundle datasets under `bundles/`."""

    electronic = "electronic"
    clothing = "clothing"


class EvalMethod(StrEnum):
    single_pass = "single_pass"
    chain_of_thought = "chain_of_thought"
    carts = "carts"


_MAX_WORDS: Any = typer.Option(None, "--max-words", show_default=False,
                               help="Word limit of the title (every whitespace-separated "
                                    "token counts); give it and/or --max-chars.")
_MAX_CHARS: Any = typer.Option(None, "--max-chars", show_default=False,
                               help="Character limit of the title.")
_ROUNDS: Any = typer.Option(2, "--rounds", min=0, max=10,
                            help="The most refinement rounds.")
_CANDIDATES: Any = typer.Option(3, "--candidates", min=1, max=8,
                                help="Candidate titles the generator writes.")


@app.command("title", context_settings={"allow_extra_args": True})
def title_cmd(
    ctx: typer.Context,
    items: list[str] = typer.Option(..., "--items", show_default=False,
                                    help='The carousel\'s item titles: --items "title one" '
                                         '"title two" ...'),
    max_words: int | None = _MAX_WORDS,
    max_chars: int | None = _MAX_CHARS,
    model: str | None = MODEL_OPTION,
    rounds: int = _ROUNDS,
    candidates: int = _CANDIDATES,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write one carousel title for the items, within the limit. A title over the limit
    is never printed: when no candidate meets it, `satisfied` is false, `title` null,
    and `reason` says why (exit code 2)."""
    from aisle.graphs.carts import CartsConfig, CartsContext, build_carts_graph, validate_input

    items = [*items, *ctx.args]
    with aisle_errors(), json_stdout(as_json) as emit:
        validate_input({"items": items, "max_words": max_words, "max_chars": max_chars})
        context = CartsContext(model=model, config=CartsConfig(max_rounds=rounds,
                                                               n_candidates=candidates))
        state = asyncio.run(build_carts_graph().ainvoke(
            {"items": items, "max_words": max_words, "max_chars": max_chars},
            context=context))
        result = state["result"]
        out = {"title": result["title"], "words": result["words"], "chars": result["chars"],
               "coverage": result["coverage"], "covered": result["covered"],
               "rounds": result["rounds"], "satisfied": result["satisfied"],
               "reason": result["reason"]}
        if as_json:
            emit(out)
        else:
            _print_title(state)
    if not result["satisfied"]:
        raise typer.Exit(2)


def _print_title(state: dict[str, Any]) -> None:
    result = state["result"]
    if result["satisfied"]:
        cov = "" if result["coverage"] is None else f" = {result['coverage']:.0%}"
        console.print(f"[bold]{escape(result['title'])}[/]  ({result['words']} words, "
                      f"{result['chars']} chars; fits items {result['covered'] or '-'}{cov}; "
                      f"{result['rounds']} refinement round(s))", soft_wrap=True)
    else:
        err_console.print(f"[yellow]no title:[/] {escape(result['reason'] or '')}",
                          soft_wrap=True)
    for c in state.get("candidates", []):
        trail = " -> ".join(_version_text(v) for v in c["versions"])
        console.print(f"  candidate {c['id']}: {trail}", soft_wrap=True, highlight=False)
    for f in state.get("failures", []):
        err_console.print(f"  [yellow]{escape(f['agent'])} failed[/] (round {f['round']}): "
                          f"{escape(f['error'][:120])}", soft_wrap=True)


def _version_text(v: dict[str, Any]) -> str:
    over = "" if v["within_limit"] else " OVER"
    cov = "" if v["coverage"] is None else f", {v['coverage']:.0%}"
    return f"{escape(v['title'])} [{v['words']}w{over}{cov}]"


@app.command("eval")
def eval_cmd(
    data: Path | None = DATA_OPTION,
    domain: BundleDomain = typer.Option(..., "--domain", help="The bundle dataset."),
    bundles: int = typer.Option(100, "--bundles", min=1,
                                help="A fixed random sample of this many named bundles."),
    seed: int = typer.Option(2025, "--seed", help="The sample's seed."),
    max_words: int | None = typer.Option(5, "--max-words", help="Word limit of the titles."),
    max_chars: int | None = _MAX_CHARS,
    model: str = typer.Option("local:qwen2.5-coder-0.5b", "--model", "-m",
                              help="The model under test."),
    judge: str | None = typer.Option(
        None, "--judge-model", show_default=False,
        help="The LLM coverage judge's model (default: the same spec as --model; give "
             "another where one is available)."),
    methods: list[EvalMethod] | None = typer.Option(
        None, "--method", show_default=False,
        help="A method to run; repeat for several. Default: single_pass, "
             "chain_of_thought, carts."),
    rounds: int = _ROUNDS,
    candidates: int = _CANDIDATES,
    deterministic: bool = DECODING_OPTION,
    concurrency: int = typer.Option(1, "--concurrency", min=1,
                                    help="Bundles at once (with --batched the local server "
                                         "decodes them together; not part of any key)."),
    out: Path | None = results_root_option("carts"),
    report_only: bool = REPORT_ONLY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Single pass, chain of thought and CARTS on named bundles: length compliance, item
    coverage by an embedding judge and an LLM judge, similarity to the human name, cost;
    95% intervals and paired comparisons. Resumable (Ctrl-C keeps the stored answers;
    rerun the same command to continue)."""
    from aisle.evals.carts_suite import CartsEvalConfig, CartsSuite, Method
    from aisle.evals.runner import EvalRunner
    from aisle.graphs.carts import CartsConfig

    root = out if out is not None else get_settings().home / "results"
    chosen = tuple(Method(m.value) for m in dict.fromkeys(methods or list(EvalMethod)))
    with aisle_errors(), json_stdout(as_json) as emit:
        config = CartsEvalConfig(
            data=data_root(data), domain=domain.value, n_bundles=bundles, seed=seed,
            max_words=max_words, max_chars=max_chars, model=model, judge=judge or model,
            methods=chosen, deterministic=deterministic, concurrency=concurrency,
            carts=CartsConfig(max_rounds=rounds, n_candidates=candidates))
        EvalRunner.check_writable(root)
        suite = CartsSuite(config)
        if bundles > len(suite.sample):
            fail(f"--bundles {bundles} is more than the {len(suite.sample)} named "
                 f"{domain.value} bundles; pass --bundles {len(suite.sample)} or fewer")
        runner = EvalRunner(suite, root)
        failures: list[Failure] = []
        if report_only:
            empty = [t for t, stored in runner.answers().items() if not stored]
            if len(empty) == len(runner.answers()):
                fail(f"no answers are stored for this run under {runner.paths.store}; run "
                     "without --report-only to compute them")
        else:
            failures = compute_answers(runner, "bundles", every=5)
        warn_failures(failures, "(task, bundle)", "bundle")
        report = runner.report()
        files = write_report(runner, report, failures, emit if as_json else None)
        if as_json:
            return
    console.print(suite.markdown(report), markup=False, highlight=False)
    console.print("wrote " + ", ".join(str(f) for f in files), soft_wrap=True)
