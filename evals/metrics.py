"""Ranking metrics with bootstrap confidence intervals, and ranker validity counts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_ci", "hit_at_k", "ndcg_at_k", "rank_of", "summarize"]


def rank_of(target: str, ranking: Sequence[str]) -> int | None:
    """1-based position of `target` in `ranking`, or None if absent."""
    try:
        return ranking.index(target) + 1
    except ValueError:
        return None


def ndcg_at_k(rank: int | None, k: int) -> float:
    """NDCG@k with one relevant item: 1/log2(rank + 1) if it is in the top k, else 0.

    Example:
        >>> ndcg_at_k(1, 5), round(ndcg_at_k(3, 5), 4), ndcg_at_k(6, 5)
        (1.0, 0.5, 0.0)
    """
    return 1.0 / math.log2(rank + 1) if rank is not None and rank <= k else 0.0


def hit_at_k(rank: int | None, k: int) -> float:
    """1 if the relevant item is in the top k, else 0."""
    return 1.0 if rank is not None and rank <= k else 0.0


@dataclass(frozen=True)
class Interval:
    """A mean with a bootstrap percentile interval."""

    mean: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high}


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> Interval:
    """Mean of `values` with a percentile bootstrap interval over users."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return Interval(float(arr.mean()), float(np.quantile(means, alpha)),
                    float(np.quantile(means, 1.0 - alpha)))


NDCG_KS = (1, 5, 10, 20)
HIT_KS = (1, 5, 10)


def summarize(ranks: Sequence[int | None], *, seed: int = 0) -> dict[str, dict[str, float]]:
    """NDCG@1/5/10/20 and Hit@1/5/10 over users, each with a 95% bootstrap interval."""
    out: dict[str, dict[str, float]] = {}
    for k in NDCG_KS:
        out[f"ndcg@{k}"] = bootstrap_ci([ndcg_at_k(r, k) for r in ranks], seed=seed).as_dict()
    for k in HIT_KS:
        out[f"hit@{k}"] = bootstrap_ci([hit_at_k(r, k) for r in ranks], seed=seed).as_dict()
    return out
