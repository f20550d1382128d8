"""`aisle arag recommend|eval`: ARAG from the command line."""

from __future__ import annotations

import asyncio
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
    resumable,
)
from aisle.cli._eval import (
    REPORT_ONLY_OPTION,
    compute_answers,
    results_root_option,
    warn_failures,
    write_report,
)
from aisle.cli.index import open_index
from aisle.evals.arag_suite import Method
from aisle.settings import get_settings
from aisle.tools.recommenders.config import ModelKind

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
    recommender = "recommender"


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
                                       "score, best first), given, or recommender (by the "
                                       "--recommender's score).")
_RECOMMENDER: Any = typer.Option(
    None, "--recommender", show_default=False,
    help="A trained recommender beside the agents: its score and rank of each candidate go "
         "on the blackboard and into the NLI and ranker prompts, and the final order fuses "
         "its order with the agents' (weighted reciprocal-rank fusion). Trained on the "
         "LLMRank Games split on first use (kept under AISLE_HOME/rec/).")
_ALL_METHODS = ",".join(m for m in Method if m != Method.recommender)


def _arag_config(nli_mode: NLIModeChoice, ranker_order: RankerOrder,
                 recommender: ModelKind | None = None,
                 fusion: str | None = None) -> Any:
    from aisle.agents.arag import FusionWeights
    from aisle.graphs.arag import ARAGConfig

    if ranker_order == RankerOrder.recommender and recommender is None:
        raise typer.BadParameter("--ranker-order recommender needs --recommender",
                                 param_hint="'--ranker-order'")
    weights = FusionWeights()
    if fusion is not None:
        if recommender is None:
            raise typer.BadParameter("--fusion-weights needs --recommender",
                                     param_hint="'--fusion-weights'")
        weights = _fusion_weights(fusion)
    return ARAGConfig(nli_mode=nli_mode.value, ranker_order=ranker_order.value,
                      fusion=weights)


def _fusion_weights(text: str) -> Any:
    """`--fusion-weights R,N,K`: the recommender's, the NLI agent's and the ranker's."""
    from pydantic import ValidationError

    from aisle.agents.arag import FusionWeights

    parts = [p.strip() for p in text.split(",")]
    try:
        rec, nli, ranker = (float(p) for p in parts)
        return FusionWeights(recommender=rec, nli=nli, ranker=ranker)
    except (ValueError, ValidationError) as e:
        detail = e.errors()[0]["msg"] if isinstance(e, ValidationError) else \
            "expected three numbers"
        raise typer.BadParameter(f"{text!r}: {detail} (recommender,nli,ranker, e.g. "
                                 "0.5,0.2,0.3)", param_hint="'--fusion-weights'") from e


def _games_recommender(games: Any, kind: ModelKind) -> Any:
    """The Games recommender of `kind`, trained now (with progress) if it is not yet."""
    from aisle.cli.rec import _TrainProgress
    from aisle.evals.arag_suite import games_recommender, games_recommender_folder
    from aisle.tools.recommenders.training import model_file

    folder = games_recommender_folder(games, kind)
    if not model_file(folder, kind).is_file():
        err_console.print(f"no trained {kind.value} for LLMRank Games yet: training it now "
                          f"(kept in {folder}; Ctrl-C keeps the finished epochs, rerun to "
                          "resume)", soft_wrap=True)
        folder.mkdir(parents=True, exist_ok=True)
    with resumable(f"the finished epochs in {folder}"), \
            _TrainProgress(kind.value, folder / "train.log") as progress:
        return games_recommender(games, kind, progress=progress)


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
    recommender: ModelKind | None = _RECOMMENDER,
    fusion_weights: str | None = typer.Option(
        None, "--fusion-weights", show_default=False,
        help="With --recommender: the weights of the recommender's, the NLI agent's and "
             "the ranker's orders in the fusion, as R,N,K (default 1,1,1; `aisle arag eval "
             "--recommender` reports fitted ones)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Rank items for one user with ARAG and show each agent's reasoning. With
    --recommender and no --candidates, the recommender supplies the 20 candidates."""
    from aisle.agents.arag import GAMES
    from aisle.evals.llmrank import DatasetError, load_games
    from aisle.graphs.arag import ARAGContext, build_arag_graph

    folder = data_root(data) / LLMRANK
    spec = model or get_settings().model
    with aisle_errors(), json_stdout(as_json) as emit:
        config = _arag_config(nli_mode, ranker_order, recommender, fusion_weights)
        games = load_games(folder)
        if user not in games.histories:
            raise DatasetError(f"user id {user!r} is not in {folder / 'Games-6k.test.inter'}; "
                               "pass a user id from that file")
        rec = _games_recommender(games, recommender).model if recommender else None
        state: dict[str, Any]
        if candidates is not None:
            (case,) = games.cases(candidates.value, users=[user])
            state = games.arag_input(case, config.max_history)
            context = ARAGContext(model=spec, config=config, domain=GAMES,
                                  recommender_model=rec)
        elif rec is not None:
            # The recommender's top 20 over the catalog, titled from the item file.
            history = games.histories[user]
            top = rec.recommend(list(history), config.n_candidates, exclude=list(history))
            state = {"user_id": user,
                     "history": games.as_items(history[-config.max_history:]),
                     "candidates": games.as_items([r.item_id for r in top])}
            context = ARAGContext(model=spec, config=config, domain=GAMES,
                                  recommender_model=rec)
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
    recs = {r["item_id"]: r for r in out.get("recommender", [])}
    accepted = {a.id for a in out.get("accepted", [])}
    shown = {c["id"]: c["title"] for c in out["candidates"]}
    ranking = [{"rank": pos, "id": item_id, "title": shown.get(item_id, titles.get(item_id)),
                "nli_score": scores.get(item_id, {}).get("score"),
                "nli_rationale": scores.get(item_id, {}).get("rationale"),
                "accepted": item_id in accepted,
                **({"recommender_rank": recs[item_id]["rank"],
                    "recommender_score": recs[item_id]["score"]} if item_id in recs else {})}
               for pos, item_id in enumerate(out["ranking"], 1)]
    held_out = None
    if target is not None:
        held_out = {"id": target, "title": titles.get(target),
                    "rank": out["ranking"].index(target) + 1 if target in out["ranking"]
                    else None}
    return {"user": user, "model": spec, "history": state["history"],
            "user_profile": out.get("user_profile", ""),
            "context_summary": out.get("context_summary", ""), "ranking": ranking,
            "ranker": out.get("ranker", {}), "fusion": out.get("fusion"),
            "failures": out.get("failures", []), "target": held_out}


def _print_recommendation(result: dict[str, Any]) -> None:
    history = result["history"]
    last = history[-1]["title"] if history else "none"
    console.print(f"[bold]User {escape(result['user'])}[/]: {len(history)} recent items, "
                  f"last: {escape(last)}")
    console.print(f"[bold]User understanding[/]\n{escape(result['user_profile'])}")
    console.print(f"[bold]Context summary[/]\n{escape(result['context_summary'])}")
    fused = result.get("fusion") is not None
    table = Table(title="ARAG ranking" + (" (fused with the recommender)" if fused else ""))
    for col in ("#", "item", "title", "NLI P(yes)", "accepted",
                *(("recommender rank", "ranker rank") if fused else ())):
        table.add_column(col)
    ranker_ranks = ({i: n for n, i in enumerate(result["ranker"]["ranking"], 1)}
                    if fused else {})
    for row in result["ranking"]:
        score = row["nli_score"]
        extra = ((str(row.get("recommender_rank") or "-"), str(ranker_ranks.get(row["id"])))
                 if fused else ())
        table.add_row(str(row["rank"]), escape(row["id"]), escape(row["title"] or ""),
                      "failed" if score is None else f"{score:.2f}",
                      "yes" if row["accepted"] else "", *extra)
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
                                     f"{', '.join(Method)}. Default: all (recommender "
                                     "only with --recommender)."),
    model: str | None = MODEL_OPTION,
    nli_mode: NLIModeChoice = _NLI_MODE,
    ranker_order: RankerOrder = _RANKER_ORDER,
    agents_version: int | None = typer.Option(
        None, "--agents-version", min=1, max=AGENTS_VERSION, show_default=False,
        help=f"Agents version whose stored answers to use (default: the code's, "
             f"{AGENTS_VERSION}); an earlier one can only be reported (--report-only)."),
    recommender: ModelKind | None = _RECOMMENDER,
    valid_users: int = typer.Option(
        30, "--valid-users", min=1,
        help="With --recommender: validation users (not test users) ARAG also runs on, to "
             "fit the fusion weights; they never count in the test metrics."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Users ranked at once."),
    deterministic: bool = DECODING_OPTION,
    out: Path | None = results_root_option("arag"),
    report_only: bool = REPORT_ONLY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """ARAG and its baselines on the LLMRank Games protocol; resumable (Ctrl-C keeps the
    stored answers; rerun the same command to continue)."""
    from aisle.evals.arag_suite import ARAGEvalConfig, ARAGSuite
    from aisle.evals.llmrank import load_games
    from aisle.evals.runner import EvalRunner

    chosen = parse_methods(methods)
    if recommender is not None and Method.recommender not in chosen and methods == _ALL_METHODS:
        chosen = (*chosen, Method.recommender)
    if Method.recommender in chosen and recommender is None:
        raise typer.BadParameter("the recommender method needs --recommender",
                                 param_hint="'--methods'")
    settings = get_settings()
    root = out if out is not None else settings.home / "results"
    with aisle_errors(), json_stdout(as_json) as emit:
        config = ARAGEvalConfig(
            data=data_root(data) / LLMRANK, retriever=candidates.value, n_users=users,
            methods=chosen, model=model or settings.model,
            arag=_arag_config(nli_mode, ranker_order, recommender),
            agents_version=agents_version or AGENTS_VERSION, concurrency=concurrency,
            deterministic=deterministic,
            recommender=recommender.value if recommender else None, valid_users=valid_users)
        EvalRunner.check_writable(root)
        games = load_games(config.data)
        # A missing candidate file or unknown user fails here, before any work; so does
        # asking for more users than the file has (a silent cap would report fewer).
        available = len(ARAGSuite(config, games).test_cases())
        if available < users:
            fail(f"--users {users} is more than the {available} users in "
                 f"{config.data / f'Games.{candidates.value}'}; pass --users {available} "
                 "or fewer")
        # A report from stored answers needs no trained model (its key names the folder).
        trained = (_games_recommender(games, recommender) if recommender and not report_only
                   else None)
        suite = ARAGSuite(config, games, recommender=trained)
        runner = EvalRunner(suite, root)
        failures: list[Failure] = []
        if not report_only:
            suite.check_runnable()
            if Method.recency in chosen or Method.embedding in chosen:
                suite.index = open_index(config.data / "Games.item")
            failures = compute_answers(runner, "users")
        warn_failures(failures, "(method, user)", "user")
        report = runner.report()
        if report["users_scored"] == 0:
            if report_only:
                fail(f"no answers are stored for this run under {runner.paths.store} "
                     "(key: this model, modes, agents version and prompts); run without "
                     "--report-only to compute them")
            fail("no user was scored by every method; rerun the same command to retry "
                 "the failures")
        files = write_report(runner, report, failures, emit if as_json else None)
        if as_json:
            return
    table = Table(title=suite.title(report))
    for col in ("method", "users", "NDCG@5", "Hit@5", "NDCG@10"):
        table.add_column(col)
    for method, m in report["metrics"].items():
        table.add_row(method, str(m["n_users"]), f"{m['ndcg@5']:.4f}", f"{m['hit@5']:.4f}",
                      f"{m['ndcg@10']:.4f}")
    console.print(table)
    console.print("wrote " + ", ".join(str(f) for f in files), soft_wrap=True)

