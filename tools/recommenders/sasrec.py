"""SASRec, the self-attentive sequential recommender, trained in PyTorch on the CPU.

Architecture (`_sasrec_net.SASRecNet`): a causal transformer over item plus position
embeddings; a user's next-item scores are the dot products of the last position's
hidden state with the item embeddings, the same table as the input's (shared input and
output embeddings). The architecture's defaults follow RecBole's SASRec: hidden 64, 2
layers, 2 heads, feed-forward 256 (GELU), the last 50 items; the training defaults (Adam at
2e-3, dropout 0.3, 512-token batches) were tuned on Beauty's validation split
(`SASRecConfig`).

Loss: **full-softmax cross-entropy over the whole catalog** at every position of every
training sequence (each prefix predicts its next item), not BCE with sampled
negatives; 12k-18k items make the full softmax cheap on a CPU.

Training:

- length-bucketed batches (`_batching`): sequences of like length share a batch, each
  batch within a token budget (`batch_tokens`), batch order shuffled per epoch;
- `torch.set_num_threads` from `threads` (default: the `rec_threads` setting, 0 =
  every core), restored afterwards;
- after each epoch, validation NDCG@10 over the whole catalog (history items excluded);
  training stops after `patience` epochs without a better one and keeps the best
  epoch's weights;
- with `max_minutes`, a wall-clock budget: no epoch starts that, as long as the last
  one, would end past it (the record says `stopped_by_time`); the budget is part of the
  config, so of the checkpoint key;
- with a `checkpoint_dir`, the full training state (weights, optimizer, best weights,
  random state, curve) is written after every epoch, and a later `fit` with the same
  folder continues at the next epoch: an interrupted training loses at most the epoch
  under way, and continues exactly as an uninterrupted one would.

Example:
    >>> seqs = [["a", "b", "c"], ["a", "b", "d"], ["b", "c", "a"]] * 4
    >>> model = SASRec(SASRecConfig(hidden=8, inner=8, max_epochs=2, dropout=0.0))
    >>> model = model.fit(seqs, threads=1)
    >>> model.training.epochs, len(model.recommend(["a", "b"], k=2))
    (2, 2)
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from aisle.errors import ConfigurationError
from aisle.settings import get_settings
from aisle.tools.recommenders._batching import (
    bucketed_order,
    random_order,
    token_batches,
)
from aisle.tools.recommenders._files import atomic_target
from aisle.tools.recommenders._sasrec_net import SASRecNet
from aisle.tools.recommenders.base import (
    CatalogRecommender,
    EpochLog,
    FitProgress,
    FloatArray,
    IntArray,
    TrainingRecord,
    ValidationPair,
)
from aisle.tools.recommenders.config import SASRecConfig

__all__ = ["SASRec", "resolve_threads", "torch_threads"]

STATE_FILE = "state.pt"
"""The per-epoch training state inside a checkpoint folder."""


def resolve_threads(threads: int | None) -> int:
    """Torch threads to use: `threads`, else the `rec_threads` setting; 0 = every core."""
    n = get_settings().rec_threads if threads is None else threads
    if n > 0:
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run torch on `resolve_threads(threads)` threads inside, restore after."""
    want, before = resolve_threads(threads), torch.get_num_threads()
    if want != before:
        torch.set_num_threads(want)
    try:
        yield want
    finally:
        if want != before:
            torch.set_num_threads(before)


class SASRec(CatalogRecommender):
    """SASRec (see the module docstring for the loss and the training loop)."""

    kind: ClassVar[str] = "sasrec"

    def __init__(self, config: SASRecConfig | None = None, *, threads: int | None = None
                 ) -> None:
        super().__init__()
        self.config = config or SASRecConfig()
        self.threads = threads
        self._net: SASRecNet | None = None

    def config_dict(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def fit(self, sequences: Sequence[Sequence[str]], *, items: Sequence[str] | None = None,
            validation: Sequence[ValidationPair] | None = None,
            checkpoint_dir: Path | None = None, progress: FitProgress | None = None,
            threads: int | None = None) -> Self:
        """`CatalogRecommender.fit`, plus `threads` (this fit only; default: the model's
        `threads`, else the `rec_threads` setting)."""
        if threads is not None:
            self.threads = threads
        return super().fit(sequences, items=items, validation=validation,
                           checkpoint_dir=checkpoint_dir, progress=progress)

    def _new_net(self) -> SASRecNet:
        c = self.config
        return SASRecNet(self.n_items, hidden=c.hidden, layers=c.layers, heads=c.heads,
                         inner=c.inner, dropout=c.dropout, max_len=c.max_len)

    # -- training --------------------------------------------------------------------
    def _fit(self, train: list[IntArray], valid: tuple[list[IntArray], IntArray] | None,
             checkpoint_dir: Path | None, progress: FitProgress | None) -> TrainingRecord:
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            return self._train(train, valid, checkpoint_dir, progress)

    def _train(self, train: list[IntArray], valid: tuple[list[IntArray], IntArray] | None,
               checkpoint_dir: Path | None, progress: FitProgress | None) -> TrainingRecord:
        c = self.config
        seqs = [s[-(c.max_len + 1):] for s in train if len(s) >= 2]
        if not seqs:
            raise ConfigurationError("SASRec needs training sequences of at least 2 items")
        lengths = np.array([len(s) - 1 for s in seqs], dtype=np.int64)
        torch.manual_seed(c.seed)
        net = self._net = self._new_net()
        optimizer = torch.optim.Adam(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        state = _State()
        path = checkpoint_dir / STATE_FILE if checkpoint_dir is not None else None
        if path is not None and path.is_file():
            state = self._resume(path, net, optimizer)
        resumed_at = state.epoch + 1 if state.epoch and not state.done else None
        epoch = state.epoch
        while not state.done and epoch < c.max_epochs:
            epoch += 1
            t0 = time.perf_counter()
            loss = self._epoch(net, optimizer, seqs, lengths, epoch, progress)
            scores = self.validate(*valid) if valid is not None else None
            ndcg = scores["ndcg@10"] if scores else None
            # Without validation the last epoch is the one kept.
            best = ndcg is None or state.best_epoch is None or ndcg > state.best_score
            if best:
                state.best_epoch, state.best_score = epoch, ndcg if ndcg is not None else 0.0
                state.best_weights = copy.deepcopy(net.state_dict())
                state.bad_epochs = 0
            else:
                state.bad_epochs += 1
            log = EpochLog(epoch=epoch, loss=loss, valid_ndcg10=ndcg,
                           valid_recall10=scores["recall@10"] if scores else None,
                           seconds=time.perf_counter() - t0, best=best)
            state.history.append(log)
            state.epoch = epoch
            state.stopped_early = state.bad_epochs >= c.patience
            state.seconds += time.perf_counter() - t0
            # Another epoch as long as this one would end past the budget: stop now.
            state.stopped_by_time = (
                not state.stopped_early and epoch < c.max_epochs
                and c.max_minutes is not None
                and state.seconds + (time.perf_counter() - t0) > c.max_minutes * 60)
            state.done = state.stopped_early or state.stopped_by_time or epoch >= c.max_epochs
            if path is not None:
                self._checkpoint(path, net, optimizer, state)
            if progress is not None:
                progress.on_epoch(log, c.max_epochs)
            if state.stopped_early or state.stopped_by_time:
                break
        if state.best_weights is not None:
            net.load_state_dict(state.best_weights)
        net.eval()
        best_log = next((h for h in state.history if h.epoch == state.best_epoch), None)
        return TrainingRecord(
            model=self.kind, epochs=state.epoch, best_epoch=state.best_epoch,
            stopped_early=state.stopped_early, stopped_by_time=state.stopped_by_time,
            seconds=state.seconds, resumed_at=resumed_at,
            valid_ndcg10=best_log.valid_ndcg10 if best_log else None,
            valid_recall10=best_log.valid_recall10 if best_log else None,
            history=list(state.history))

    def _epoch(self, net: SASRecNet, optimizer: torch.optim.Optimizer, seqs: list[IntArray],
               lengths: IntArray, epoch: int, progress: FitProgress | None) -> float:
        c = self.config
        rng = np.random.default_rng([c.seed, epoch])
        order = (bucketed_order if c.bucketing else random_order)(lengths, rng)
        batches = token_batches(order, lengths, c.batch_tokens)
        batches = [batches[i] for i in rng.permutation(len(batches))]
        net.train()
        total, tokens = 0.0, 0
        weight = net.item.weight
        for done, batch in enumerate(batches, 1):
            x = _pad([seqs[i] for i in batch])
            inputs, targets = x[:, :-1], x[:, 1:]
            hidden = net.hidden_states(inputs)
            real = targets > 0
            # Full softmax over the catalog (padding row left out): targets shift by 1.
            logits = hidden[real] @ weight[1:].T
            loss = torch.nn.functional.cross_entropy(logits, targets[real] - 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            n = int(real.sum())
            total += float(loss.detach()) * n
            tokens += n
            if progress is not None:
                progress.on_batch(epoch, done, len(batches))
        return total / max(tokens, 1)

    # -- checkpoints -----------------------------------------------------------------
    def _checkpoint(self, path: Path, net: SASRecNet, optimizer: torch.optim.Optimizer,
                    state: _State) -> None:
        tmp = atomic_target(path)
        torch.save({"config": self.config_dict(), "items": len(self._items),
                    "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                    "rng": torch.get_rng_state(), **state.as_dict()}, tmp)
        os.replace(tmp, path)

    def _resume(self, path: Path, net: SASRecNet, optimizer: torch.optim.Optimizer) -> _State:
        saved = torch.load(path, weights_only=True)
        if saved["config"] != self.config_dict() or saved["items"] != len(self._items):
            raise ConfigurationError(
                f"the checkpoint {path} was made with another config or catalog; delete "
                f"{path.parent} to train from scratch")
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        return _State.from_dict(saved)

    # -- scoring and files -----------------------------------------------------------
    @property
    def net(self) -> SASRecNet:
        if self._net is None:
            self._check_fitted()
            raise ConfigurationError("SASRec has a catalog but no network; fit or load it")
        return self._net

    def _score_batch(self, histories: Sequence[IntArray]) -> FloatArray:
        net = self.net
        net.eval()
        seqs = [h[-self.config.max_len:] for h in histories]
        with torch_threads(self.threads), torch.inference_mode():
            x = _pad(seqs)
            hidden = net.hidden_states(x)
            last = torch.tensor([len(s) - 1 for s in seqs])
            scores = net.item_scores(hidden[torch.arange(len(seqs)), last])
        out: FloatArray = scores.numpy().astype(np.float32, copy=False)
        return out

    def save(self, path: Path) -> None:
        self._check_fitted()
        tmp = atomic_target(path)
        torch.save({"kind": self.kind, "config": self.config_dict(), "items": list(self._items),
                    "training": self._training.model_dump(mode="json")
                    if self._training else None, "model": self.net.state_dict()}, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, *, threads: int | None = None) -> Self:
        try:
            saved = torch.load(path, weights_only=True)
        except (OSError, RuntimeError) as e:
            raise ConfigurationError(f"{path} is not a saved SASRec ({e}); train it again "
                                     "with `aisle rec train`") from e
        if not isinstance(saved, dict) or saved.get("kind") != cls.kind:
            raise ConfigurationError(f"{path} does not hold a SASRec model")
        model = cls(SASRecConfig.model_validate(saved["config"]), threads=threads)
        model._set_items(saved["items"])
        model._training = (TrainingRecord.model_validate(saved["training"])
                           if saved["training"] else None)
        net = model._new_net()
        net.load_state_dict(saved["model"])
        net.eval()
        model._net = net
        return model


class _State:
    """The training loop's state between epochs (what a checkpoint restores)."""

    def __init__(self) -> None:
        self.epoch = 0
        self.best_epoch: int | None = None
        self.best_score = 0.0
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.stopped_by_time = False
        self.done = False
        self.seconds = 0.0
        self.history: list[EpochLog] = []

    def as_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "best_epoch": self.best_epoch,
                "best_score": self.best_score, "best_weights": self.best_weights,
                "bad_epochs": self.bad_epochs, "stopped_early": self.stopped_early,
                "stopped_by_time": self.stopped_by_time, "done": self.done, "seconds": self.seconds,
                "history": [h.model_dump(mode="json") for h in self.history]}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> _State:
        state = cls()
        for key in ("epoch", "best_epoch", "best_score", "best_weights", "bad_epochs",
                    "stopped_early", "done", "seconds"):
            setattr(state, key, saved[key])
        state.stopped_by_time = bool(saved.get("stopped_by_time", False))
        state.history = [EpochLog.model_validate(h) for h in saved["history"]]
        return state


def _pad(seqs: Sequence[IntArray]) -> torch.Tensor:
    """Right-pad index sequences with 0 into one `(batch, longest)` tensor."""
    out = np.zeros((len(seqs), max(len(s) for s in seqs)), dtype=np.int64)
    for row, s in enumerate(seqs):
        out[row, :len(s)] = s
    return torch.from_numpy(out)
