"""Ranking and metric arithmetic on hand-computed cases: ranks with ties and excluded
items, top-k, NDCG/Recall with their intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aisle.evals.metrics import bootstrap_ci
from aisle.evals.rec_suite import bootstrap_chunked, rank_metrics
from aisle.tools.recommenders.base import ndcg_recall_at_10, ranks_of_targets, top_k

INF = -np.inf


def _scores(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


def test_ranks_by_hand() -> None:
    # Columns: padding, items 1..5.
    scores = _scores([INF, 0.9, 0.1, 0.5, 0.5, 0.7],
                     [INF, 0.2, 0.2, 0.2, 0.9, 0.0])
    histories = [np.array([1]), np.array([4])]
    # Row 0: item 1 (0.9) excluded; 5 (0.7) first, then 3 and 4 tie at 0.5 (3 first).
    assert ranks_of_targets(scores, histories, np.array([4, 5])).tolist() == [3, 4]
    # Row 1: item 4 (0.9) excluded; 1, 2, 3 tie at 0.2 -> catalog order.
    assert ranks_of_targets(scores, histories, np.array([3, 3])).tolist() == [2, 3]
    # Without exclusion the history items take their places.
    assert ranks_of_targets(scores, histories, np.array([4, 3]),
                            exclude_history=False).tolist() == [4, 4]
    # An excluded target cannot be ranked.
    assert ranks_of_targets(scores, histories, np.array([1, 4])).tolist() == [0, 0]


def test_top_k_breaks_ties_by_index_and_skips_excluded() -> None:
    s = _scores([INF, 0.5, 0.9, 0.5, INF, 0.5])[0]
    assert top_k(s, 3) == [2, 1, 3]
    assert top_k(s, 10) == [2, 1, 3, 5]
    assert top_k(_scores([INF, INF])[0], 3) == []


def test_ndcg_and_recall_by_hand() -> None:
    # Ranks 1, 2, 5, 11 and a miss: NDCG@5 = (1 + 1/log2(3) + 1/log2(6)) / 5.
    ranks = [1, 2, 5, 11, None]
    m = rank_metrics(ranks, ["recall@5", "recall@10", "ndcg@5", "ndcg@10"])
    assert m["n_users"] == 5
    assert m["recall@5"] == pytest.approx(3 / 5)
    assert m["recall@10"] == pytest.approx(3 / 5)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5)
    assert m["ndcg@10"] == m["ndcg@5"]
    for name, (low, high) in m["ci95"].items():
        assert 0.0 <= low <= m[name] <= high <= 1.0
    assert ndcg_recall_at_10([1, 2, 5, 11, 0]) == {
        "ndcg@10": pytest.approx(m["ndcg@10"]), "recall@10": pytest.approx(0.6)}


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="recall@k or ndcg@k"):
        rank_metrics([1], ["mrr@10"])


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_chunked_bootstrap_is_the_shared_bootstrap(n: int) -> None:
    values = np.random.default_rng(n).random(n).tolist()
    assert bootstrap_chunked(values, chunk_cells=3 * n + 1) == bootstrap_ci(values)
