"""Paired comparison of two kept `aisle rec eval` runs on the same test users: the mean
per-user difference of a metric (A minus B) and A's relative change against B, each with
a 95% bootstrap interval that resamples the same users for both runs (a paired interval
is much narrower than the two runs' own intervals when the runs agree user by user).

The ranks come from the runs' stored answers (`evals/results/rec/answers.sqlite`), with no
model calls. The result is printed and written to
`evals/results/rec-paired/<run A>--<run B>.json` (one file per pair; every metric).

Usage:
    .venv/bin/python evals/rec_paired.py evals/results/rec/RUN_A evals/results/rec/RUN_B \
        [--model-a grace] [--model-b grace] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from aisle.evals.rec_suite import bootstrap_chunked, metric_values
from aisle.evals.reproduce import rebuild_suite
from aisle.evals.runner import EvalRunner

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
N_BOOT = 2000


def stored_ranks(folder: Path, model: str, data: Path) -> dict[str, int | None]:
    """User -> 1-based rank of the test item (None: a miss) for `model` in a kept run."""
    report = folder / "report.json"
    if not report.is_file():
        raise SystemExit(f"{folder} holds no report.json: pass a kept run folder")
    kept = json.loads(report.read_text())
    if kept["run"]["suite"] != "rec":
        raise SystemExit(f"{folder} is a {kept['run']['suite']} run, not a rec run")
    runner = EvalRunner(rebuild_suite(kept, data), folder.parent.parent)
    stored = runner.stored(model)
    if not stored:
        raise SystemExit(f"no stored answers of {model!r} for {folder.name}; models in the "
                         f"run: {', '.join(kept['metrics'])}")
    return {u: r for v in stored.values() for u, r in zip(v["users"], v["ranks"], strict=True)}


def relative(a: np.ndarray, b: np.ndarray, seed: int = 0, chunk: int = 50) -> dict[str, float]:
    """mean(a) / mean(b) - 1 with a 95% paired percentile bootstrap interval (a resample
    whose mean of `b` is 0 counts as an infinite change, so with few users the interval
    can be unbounded).

    Raises:
        ValueError: `b`'s mean is 0 (no relative change is defined).
    """
    if not b.mean() > 0:
        raise ValueError("B's mean is 0: a relative change is not defined")
    rng = np.random.default_rng(seed)
    ratios = []
    for start in range(0, N_BOOT, chunk):
        idx = rng.integers(0, a.size, size=(min(chunk, N_BOOT - start), a.size))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(a[idx].mean(axis=1) / b[idx].mean(axis=1) - 1.0)
    r = np.concatenate(ratios)
    return {"mean": float(a.mean() / b.mean() - 1.0), "ci_low": float(np.quantile(r, 0.025)),
            "ci_high": float(np.quantile(r, 0.975))}


def compare(a_dir: Path, b_dir: Path, model_a: str, model_b: str, data: Path
            ) -> dict[str, Any]:
    ra, rb = stored_ranks(a_dir, model_a, data), stored_ranks(b_dir, model_b, data)
    users = [u for u in ra if u in rb]
    if not users:
        raise SystemExit("the two runs share no test users")
    out: dict[str, Any] = {"a": {"run": a_dir.name, "model": model_a},
                           "b": {"run": b_dir.name, "model": model_b},
                           "users": len(users), "n_boot": N_BOOT, "metrics": {}}
    for metric in METRICS:
        a = np.array(metric_values([ra[u] for u in users], metric))
        b = np.array(metric_values([rb[u] for u in users], metric))
        # Resampling the per-user differences resamples the same users for both runs;
        # drawn in chunks, so 35k users x 2,000 resamples never sit in memory at once.
        diff = bootstrap_chunked((a - b).tolist(), n_boot=N_BOOT)
        out["metrics"][metric] = {
            "a": float(a.mean()), "b": float(b.mean()),
            "difference": {"mean": diff.mean, "ci_low": diff.low, "ci_high": diff.high},
            "relative": relative(a, b),
            "users_a_better": int((a > b).sum()), "users_equal": int((a == b).sum()),
            "users_b_better": int((a < b).sum())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--model-a", default="grace")
    parser.add_argument("--model-b", default="grace")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    result = compare(args.run_a.resolve(), args.run_b.resolve(), args.model_a, args.model_b,
                     args.data.resolve())
    folder = ROOT / "evals" / "results" / "rec-paired"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{args.run_a.name}--{args.run_b.name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"A {result['a']['run']} ({result['a']['model']}) against B {result['b']['run']} "
          f"({result['b']['model']}), {result['users']} users:")
    for metric, m in result["metrics"].items():
        d, r = m["difference"], m["relative"]
        print(f"  {metric}: A {m['a']:.4f}, B {m['b']:.4f}; A-B {d['mean']:+.4f} "
              f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]; A/B-1 {r['mean']:+.1%} "
              f"[{r['ci_low']:+.1%}, {r['ci_high']:+.1%}]")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
