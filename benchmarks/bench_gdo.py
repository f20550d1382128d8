"""Execution engines at scale: how close each engine gets to what the model server
allows.

Sections (a section is a function `(args) -> dict` listed in `SECTIONS`; each one's
numbers land under its name in the JSON):

- blocking: candidate pairs, recall of true matches and reduction against the cross
  product on an er-magellan dataset (Abt-Buy) for each blocking method and k
  (target: recall >= 0.99 at >= 100x fewer pairs).
- engines: the stub server (its own process) answers every request after a fixed
  `--latency`, with no cap of its own, so `--concurrency` rows in flight allow at
  most concurrency / latency rows/s. `--tasks` structured requests (a small JSON
  schema, through `load_chat_model("openai:stub", ...)` and `ainvoke_structured`) run
  on `LocalEngine` and on `RayEngine` (`--actors` actors on a local Ray); for each:
  rows/s over the whole call; rows/s once rows flow (for each process, its rows from
  its first row's start to its last row's end, summed over the processes: Ray's actors
  start seconds apart); the ideal rows/s; and their ratios (target >= 0.9).

Run: `nice -n 19 .venv/bin/python benchmarks/bench_gdo.py` (`--tasks 50` for a quick
run). Writes a new benchmarks/results/bench_gdo-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from _results import new_result_path  # benchmarks/_results.py, beside this script
from langchain_core.language_models import BaseChatModel
from rich.console import Console
from rich.table import Table

from aisle.engines import Engine, LocalEngine, RowFunction, RowResult, failed_row
from aisle.llm import ainvoke_structured, load_chat_model
from aisle.testing import spawn_stub

SCHEMA = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": ["shoes", "kitchen", "toys", "garden"]},
        "price_usd": {"type": "number", "minimum": 0},
    },
    "required": ["category", "price_usd"],
}
PRODUCTS = ["running shoes", "kettle", "toy robot", "garden hose", "trail sneakers",
            "chef knife", "puzzle", "rake"]


class StubRow(RowFunction):
    """One structured request to the stub per task; plain data until `setup`."""

    def __init__(self, base_url: str, concurrency: int) -> None:
        self.base_url = base_url
        self.concurrency = concurrency
        self.model: BaseChatModel | None = None

    def setup(self) -> None:
        # The per-backend limiter is sized to the whole run's concurrency, so the
        # engine's own bound, not the client's, is what is measured.
        self.model = load_chat_model("openai:stub", base_url=self.base_url, api_key="x",
                                     cache=False, max_concurrency=self.concurrency)

    async def __call__(self, task: Mapping[str, Any]) -> RowResult:
        assert self.model is not None
        start, started_at = time.perf_counter(), time.time()
        try:
            answer = await ainvoke_structured(
                self.model, f"Classify this product: {task['product']} (#{task['id']})", SCHEMA)
        except Exception as e:
            return failed_row(f"{type(e).__name__}: {e}", time.perf_counter() - start)
        usage = answer.message.usage_metadata or {}
        # When the row started (wall clock, shared by the processes of this machine),
        # to time the rows apart from the engine's startup.
        return RowResult(value={"answer": answer.value, "started_at": started_at,
                                "pid": os.getpid()}, error=None,
                         prompt_tokens=usage.get("input_tokens", 0),
                         completion_tokens=usage.get("output_tokens", 0),
                         calls=answer.attempts, cached=False,
                         seconds=time.perf_counter() - start)


async def timed_map(engine: Engine, fn: RowFunction, tasks: list[dict[str, Any]],
                    concurrency: int) -> dict[str, Any]:
    reports: list[tuple[float, int]] = []
    t0, cpu0 = time.perf_counter(), time.process_time()
    rows = await engine.map(fn, tasks, concurrency=concurrency,
                            progress=lambda done, _: reports.append((time.perf_counter(), done)))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    errors = sorted({r["error"] for r in rows if r is not None and r["error"]})
    out: dict[str, Any] = {"seconds": wall, "rows_per_s": len(tasks) / wall,
                           "answered": sum(1 for r in rows if r and r["error"] is None),
                           "errors": errors[:3], "progress_reports": len(reports),
                           # This process's CPU per row: the whole client for LocalEngine,
                           # only the driver's share for RayEngine.
                           "driver_cpu_ms_per_row": 1000 * cpu / len(tasks),
                           "first_report_s": reports[0][0] - t0 if reports else None}
    # Once rows flow: per process (Ray's actors start seconds apart), its rows over the
    # span from its first row's start to its last row's end; summed over processes.
    spans: dict[int, list[tuple[float, float]]] = {}
    for r in rows:
        if r is not None and r["error"] is None:
            start = r["value"]["started_at"]
            spans.setdefault(r["value"]["pid"], []).append((start, start + r["seconds"]))
    out["processes"] = len(spans)
    out["flowing_rows_per_s"] = sum(
        len(s) / (max(end for _, end in s) - min(start for start, _ in s))
        for s in spans.values()) if spans else None
    return out


def bench_engines(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """LocalEngine and RayEngine against a stub with a fixed latency."""
    import ray

    from aisle.engines.ray import RayEngine

    ideal = args.concurrency / args.latency
    tasks = [{"id": i, "product": PRODUCTS[i % len(PRODUCTS)]} for i in range(args.tasks)]
    results: dict[str, Any] = {"ideal_rows_per_s": ideal}
    with spawn_stub(latency=args.latency) as root:
        # A fresh row function per engine: one that is set up holds a live client,
        # which does not pickle to Ray's actors.
        results["local"] = asyncio.run(timed_map(LocalEngine(), StubRow(root, args.concurrency),
                                                 tasks, args.concurrency))
        t0 = time.perf_counter()
        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
        results["ray_init_s"] = time.perf_counter() - t0
        try:
            engine = RayEngine(num_actors=args.actors)
            results["ray"] = asyncio.run(timed_map(engine, StubRow(root, args.concurrency),
                                                   tasks, args.concurrency))
        finally:
            ray.shutdown()
    table = Table(title=f"engine throughput: {args.tasks} tasks, concurrency "
                        f"{args.concurrency}, stub latency {args.latency:g} s "
                        f"(ideal {ideal:.1f} rows/s)")
    for col in ("engine", "answered", "seconds", "rows/s", "ratio", "rows/s flowing",
                "ratio flowing", "first rows after s", "driver CPU ms/row"):
        table.add_column(col)
    for name in ("local", "ray"):
        r = results[name]
        r["ratio"] = r["rows_per_s"] / ideal
        flowing = r.get("flowing_rows_per_s")
        r["flowing_ratio"] = flowing / ideal if flowing else None
        label = name if name == "local" else f"ray ({args.actors} actors)"
        table.add_row(label, f"{r['answered']}/{args.tasks}", f"{r['seconds']:.2f}",
                      f"{r['rows_per_s']:.1f}", f"{r['ratio']:.2f}",
                      f"{flowing:.1f}" if flowing else "-",
                      f"{r['flowing_ratio']:.2f}" if flowing else "-",
                      f"{r['first_report_s']:.2f}" if r["first_report_s"] else "-",
                      f"{r['driver_cpu_ms_per_row']:.1f}")
    console.print(table)
    console.print(f"ray.init: {results['ray_init_s']:.1f} s (not counted above); target: "
                  "ratio >= 0.9; load average at start "
                  + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    for name in ("local", "ray"):
        if results[name]["errors"]:
            console.print(f"[red]{name} errors: {results[name]['errors']}")
    return results


def bench_blocking(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Blocking on a real matching dataset (Abt-Buy by default): for each method and k,
    candidate pairs, recall of the labelled true matches among them, and the reduction
    against the full cross product of the two tables rebuilt from all three splits."""
    from aisle.evals.wrangling import pair_tables
    from aisle.tools.blocking import METHODS, block, record_text
    from aisle.tools.retrieval import Embedder

    tables = pair_tables(args.data / "er-magellan" / args.dataset)
    lid = {v: i for i, v in enumerate(tables.left["id"])}
    rid = {v: i for i, v in enumerate(tables.right["id"])}
    gold = {(lid[a], rid[b]) for a, b in tables.matches}
    columns = args.block_columns
    left = [record_text(r, columns) for r in tables.left.to_dict(orient="records")]
    right = [record_text(r, columns) for r in tables.right.to_dict(orient="records")]
    embedder = Embedder()
    cache: dict[int, Any] = {}
    seconds: dict[str, float] = {}

    def embed(texts: Any) -> Any:  # each side embedded once for every k
        key = hash(tuple(texts))
        if key not in cache:
            t0 = time.perf_counter()
            cache[key] = embedder.embed(texts)
            seconds["embedding"] = seconds.get("embedding", 0.0) + time.perf_counter() - t0
        return cache[key]

    rows = []
    for method in METHODS:
        for k in args.block_k:
            t0 = time.perf_counter()
            result = block(left, right, embed, k=k, method=method)
            found = len(gold & set(result.pairs))
            rows.append({"method": method, "k": k, "pairs": len(result.pairs),
                         "recall": found / len(gold), "reduction": result.reduction,
                         "seconds_without_embedding": time.perf_counter() - t0,
                         "meets_target": found / len(gold) >= 0.99 and result.reduction >= 100})
    table = Table(title=f"blocking on {args.dataset}: {len(left)} x {len(right)} records "
                        f"({tables.cross_product:,} pairs), {len(gold)} true matches, "
                        f"columns {columns}")
    for col in ("method", "k", "pairs", "recall", "reduction", "target (>=0.99, >=100x)"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["method"], str(r["k"]), f"{r['pairs']:,}", f"{r['recall']:.4f}",
                      f"{r['reduction']:.0f}x", "yes" if r["meets_target"] else "no")
    console.print(table)
    console.print(f"MiniLM embedding of both tables: {seconds.get('embedding', 0):.1f} s")
    return {"dataset": args.dataset, "left": len(left), "right": len(right),
            "cross_product": tables.cross_product, "true_matches": len(gold),
            "columns": columns, "embedding_seconds": seconds.get("embedding"), "rows": rows}


# A section: (args, console) -> its numbers. A new section is one function and one entry.
SECTIONS: dict[str, Callable[[argparse.Namespace, Console], dict[str, Any]]] = {
    "engines": bench_engines,
    "blocking": bench_blocking,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS),
                        default=list(SECTIONS), help="Which sections to run.")
    parser.add_argument("--tasks", type=int, default=200, help="Rows per engine run.")
    parser.add_argument("--concurrency", type=int, default=16, help="Rows in flight.")
    parser.add_argument("--latency", type=float, default=0.2,
                        help="Seconds the stub takes per request.")
    parser.add_argument("--actors", type=int, default=2, help="RayEngine actors.")
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray.")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="The shared data root (blocking).")
    parser.add_argument("--dataset", default="Abt-Buy", help="er-magellan dataset (blocking).")
    parser.add_argument("--block-k", type=int, nargs="+", default=[1, 2, 3, 5, 10],
                        help="Neighbours per record and direction (blocking).")
    parser.add_argument("--block-columns", nargs="+", default=["name"],
                        help="Columns compared (blocking).")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output (default: a new benchmarks/results/bench_gdo-*.json).")
    args = parser.parse_args()
    args.out = args.out or new_result_path("bench_gdo")
    # Ray Data's own DataContext() sets fields it deprecates (Ray 2.60).
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="ray.data.context")
    console = Console()
    load = os.getloadavg()
    numbers = {name: SECTIONS[name](args, console) for name in args.sections}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
                   f"{platform.python_version()}",
        "load_average_at_start": load,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        **numbers}, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
