"""The fusion rule ARAG uses with a recommender: weighted reciprocal-rank fusion, and
weights fitted by grid search on validation cases."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aisle.agents.arag import FusionWeights, fit_weights, fuse
from aisle.agents.arag.fusion import fused_scores

ITEMS = [f"i{n}" for n in range(10)]


def test_scores_are_weighted_reciprocal_ranks() -> None:
    orders = {"recommender": ["a", "b"], "ranker": ["b", "a"]}
    scores = fused_scores(orders, FusionWeights(recommender=2, nli=0, ranker=1, k=0))
    assert scores == {"a": 2 / 1 + 1 / 2, "b": 2 / 2 + 1 / 1}
    assert fuse(orders, FusionWeights(recommender=2, nli=0, ranker=1, k=0)) == ["a", "b"]


def test_ties_keep_the_recommenders_order() -> None:
    orders = {"nli": ["b", "a"], "recommender": ["a", "b"]}
    assert fuse(orders, FusionWeights(recommender=1, nli=1, ranker=0)) == ["a", "b"]


@pytest.mark.parametrize("orders", [
    {"recommender": ["a", "b"], "ranker": ["a", "c"]},
    {"recommender": ["a", "b"], "ranker": ["a", "a", "b"]},
    {"critic": ["a"]},
])
def test_sources_must_order_the_same_items(orders: dict[str, list[str]]) -> None:
    with pytest.raises(ValueError, match=r"same candidates|unknown fusion sources"):
        fuse(orders, FusionWeights())


def test_weights_are_non_negative_and_not_all_zero() -> None:
    with pytest.raises(ValidationError, match="above 0"):
        FusionWeights(recommender=0, nli=0, ranker=0)
    with pytest.raises(ValidationError):
        FusionWeights(recommender=-1)


def _case(right: str, target: str = "i0") -> tuple[dict[str, list[str]], str]:
    wrong = ITEMS[::-1]
    return ({s: (ITEMS if s == right else wrong) for s in ("recommender", "nli", "ranker")},
            target)


@pytest.mark.parametrize("right", ["recommender", "nli", "ranker"])
def test_the_fit_finds_the_source_that_is_right(right: str) -> None:
    fit = fit_weights([_case(right) for _ in range(5)])
    assert fit.best == 1.0
    assert fit.by_source_alone[right] == 1.0
    others = [s for s in ("recommender", "nli", "ranker") if s != right]
    assert fit.weights.of(right) > max(fit.weights.of(s) for s in others)  # type: ignore[arg-type]
    assert len(fit.grid) == 66
    assert fit.users == 5


def test_among_equally_good_weights_the_most_even_wins() -> None:
    same = {s: ITEMS for s in ("recommender", "nli", "ranker")}
    fit = fit_weights([(same, "i0")], step=0.25)
    assert fit.best == 1.0
    # 0.25 steps cannot give thirds; the most even points have one 0.5 and two 0.25s.
    assert sorted((fit.weights.recommender, fit.weights.nli, fit.weights.ranker)) == \
        [0.25, 0.25, 0.5]


def test_no_cases_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one validation user"):
        fit_weights([])
