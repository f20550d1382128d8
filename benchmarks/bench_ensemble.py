"""Fit time of aisle's weight learners against crowd-kit on the same synthetic data.

Data: N tasks (default 1,000,000) x 5 labelers x 4 classes; every labeler answers every
task; labeler accuracies 0.9, 0.8, 0.7, 0.6, 0.5, wrong answers uniform over the other
classes. One pandas frame (integer columns) goes to both libraries.

Pairs, each run in the same process on the same frame, with the same iteration cap and
tolerance (each stops by its own rule, so the iteration counts are printed):

- Dawid-Skene: `aggregate(method="ds")` vs crowd-kit `DawidSkene` (the same EM steps).
- Iterative weighted vote: `aggregate(method="iwmv")` vs crowd-kit `OneCoinDawidSkene`,
  its nearest method (one accuracy per labeler, fitted iteratively). crowd-kit has no
  log-odds iterative weighted vote.
- Majority vote: `aggregate(method="mv")` vs crowd-kit `MajorityVote`.

Reported: seconds (total, and per iteration), iterations, accuracy against the
synthetic truth, and the crowd-kit / aisle time ratio.

Run: `.venv/bin/python benchmarks/bench_ensemble.py` (`--tasks 100000` for a quick run).
Writes a new benchmarks/results/bench_ensemble-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _results import new_result_path  # benchmarks/_results.py, beside this script
from rich.console import Console
from rich.table import Table

from aisle.tools.aggregation import aggregate

ACCURACIES = (0.9, 0.8, 0.7, 0.6, 0.5)
K = 4


def synthetic(n_tasks: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, K, n_tasks)
    frames = []
    for w, acc in enumerate(ACCURACIES):
        right = rng.random(n_tasks) < acc
        wrong = (truth + rng.integers(1, K, n_tasks)) % K
        frames.append(pd.DataFrame({"task": np.arange(n_tasks), "worker": w,
                                    "label": np.where(right, truth, wrong)}))
    return pd.concat(frames, ignore_index=True), truth


def _accuracy(labels: Any, truth: np.ndarray) -> float:
    series = pd.Series(labels)
    series.index = series.index.astype(np.int64)
    return float((series.sort_index().astype(np.int64).to_numpy() == truth).mean())


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--out", type=Path, default=None,
                        help="Result JSON (default: a new file under benchmarks/results/).")
    args = parser.parse_args()
    args.out = args.out or new_result_path("bench_ensemble")
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # crowd-kit on pandas 3
    from crowdkit.aggregation import DawidSkene, MajorityVote, OneCoinDawidSkene

    console = Console()
    frame, truth = synthetic(args.tasks)
    ours_frame = frame.rename(columns={"worker": "labeler"})
    console.print(f"{args.tasks:,} tasks x {len(ACCURACIES)} labelers x {K} classes = "
                  f"{len(frame):,} answers; cap {args.max_iter} iterations, tol {args.tol}")
    rows: list[dict[str, Any]] = []
    pairs = [
        ("majority vote", "mv", lambda: MajorityVote()),
        ("iterative weighted vote / OneCoinDawidSkene", "iwmv",
         lambda: OneCoinDawidSkene(n_iter=args.max_iter, tol=args.tol)),
        ("Dawid-Skene", "ds", lambda: DawidSkene(n_iter=args.max_iter, tol=args.tol)),
    ]
    for name, method, make_reference in pairs:
        ours_s, fit = _time(lambda m=method: aggregate(  # type: ignore[misc]
            ours_frame, method=m, max_iter=args.max_iter, tol=args.tol,
            n_classes=K if m == "iwmv" else None))
        ours_acc = _accuracy(dict(zip(fit.tasks.astype(np.int64), fit.labels.astype(np.int64),
                                      strict=True)), truth)
        reference = make_reference()
        ref_s, labels = _time(lambda r=reference: r.fit_predict(frame))  # type: ignore[misc]
        ref_iter = len(getattr(reference, "loss_history_", [])) or 0
        rows.append({"method": name, "aisle_s": ours_s, "aisle_iterations": fit.iterations,
                     "aisle_accuracy": ours_acc, "crowdkit_s": ref_s,
                     "crowdkit_iterations": ref_iter,
                     "crowdkit_accuracy": _accuracy(labels, truth),
                     "speedup": ref_s / ours_s})
        console.print(rows[-1])
    table = Table(title="fit time, aisle vs crowd-kit (same data, same run)")
    for col in ("method", "aisle s (iters)", "crowd-kit s (iters)", "crowd-kit / aisle",
                "aisle acc", "crowd-kit acc"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["method"], f"{r['aisle_s']:.2f} ({r['aisle_iterations']})",
                      f"{r['crowdkit_s']:.2f} ({r['crowdkit_iterations']})",
                      f"{r['speedup']:.1f}x", f"{r['aisle_accuracy']:.4f}",
                      f"{r['crowdkit_accuracy']:.4f}")
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "tasks": args.tasks, "labelers": len(ACCURACIES), "classes": K,
        "accuracies": ACCURACIES, "max_iter": args.max_iter, "tol": args.tol,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "rows": rows}, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
