"""How ARAG combines a trained recommender's order with its agents' orders.

The rule is weighted reciprocal-rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009):
each source ranks every candidate, and a candidate's fused score is

    sum over sources s of  weight_s / (k + rank_s(item))        (ranks from 1)

with k = 60, the paper's constant. The sources are the recommender's order (by its
score), the NLI agent's order (by NLI score, failed items last) and the Item Ranker
Agent's order. Ties go to the recommender's order. Weights are fitted on validation
users, never on the users a run reports (`fit_weights`: the grid of weights in steps of
0.1 that sum to 1, best mean NDCG@10; ties prefer the more even weights).

Example:
    >>> orders = {"recommender": ["a", "b", "c"], "nli": ["c", "b", "a"],
    ...           "ranker": ["b", "a", "c"]}
    >>> fuse(orders, FusionWeights(recommender=1, nli=0, ranker=0))
    ['a', 'b', 'c']
    >>> fuse(orders, FusionWeights(recommender=1, nli=1, ranker=1))
    ['b', 'a', 'c']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["RRF_K", "SOURCES", "FusionFit", "FusionWeights", "Source", "fit_weights", "fuse",
           "fused_scores"]

RRF_K = 60
Source = Literal["recommender", "nli", "ranker"]
SOURCES: tuple[Source, ...] = ("recommender", "nli", "ranker")


class FusionWeights(BaseModel):
    """One weight per source (non-negative, not all zero); only their ratios matter.

    The defaults weigh the three sources equally. `aisle arag eval --recommender ...`
    fits weights on validation users and reports them; pass those (or your own, from
    `fit_weights`) in the context's config.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    recommender: float = Field(1.0, ge=0.0)
    nli: float = Field(1.0, ge=0.0)
    ranker: float = Field(1.0, ge=0.0)
    k: int = Field(RRF_K, ge=0, description="RRF's rank offset.")

    @model_validator(mode="after")
    def _not_all_zero(self) -> FusionWeights:
        if self.recommender + self.nli + self.ranker <= 0:
            raise ValueError("at least one fusion weight must be above 0")
        return self

    def of(self, source: Source) -> float:
        return float(getattr(self, source))


def fused_scores(orders: Mapping[str, Sequence[str]], weights: FusionWeights
                 ) -> dict[str, float]:
    """Each item's weighted RRF score over the sources present in `orders`."""
    scores: dict[str, float] = {}
    for source, order in orders.items():
        w = weights.of(source)  # type: ignore[arg-type]
        for rank, item in enumerate(order, 1):
            scores[item] = scores.get(item, 0.0) + w / (weights.k + rank)
    return scores


def fuse(orders: Mapping[str, Sequence[str]], weights: FusionWeights) -> list[str]:
    """The candidates by fused score, best first; ties in the recommender's order (else
    the first source's).

    Raises:
        ValueError: the sources do not order the same items, or a source is unknown.
    """
    unknown = set(orders) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown fusion sources {sorted(unknown)}; known: {SOURCES}")
    sets = [frozenset(o) for o in orders.values()]
    if not sets:
        return []
    if any(s != sets[0] for s in sets) or any(len(o) != len(sets[0]) for o in orders.values()):
        raise ValueError("every fusion source must order the same candidates, each once")
    base = list(orders.get("recommender") or next(iter(orders.values())))
    scores = fused_scores(orders, weights)
    return sorted(base, key=lambda i: -scores[i])  # stable: ties keep the base order


class FusionFit(BaseModel):
    """The weights chosen on validation users and how the grid scored."""

    weights: FusionWeights
    users: int
    metric: str = "ndcg@10"
    best: float
    by_source_alone: dict[str, float]
    grid: list[tuple[float, float, float, float]] = Field(
        description="(recommender, nli, ranker, mean NDCG@10) for every grid point")


def _ndcg10(order: Sequence[str], target: str) -> float:
    try:
        rank = list(order).index(target) + 1
    except ValueError:
        return 0.0
    return 1.0 / math.log2(rank + 1) if rank <= 10 else 0.0


def fit_weights(cases: Sequence[tuple[Mapping[str, Sequence[str]], str]], *, step: float = 0.1,
                k: int = RRF_K) -> FusionFit:
    """Grid-search the weights (steps of `step`, summing to 1) for the best mean NDCG@10
    over `(orders, target)` validation cases. Ties prefer the weights closest to equal.

    Raises:
        ValueError: no cases.

    Example:
        >>> cases = [({"recommender": ["t", "x"], "nli": ["x", "t"], "ranker": ["x", "t"]},
        ...           "t")]
        >>> fit = fit_weights(cases, step=0.5)
        >>> fit.best, fit.by_source_alone["recommender"], fit.weights.recommender >= 0.5
        (1.0, 1.0, True)
    """
    if not cases:
        raise ValueError("fitting fusion weights needs at least one validation user")
    n = round(1 / step)
    grid: list[tuple[float, float, float, float]] = []
    for a, b in itertools.product(range(n + 1), repeat=2):
        if a + b > n:
            continue
        w = FusionWeights(recommender=a / n, nli=b / n, ranker=(n - a - b) / n, k=k)
        score = sum(_ndcg10(fuse(o, w), t) for o, t in cases) / len(cases)
        grid.append((w.recommender, w.nli, w.ranker, score))

    def unevenness(row: tuple[float, float, float, float]) -> float:
        return sum((x - 1 / 3) ** 2 for x in row[:3])

    best = max(grid, key=lambda r: (round(r[3], 12), -unevenness(r)))
    alone = {s: sum(_ndcg10(o[s], t) for o, t in cases) / len(cases) for s in SOURCES}
    return FusionFit(weights=FusionWeights(recommender=best[0], nli=best[1], ranker=best[2],
                                           k=k),
                     users=len(cases), best=best[3], by_source_alone=alone, grid=grid)
