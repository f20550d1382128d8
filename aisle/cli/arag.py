"""`aisle arag recommend|eval`: ARAG from the command line."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from aisle.agents.arag import AGENTS_VERSION
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
    named_progress,
    resumable,
)
from aisle.cli.index import open_index
from aisle.evals.arag_suite import Method
from aisle.settings import get_settings

if TYPE_CHECKING:
    from aisle.evals.runner import Failure

app = typer.Typer(help="ARAG agentic recommendation: rank items for a shopper, evaluate "
                       "it against baselines.", no_args_is_help=True)

LLMRANK = "llmrank-games"
"""ARAG's data: this folder under the data root."""


class NLIModeChoice(StrEnum):
    """`--nli-mode`: how the NLI agent scores a candidate."""

    auto = "auto"
    logprob = "logprob"
    generate = "generate"


class RankerOrder(StrEnum):
    """`--ranker-order`: the order the item ranker sees the candidates in."""

    nli = "nli"
    given = "given"


class Candidates(StrEnum):
    """`--candidates`: the LLMRank retriever files (`Games.<name>`,
    `aisle.evals.llmrank.RETRIEVERS`)."""

    random = "random"
    pop = "pop"
    bpr = "bpr"
    sasrec = "sasrec"
    gru4rec = "gru4rec"


_NLI_MODE: Any = typer.Option(NLIModeChoice.auto, "--nli-mode",
                              help="NLI scoring: logprob (P(yes) from token "
                                   "log-probabilities), generate (a stated score), or auto "
                                   "(logprob where the backend has logprobs).")
_RANKER_ORDER: Any = typer.Option(RankerOrder.nli, "--ranker-order",
                                  help="Order the ranker sees candidates in: nli (by NLI "
                                       "score, best first) or given.")
_ALL_METHODS = ",".join(Method)


def _arag_config(nli_mode: NLIModeChoice, ranker_order: RankerOrder) -> Any:
    from aisle.graphs.arag import ARAGConfig

    return ARAGConfig(nli_mode=nli_mode.value, ranker_order=ranker_order.value)


def parse_methods(text: str) -> tuple[Method, ...]:
    """`--methods`: comma-separated `Method` names, in order, without repeats.

    Raises:
        typer.BadParameter: an unknown name, or none at all.
    """
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in Method.__members__]
    if unknown or not names:
        problem = f"unknown method(s) {', '.join(unknown)}" if unknown else "no methods given"
        raise typer.BadParameter(f"{problem}; choose from {', '.join(Method)}",
                                 param_hint="'--methods'")
    return tuple(dict.fromkeys(Method(m) for m in names))


@app.command("recommend")
def recommend(
    user: str = typer.Option(..., "--user", help="User id in Games-6k.test.inter."),
    data: Path | None = DATA_OPTION,
    candidates: Candidates | None = typer.Option(
        None, "--candidates", show_default=False,
        help="Rank this retriever's 20 candidates (the paper's protocol); default: "
             "retrieve 20 from the catalog index (built on first use)."),
    model: str | None = MODEL_OPTION,
    nli_mode: NLIModeChoice = _NLI_MODE,
    ranker_order: RankerOrder = _RANKER_ORDER,
    as_json: bool = JSON_OPTION,
) -> None:
    """Rank items for one user with ARAG and show each agent's reasoning."""
    from aisle.agents.arag import GAMES
    from aisle.evals.llmrank import DatasetError, load_games
    from aisle.graphs.arag import ARAGContext, build_arag_graph

    folder = data_root(data) / LLMRANK
    spec = model or get_settings().model
    with aisle_errors(), json_stdout(as_json) as emit:
        config = _arag_config(nli_mode, ranker_order)
        games = load_games(folder)
        if user not in games.histories:
            raise DatasetError(f"user id {user!r} is not in {folder / 'Games-6k.test.inter'}; "
                               "pass a user id from that file")
        state: dict[str, Any]
        if candidates is not None:
            (case,) = games.cases(candidates.value, users=[user])
            state = games.arag_input(case, config.max_history)
            context = ARAGContext(model=spec, config=config, domain=GAMES)
        else:
            state = {"user_id": user,
                     "history": games.as_items(games.histories[user][-config.max_history:])}
            context = ARAGContext(model=spec, config=config, domain=GAMES,
                                  retriever=open_index(folder / "Games.item").as_retriever())
        out = asyncio.run(build_arag_graph().ainvoke(state, context=context))
        result = _recommendation(user, spec, state, out, games.targets.get(user), games.items)
        for failure in out.get("failures", []):
            err_console.print(f"[yellow]{failure['agent']} gave no valid answer[/] (ranked "
                              f"without it): {escape(failure['error'])}", soft_wrap=True)
        if out["ranker"].get("repaired"):
            err_console.print(f"(ranker output repaired: {escape(str(out['ranker']))})",
                              soft_wrap=True)
        if as_json:
            emit(result)
            return
    _print_recommendation(result)


def _recommendation(user: str, spec: str, state: dict[str, Any], out: dict[str, Any],
                    target: str | None, titles: dict[str, str]) -> dict[str, Any]:
    """What `arag recommend` shows, as JSON-ready values."""
    scores = {r["item_id"]: r for r in out.get("nli", [])}
    accepted = {a.id for a in out.get("accepted", [])}
    shown = {c["id"]: c["title"] for c in out["candidates"]}
    ranking = [{"rank": pos, "id": item_id, "title": shown.get(item_id, titles.get(item_id)),
                "nli_score": scores.get(item_id, {}).get("score"),
                "nli_rationale": scores.get(item_id, {}).get("rationale"),
                "accepted": item_id in accepted}
               for pos, item_id in enumerate(out["ranking"], 1)]
    held_out = None
    if target is not None:
        held_out = {"id": target, "title": titles.get(target),
                    "rank": out["ranking"].index(target) + 1 if target in out["ranking"]
                    else None}
    return {"user": user, "model": spec, "history": state["history"],
            "user_profile": out.get("user_profile", ""),
            "context_summary": out.get("context_summary", ""), "ranking": ranking,
            "ranker": out.get("ranker", {}), "failures": out.get("failures", []),
            "target": held_out}


def _print_recommendation(result: dict[str, Any]) -> None:
    history = result["history"]
    last = history[-1]["title"] if history else "none"
    console.print(f"[bold]User {escape(result['user'])}[/]: {len(history)} recent items, "
                  f"last: {escape(last)}")
    console.print(f"[bold]User understanding[/]\n{escape(result['user_profile'])}")
    console.print(f"[bold]Context summary[/]\n{escape(result['context_summary'])}")
    table = Table(title="ARAG ranking")
    for col in ("#", "item", "title", "NLI P(yes)", "accepted"):
        table.add_column(col)
    for row in result["ranking"]:
        score = row["nli_score"]
        table.add_row(str(row["rank"]), escape(row["id"]), escape(row["title"] or ""),
                      "failed" if score is None else f"{score:.2f}",
                      "yes" if row["accepted"] else "")
    console.print(table)
    target = result["target"]
    if target is not None and target["rank"] is not None:
        console.print(f"held-out next item {escape(target['id'])} "
                      f"({escape(target['title'] or '')}) ranked #{target['rank']}")


@app.command("eval")
def eval_arag(
    data: Path | None = DATA_OPTION,
    candidates: Candidates = typer.Option(Candidates.random, "--candidates",
                                          help="Candidate lists: the retriever file "
                                               "Games.<NAME> under llmrank-games/."),
    users: int = typer.Option(200, "--users", min=1,
                              help="The first N users of the candidate file (at most "
                                   "as many as it has: 200 in LLMRank Games)."),
    methods: str = typer.Option(_ALL_METHODS, "--methods", show_default=False,
                                help=f"Comma-separated methods, any of: "
                                     f"{', '.join(Method)}. Default: all."),
    model: str | None = MODEL_OPTION,
    nli_mode: NLIModeChoice = _NLI_MODE,
    ranker_order: RankerOrder = _RANKER_ORDER,
    agents_version: int | None = typer.Option(
        None, "--agents-version", min=1, max=AGENTS_VERSION, show_default=False,
        help=f"Agents version whose stored answers to use (default: the code's, "
             f"{AGENTS_VERSION}); an earlier one can only be reported (--report-only)."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Users ranked at once."),
    deterministic: bool = DECODING_OPTION,
    out: Path | None = typer.Option(
        None, "--out", show_default=False,
        help="Results root (default AISLE_HOME/results). Files go under "
             "OUT/arag/<run id>/ (report.json, report.md, report.png); the answers store "
             "is OUT/arag/answers.sqlite. A run never overwrites another run's report."),
    report_only: bool = typer.Option(False, "--report-only",
                                     help="Write the report from stored answers; run nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """ARAG and its baselines on the LLMRank Games protocol; resumable (Ctrl-C keeps the
    stored answers; rerun the same command to continue)."""
    from aisle.evals.arag_suite import ARAGEvalConfig, ARAGSuite
    from aisle.evals.llmrank import load_games
    from aisle.evals.runner import EvalRunner

    chosen = parse_methods(methods)
    settings = get_settings()
    root = out if out is not None else settings.home / "results"
    with aisle_errors(), json_stdout(as_json) as emit:
        config = ARAGEvalConfig(
            data=data_root(data) / LLMRANK, retriever=candidates.value, n_users=users,
            methods=chosen, model=model or settings.model,
            arag=_arag_config(nli_mode, ranker_order),
            agents_version=agents_version or AGENTS_VERSION, concurrency=concurrency,
            deterministic=deterministic)
        EvalRunner.check_writable(root)
        suite = ARAGSuite(config, load_games(config.data))
        # A missing candidate file or unknown user fails here, before any work; so does
        # asking for more users than the file has (a silent cap would report fewer).
        available = len(suite.cases())
        if available < users:
            fail(f"--users {users} is more than the {available} users in "
                 f"{config.data / f'Games.{candidates.value}'}; pass --users {available} "
                 "or fewer")
        runner = EvalRunner(suite, root)
        failures: list[Failure] = []
        if not report_only:
            suite.check_runnable()
            if Method.recency in chosen or Method.embedding in chosen:
                suite.index = open_index(config.data / "Games.item")
            with resumable(f"the answers stored in {runner.paths.store}"), \
                    named_progress("users", log=runner.paths.progress_log) as update:
                failures = asyncio.run(runner.run(progress=update)).failures
        _warn_failures(failures)
        report = runner.report()
        if report["users_scored"] == 0:
            if report_only:
                fail(f"no answers are stored for this run under {runner.paths.store} "
                     "(key: this model, modes, agents version and prompts); run without "
                     "--report-only to compute them")
            fail("no user was scored by every method; rerun the same command to retry "
                 "the failures")
        files = runner.write(report)
        if as_json:
            emit({"report": report, "files": [str(f) for f in files],
                  "failures": [asdict(f) for f in failures]})
            return
    table = Table(title=suite.title(report))
    for col in ("method", "users", "NDCG@5", "Hit@5", "NDCG@10"):
        table.add_column(col)
    for method, m in report["metrics"].items():
        table.add_row(method, str(m["n_users"]), f"{m['ndcg@5']:.4f}", f"{m['hit@5']:.4f}",
                      f"{m['ndcg@10']:.4f}")
    console.print(table)
    console.print("wrote " + ", ".join(str(f) for f in files), soft_wrap=True)


def _warn_failures(failures: list[Failure]) -> None:
    if failures:
        first = failures[0]
        err_console.print(f"[yellow]{len(failures)} (method, user) runs failed and were not "
                          f"stored; rerun the same command to retry them.[/] First: "
                          f"{escape(first.task)} on user {escape(first.case)}: "
                          f"{escape(first.error)}", soft_wrap=True)
