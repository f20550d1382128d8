"""Ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from aisle.evals.metrics import bootstrap_ci, hit_at_k, ndcg_at_k, rank_of, summarize


@pytest.mark.parametrize(
    ("rank", "k", "expected"),
    [(1, 1, 1.0), (1, 5, 1.0), (2, 5, 1 / math.log2(3)), (3, 5, 0.5), (5, 5, 1 / math.log2(6)),
     (6, 5, 0.0), (None, 5, 0.0), (20, 20, 1 / math.log2(21)), (2, 1, 0.0)],
)
def test_ndcg(rank: int | None, k: int, expected: float) -> None:
    assert ndcg_at_k(rank, k) == pytest.approx(expected)


@pytest.mark.parametrize(("rank", "k", "expected"),
                         [(1, 1, 1.0), (5, 5, 1.0), (6, 5, 0.0), (None, 10, 0.0)])
def test_hit(rank: int | None, k: int, expected: float) -> None:
    assert hit_at_k(rank, k) == expected


def test_rank_of() -> None:
    assert rank_of("b", ["a", "b", "c"]) == 2
    assert rank_of("z", ["a"]) is None


def test_summary_by_hand() -> None:
    # Ranks 1, 3, 6, 25 (absent): NDCG@5 = (1 + 0.5 + 0 + 0) / 4; Hit@5 = 2/4.
    out = summarize([1, 3, 6, None])
    assert out["ndcg@5"]["mean"] == pytest.approx(0.375)
    assert out["hit@5"]["mean"] == pytest.approx(0.5)
    assert out["hit@1"]["mean"] == pytest.approx(0.25)
    assert out["ndcg@10"]["mean"] == pytest.approx((1 + 0.5 + 1 / math.log2(7)) / 4)
    for v in out.values():
        assert v["ci_low"] <= v["mean"] <= v["ci_high"]


def test_bootstrap_interval_is_deterministic_and_shrinks() -> None:
    small = bootstrap_ci([0, 1] * 10, seed=1)
    assert small == bootstrap_ci([0, 1] * 10, seed=1)
    large = bootstrap_ci([0, 1] * 1000, seed=1)
    assert (large.high - large.low) < (small.high - small.low)
    assert large.low < 0.5 < large.high
    assert math.isnan(bootstrap_ci([]).mean)
