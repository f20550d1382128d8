"""Run-to-run spread of ARAG on the same users, with and without deterministic decoding.

Each repeat runs ARAG afresh (response cache off, a new answer store) on the same first
N LLMRank Games users with the same model at temperature 0, once with the local server
batching concurrent requests (`--modes parallel`) and once decoding one request at a
time (`deterministic`, what evals use by default). It reports, per mode, NDCG@10 per
repeat and its range, how many users got the same ranking in every repeat, the
duplicate ids the ranker wrote, and seconds per user (the throughput cost).

    AISLE_LOCAL_THREADS=2 .venv/bin/python evals/repeatability.py --users 4 --repeats 3 \\
        --model local:smollm2-135m --nli-mode logprob
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

from aisle.evals.arag_suite import ARAGEvalConfig, ARAGSuite, Method
from aisle.evals.decoding import decoding_key
from aisle.evals.llmrank import load_games
from aisle.evals.metrics import ndcg_at_k, rank_of
from aisle.evals.runner import EvalRunner
from aisle.graphs.arag import ARAGConfig
from aisle.settings import get_settings

__all__ = ["measure"]


def _one_run(config: ARAGEvalConfig) -> dict[str, Any]:
    games = load_games(config.data)
    suite = ARAGSuite(config, games)
    with tempfile.TemporaryDirectory() as root:
        runner = EvalRunner(suite, Path(root))
        started = time.perf_counter()
        summary = asyncio.run(runner.run())
        wall = time.perf_counter() - started
        answers = runner.answers()["arag"]
    if summary.failures:
        raise RuntimeError(f"{len(summary.failures)} users failed: {summary.failures[0]}")
    return {"rankings": {u: v["ranking"] for u, v in answers.items()},
            "ndcg@10": mean(ndcg_at_k(rank_of(v["target"], v["ranking"]), 10)
                            for v in answers.values()),
            "duplicate_ids": sum(v["validity"]["duplicates"] for v in answers.values()),
            "seconds_per_user": wall / len(answers)}


def measure(data: Path, *, users: int, repeats: int, model: str, nli_mode: str,
            modes: list[str], concurrency: int) -> dict[str, Any]:
    """Repeat ARAG runs per decoding mode and summarise the spread."""
    out: dict[str, Any] = {"users": users, "repeats": repeats, "model": model,
                           "nli_mode": nli_mode, "concurrency": concurrency, "modes": {}}
    for mode in modes:
        config = ARAGEvalConfig(data=data, n_users=users, methods=(Method.arag,), model=model,
                                arag=ARAGConfig(nli_mode=nli_mode),  # type: ignore[arg-type]
                                deterministic=mode == "deterministic", concurrency=concurrency)
        runs = []
        for r in range(repeats):
            runs.append(_one_run(config))
            print(f"{mode} repeat {r + 1}/{repeats}: NDCG@10 {runs[-1]['ndcg@10']:.4f}, "
                  f"{runs[-1]['seconds_per_user']:.1f} s/user", file=sys.stderr, flush=True)
        ids = list(runs[0]["rankings"])
        same = sum(all(run["rankings"][u] == runs[0]["rankings"][u] for run in runs) for u in ids)
        ndcg = [run["ndcg@10"] for run in runs]
        out["modes"][mode] = {
            "ndcg@10_per_repeat": ndcg, "ndcg@10_range": max(ndcg) - min(ndcg),
            "users_with_the_same_ranking_in_every_repeat": same,
            "duplicate_ids_per_repeat": [run["duplicate_ids"] for run in runs],
            "seconds_per_user_per_repeat": [run["seconds_per_user"] for run in runs],
            "mean_seconds_per_user": mean(run["seconds_per_user"] for run in runs),
            "decoding": decoding_key(mode == "deterministic").get("decoding", "batched")}
    if {"parallel", "deterministic"} <= set(out["modes"]):
        out["deterministic_cost_x"] = (out["modes"]["deterministic"]["mean_seconds_per_user"]
                                       / out["modes"]["parallel"]["mean_seconds_per_user"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="LLMRank Games folder (default: AISLE_DATA/llmrank-games)")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="local:smollm2-135m")
    parser.add_argument("--nli-mode", default="logprob", choices=["logprob", "generate"])
    parser.add_argument("--modes", default="parallel,deterministic")
    parser.add_argument("--concurrency", type=int, default=2, help="users at once")
    parser.add_argument("--out", type=Path, required=True,
                        help="result JSON; an existing file is never overwritten")
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists; pick a new name (kept results are never overwritten)")
    os.environ["AISLE_CACHE_ENABLED"] = "false"  # every repeat computes every call
    get_settings.cache_clear()
    data = args.data or get_settings().data / "llmrank-games"
    result = measure(data, users=args.users, repeats=args.repeats, model=args.model,
                     nli_mode=args.nli_mode, modes=args.modes.split(","),
                     concurrency=args.concurrency)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "modes"}))
    for mode, m in result["modes"].items():
        print(mode, json.dumps(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
