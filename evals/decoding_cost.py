"""Seconds per user of the same ARAG users decoded both ways, from the answers store.

Every stored answer records its wall seconds, and the answer key records the decoding
(deterministic: `"decoding": "one-request-at-a-time, no prompt cache"`; batched: no
entry). For users stored under two keys that differ only in decoding, this prints both
timings and their ratio, so the cost of deterministic decoding is measured on the same
users, the same model and the same machine state, not estimated.

    .venv/bin/python evals/decoding_cost.py --store evals/results/arag/answers.sqlite \\
        --model local:qwen2.5-coder-0.5b --out evals/results/repeatability/<name>.json
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from statistics import mean
from typing import Any

from aisle.evals.decoding import DETERMINISTIC


def _without_decoding(key: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in key.items() if k != "decoding"}, sort_keys=True)


def measure(store: Path, model: str, task: str = "arag") -> dict[str, Any]:
    """Per user: seconds deterministic, seconds batched, for users stored both ways."""
    with sqlite3.connect(store) as db:
        keys = {h: json.loads(k) for h, k in db.execute(
            "select key_hash, answer_key from answer_keys")}
        rows = db.execute("select case_id, key_hash, value from answers where task = ?",
                          (task,)).fetchall()
    by_base: dict[str, dict[str, dict[str, float]]] = {}
    for case, key_hash, value in rows:
        key = keys[key_hash]
        if key.get("model") != model:
            continue
        mode = "deterministic" if key.get("decoding") == DETERMINISTIC else "batched"
        base = by_base.setdefault(_without_decoding(key), {})
        base.setdefault(case, {})[mode] = json.loads(value)["seconds"]
    pairs = {case: t for runs in by_base.values() for case, t in runs.items()
             if {"deterministic", "batched"} <= set(t)}
    if not pairs:
        raise SystemExit(f"no {task} user of {model} is stored with both decodings")
    det = mean(t["deterministic"] for t in pairs.values())
    bat = mean(t["batched"] for t in pairs.values())
    return {"store": str(store), "model": model, "task": task, "users": pairs,
            "mean_seconds": {"deterministic": det, "batched": bat},
            "deterministic_cost_x": det / bat}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("evals/results/arag/answers.sqlite"))
    parser.add_argument("--model", required=True)
    parser.add_argument("--task", default="arag")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = measure(args.store, args.model, args.task)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
