"""Does aisle's SASRec agree with RecBole's on the same split? Per-user ranks, intervals.

RecBole 1.2.0 pads every prefix of every sequence as a training example of its own, so
on this 2-core CPU an epoch on full Beauty takes ~17 times aisle's; this script compares
the two on a seeded sample of Beauty's users instead, small enough for both to converge
(early stopping on validation NDCG@10).

Commands, from the repository root (`nice -n 10` keeps it behind other work):

    # the full comparison (6,000 users, seed 2023, the last 20 items, 2 threads)
    nice -n 10 .venv/bin/python scripts/recbole_agreement.py
    # a smoke test of every step (under a minute)
    nice -n 10 .venv/bin/python scripts/recbole_agreement.py --users 300 --epochs 2 \\
        --max-len 10 --out /tmp/recbole-smoke

On a machine another job keeps busy, pass `--threads 1`: two torch threads on two busy
cores wait on each other. On the default sample, with the machine busy, one RecBole
epoch trained in 236 s on 2 threads and in 21 s on 1; aisle's in about 3.5 s on 1.

Steps (each reused when done, so an interrupted run continues with the same command):

1. The sample: `--users` users drawn with `random.Random(--seed)` from `--source`
   (S3-Rec `user item item ...` lines, oldest first), written in the source's order as
   `OUT/data/amazon-seq/BeautySub.txt` (what `aisle rec eval --data OUT/data --dataset
   BeautySub` reads; no item-attributes file, which aisle's loader does not need) and
   as RecBole's atomic file `OUT/data/BeautySub/BeautySub.inter` (`user_id:token
   item_id:token timestamp:float`, the position in the sequence as the timestamp).
2. RecBole's SASRec (`scripts/_recbole_sasrec.py`) in a throwaway venv,
   `.venv-recbole/` (created when missing: RecBole 1.2.0 with the local CPU torch,
   `kmeans_pytorch`, and pandas < 2.2 with NumPy 1: pandas 3's copy-on-write turns
   RecBole's `fillna(inplace=True)` into a silent no-op). Leave-one-out
   (`LS: valid_and_test`, order `TO`), full ranking grouped by user, CE loss, no
   negative sampling, early stopping on validation NDCG@10 (`stopping_step`), the best
   epoch's weights tested. Result: `OUT/recbole-ranks.json` (per-user test ranks, the
   training curve, seconds per epoch); reused unless `--force`. Its log:
   `OUT/recbole.log` (RecBole's logger) and `OUT/recbole-stdout.log`.
3. aisle's SASRec through its Python API (`train_model`, then `rank_targets` as
   `aisle rec eval` calls it; the CLI does not expose `max_len`, `lr` or `dropout`):
   the same architecture (hidden 64, 2 layers, 2 heads, feed-forward 256), dropout,
   lr, batch size (`--batch`: RecBole's prefixes per batch, aisle's token budget per
   batch, sequences x longest, so at most that many targets), most recent `--max-len`
   items, seed, no time budget, and `patience` = `stopping_step + 1` (RecBole stops
   after `stopping_step + 1` epochs without a better score, aisle after `patience`).
   Its checkpoints resume per epoch. Result: `OUT/aisle-ranks.json`.
4. The same test users and targets on both sides (asserted), then Recall@5/10 and
   NDCG@5/10 with 95% bootstrap intervals over users, and the paired per-user
   difference aisle - RecBole with its 95% bootstrap interval. They *agree* on a
   metric when the paired interval contains 0. Primary protocol: history items
   excluded from the ranking (aisle's standard); secondary: history items ranked
   (what RecBole's own evaluator does for sequential models). `OUT/agreement.json` and
   `OUT/agreement.md` (not `report.*`, the name of the eval runner's kept reports); an
   OUT that already holds them is refused.

Checkpoints (RecBole's `saved/`, aisle's `rec/`) go to `--work` (default
`.aisle/recbole-agreement/<OUT name>/`, git-ignored), not into OUT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NAME = "BeautySub"
RECBOLE_REQUIREMENTS = ("torch==2.13.0", "recbole==1.2.0", "kmeans_pytorch", "pandas<2.2",
                        "numpy<2")
METRICS = ("ndcg@10", "recall@10", "ndcg@5", "recall@5")
AGREEMENT_METRICS = ("ndcg@10", "recall@10")
DEFAULT_OUT = REPO / "evals/results/rec-tuning/recbole-agreement-v1"


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 1. the sample ---------------------------------------------------------------------
def write_sample(source: Path, users: int, seed: int, data: Path) -> dict[str, Any]:
    """The seeded user sample as S3-Rec and RecBole atomic files under `data`."""
    lines = [line.split() for line in source.read_text(encoding="utf-8").splitlines()]
    lines = [parts for parts in lines if parts]
    if users > len(lines):
        raise SystemExit(f"--users {users}: {source} has only {len(lines)} users")
    chosen = set(random.Random(seed).sample([p[0] for p in lines], users))
    kept = [p for p in lines if p[0] in chosen]  # the source's order
    txt = data / "amazon-seq" / f"{NAME}.txt"
    inter = data / NAME / f"{NAME}.inter"
    txt.parent.mkdir(parents=True, exist_ok=True)
    inter.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(txt, "".join(" ".join(p) + "\n" for p in kept))
    rows = ["user_id:token\titem_id:token\ttimestamp:float\n"]
    rows += [f"{p[0]}\t{item}\t{t}\n" for p in kept for t, item in enumerate(p[1:])]
    write_atomic(inter, "".join(rows))
    return {"source": str(source), "source_sha256": sha256(source), "users": users,
            "seed": seed, "items": len({i for p in kept for i in p[1:]}),
            "interactions": sum(len(p) - 1 for p in kept), "txt": str(txt),
            "txt_sha256": sha256(txt), "inter": str(inter), "inter_sha256": sha256(inter)}


# -- 2. RecBole --------------------------------------------------------------------------
def ensure_recbole_venv(venv: Path) -> Path:
    """The throwaway venv's python, creating the venv and installing RecBole if needed."""
    python = venv / "bin" / "python"
    if not python.is_file():
        log(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = [str(python), "-c", "import recbole, kmeans_pytorch, pandas; "
             "assert recbole.__version__ == '1.2.0' and pandas.__version__ < '2.2'"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        log(f"installing {' '.join(RECBOLE_REQUIREMENTS)} into {venv}")
        subprocess.run([str(python), "-m", "pip", "install", "-q", *RECBOLE_REQUIREMENTS],
                       check=True)
    return python


def recbole_config(args: argparse.Namespace, data: Path, work: Path) -> dict[str, Any]:
    """RecBole's config dict: the same model and training as aisle's (module doc)."""
    return {
        "data_path": str(data), "dataset": NAME, "checkpoint_dir": str(work / "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "hidden_size": 64, "n_layers": 2, "n_heads": 2, "inner_size": 256,
        "hidden_dropout_prob": args.dropout, "attn_dropout_prob": args.dropout,
        "hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02,
        "loss_type": "CE", "train_neg_sample_args": None,
        "learning_rate": args.lr, "weight_decay": 0.0,
        "train_batch_size": args.batch, "eval_batch_size": 2048,
        "epochs": args.epochs, "stopping_step": args.stopping_step, "eval_step": 1,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                      "group_by": "user"},
        "metrics": ["Recall", "NDCG"], "topk": [5, 10], "valid_metric": "NDCG@10",
        # 6 places, not RecBole's 4: early stopping compares the unrounded scores
        # more closely, as aisle's does.
        "metric_decimal_place": 6,
        "seed": args.seed, "reproducibility": True,
        "device": "cpu", "use_gpu": False, "show_progress": False, "log_wandb": False,
        "worker": 0, "state": "INFO",
    }


def run_recbole(args: argparse.Namespace, sample: dict[str, Any], data: Path, out: Path,
                work: Path) -> dict[str, Any]:
    """RecBole's result (`_recbole_sasrec.py`), reused from OUT when made the same way."""
    result_path = out / "recbole-ranks.json"
    rb_work = work / "recbole"
    config = recbole_config(args, data, rb_work)
    paths = ("data_path", "checkpoint_dir")
    key = {"config": {k: v for k, v in config.items() if k not in paths},
           "data_sha256": sample["inter_sha256"]}
    if result_path.is_file() and not args.force:
        result: dict[str, Any] = json.loads(result_path.read_text())
        if result["spec"]["key"] != key:
            raise SystemExit(f"{result_path} was made with another config or sample; "
                             "pass --force to rerun RecBole, or use another --out")
        log(f"RecBole: reusing {result_path}")
        return result
    python = ensure_recbole_venv(args.recbole_venv)
    rb_work.mkdir(parents=True, exist_ok=True)
    spec_path = out / "recbole-spec.json"
    write_atomic(spec_path, json.dumps({"recbole": config, "threads": args.threads,
                                        "sequences": sample["txt"], "key": key},
                                       indent=1) + "\n")
    before = set((rb_work / "log").rglob("*.log")) if (rb_work / "log").is_dir() else set()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)  # only the RecBole venv's packages
    log(f"RecBole: training SASRec ({python}; log in {out / 'recbole-stdout.log'})")
    t0 = time.perf_counter()
    with (out / "recbole-stdout.log").open("w") as stdout:
        rc = subprocess.run(
            [str(python), str(REPO / "scripts" / "_recbole_sasrec.py"), "--spec",
             str(spec_path), "--result", str(result_path)],
            cwd=rb_work, env=env, stdout=stdout, stderr=subprocess.STDOUT).returncode
    logs = sorted(set((rb_work / "log").rglob("*.log")) - before,
                  key=lambda p: p.stat().st_mtime)
    if logs:
        shutil.copyfile(logs[-1], out / "recbole.log")
    if rc != 0:
        raise SystemExit(f"RecBole failed (exit {rc}); see {out / 'recbole-stdout.log'}")
    log(f"RecBole: done in {time.perf_counter() - t0:.0f} s")
    result = json.loads(result_path.read_text())
    return result


# -- 3. aisle ----------------------------------------------------------------------------
class EpochTimer:
    """aisle's `FitProgress`: each epoch's training time (up to its last batch)."""

    def __init__(self) -> None:
        self.mark, self.cpu_mark = time.perf_counter(), time.process_time()
        self.train_s: dict[int, float] = {}
        self.train_cpu_s: dict[int, float] = {}

    def on_batch(self, epoch: int, done: int, total: int) -> None:
        if done == total:
            self.train_s[epoch] = time.perf_counter() - self.mark
            # CPU seconds (all threads) as well: wall time on a shared machine varies.
            self.train_cpu_s[epoch] = time.process_time() - self.cpu_mark

    def on_epoch(self, log_line: Any, max_epochs: int) -> None:
        self.mark, self.cpu_mark = time.perf_counter(), time.process_time()
        log(f"aisle: epoch {log_line.epoch} loss {log_line.loss:.4f} valid NDCG@10 "
            f"{log_line.valid_ndcg10:.4f} ({log_line.seconds:.1f} s)")


def steady(seconds: list[float]) -> float | None:
    """The median of per-epoch times after the first epoch (the first when alone)."""
    return statistics.median(seconds[1:] or seconds) if seconds else None


def run_aisle(args: argparse.Namespace, data: Path, out: Path, work: Path
              ) -> dict[str, Any]:
    """aisle's SASRec trained (or loaded from `work`) and its per-user test ranks."""
    from aisle.evals.rec_data import load_rec_data
    from aisle.tools.recommenders import (
        ModelConfigs,
        ModelKind,
        SASRecConfig,
        leave_one_out,
        train_model,
    )

    rec = load_rec_data(data, NAME)  # as `aisle rec eval --data OUT/data --dataset BeautySub`
    config = SASRecConfig(hidden=64, layers=2, heads=2, inner=256, dropout=args.dropout,
                          max_len=args.max_len, lr=args.lr, batch_tokens=args.batch,
                          max_epochs=args.epochs, patience=args.stopping_step + 1,
                          max_minutes=None, seed=args.seed)
    split = leave_one_out(rec.dataset, rec.split)
    timer = EpochTimer()
    log("aisle: training SASRec")
    t0 = time.perf_counter()
    trained = train_model(rec.dataset, ModelKind.sasrec, ModelConfigs(sasrec=config),
                          rec.split, split=split, home=work / "aisle-home",
                          progress=timer, threads=args.threads)
    fit_seconds = time.perf_counter() - t0
    users = [u for u, _, _ in split.test]
    histories = [h for _, h, _ in split.test]
    targets = [t for _, _, t in split.test]
    t1 = time.perf_counter()
    ranks = trained.model.rank_targets(histories, targets)
    ranked = trained.model.rank_targets(histories, targets, exclude_history=False)
    rank_seconds = time.perf_counter() - t1
    record = trained.record
    epochs = record.history
    previous = out / "aisle-ranks.json"
    if trained.loaded and previous.is_file():  # keep the timing of the run that trained
        before = json.loads(previous.read_text())
        if before.get("checkpoint") == str(trained.folder):
            timer.train_s = {int(k): v for k, v in before.get("train_seconds", {}).items()}
            timer.train_cpu_s = {int(k): v
                                 for k, v in before.get("train_cpu_seconds", {}).items()}
    seqs = split.train_sequences
    result = {
        "config": config.model_dump(mode="json"), "checkpoint": str(trained.folder),
        "loaded": trained.loaded, "threads": args.threads,
        "dataset": {**rec.dataset.summary(), "fingerprint": rec.dataset.fingerprint,
                    # SASRec trains on each sequence's last max_len + 1 items only.
                    "train_targets": sum(min(len(s), args.max_len + 1) - 1
                                         for s in seqs if len(s) >= 2)},
        "epochs_trained": record.epochs, "best_epoch": record.best_epoch,
        "best_valid_ndcg10": record.valid_ndcg10, "best_valid_recall10": record.valid_recall10,
        "stopped_early": record.stopped_early,
        # Medians over the epochs after the first, which carries one-off start-up costs.
        "seconds_per_epoch": steady([e.seconds for e in epochs]),
        "train_seconds_per_epoch": steady([timer.train_s[k] for k in sorted(timer.train_s)]),
        "train_cpu_seconds_per_epoch": steady([timer.train_cpu_s[k]
                                               for k in sorted(timer.train_cpu_s)]),
        # Training and validation summed over the (resumed) runs that trained it;
        # this_run_seconds is about 0 when the finished model was only loaded.
        "fit_seconds": record.seconds, "this_run_seconds": fit_seconds,
        "rank_seconds": rank_seconds, "train_seconds": timer.train_s,
        "train_cpu_seconds": timer.train_cpu_s,
        "curve": [e.model_dump(mode="json") for e in epochs],
        "targets": dict(zip(users, targets, strict=True)),
        "ranks": dict(zip(users, ranks, strict=True)),
        "ranks_history_ranked": dict(zip(users, ranked, strict=True)),
    }
    write_atomic(out / "aisle-ranks.json", json.dumps(result, indent=1) + "\n")
    return result


# -- 4. the comparison -------------------------------------------------------------------
def per_user(ranks: Sequence[int | None], metric: str) -> list[float]:
    from aisle.evals.metrics import hit_at_k, ndcg_at_k

    name, _, k = metric.partition("@")
    score = ndcg_at_k if name == "ndcg" else hit_at_k
    return [score(r, int(k)) for r in ranks]


def compare(aisle: dict[str, Any], recbole: dict[str, Any], key: str, users: list[str],
            seed: int) -> dict[str, Any]:
    """Both sides' metrics with intervals, and the paired differences, on `key` ranks."""
    from aisle.evals.metrics import bootstrap_ci
    from aisle.evals.text_metrics import paired_bootstrap

    out: dict[str, Any] = {}
    for metric in METRICS:
        a = per_user([aisle[key][u] for u in users], metric)
        b = per_user([recbole[key][u] for u in users], metric)
        ca, cb = bootstrap_ci(a, seed=seed), bootstrap_ci(b, seed=seed)
        diff = paired_bootstrap(a, b, seed=seed)
        out[metric] = {
            "aisle": ca.as_dict(), "recbole": cb.as_dict(),
            "paired_diff_aisle_minus_recbole": diff.as_dict(),
            "agree": diff.low <= 0.0 <= diff.high,
            "marginal_intervals_overlap": ca.low <= cb.high and cb.low <= ca.high,
        }
    return out


def training_summary(side: dict[str, Any], recbole: bool) -> dict[str, Any]:
    keys = ["epochs_trained", "best_epoch", "best_valid_ndcg10", "fit_seconds"]
    keys += (["train_seconds_per_epoch", "valid_seconds_per_epoch"] if recbole
             else ["seconds_per_epoch", "train_seconds_per_epoch"])
    keys.append("train_cpu_seconds_per_epoch")
    return {k: side.get(k) for k in keys}


def fmt_ci(c: dict[str, float]) -> str:
    return f"{c['mean']:.4f} [{c['ci_low']:.4f}, {c['ci_high']:.4f}]"


def markdown(report: dict[str, Any]) -> str:
    s = report["sample"]
    lines = [
        "# aisle's SASRec against RecBole 1.2.0's, on the same split",
        "",
        f"Sample: {s['users']:,} users of `{Path(s['source']).name}` (seed {s['seed']}), "
        f"{s['items']:,} items, {s['interactions']:,} interactions. Leave-one-out (last "
        "item test, second-to-last validation), full ranking over the catalog, "
        f"{report['test_users']:,} test users, 95% bootstrap intervals over users "
        f"(seed {report['bootstrap_seed']}); the paired difference is aisle - RecBole per "
        "user. *Agree*: the paired interval contains 0.",
        "",
        f"Settings: {report['settings_text']}",
        "",
        "**Agreement** (the paired 95% interval of NDCG@10 and of Recall@10 contains 0, "
        f"history items excluded): **{'yes' if report['agree'] else 'no'}**.",
        "",
    ]
    for key, title in (("history_excluded", "History items excluded (primary)"),
                       ("history_ranked", "History items ranked (RecBole's own protocol)")):
        lines += [f"## {title}", "",
                  "| metric | aisle | RecBole | aisle - RecBole (paired) | agree | "
                  "intervals overlap |", "|---|---|---|---|---|---|"]
        for metric, m in report[key].items():
            d = m["paired_diff_aisle_minus_recbole"]
            lines.append(
                f"| {metric} | {fmt_ci(m['aisle'])} | {fmt_ci(m['recbole'])} | "
                f"{d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] | "
                f"{'yes' if m['agree'] else 'no'} | "
                f"{'yes' if m['marginal_intervals_overlap'] else 'no'} |")
        lines.append("")
    lines += ["## Training", "",
              "Per-epoch times are medians over the epochs after the first (one-off "
              "start-up costs); CPU seconds count every thread; fit s is the whole "
              "training with validation.", "",
              "| | epochs | best epoch | best valid NDCG@10 | s/epoch (train) | "
              "CPU s/epoch (train) | s/epoch (train + valid) | fit s |",
              "|---|---|---|---|---|---|---|---|"]
    for side, t in report["training"].items():
        train_s = t.get("train_seconds_per_epoch")
        total = (t["seconds_per_epoch"] if "seconds_per_epoch" in t
                 else (t["train_seconds_per_epoch"] or 0) + (t["valid_seconds_per_epoch"] or 0))
        cpu_s = t.get("train_cpu_seconds_per_epoch")
        lines.append(f"| {side} | {t['epochs_trained']} | {t['best_epoch']} | "
                     f"{t['best_valid_ndcg10']:.4f} | "
                     f"{'' if train_s is None else f'{train_s:.1f}'} | "
                     f"{'' if cpu_s is None else f'{cpu_s:.1f}'} | {total:.1f} | "
                     f"{t['fit_seconds']:.1f} |")
    rb = report["recbole_check"]
    lines += [
        "",
        f"RecBole's own test evaluator: {rb['recbole_evaluator']}; the same metrics from "
        f"the per-user ranks (history ranked): "
        f"{ {k: round(v, 6) for k, v in rb['from_ranks'].items()} } "
        f"(reproduced: {'yes' if rb['reproduced'] else 'NO'}).",
        "",
        "Known differences kept as they are: " + " ".join(report["differences"]),
        "",
        f"Made by `{report['command']}`.",
        "",
    ]
    return "\n".join(lines)


DIFFERENCES = (
    "RecBole validates (for early stopping) with history items ranked, aisle with them "
    "excluded.",
    "RecBole trains on every prefix of each training sequence (its last max_len items as "
    "input); aisle on each sequence's last max_len + 1 items only (see train_targets).",
    "aisle's encoder (torch.nn.TransformerEncoderLayer) has one more dropout, inside the "
    "feed-forward block, than RecBole's.",
    "RecBole counts a tied validation score as an improvement, aisle does not.",
)


def main(argv: list[str] | None = None) -> int:
    from aisle.settings import get_settings
    from aisle.tools.recommenders import SASRecConfig

    defaults = SASRecConfig()
    parser = argparse.ArgumentParser(
        description="aisle's SASRec against RecBole's on a seeded sample of Beauty's users "
                    "(see the module docstring).")
    parser.add_argument("--source", type=Path,
                        default=get_settings().data / "amazon-seq" / "Beauty.txt",
                        help="S3-Rec sequence file to sample (default: the shared Beauty).")
    parser.add_argument("--users", type=int, default=6000, help="Users sampled (6000).")
    parser.add_argument("--seed", type=int, default=2023,
                        help="Sample, RecBole and aisle seed (2023).")
    parser.add_argument("--max-len", type=int, default=20,
                        help="Most recent items a history keeps (20).")
    parser.add_argument("--epochs", type=int, default=100, help="Most epochs (100).")
    parser.add_argument("--stopping-step", type=int, default=5,
                        help="RecBole's stopping_step (5); aisle's patience is one more.")
    parser.add_argument("--lr", type=float, default=defaults.lr,
                        help=f"Adam's learning rate (aisle's default, {defaults.lr}).")
    parser.add_argument("--dropout", type=float, default=defaults.dropout,
                        help=f"Hidden and attention dropout (aisle's default, "
                             f"{defaults.dropout}).")
    parser.add_argument("--batch", type=int, default=defaults.batch_tokens,
                        help=f"Training targets per batch (aisle's default, "
                             f"{defaults.batch_tokens}).")
    parser.add_argument("--threads", type=int, default=2, help="Torch threads (2).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="Report folder (refused if it holds a report already).")
    parser.add_argument("--work", type=Path, default=None,
                        help="Checkpoints (default .aisle/recbole-agreement/<OUT name>).")
    parser.add_argument("--recbole-venv", type=Path, default=REPO / ".venv-recbole",
                        help="The throwaway RecBole venv (created when missing).")
    parser.add_argument("--bootstrap-seed", type=int, default=0)
    parser.add_argument("--force", action="store_true",
                        help="Rerun RecBole even if OUT holds its ranks.")
    args = parser.parse_args(argv)
    # On SIGTERM (a `timeout`, a closed session) unwind like Ctrl-C, so subprocess.run
    # kills RecBole's process instead of leaving it running.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    out = args.out.resolve()
    if (out / "agreement.json").exists() or (out / "agreement.md").exists():
        raise SystemExit(f"{out} already holds a report; it is never overwritten: pass "
                         "another --out (e.g. the next -vN)")
    out.mkdir(parents=True, exist_ok=True)
    work = (args.work or REPO / ".aisle" / "recbole-agreement" / out.name).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    command = "python scripts/recbole_agreement.py " + " ".join(
        sys.argv[1:] if argv is None else argv)

    sample = write_sample(args.source.resolve(), args.users, args.seed, data)
    log(f"sample: {sample['users']} users, {sample['items']} items, "
        f"{sample['interactions']} interactions in {data}")
    recbole = run_recbole(args, sample, data, out, work)
    aisle = run_aisle(args, data, out, work)

    # The same test users and targets on both sides.
    if aisle["targets"] != recbole["targets"]:
        only_a = sorted(set(aisle["targets"]) - set(recbole["targets"]))[:5]
        only_b = sorted(set(recbole["targets"]) - set(aisle["targets"]))[:5]
        differ = [u for u in aisle["targets"] if u in recbole["targets"]
                  and aisle["targets"][u] != recbole["targets"][u]][:5]
        raise SystemExit(f"the two test sets differ: only aisle {only_a}, only RecBole "
                         f"{only_b}, other target {differ}")
    users = list(aisle["targets"])
    if recbole["dataset"]["items"] != aisle["dataset"]["items"]:
        raise SystemExit(f"catalogs differ: RecBole {recbole['dataset']['items']} items, "
                         f"aisle {aisle['dataset']['items']}")

    report = {
        "sample": sample, "test_users": len(users), "bootstrap_seed": args.bootstrap_seed,
        "settings": {"max_len": args.max_len, "hidden": 64, "layers": 2, "heads": 2,
                     "inner": 256, "dropout": args.dropout, "lr": args.lr,
                     "batch": args.batch, "epochs_cap": args.epochs,
                     "recbole_stopping_step": args.stopping_step,
                     "aisle_patience": args.stopping_step + 1, "seed": args.seed,
                     "threads": args.threads, "loss": "CE over the catalog"},
        "settings_text": (
            f"hidden 64, 2 layers, 2 heads, feed-forward 256, dropout {args.dropout} "
            f"(hidden and attention), Adam lr {args.lr}, {args.batch} targets a batch, "
            f"the last {args.max_len} items, CE over the whole catalog, early stopping on "
            f"validation NDCG@10 (RecBole stopping_step {args.stopping_step}, aisle "
            f"patience {args.stopping_step + 1}), at most {args.epochs} epochs, seed "
            f"{args.seed}, {args.threads} torch threads."),
        "history_excluded": compare(aisle, recbole, "ranks", users, args.bootstrap_seed),
        "history_ranked": compare(aisle, recbole, "ranks_history_ranked", users,
                                  args.bootstrap_seed),
        "training": {"aisle": training_summary(aisle, False),
                     "recbole": training_summary(recbole, True)},
        "train_targets": {"aisle": aisle["dataset"]["train_targets"],
                          "recbole": recbole["dataset"]["train_examples"]},
        "recbole_check": {"recbole_evaluator": recbole["test_recbole_evaluator"],
                          "from_ranks": recbole["test_from_ranks_history_ranked"],
                          "reproduced": recbole["ranks_reproduce_recbole"]},
        "versions": {"recbole": recbole["recbole_version"],
                     "recbole_torch": recbole["torch_version"],
                     "recbole_numpy": recbole["numpy_version"]},
        "differences": list(DIFFERENCES),
        "files": {"recbole": "recbole-ranks.json", "aisle": "aisle-ranks.json",
                  "recbole_log": "recbole.log", "recbole_stdout": "recbole-stdout.log"},
        "command": command.strip(),
    }
    report["agree"] = all(report["history_excluded"][m]["agree"] for m in AGREEMENT_METRICS)
    write_atomic(out / "agreement.md", markdown(report))
    write_atomic(out / "agreement.json", json.dumps(report, indent=1) + "\n")
    for metric in AGREEMENT_METRICS:
        m = report["history_excluded"][metric]
        d = m["paired_diff_aisle_minus_recbole"]
        log(f"{metric}: aisle {fmt_ci(m['aisle'])}, RecBole {fmt_ci(m['recbole'])}, "
            f"paired {d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] -> "
            f"{'agree' if m['agree'] else 'DISAGREE'}")
    log(f"report: {out / 'agreement.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
