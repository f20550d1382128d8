"""Popularity: every user gets the items seen most often in training.

The score of an item is its number of training interactions; the history only
decides what is excluded. A cheap reference every sequential model must beat.

Example:
    >>> model = Popularity().fit([["a", "b"], ["b"]], items=["a", "b", "c"])
    >>> model.recommend(["a"], k=3)
    [ScoredItem(item_id='b', score=2.0), ScoredItem(item_id='c', score=0.0)]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np

from aisle.tools.recommenders._files import read_npz, write_npz
from aisle.tools.recommenders.base import (
    CatalogRecommender,
    FitProgress,
    FloatArray,
    IntArray,
    TrainingRecord,
)

__all__ = ["Popularity"]


class Popularity(CatalogRecommender):
    """Items ordered by their training interaction count (ties by catalog order)."""

    kind: ClassVar[str] = "pop"

    def __init__(self) -> None:
        super().__init__()
        self._counts: FloatArray = np.zeros(1, dtype=np.float32)

    def _fit(self, train: list[IntArray], valid: tuple[list[IntArray], IntArray] | None,
             checkpoint_dir: Path | None, progress: FitProgress | None) -> TrainingRecord:
        started = time.perf_counter()
        flat = np.concatenate(train) if train else np.zeros(0, dtype=np.int64)
        self._counts = np.bincount(flat, minlength=self.n_items + 1).astype(np.float32)
        record = TrainingRecord(model=self.kind, seconds=time.perf_counter() - started)
        if valid is not None:
            scores = self.validate(*valid)
            record = record.model_copy(update={"valid_ndcg10": scores["ndcg@10"],
                                               "valid_recall10": scores["recall@10"]})
        return record

    def _score_batch(self, histories: Sequence[IntArray]) -> FloatArray:
        return np.broadcast_to(self._counts, (len(histories), self._counts.size)).copy()

    def save(self, path: Path) -> None:
        self._check_fitted()
        write_npz(path, self.kind, self._items, self._training, {}, counts=self._counts)

    @classmethod
    def load(cls, path: Path) -> Self:
        model = cls()
        items, training, _, arrays = read_npz(path, cls.kind)
        model._set_items(items)
        model._training = training
        model._counts = arrays["counts"].astype(np.float32)
        return model
