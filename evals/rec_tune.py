"""Tune SASRec or GRACE on a dataset's validation split: short trainings of a few
configs, their validation curves side by side. Test targets are never scored here (the
split's validation case is each user's second-to-last item; training ends before it).

Each trial is an ordinary `train_model` run (its checkpoint under `AISLE_HOME/rec/`,
resumable: rerun the same command and finished trials are only loaded). A trial is the
model's default config (`SASRecConfig`, `GRACEConfig`) with the `--trial` changes,
`max_epochs` = `--epochs` and no early stopping inside the trial. For GRACE, `--beam`
also scores each trained trial's validation sample at other beam widths (decoding only,
no training). The curves go to one JSON file per invocation, rewritten after every
trial, so an interrupted sweep keeps the trials it finished.

    .venv/bin/python evals/rec_tune.py --dataset beauty --epochs 6 --threads 2 \\
        --trial lr=2e-3,batch_tokens=512 --trial lr=2e-3,batch_tokens=512,dropout=0.3
    .venv/bin/python evals/rec_tune.py --model grace --dataset beauty --epochs 10 \\
        --threads 2 --trial hidden=128,inner=512 --beam 20 --beam 50
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

from pydantic import BaseModel

from aisle.evals.rec_data import load_rec_data
from aisle.tools.recommenders import (
    EpochLog,
    GRACEConfig,
    ModelConfigs,
    ModelKind,
    SASRecConfig,
    train_model,
)
from aisle.tools.recommenders.data import leave_one_out
from aisle.tools.recommenders.grace import GRACE, validation_sample

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


TUNABLE: dict[ModelKind, type[SASRecConfig] | type[GRACEConfig]] = {
    ModelKind.sasrec: SASRecConfig, ModelKind.grace: GRACEConfig}


def parse_trial(text: str, kind: ModelKind = ModelKind.sasrec) -> dict[str, Any]:
    """`lr=2e-3,dropout=0.3` -> `{"lr": 0.002, "dropout": 0.3}`, checked against
    `kind`'s config (ints stay ints, `none` is None, other words stay strings).

    Example:
        >>> parse_trial("lr=2e-3,batch_tokens=512")
        {'lr': 0.002, 'batch_tokens': 512}
        >>> parse_trial("hidden=128,attention=dense", ModelKind.grace)
        {'hidden': 128, 'attention': 'dense'}
    """
    config_cls = TUNABLE[kind]
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in config_cls.model_fields:
            raise ValueError(f"--trial {text!r}: expected NAME=VALUE with NAME one of "
                             f"{', '.join(config_cls.model_fields)}")
        if value.lower() == "none":
            out[key] = None
        elif value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
        else:
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                out[key] = value
    config_cls(**out)  # refuse a bad value before any training
    return out


def run_trial(data: Path, dataset: str, changes: dict[str, Any], epochs: int,
              threads: int | None, kind: ModelKind = ModelKind.sasrec,
              beams: tuple[int, ...] = ()) -> dict[str, Any]:
    """Train one config for `epochs` epochs (loaded if already trained); its curve, and
    for GRACE its validation NDCG@10 / Recall@10 at each of `beams`."""
    rec = load_rec_data(data, dataset)
    config: BaseModel = TUNABLE[kind](**{**changes, "max_epochs": epochs,
                                         "patience": epochs + 1})
    configs = ModelConfigs(**{kind.value: config})
    started = time.perf_counter()
    trained = train_model(rec.dataset, kind, configs, rec.split, threads=threads,
                          progress=_EpochLines(f"{kind.value} {changes}"))
    record = trained.record
    out: dict[str, Any] = {
        "changes": changes, "config": config.model_dump(mode="json"),
        "folder": trained.folder.name, "loaded": trained.loaded,
        "wall_seconds_this_call": time.perf_counter() - started,
        "training_seconds": record.seconds, "minutes": record.seconds / 60,
        "best_epoch": record.best_epoch, "best_valid_ndcg10": record.valid_ndcg10,
        "best_valid_recall10": record.valid_recall10,
        "curve": [{"epoch": h.epoch, "loss": h.loss, "valid_ndcg10": h.valid_ndcg10,
                   "valid_recall10": h.valid_recall10, "seconds": h.seconds}
                  for h in record.history]}
    if beams:
        model = trained.model
        if not isinstance(model, GRACE):
            raise ValueError("--beam is for GRACE trials")
        pairs = leave_one_out(rec.dataset, rec.split).validation_pairs
        encoded = ([model.encode(h) for h, _ in pairs],
                   model.encode([t for _, t in pairs], "validation targets"))
        histories, targets = validation_sample(encoded, model.config)
        out["beams"] = []
        for beam in beams:
            t0 = time.perf_counter()
            metrics = model.validate(histories, targets, beam=beam)
            out["beams"].append({"beam": beam, "valid_users": len(histories), **metrics,
                                 "seconds": time.perf_counter() - t0})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--model", choices=[k.value for k in TUNABLE], default="sasrec")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--trial", action="append", default=[],
                        help="Config changes, NAME=VALUE,...; repeat for several trials.")
    parser.add_argument("--beam", type=int, action="append", default=[],
                        help="GRACE: also score the best epoch's validation sample at this "
                             "beam width; repeat for several.")
    parser.add_argument("--out", type=Path, default=None,
                        help="The JSON file (default evals/results/rec-tuning/"
                             "<dataset>-<UTC time>.json; never an existing file).")
    args = parser.parse_args()
    kind = ModelKind(args.model)
    if args.beam and kind is not ModelKind.grace:
        parser.error("--beam is for --model grace")
    trials = [parse_trial(t, kind) for t in args.trial] or [{}]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = args.dataset if kind is ModelKind.sasrec else f"{args.dataset}-{kind.value}"
    out = args.out or Path("evals/results/rec-tuning") / f"{name}-{stamp}.json"
    if out.exists():
        print(f"{out} exists; pass another --out", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "dataset": args.dataset, "model": kind.value, "epochs": args.epochs,
        "threads": args.threads,
        "selected_on": "validation (each user's second-to-last item); test never scored",
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "started": stamp, "trials": []}
    for changes in trials:
        trial = run_trial(args.data, args.dataset, changes, args.epochs, args.threads, kind,
                          tuple(args.beam))
        result["trials"].append(trial)
        out.write_text(json.dumps(result, indent=2) + "\n")
        curve = " ".join(f"{c['valid_ndcg10']:.4f}" for c in trial["curve"])
        print(f"{changes}: valid NDCG@10 by epoch {curve}; {trial['minutes']:.1f} min",
              flush=True)
        for b in trial.get("beams", []):
            print(f"  beam {b['beam']}: valid NDCG@10 {b['ndcg@10']:.4f}, "
                  f"Recall@10 {b['recall@10']:.4f} ({b['seconds']:.0f} s)", flush=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
