"""RecBole 1.2.0's SASRec on one atomic dataset, with every test user's rank.

The RecBole half of `scripts/recbole_agreement.py`, which runs it under the throwaway
RecBole venv (never aisle's: RecBole pins old pandas and NumPy), writes its spec and
reads its result. It imports only the standard library, NumPy, torch and RecBole, never
`aisle`::

    .venv-recbole/bin/python scripts/_recbole_sasrec.py --spec SPEC.json --result OUT.json

`SPEC.json`: `{"recbole": RecBole's config dict, "threads": torch threads, "sequences":
the S3-Rec NAME.txt the atomic file was made from}`. Run it in a scratch folder:
RecBole writes `log/` and `log_tensorboard/` into the working directory.

RecBole's modules are imported directly rather than through `recbole.quick_start`
(which imports `ray`, not installed), and the aliases NumPy 2 removed are put back.

After training, RecBole's own test evaluation runs (the best epoch's weights), then
each test user's rank is computed from the same scores `Trainer._full_sort_batch_eval`
uses (`model.full_sort_predict`, item 0, the padding, at -inf), twice:

- `ranks`: the user's whole history (every item before the test target) at -inf, the
  protocol `aisle rec eval` uses;
- `ranks_history_ranked`: nothing else at -inf. For sequential models RecBole's
  evaluation excludes no history (its `FullSortEvalDataLoader` gives no history
  index), so these reproduce RecBole's own test metrics, a check on the ranks.

A rank counts the items scored strictly higher plus the equal ones of lower internal
id, plus one; a target at -inf is a miss (null). Users and items are written as the
dataset's tokens (`dataset.id2token`), so they match the S3-Rec file's ids.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# RecBole 1.2.0 still uses aliases NumPy 2 removed; put them back before importing it.
for _alias, _kind in (("float_", np.float64), ("complex_", np.complex128),
                      ("unicode_", np.str_), ("int_", np.int64)):
    if not hasattr(np, _alias):
        setattr(np, _alias, _kind)

import torch  # noqa: E402

_torch_load = torch.load


def _load_own_checkpoint(*args: Any, **kwargs: Any) -> Any:
    """`torch.load` with `weights_only=False` unless the caller says otherwise.

    `Trainer.evaluate(load_best_model=True)` reloads the checkpoint RecBole itself wrote
    earlier in this same process (a trusted local file in this run's scratch folder); it
    pickles RecBole's config, which torch >= 2.6 refuses under its `weights_only=True`
    default (`UnpicklingError ... Unsupported operand 149`). Nothing else is loaded here.
    """
    kwargs.setdefault("weights_only", False)
    return _torch_load(*args, **kwargs)


torch.load = _load_own_checkpoint  # type: ignore[assignment]


def read_sequences(path: Path) -> dict[str, list[str]]:
    """S3-Rec `user item item ...` lines -> {user: items, oldest first}."""
    out: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts:
                out[parts[0]] = parts[1:]
    return out


def rank_of(scores: torch.Tensor, target: int) -> int | None:
    """1-based rank of `target` in one row of scores (ties: lower id ahead); None: -inf."""
    own = scores[target]
    if not bool(torch.isfinite(own)):
        return None
    ahead = int((scores > own).sum()) + int((scores[:target] == own).sum())
    return ahead + 1


def metrics_of(ranks: list[int | None]) -> dict[str, float]:
    """Recall@5/10 and NDCG@5/10 of 1-based ranks (None: a miss)."""
    out: dict[str, float] = {}
    for k in (5, 10):
        hits = [r for r in ranks if r is not None and r <= k]
        out[f"recall@{k}"] = len(hits) / len(ranks)
        out[f"ndcg@{k}"] = sum(1.0 / math.log2(r + 1) for r in hits) / len(ranks)
    return out


def steady(seconds: list[float]) -> float | None:
    """The median of per-epoch times after the first epoch (the first when alone)."""
    return statistics.median(seconds[1:] or seconds) if seconds else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text())
    torch.set_num_threads(int(spec["threads"]))

    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    class TimedTrainer(Trainer):  # type: ignore[misc]
        """RecBole's trainer, timing each epoch's training and validation."""

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.curve: list[dict[str, Any]] = []

        def _train_epoch(self, *a: Any, **kw: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            loss = super()._train_epoch(*a, **kw)
            # CPU seconds (all threads) as well: wall time on a shared machine varies.
            self.curve.append({"epoch": len(self.curve) + 1, "loss": float(loss),
                               "train_s": time.perf_counter() - t0,
                               "train_cpu_s": time.process_time() - c0})
            return loss

        def _valid_epoch(self, *a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            score, result = super()._valid_epoch(*a, **kw)
            self.curve[-1].update({"valid_s": time.perf_counter() - t0,
                                   "valid_ndcg10": float(score),
                                   "valid": {k: float(v) for k, v in result.items()}})
            return score, result

    started = time.perf_counter()
    config = Config(model="SASRec", config_dict=spec["recbole"])
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    interactions = int(dataset.inter_num)  # before the split drops each test item
    train_data, valid_data, test_data = data_preparation(config, dataset)
    # As recbole.quick_start.run_recbole does: reseed, then build the model.
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = SASRec(config, train_data._dataset).to(config["device"])
    trainer = TimedTrainer(config, model)
    fit_started = time.perf_counter()
    best_score, best_result = trainer.fit(train_data, valid_data, saved=True,
                                          show_progress=False)
    fit_seconds = time.perf_counter() - fit_started
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)

    sequences = read_sequences(Path(spec["sequences"]))
    uid, iid = dataset.uid_field, dataset.iid_field
    max_len = int(config["MAX_ITEM_LIST_LENGTH"])
    n_items = dataset.item_num  # the padding id 0 included
    ranks: dict[str, int | None] = {}
    native: dict[str, int | None] = {}
    targets: dict[str, str] = {}
    model.eval()
    with torch.no_grad():
        for interaction, history_index, _, positive_i in test_data:
            if history_index is not None:
                raise SystemExit("RecBole gave a history index for a sequential model; "
                                 "this script assumes 1.2.0's FullSortEvalDataLoader")
            scores = model.full_sort_predict(interaction).view(-1, n_items)
            scores[:, 0] = -np.inf
            users = dataset.id2token(uid, interaction[uid].numpy())
            items = dataset.id2token(iid, positive_i.numpy())
            inputs = interaction[model.ITEM_SEQ].numpy()
            lengths = interaction[model.ITEM_SEQ_LEN].numpy()
            for row, (user, item) in enumerate(zip(users, items, strict=True)):
                user, item = str(user), str(item)
                seq = sequences[user]
                given = [str(t) for t in dataset.id2token(iid, inputs[row, :lengths[row]])]
                # The same split and input as aisle's: last item the target, the history
                # before it, its last MAX_ITEM_LIST_LENGTH items the model's input.
                if item != seq[-1] or given != seq[:-1][-max_len:]:
                    raise SystemExit(f"user {user}: RecBole's test case (input {given}, "
                                     f"target {item}) is not the S3-Rec file's {seq}")
                target = int(dataset.token2id(iid, item))
                native[user] = rank_of(scores[row], target)
                masked = scores[row].clone()
                masked[torch.as_tensor(dataset.token2id(iid, seq[:-1]))] = -np.inf
                ranks[user] = rank_of(masked, target)
                targets[user] = item
    if len(ranks) != len(sequences):
        raise SystemExit(f"RecBole tested {len(ranks)} users, the file has {len(sequences)}")

    from_ranks = metrics_of(list(native.values()))
    recbole_test = {k: float(v) for k, v in test_result.items()}
    places = int(config["metric_decimal_place"])
    curve = trainer.curve
    best_epoch = max((c for c in curve if "valid_ndcg10" in c),
                     key=lambda c: (c["valid_ndcg10"], c["epoch"]), default=None)
    result = {
        "recbole_version": recbole.__version__, "torch_version": torch.__version__,
        "numpy_version": np.__version__, "threads": torch.get_num_threads(),
        "spec": spec,
        "dataset": {"users": dataset.user_num - 1, "items": n_items - 1,
                    "interactions": interactions,
                    "train_examples": len(train_data._dataset)},
        "epochs_trained": len(curve),
        "best_epoch": best_epoch["epoch"] if best_epoch else None,
        "best_valid_ndcg10": float(best_score),
        "best_valid": {k: float(v) for k, v in (best_result or {}).items()},
        # Medians over the epochs after the first, which carries one-off start-up costs.
        "train_seconds_per_epoch": steady([c["train_s"] for c in curve]),
        "valid_seconds_per_epoch": steady([c.get("valid_s", 0.0) for c in curve]),
        "train_cpu_seconds_per_epoch": steady([c["train_cpu_s"] for c in curve]),
        "fit_seconds": fit_seconds, "total_seconds": time.perf_counter() - started,
        "curve": curve,
        "test_recbole_evaluator": recbole_test,
        "test_from_ranks_history_ranked": from_ranks,
        # RecBole rounds its metrics to `metric_decimal_place` places.
        "ranks_reproduce_recbole": all(
            abs(round(from_ranks[k], places) - v) <= 10 ** -places
            for k, v in recbole_test.items() if k in from_ranks),
        "targets": targets,
        "ranks": ranks,
        "ranks_history_ranked": native,
    }
    tmp = args.result.with_name(args.result.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, args.result)
    print(json.dumps({k: result[k] for k in ("epochs_trained", "best_epoch",
                                             "best_valid_ndcg10", "test_recbole_evaluator",
                                             "ranks_reproduce_recbole")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
