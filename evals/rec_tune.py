"""Tune SASRec on a dataset's validation split: short trainings of a few configs,
their validation curves side by side. Test targets are never scored here (the split's
validation case is each user's second-to-last item; training ends before it).

Each trial is an ordinary `train_model` run (its checkpoint under `AISLE_HOME/rec/`,
resumable: rerun the same command and finished trials are only loaded). A trial is the
default `SASRecConfig` with the `--trial` changes, `max_epochs` = `--epochs` and no
early stopping inside the trial. The curves go to one JSON file per invocation,
rewritten after every trial, so an interrupted sweep keeps the trials it finished.

    .venv/bin/python evals/rec_tune.py --dataset beauty --epochs 6 --threads 2 \\
        --trial lr=2e-3,batch_tokens=512 --trial lr=2e-3,batch_tokens=512,dropout=0.3
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aisle.evals.rec_data import load_rec_data
from aisle.tools.recommenders import (
    EpochLog,
    ModelConfigs,
    ModelKind,
    SASRecConfig,
    train_model,
)

__all__ = ["parse_trial", "run_trial"]


class _EpochLines:
    """One stderr line per finished epoch (the sweep runs in the background)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def on_batch(self, epoch: int, done: int, total: int) -> None:
        pass

    def on_epoch(self, log: EpochLog, max_epochs: int) -> None:
        print(f"{datetime.now(UTC):%H:%M:%S} {self.name} epoch {log.epoch}/{max_epochs}: "
              f"loss {log.loss:.4f}, valid NDCG@10 {log.valid_ndcg10:.4f}, "
              f"{log.seconds:.1f} s", file=sys.stderr, flush=True)


def parse_trial(text: str) -> dict[str, Any]:
    """`lr=2e-3,dropout=0.3` -> `{"lr": 0.002, "dropout": 0.3}`, checked against
    `SASRecConfig` (ints stay ints, `none` is None).

    Example:
        >>> parse_trial("lr=2e-3,batch_tokens=512")
        {'lr': 0.002, 'batch_tokens': 512}
    """
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in SASRecConfig.model_fields:
            raise ValueError(f"--trial {text!r}: expected NAME=VALUE with NAME one of "
                             f"{', '.join(SASRecConfig.model_fields)}")
        if value.lower() == "none":
            out[key] = None
        else:
            out[key] = json.loads(value) if value.lower() not in ("true", "false") \
                else value.lower() == "true"
    SASRecConfig(**out)  # refuse a bad value before any training
    return out


def run_trial(data: Path, dataset: str, changes: dict[str, Any], epochs: int,
              threads: int | None) -> dict[str, Any]:
    """Train one config for `epochs` epochs (loaded if already trained); its curve."""
    rec = load_rec_data(data, dataset)
    config = SASRecConfig(**{**changes, "max_epochs": epochs, "patience": epochs + 1})
    started = time.perf_counter()
    trained = train_model(rec.dataset, ModelKind.sasrec, ModelConfigs(sasrec=config),
                          rec.split, threads=threads, progress=_EpochLines(str(changes)))
    record = trained.record
    return {"changes": changes, "config": config.model_dump(mode="json"),
            "folder": trained.folder.name, "loaded": trained.loaded,
            "wall_seconds_this_call": time.perf_counter() - started,
            "training_seconds": record.seconds, "minutes": record.seconds / 60,
            "best_epoch": record.best_epoch, "best_valid_ndcg10": record.valid_ndcg10,
            "best_valid_recall10": record.valid_recall10,
            "curve": [{"epoch": h.epoch, "loss": h.loss, "valid_ndcg10": h.valid_ndcg10,
                       "valid_recall10": h.valid_recall10, "seconds": h.seconds}
                      for h in record.history]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--trial", action="append", default=[],
                        help="Config changes, NAME=VALUE,...; repeat for several trials.")
    parser.add_argument("--out", type=Path, default=None,
                        help="The JSON file (default evals/results/rec-tuning/"
                             "<dataset>-<UTC time>.json; never an existing file).")
    args = parser.parse_args()
    trials = [parse_trial(t) for t in args.trial] or [{}]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = args.out or Path("evals/results/rec-tuning") / f"{args.dataset}-{stamp}.json"
    if out.exists():
        print(f"{out} exists; pass another --out", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "dataset": args.dataset, "epochs": args.epochs, "threads": args.threads,
        "selected_on": "validation (each user's second-to-last item); test never scored",
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "started": stamp, "trials": []}
    for changes in trials:
        trial = run_trial(args.data, args.dataset, changes, args.epochs, args.threads)
        result["trials"].append(trial)
        out.write_text(json.dumps(result, indent=2) + "\n")
        curve = " ".join(f"{c['valid_ndcg10']:.4f}" for c in trial["curve"])
        print(f"{changes}: valid NDCG@10 by epoch {curve}; {trial['minutes']:.1f} min",
              flush=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
