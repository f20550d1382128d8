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

import os
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
from aisle.tools.recommenders._epochs import STATE_FILE, EpochBudget, train_epochs
from aisle.tools.recommenders._files import read_torch, write_torch
from aisle.tools.recommenders._sasrec_net import SASRecNet
from aisle.tools.recommenders.base import (
    CatalogRecommender,
    FitProgress,
    FloatArray,
    IntArray,
    TrainingRecord,
    ValidationPair,
)
from aisle.tools.recommenders.config import SASRecConfig

__all__ = ["STATE_FILE", "SASRec", "resolve_threads", "torch_threads"]

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
        return train_epochs(
            self.kind, net, optimizer, EpochBudget(c.max_epochs, c.patience, c.max_minutes),
            run_epoch=lambda epoch: self._epoch(net, optimizer, seqs, lengths, epoch, progress),
            validate=(lambda: self.validate(*valid)) if valid is not None else None,
            extra_state={"config": self.config_dict(), "items": len(self._items)},
            checkpoint_dir=checkpoint_dir, progress=progress)

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
        write_torch(path, self.kind, self._items, self._training, self.config_dict(),
                    self.net.state_dict())

    @classmethod
    def load(cls, path: Path, *, threads: int | None = None) -> Self:
        saved, training = read_torch(
            path, cls.kind, "{path} is not a saved SASRec ({error}); train it again with "
            "`aisle rec train`", "{path} does not hold a SASRec model")
        model = cls(SASRecConfig.model_validate(saved["config"]), threads=threads)
        model._set_items(saved["items"])
        model._training = training
        net = model._new_net()
        net.load_state_dict(saved["model"])
        net.eval()
        model._net = net
        return model


def _pad(seqs: Sequence[IntArray]) -> torch.Tensor:
    """Right-pad index sequences with 0 into one `(batch, longest)` tensor."""
    out = np.zeros((len(seqs), max(len(s) for s in seqs)), dtype=np.int64)
    for row, s in enumerate(seqs):
        out[row, :len(s)] = s
    return torch.from_numpy(out)
