"""ARAG orchestration benchmarks.

(a) Orchestration efficiency: an OpenAI-compatible stub server (another process) answers
    every call after a fixed latency L and serves at most C calls at once. ARAG runs over N
    users; achieved calls/s is compared with the ideal C/L, and with running the users
    one at a time.
(b) Prefix caching: on the embedded llama.cpp model, the share of NLI prompt tokens that
    the server took from its prompt cache during the fan-out (the shared history comes
    first in every NLI prompt, the item last).

Run: `.venv/bin/python benchmarks/bench_arag.py` (add --skip-local to run only (a)).
Prints tables and writes a new benchmarks/results/bench_arag-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from _results import new_result_path  # benchmarks/_results.py, beside this script
from rich.console import Console
from rich.table import Table

from aisle.graphs.arag import ARAGConfig, ARAGContext, build_arag_graph
from aisle.llm import load_chat_model, track_usage
from aisle.settings import Settings, get_settings
from aisle.testing import spawn_stub

DATA = get_settings().data / "llmrank-games"  # AISLE_DATA, else ../shared/data


def _users(n: int, n_candidates: int = 20) -> list[dict[str, Any]]:
    from aisle.evals.llmrank import load_games

    games = load_games(DATA)
    out = []
    for case in games.cases("random", n_users=n, n_candidates=n_candidates):
        out.append(games.arag_input(case, max_history=20))
    return out


async def _run_users(model: Any, users: list[dict[str, Any]], user_concurrency: int) -> float:
    graph = build_arag_graph()
    sem = asyncio.Semaphore(user_concurrency)

    async def one(state: dict[str, Any]) -> None:
        async with sem:
            await graph.ainvoke(state, context=ARAGContext(model=model, config=ARAGConfig()))

    t0 = time.perf_counter()
    await asyncio.gather(*(one(u) for u in users))
    return time.perf_counter() - t0


def bench_orchestration(n_users: int, latency: float, cap: int) -> dict[str, Any]:
    with spawn_stub(latency=latency, max_concurrency=cap, reply="Yes") as base:
        from aisle.llm import Capabilities

        model = load_chat_model(
            "openai:stub", base_url=base, api_key="k", max_concurrency=cap,
            settings=Settings(cache_enabled=False),
            capabilities=Capabilities(json_schema=True, logprobs=True, max_top_logprobs=20))
        users = _users(n_users)
        rows = []
        for label, conc in (("one user at a time", 1), (f"{n_users} users at once", n_users)):
            with track_usage() as usage:
                wall = asyncio.run(_run_users(model, users, conc))
            calls = usage.total().calls
            rows.append({"mode": label, "user_concurrency": conc, "calls": calls,
                         "seconds": wall, "calls_per_s": calls / wall,
                         "efficiency": (calls / wall) / (cap / latency)})
    return {"latency_s": latency, "cap": cap, "ideal_calls_per_s": cap / latency,
            "users": n_users, "rows": rows}


def bench_prefix_cache(n_users: int) -> dict[str, Any]:
    from aisle.agents.arag import judge_item
    from aisle.llm.local import LocalServerConfig, get_local_server
    from aisle.llm.registry import resolve_gguf

    settings = Settings(cache_enabled=False)
    model = load_chat_model("local", settings=settings)
    _, path = resolve_gguf("smollm2-135m")
    server = get_local_server(LocalServerConfig(model_path=path, ctx=settings.local_ctx,
                                                parallel=settings.local_parallel,
                                                threads=settings.local_threads))
    users = _users(n_users)

    async def fan_out(user: dict[str, Any]) -> None:
        history = [h["title"] for h in user["history"]]
        await asyncio.gather(*(judge_item(model, history, c["id"], c["title"], mode="logprob")
                               for c in user["candidates"]))

    before = server.metrics()
    with track_usage() as usage:
        for user in users:
            asyncio.run(fan_out(user))
    after = server.metrics()
    processed = after["prompt_tokens_total"] - before.get("prompt_tokens_total", 0)
    cached = after["prompt_tokens_cached_total"] - before.get("prompt_tokens_cached_total", 0)
    tot = usage.total()
    return {"users": n_users, "nli_calls": tot.calls,
            "server_prompt_tokens_processed": processed,
            "server_prompt_tokens_cached": cached,
            "cached_share_server": cached / (cached + processed) if cached + processed else 0.0,
            "usage_prompt_tokens": tot.prompt_tokens,
            "usage_cached_prompt_tokens": tot.cached_prompt_tokens,
            "cached_share_usage": (tot.cached_prompt_tokens / tot.prompt_tokens
                                   if tot.prompt_tokens else 0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--cap", type=int, default=8)
    parser.add_argument("--prefix-users", type=int, default=3)
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--out", type=Path, default=None,
                        help="Result JSON (default: a new file under benchmarks/results/).")
    args = parser.parse_args()
    args.out = args.out or new_result_path("bench_arag")
    console = Console()
    orch = bench_orchestration(args.users, args.latency, args.cap)
    table = Table(title=f"ARAG orchestration on a stub server: L = {args.latency}s per call, "
                        f"C = {args.cap} at once, ideal C/L = {orch['ideal_calls_per_s']:.1f} "
                        f"calls/s, {args.users} users x 23 calls")
    for col in ("mode", "calls", "seconds", "calls/s", "share of ideal C/L"):
        table.add_column(col, justify="right")
    for r in orch["rows"]:
        table.add_row(r["mode"], str(r["calls"]), f"{r['seconds']:.2f}",
                      f"{r['calls_per_s']:.2f}", f"{r['efficiency']:.3f}")
    console.print(table)
    result: dict[str, Any] = {"orchestration": orch}
    if not args.skip_local:
        prefix = bench_prefix_cache(args.prefix_users)
        console.print(
            f"NLI fan-out on the embedded model, {prefix['users']} users, "
            f"{prefix['nli_calls']} calls: {prefix['cached_share_server']:.1%} of prompt tokens "
            f"served from llama.cpp's prefix cache (server counters: "
            f"{prefix['server_prompt_tokens_cached']:.0f} cached, "
            f"{prefix['server_prompt_tokens_processed']:.0f} processed); per-response usage "
            f"reports {prefix['cached_share_usage']:.1%}")
        result["prefix_cache"] = prefix
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
