"""`aisle index`, `aisle eval arag` and `aisle recommend`: ARAG from the command line."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from aisle.cli._common import (
    aisle_errors,
    console,
    count_progress,
    err_console,
    fail,
    named_progress,
)
from aisle.prompts import fingerprint
from aisle.settings import get_settings

if TYPE_CHECKING:
    from aisle.graphs.arag import ARAGConfig

eval_app = typer.Typer(help="Run eval suites.", no_args_is_help=True)

# Shared by `eval arag` and `recommend`; checked by `_arag_config`.
_NLI_MODE = typer.Option("auto", help="auto, logprob or generate.")
_RANKER_ORDER = typer.Option("nli", help="Order the ranker sees candidates in: nli (by NLI "
                                         "score) or given.")


def _arag_config(nli_mode: str, ranker_order: str) -> ARAGConfig:
    """ARAG's config from the CLI's mode options; an unknown value is a clear error."""
    from aisle.graphs.arag import ARAGConfig

    if nli_mode not in {"auto", "logprob", "generate"}:
        fail(f"--nli-mode must be auto, logprob or generate, not {nli_mode!r}")
    if ranker_order not in {"nli", "given"}:
        fail(f"--ranker-order must be nli or given, not {ranker_order!r}")
    return ARAGConfig(nli_mode=nli_mode, ranker_order=ranker_order)  # type: ignore[arg-type]


def read_item_file(path: Path) -> dict[str, str]:
    """`item_id<TAB>title` lines; an LLMRank header line (`item_id:token ...`) is skipped."""
    if not path.is_file():
        fail(f"item file not found: {path}")
    items: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or (lineno == 1 and ":token" in line):
            continue
        item_id, sep, title = line.partition("\t")
        if not sep:
            fail(f"{path}:{lineno}: expected 'item_id<TAB>title', got {line[:80]!r}")
        items[item_id.strip()] = title.strip()
    if not items:
        fail(f"no items in {path}")
    return items


def open_index(item_file: Path, index_dir: Path | None = None) -> Any:
    """The catalog index for an item file, built (with a progress bar) if incomplete."""
    from aisle.tools.retrieval import CatalogIndex

    items = read_item_file(item_file)
    digest = hashlib.sha256(item_file.read_bytes()).hexdigest()[:12]
    path = index_dir or get_settings().home / "index" / f"{item_file.stem}-{digest}"
    index = CatalogIndex(path)
    if index.count() < len(items):
        with count_progress() as progress:
            task = progress.add_task(f"embedding {item_file.name}", total=len(items))
            index.add(items, progress=lambda done, total: progress.update(
                task, completed=len(items) - total + done))
    return index


def index(
    items: Path = typer.Option(..., "--items", help="Item file: item_id<TAB>title per line."),
    out: Path | None = typer.Option(None, "--out", help="Index folder (default under AISLE_HOME)."),
) -> None:
    """Build a chromadb catalog index (all-MiniLM-L6-v2 embeddings) from an item file."""
    with aisle_errors():
        idx = open_index(items, out)
    console.print(f"[green]index ready[/] {idx.path} ({idx.count()} items)")


@eval_app.command("arag")
def eval_arag(
    data: Path = typer.Option(..., "--data", help="LLMRank Games folder."),
    candidates: str = typer.Option("random", "--candidates", help="Retriever file suffix."),
    users: int = typer.Option(200, "--users", help="First N users of the candidate file."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model spec."),
    out: Path = typer.Option(..., "--out", help="Result JSON (markdown and PNG go beside it)."),
    methods: str = typer.Option(",".join(["random", "popularity", "recency", "embedding",
                                          "vanilla_rag", "arag_no_nli", "arag"]),
                                help="Comma-separated methods."),
    nli_mode: str = _NLI_MODE,
    ranker_order: str = _RANKER_ORDER,
    concurrency: int = typer.Option(2, help="Users ranked at once."),
    report_only: bool = typer.Option(False, "--report-only",
                                     help="Write the report from stored results; run nothing."),
) -> None:
    """ARAG and its baselines on the LLMRank protocol; resumable (rerun to continue)."""
    from aisle.agents.arag import AGENTS_VERSION
    from aisle.evals.arag_suite import LLM_METHODS, METHODS, ARAGEval, EvalSettings, ResultStore
    from aisle.evals.llmrank import load_games
    from aisle.evals.report import ranking_chart, ranking_markdown
    from aisle.llm import load_chat_model

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        fail(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    arag_config = _arag_config(nli_mode, ranker_order)
    with aisle_errors():
        games = load_games(data)
        cases = games.cases(candidates, n_users=users)
        idx = open_index(data / "Games.item")
        needs_llm = any(m in LLM_METHODS for m in chosen) and not report_only
        llm = load_chat_model(model) if needs_llm else None
        spec = model or get_settings().model
        settings = EvalSettings(retriever=candidates, n_users=users, methods=chosen,
                                user_concurrency=concurrency,
                                arag=arag_config)
        run_key = json.dumps({"model": spec, "retriever": candidates, "nli_mode": nli_mode,
                              "ranker_order": ranker_order,
                              "max_history": settings.max_history,
                              "prompts": fingerprint("arag"), "agents": AGENTS_VERSION},
                             sort_keys=True)
        store = ResultStore(out.with_suffix(".runs.sqlite"))
        runner = ARAGEval(games, idx, llm, settings, store, run_key)
        with named_progress("users") as update:
            if not report_only:
                asyncio.run(runner.run(cases, progress=update))
        if runner.failures:
            err_console.print(f"[yellow]{len(runner.failures)} (method, user) runs failed and "
                              f"were not stored; rerun the same command to retry them. "
                              f"First: {runner.failures[0]}", soft_wrap=True)
        result = runner.report(cases)
        result["run"] = {"data": str(data), "candidates": candidates, "users_asked": len(cases),
                         "users_scored": min((m["n_users"] for m in result["metrics"].values()),
                                             default=0),
                         "model": spec, "nli_mode": nli_mode, "ranker_order": ranker_order,
                         "methods": list(chosen),
                         "prompts": fingerprint("arag"), "agents": AGENTS_VERSION,
                         "max_history": settings.max_history}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    scored = result["run"]["users_scored"]
    title = f"ARAG on LLMRank Games ({candidates} candidates, {scored} users, {spec})"
    out.with_suffix(".md").write_text(ranking_markdown(result, title))
    ranking_chart(result, out.with_suffix(".png"), title)
    table = Table(title=title)
    for col in ("method", "users", "NDCG@5", "Hit@5", "NDCG@10"):
        table.add_column(col)
    for method, m in result["metrics"].items():
        table.add_row(method, str(m["n_users"]), f"{m['ndcg@5']:.4f}", f"{m['hit@5']:.4f}",
                      f"{m['ndcg@10']:.4f}")
    console.print(table)
    console.print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")


def recommend(
    user: str = typer.Option(..., "--user", help="User id in Games-6k.test.inter."),
    data: Path = typer.Option(..., "--data", help="LLMRank Games folder."),
    candidates: str | None = typer.Option(None, "--candidates",
                                          help="Retriever file suffix; else retrieve 20."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model spec."),
    nli_mode: str = _NLI_MODE,
    ranker_order: str = _RANKER_ORDER,
) -> None:
    """Rank items for one user with ARAG and show each agent's reasoning."""
    from aisle.evals.llmrank import DatasetError, load_games
    from aisle.graphs.arag import ARAGContext, build_arag_graph
    from aisle.llm import load_chat_model

    config = _arag_config(nli_mode, ranker_order)
    with aisle_errors():
        games = load_games(data)
        if user not in games.histories:
            raise DatasetError(f"user id {user!r} is not in {data / 'Games-6k.test.inter'}")
        history = [{"id": i, "title": games.title(i)} for i in games.histories[user][-20:]]
        state: dict[str, Any] = {"user_id": user, "history": history}
        ctx = ARAGContext(model=load_chat_model(model), config=config)
        if candidates:
            (case,) = games.cases(candidates, users=[user])
            state["candidates"] = [{"id": i, "title": games.title(i)} for i in case.candidates]
        else:  # retrieve 20 from the catalog index (built on first use)
            ctx.retriever = open_index(data / "Games.item").as_retriever()
        out = asyncio.run(build_arag_graph().ainvoke(state, context=ctx))
    console.print(f"[bold]User {user}[/]: {len(history)} recent items, last: "
                  f"{history[-1]['title']}")
    console.print(f"[bold]User understanding[/]\n{out.get('user_profile', '')}")
    console.print(f"[bold]Context summary[/]\n{out.get('context_summary', '')}")
    scores = {r["item_id"]: r for r in out.get("nli", [])}
    titles = {c["id"]: c["title"] for c in out["candidates"]}
    table = Table(title="ARAG ranking")
    for col in ("#", "item", "title", "NLI P(yes)", "accepted"):
        table.add_column(col)
    accepted = {a.id for a in out.get("accepted", [])}
    for pos, item_id in enumerate(out["ranking"], 1):
        rec = scores.get(item_id, {})
        score = rec.get("score")
        table.add_row(str(pos), item_id, titles[item_id],
                      "failed" if score is None else f"{score:.2f}",
                      "yes" if item_id in accepted else "")
    console.print(table)
    for failure in out.get("failures", []):
        err_console.print(f"[yellow]{failure['agent']} gave no valid answer[/] (ranked "
                          f"without it): {failure['error']}", soft_wrap=True)
    if out["ranker"]["repaired"]:
        err_console.print(f"(ranker output repaired: {out['ranker']})")
    target = games.targets.get(user)
    if target is not None and target in out["ranking"]:
        console.print(f"held-out next item {target} ({games.title(target)}) ranked "
                      f"#{out['ranking'].index(target) + 1}")
