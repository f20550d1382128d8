"""aisle's backend layer versus direct HTTP calls to the same embedded llama.cpp server.

For 1, 2 and 4 parallel slots, the same requests at the same concurrency go (a) straight
to the server's `/v1/chat/completions` with httpx and (b) through `load_chat_model`
(LangChain model, retry layer, concurrency bound, usage callbacks; cache off). Runs
alternate direct/aisle to cancel drift. Also measures the latency of a cache hit.

Run: `make bench` or `.venv/bin/python benchmarks/bench_backend.py [--requests 12]`.
Prints a table and writes a new benchmarks/results/bench_backend-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _results import new_result_path  # benchmarks/_results.py, beside this script
from rich.console import Console
from rich.table import Table

from aisle.llm import SQLiteCache, load_chat_model, track_usage
from aisle.llm.local import LocalServerConfig, get_local_server
from aisle.llm.registry import resolve_gguf
from aisle.settings import Settings
from aisle.testing import spawn_stub

PRODUCTS = ["running shoes", "water bottle", "office chair", "dog leash", "coffee grinder",
            "yoga mat", "headphones", "tent", "kettle", "backpack", "desk lamp", "sunscreen",
            "bike helmet", "trail map", "energy gels", "rain jacket"]


def prompts(n: int) -> list[str]:
    return [f"In one short sentence, who buys a {PRODUCTS[i % len(PRODUCTS)]}?"
            for i in range(n)]


async def run_direct(base: str, texts: list[str], conc: int, max_tokens: int) -> float:
    sem = asyncio.Semaphore(conc)
    async with httpx.AsyncClient(timeout=600) as client:
        async def one(text: str) -> None:
            async with sem:
                r = await client.post(f"{base}/v1/chat/completions", json={
                    "model": "smollm2-135m", "messages": [{"role": "user", "content": text}],
                    "temperature": 0.0, "max_completion_tokens": max_tokens, "stream": False})
                r.raise_for_status()
        t0 = time.perf_counter()
        await asyncio.gather(*(one(t) for t in texts))
        return time.perf_counter() - t0


async def run_aisle(model: Any, texts: list[str]) -> float:
    t0 = time.perf_counter()
    with track_usage():
        await asyncio.gather(*(model.ainvoke(t) for t in texts))
    return time.perf_counter() - t0


def bench_slots(slots: int, n: int, max_tokens: int, reps: int) -> dict[str, Any]:
    settings = Settings(cache_enabled=False, local_parallel=slots, local_ctx=2048 * slots)
    _, path = resolve_gguf("smollm2-135m")
    server = get_local_server(LocalServerConfig(model_path=path, ctx=settings.local_ctx,
                                                parallel=slots, threads=settings.local_threads))
    base = server.start()
    model = load_chat_model("local", settings=settings, max_tokens=max_tokens)
    texts = prompts(n)
    asyncio.run(run_direct(base, texts[:slots], slots, max_tokens))  # warm-up
    direct, layered = [], []
    for _ in range(reps):
        direct.append(asyncio.run(run_direct(base, texts, slots, max_tokens)))
        layered.append(asyncio.run(run_aisle(model, texts)))
    server.stop()
    d, a = statistics.median(direct), statistics.median(layered)
    return {"slots": slots, "requests": n, "direct_s": direct, "aisle_s": layered,
            "direct_rps": n / d, "aisle_rps": n / a, "overhead": a / d - 1.0,
            "overhead_ms_per_request": 1000 * (a - d) / n * slots}


def bench_stub_overhead(n: int, reps: int) -> dict[str, Any]:
    """Per-call cost of the layer alone: sequential calls to a zero-latency stub server
    in another process, direct httpx vs aisle, alternating."""
    with spawn_stub() as base:
        model = load_chat_model("openai:stub", base_url=base, api_key="k",
                                settings=Settings(cache_enabled=False), max_tokens=16)

        async def direct() -> float:
            async with httpx.AsyncClient() as client:
                t0 = time.perf_counter()
                for i in range(n):
                    r = await client.post(f"{base}/v1/chat/completions", json={
                        "model": "stub", "messages": [{"role": "user", "content": f"q{i}"}],
                        "temperature": 0.0, "max_completion_tokens": 16})
                    r.raise_for_status()
                return (time.perf_counter() - t0) / n

        async def layered() -> float:
            t0 = time.perf_counter()
            with track_usage():
                for i in range(n):
                    await model.ainvoke(f"q{i}")
            return (time.perf_counter() - t0) / n

        d, a = [], []
        for _ in range(reps):
            d.append(asyncio.run(direct()))
            a.append(asyncio.run(layered()))
    return {"calls": n, "direct_ms": 1000 * statistics.median(d),
            "aisle_ms": 1000 * statistics.median(a),
            "overhead_ms": 1000 * (statistics.median(a) - statistics.median(d))}


def bench_cache_hit(hits: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cache = SQLiteCache(Path(tmp) / "cache.sqlite")
        model = load_chat_model("local", settings=Settings(cache_enabled=False), cache=cache,
                                max_tokens=16)
        t0 = time.perf_counter()
        model.invoke("Name a fruit.")
        miss = time.perf_counter() - t0
        times = []
        for _ in range(hits):
            t0 = time.perf_counter()
            model.invoke("Name a fruit.")
            times.append(time.perf_counter() - t0)
        assert cache.hits == hits
    return {"miss_s": miss, "hit_median_s": statistics.median(times),
            "hit_p95_s": sorted(times)[int(0.95 * len(times)) - 1], "hits": hits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--stub-only", action="store_true",
                        help="Only the per-call overhead against the stub server.")
    parser.add_argument("--out", type=Path, default=None,
                        help="Result JSON (default: a new file under benchmarks/results/).")
    args = parser.parse_args()
    args.out = args.out or new_result_path("bench_backend")
    stub = bench_stub_overhead(200, args.reps)
    console = Console()
    console.print(f"layer cost per call vs a zero-latency stub (sequential, median of "
                  f"{args.reps}): direct {stub['direct_ms']:.2f} ms, aisle "
                  f"{stub['aisle_ms']:.2f} ms, overhead {stub['overhead_ms']:+.2f} ms")
    if args.stub_only:
        return
    rows = [bench_slots(s, args.requests, args.max_tokens, args.reps) for s in args.slots]
    cache = bench_cache_hit(200)
    table = Table(title=f"aisle backend layer vs direct HTTP, SmolLM2-135M on llama.cpp "
                        f"({args.requests} requests, {args.max_tokens} tokens max, "
                        f"median of {args.reps})")
    for col in ("slots = concurrency", "direct req/s", "aisle req/s", "aisle overhead",
                "overhead ms/request"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["slots"]), f"{r['direct_rps']:.2f}", f"{r['aisle_rps']:.2f}",
                      f"{100 * r['overhead']:+.1f}%", f"{r['overhead_ms_per_request']:+.1f}")
    console.print(table)
    console.print(f"cache: miss {cache['miss_s'] * 1000:.0f} ms; hit median "
                  f"{cache['hit_median_s'] * 1000:.2f} ms, p95 {cache['hit_p95_s'] * 1000:.2f} ms "
                  f"over {cache['hits']} hits")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "args": vars(args) | {
        "out": str(args.out)}, "rows": rows, "cache": cache, "stub_overhead": stub}, indent=2))


if __name__ == "__main__":
    main()
