"""Item-kNN: items that co-occur with the user's items in other users' sequences.

Similarity is the cosine of two items' user sets, `c(i, j) / sqrt(n(i) n(j))`, where
`c(i, j)` counts the training sequences holding both and `n(i)` those holding `i`; each
item keeps its `neighbors` most similar items. A user's score for an item is the sum
of its similarities to the history's distinct items (a sparse matrix product).

Example:
    >>> model = ItemKNN().fit([["a", "b"], ["a", "b"], ["a", "c"], ["d"]])
    >>> [(r.item_id, round(r.score, 3)) for r in model.recommend(["a"], k=3)]
    [('b', 0.816), ('c', 0.577), ('d', 0.0)]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from scipy import sparse  # type: ignore[import-untyped]

from aisle.tools.recommenders._files import read_npz, write_npz
from aisle.tools.recommenders.base import (
    CatalogRecommender,
    FitProgress,
    FloatArray,
    IntArray,
    TrainingRecord,
)
from aisle.tools.recommenders.config import ItemKNNConfig

__all__ = ["ItemKNN"]


class ItemKNN(CatalogRecommender):
    """Co-occurrence item-kNN (cosine over users, top `neighbors` per item)."""

    kind: ClassVar[str] = "itemknn"

    def __init__(self, config: ItemKNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or ItemKNNConfig()
        self._sim: sparse.csr_matrix = sparse.csr_matrix((1, 1), dtype=np.float32)

    def config_dict(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def _fit(self, train: list[IntArray], valid: tuple[list[IntArray], IntArray] | None,
             checkpoint_dir: Path | None, progress: FitProgress | None) -> TrainingRecord:
        started = time.perf_counter()
        users = self._incidence(train)
        co = (users.T @ users).tocsr().astype(np.float32)
        counts = np.asarray(co.diagonal(), dtype=np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        norm = np.sqrt(np.maximum(counts, 1.0))
        sim = sparse.diags(1.0 / norm) @ co @ sparse.diags(1.0 / norm)
        self._sim = _keep_top(sim.tocsr().astype(np.float32), self.config.neighbors)
        record = TrainingRecord(model=self.kind, seconds=time.perf_counter() - started)
        if valid is not None:
            scores = self.validate(*valid)
            record = record.model_copy(update={"valid_ndcg10": scores["ndcg@10"],
                                               "valid_recall10": scores["recall@10"]})
        return record

    def _incidence(self, histories: Sequence[IntArray]) -> sparse.csr_matrix:
        """A binary `(len(histories), n_items + 1)` matrix of who holds what."""
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        cols = np.concatenate(histories) if histories else np.zeros(0, dtype=np.int64)
        m = sparse.csr_matrix((np.ones(cols.size, dtype=np.float32), (rows, cols)),
                              shape=(len(histories), self.n_items + 1))
        m.data[:] = 1.0  # duplicates were summed
        return m

    def _score_batch(self, histories: Sequence[IntArray]) -> FloatArray:
        return np.asarray((self._incidence(histories) @ self._sim).toarray(), dtype=np.float32)

    def save(self, path: Path) -> None:
        self._check_fitted()
        write_npz(path, self.kind, self._items, self._training, self.config_dict(),
                  data=self._sim.data, indices=self._sim.indices, indptr=self._sim.indptr)

    @classmethod
    def load(cls, path: Path) -> Self:
        items, training, config, arrays = read_npz(path, cls.kind)
        model = cls(ItemKNNConfig.model_validate(config))
        model._set_items(items)
        model._training = training
        n = len(items) + 1
        model._sim = sparse.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                       shape=(n, n))
        return model


def _keep_top(sim: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """Each row's `k` largest entries (ties by lower column)."""
    data, indices, indptr = [], [], [0]
    for row in range(sim.shape[0]):
        lo, hi = sim.indptr[row], sim.indptr[row + 1]
        vals, cols = sim.data[lo:hi], sim.indices[lo:hi]
        if vals.size > k:
            keep = np.lexsort((cols, -vals))[:k]
            vals, cols = vals[keep], cols[keep]
        data.append(vals)
        indices.append(cols)
        indptr.append(indptr[-1] + vals.size)
    return sparse.csr_matrix((np.concatenate(data), np.concatenate(indices), np.array(indptr)),
                             shape=sim.shape)
