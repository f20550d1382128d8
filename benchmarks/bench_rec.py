"""Recommender speed on Beauty: training seconds per epoch, inference milliseconds per
user, and the padding that length bucketing saves.

For each model (popularity, item-kNN, SASRec with the default config) on the Beauty
leave-one-out training split:

- training: SASRec's seconds per epoch over `--epochs` epochs, both the batches alone
  and with the epoch's validation (NDCG@10 over all 22,363 validation users); the
  one-pass models' fit time counts as their one epoch;
- inference, one user at a time over `--users` test users: `recommend(history, k=10)`
  over the whole catalog (12,101 items), and `score(history, 20 candidates)` (the
  target and 19 seeded random items, the LLMRank protocol's list size);
- padding: the share of padded positions in one epoch's batches of SASRec's training
  sequences, with length bucketing (the default) and without (random batches under the
  same token budget), and padded to the fixed `max_len` as fixed-length implementations
  do.

With `--grace-epochs N`, GRACE (the default CPU-budget config) is timed the same way:
N epochs (seconds per epoch with its beam-search validation on 4,096 sampled users),
`recommend` by constrained beam search and exact `score` of 20 candidates.

Attention cost (`--sections attention`): GRACE's network at the default size (hidden
64, 2 layers, 2 heads; paths of 6 tokens: 2 attribute tokens, 3 codes, 1 collision
code) over random token histories of 50, 200 and 1,000 items, dense causal attention
against journey-aware sparse attention (window 2): the attention FLOPs counted
analytically (`_grace_net.attention_flops`) and the measured wall time of one forward
pass (median of `--repeats`, batch of `--batch` histories, inference mode). Quality at
equal budget is the eval's (`aisle rec eval --model grace --attention dense`).

Run: `nice -n 19 .venv/bin/python benchmarks/bench_rec.py` (`--epochs 1 --users 100` for
a quick run; `--unbucketed` also times a SASRec epoch without bucketing; `--sections
attention` for the attention table alone). Threads: `--threads`, else AISLE_REC_THREADS
(0 = all cores). Writes a new benchmarks/results/bench_rec-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _results import new_result_path  # benchmarks/_results.py, beside this script
from rich.console import Console
from rich.table import Table

from aisle.evals.rec_data import load_rec_data
from aisle.tools.recommenders import (
    GRACE,
    CatalogRecommender,
    EpochLog,
    GRACEConfig,
    ItemKNN,
    Popularity,
    SASRec,
    SASRecConfig,
    leave_one_out,
)
from aisle.tools.recommenders._batching import (
    bucketed_order,
    padding_share,
    random_order,
    token_batches,
)
from aisle.tools.recommenders._grace_net import GraceNet, attention_flops
from aisle.tools.recommenders.sasrec import resolve_threads
from aisle.tools.recommenders.training import item_side

ATTENTION_ITEMS = (50, 200, 1000)


class EpochTimer:
    """Progress callbacks that time each epoch's batches apart from its validation."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.batch_seconds: dict[int, float] = {}
        self._start: float | None = None

    def on_batch(self, epoch: int, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == 1:
            self._start = now  # the first batch's own time is lost: noise
        if done == total and self._start is not None:
            self.batch_seconds[epoch] = (now - self._start) * total / max(total - 1, 1)

    def on_epoch(self, log: EpochLog, max_epochs: int) -> None:
        self.console.print(f"epoch {log.epoch}: loss {log.loss:.4f}, valid NDCG@10 "
                           f"{log.valid_ndcg10:.4f}, {log.seconds:.1f} s")


def inference_ms(model: CatalogRecommender, cases: list[tuple[tuple[str, ...], str]],
                 catalog: tuple[str, ...]) -> dict[str, float]:
    """Milliseconds per user: top-10 over the catalog, and scoring 20 candidates."""
    rng = random.Random(0)
    lists = [[target, *rng.sample(catalog, 19)] for _, target in cases]
    model.recommend(cases[0][0], k=10)  # warm up
    started = time.perf_counter()
    for history, _ in cases:
        model.recommend(history, k=10)
    recommend = (time.perf_counter() - started) * 1000 / len(cases)
    started = time.perf_counter()
    for (history, _), candidates in zip(cases, lists, strict=True):
        model.score(history, candidates)
    score = (time.perf_counter() - started) * 1000 / len(cases)
    return {"recommend_top10_ms_per_user": recommend, "score_20_ms_per_user": score}


def padding(train: list[tuple[str, ...]], config: SASRecConfig) -> dict[str, float]:
    """Padded share of one epoch's SASRec batches (inputs: each sequence but its last)."""
    lengths = np.array([min(len(s), config.max_len + 1) - 1 for s in train if len(s) >= 2],
                       dtype=np.int64)
    rng = np.random.default_rng(0)
    bucketed = token_batches(bucketed_order(lengths, rng), lengths, config.batch_tokens)
    shuffled = token_batches(random_order(lengths, rng), lengths, config.batch_tokens)
    fixed = 1.0 - float(lengths.sum()) / (len(lengths) * config.max_len)
    return {"sequences": len(lengths), "real_tokens": int(lengths.sum()),
            "bucketed": padding_share(bucketed, lengths),
            "random_batches": padding_share(shuffled, lengths),
            "padded_to_max_len": fixed,
            "batches_bucketed": len(bucketed), "batches_random": len(shuffled)}


def attention_cost(batch: int, repeats: int, console: Console) -> list[dict[str, Any]]:
    """FLOPs and forward-pass wall time of dense against sparse attention (see the
    module docstring)."""
    config = GRACEConfig()
    depth = config.attribute_tokens + config.code_levels + 1
    rows = []
    for n in ATTENTION_ITEMS:
        row: dict[str, Any] = {"items": n, "tokens": 1 + n * depth, "batch": batch}
        gen = torch.Generator().manual_seed(n)
        tokens = torch.randint(2, 900, (batch, 1 + n * depth), generator=gen)
        tokens[:, 0] = 1
        for mode in ("dense", "jsa"):
            torch.manual_seed(0)
            net = GraceNet(900, depth=depth, max_len=n, hidden=config.hidden,
                           layers=config.layers, heads=config.heads, inner=config.inner,
                           dropout=0.0, attention=mode, window=config.window).eval()
            times = []
            with torch.inference_mode():
                net(tokens)  # warm up
                for _ in range(repeats):
                    started = time.perf_counter()
                    net(tokens)
                    times.append(time.perf_counter() - started)
            row[f"{mode}_flops"] = attention_flops(n, depth, config.window, config.hidden,
                                                   config.layers, mode)
            row[f"{mode}_forward_ms"] = float(np.median(times)) * 1000
        row["flops_saved"] = 1 - row["jsa_flops"] / row["dense_flops"]
        row["time_ratio"] = row["jsa_forward_ms"] / row["dense_forward_ms"]
        console.print(row)
        rows.append(row)
    return rows


def models_section(args: argparse.Namespace, threads: int, console: Console
                   ) -> dict[str, Any]:
    """Training and inference of every model on the dataset, and the padding shares."""
    rec = load_rec_data(args.data, args.dataset)
    ds = rec.dataset
    split = leave_one_out(ds, rec.split)
    train, valid = split.train_sequences, split.validation_pairs
    cases = [(h, t) for _, h, t in split.test[: args.users]]
    console.print(f"{ds.name}: {ds.n_users:,} users, {ds.n_items:,} items, "
                  f"{ds.n_interactions:,} interactions; {threads} torch threads")
    rows: dict[str, dict[str, Any]] = {}

    for model in (Popularity(), ItemKNN()):
        started = time.perf_counter()
        model.fit(train, items=ds.items)
        seconds = time.perf_counter() - started
        rows[model.kind] = {"seconds_per_epoch": seconds, "epochs": 1,
                            **inference_ms(model, cases, ds.items)}
        console.print(model.kind, rows[model.kind])

    configs: dict[str, Any] = {
        "sasrec": SASRecConfig(max_epochs=args.epochs, patience=args.epochs)}
    if args.unbucketed:
        configs["sasrec_unbucketed"] = configs["sasrec"].model_copy(update={"bucketing": False})
    if args.grace_epochs:
        configs["grace"] = GRACEConfig(max_epochs=args.grace_epochs, patience=args.grace_epochs)
    for name, config in configs.items():
        timer = EpochTimer(console)
        model = (GRACE(config, side=item_side(ds), threads=threads)
                 if isinstance(config, GRACEConfig) else SASRec(config, threads=threads))
        model.fit(train, items=ds.items, validation=valid, progress=timer)
        assert model.training is not None
        history = model.training.history
        rows[name] = {
            "epochs": len(history),
            "seconds_per_epoch": float(np.mean([h.seconds for h in history])),
            "train_seconds_per_epoch": float(np.mean(list(timer.batch_seconds.values()))),
            "loss": [h.loss for h in history],
            "valid_ndcg10": [h.valid_ndcg10 for h in history],
            **inference_ms(model, cases, ds.items)}
        console.print(name, rows[name])

    pad = padding(train, SASRecConfig())
    table = Table(title=f"recommenders on {ds.name} ({threads} threads)")
    for col in ("model", "s / epoch", "train-only s / epoch", "recommend ms / user",
                "score 20 ms / user"):
        table.add_column(col)
    for name, r in rows.items():
        table.add_row(name, f"{r['seconds_per_epoch']:.2f}",
                      f"{r.get('train_seconds_per_epoch', r['seconds_per_epoch']):.2f}",
                      f"{r['recommend_top10_ms_per_user']:.2f}",
                      f"{r['score_20_ms_per_user']:.2f}")
    console.print(table)
    console.print(f"padded share: bucketed {pad['bucketed']:.3f}, random batches "
                  f"{pad['random_batches']:.3f}, padded to max_len "
                  f"{pad['padded_to_max_len']:.3f}")
    return {"dataset": ds.summary(), "inference_users": len(cases),
            "sasrec_config": configs["sasrec"].model_dump(),
            **({"grace_config": configs["grace"].model_dump()} if "grace" in configs else {}),
            "models": rows, "padding": pad}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("AISLE_DATA", "../shared/data")))
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--epochs", type=int, default=2, help="SASRec epochs to time.")
    parser.add_argument("--users", type=int, default=500, help="Test users for inference.")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--unbucketed", action="store_true",
                        help="Also time SASRec epochs without length bucketing.")
    parser.add_argument("--sections", default="models,attention",
                        help="Comma-separated: models (training and inference), attention.")
    parser.add_argument("--grace-epochs", type=int, default=0,
                        help="GRACE epochs to time in the models section (0: skip GRACE).")
    parser.add_argument("--batch", type=int, default=4, help="Attention: histories per pass.")
    parser.add_argument("--repeats", type=int, default=5, help="Attention: timed passes.")
    parser.add_argument("--out", type=Path, default=None,
                        help="Result JSON (default: a new file under benchmarks/results/).")
    args = parser.parse_args()
    args.out = args.out or new_result_path("bench_rec")
    threads = resolve_threads(args.threads)
    torch.set_num_threads(threads)
    load = os.getloadavg()  # other work on the machine slows every number below
    console = Console()

    sections = {x.strip() for x in args.sections.split(",") if x.strip()}
    result: dict[str, Any] = {
        "threads": threads, "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
                   f"{platform.python_version()}",
        "load_average_at_start": load}
    if "models" in sections:
        result.update(models_section(args, threads, console))
    if "attention" in sections:
        rows = attention_cost(args.batch, args.repeats, console)
        table = Table(title=f"attention cost, one forward pass of {args.batch} histories "
                            f"({threads} threads)")
        for col in ("items", "tokens", "dense GFLOPs", "JSA GFLOPs", "FLOPs saved",
                    "dense ms", "JSA ms", "JSA / dense time"):
            table.add_column(col)
        for r in rows:
            table.add_row(str(r["items"]), str(r["tokens"]), f"{r['dense_flops'] / 1e9:.3f}",
                          f"{r['jsa_flops'] / 1e9:.3f}", f"{r['flops_saved']:.1%}",
                          f"{r['dense_forward_ms']:.1f}", f"{r['jsa_forward_ms']:.1f}",
                          f"{r['time_ratio']:.2f}")
        console.print(table)
        result["attention"] = {"config": GRACEConfig().model_dump(mode="json"), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
