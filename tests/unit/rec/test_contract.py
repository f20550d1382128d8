"""The interface contract, run on every model: the catalog, top-k with exclusion and
ties, scores that agree with the ranking, errors for unknown ids, and a file round trip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from aisle.errors import ConfigurationError
from aisle.settings import get_settings
from aisle.tools.recommenders import (
    GRACE,
    CatalogRecommender,
    GRACEConfig,
    ItemKNN,
    ItemSide,
    Popularity,
    Recommender,
    RecommenderInputError,
    SASRec,
    SASRecConfig,
    SequenceDataset,
    UnknownItemError,
    leave_one_out,
)

TINY = SASRecConfig(hidden=8, heads=2, inner=16, layers=1, dropout=0.1, max_len=8,
                    batch_tokens=64, max_epochs=2, patience=2, seed=7)
# GRACE's beam (20) covers the 13-item catalog, so its beam search is exhaustive here
# and its rankings are exact, as the contract's comparisons need.
TINY_GRACE = GRACEConfig(hidden=8, heads=2, inner=16, layers=1, dropout=0.1, max_len=8,
                         codebook=3, code_levels=2, embedding_dim=4, batch_tokens=256,
                         max_epochs=2, patience=2, valid_users=None, seed=7)
TOY_SIDE = ItemSide(attributes={str(i): [f"group{i % 3}", f"shelf{i % 2}"]
                                for i in range(1, 14)})
MAKERS: dict[str, Callable[[], CatalogRecommender]] = {
    "pop": Popularity,
    "itemknn": ItemKNN,
    "sasrec": lambda: SASRec(TINY, threads=1),
    "grace": lambda: GRACE(TINY_GRACE, side=TOY_SIDE, threads=1),
}


@pytest.fixture(params=list(MAKERS))
def fitted(request: pytest.FixtureRequest, toy: SequenceDataset) -> CatalogRecommender:
    split = leave_one_out(toy)
    model = MAKERS[request.param]()
    return model.fit(split.train_sequences, items=toy.items,
                     validation=split.validation_pairs)


def test_is_a_recommender_with_the_whole_catalog(fitted: CatalogRecommender,
                                                 toy: SequenceDataset) -> None:
    assert isinstance(fitted, Recommender)
    assert fitted.items == toy.items  # item 13 was never trained on, still in the catalog
    assert fitted.training is not None
    assert fitted.training.model == fitted.kind
    assert fitted.training.valid_ndcg10 is not None


def test_recommend_is_top_k_best_first_without_the_history(fitted: CatalogRecommender) -> None:
    history = ["1", "2", "3"]
    top = fitted.recommend(history, k=5)
    assert len(top) == 5
    assert not {r.item_id for r in top} & set(history)
    scores = [r.score for r in top]
    assert scores == sorted(scores, reverse=True)
    # The same items and scores as scoring every other item and sorting (ties by
    # catalog order).
    others = [i for i in fitted.items if i not in history]
    by_score = sorted(zip(others, fitted.score(history, others), strict=True),
                      key=lambda p: -p[1])
    assert [(r.item_id, pytest.approx(r.score, abs=1e-6)) for r in top] == \
        [(i, pytest.approx(s, abs=1e-6)) for i, s in by_score[:5]]


def test_exclude_overrides_the_history(fitted: CatalogRecommender) -> None:
    everything = fitted.recommend(["1", "2"], k=len(fitted.items), exclude=())
    assert {r.item_id for r in everything} == set(fitted.items)
    without = fitted.recommend(["1", "2"], k=len(fitted.items), exclude=["5"])
    assert {r.item_id for r in without} == set(fitted.items) - {"5"}
    default = fitted.recommend(["1", "2"], k=100)
    assert len(default) == len(fitted.items) - 2


def test_score_follows_the_candidates_order(fitted: CatalogRecommender) -> None:
    history = ["4", "5"]
    forward = fitted.score(history, ["1", "7", "13"])
    backward = fitted.score(history, ["13", "7", "1"])
    assert forward == backward[::-1]
    assert all(isinstance(s, float) and np.isfinite(s) for s in forward)


def test_rank_targets_agrees_with_recommend(fitted: CatalogRecommender) -> None:
    histories = [["1", "2"], ["6"], ["9", "10", "11"]]
    for history in histories:
        order = [r.item_id for r in fitted.recommend(history, k=len(fitted.items))]
        targets = order[:3] + order[-1:]
        ranks = fitted.rank_targets([history] * len(targets), targets)
        assert ranks == [1, 2, 3, len(order)]
    # A history item cannot be ranked while history items are excluded.
    assert fitted.rank_targets([["1", "2"]], ["2"]) == [None]
    assert fitted.rank_targets([["1", "2"]], ["2"], exclude_history=False)[0] is not None


@pytest.mark.parametrize(("history", "candidates", "exclude"), [
    (["1", "nope"], ["2"], None),
    (["1"], ["2", "missing"], None),
    (["1"], ["2"], ["zzz"]),
])
def test_unknown_ids_raise_naming_them(fitted: CatalogRecommender, history: list[str],
                                       candidates: list[str], exclude: list[str] | None) -> None:
    (bad,) = {"nope", "missing", "zzz"} & {*history, *candidates, *(exclude or [])}

    def call() -> None:
        if exclude is None:
            fitted.score(history, candidates)
        else:
            fitted.recommend(history, k=3, exclude=exclude)

    with pytest.raises(UnknownItemError) as info:
        call()
    assert info.value.unknown == [bad]
    assert repr(bad) in str(info.value)


def test_empty_history_and_bad_k_raise(fitted: CatalogRecommender) -> None:
    with pytest.raises(RecommenderInputError, match="empty"):
        fitted.recommend([], k=3)
    with pytest.raises(RecommenderInputError, match="at least 1"):
        fitted.recommend(["1"], k=0)


def test_save_load_round_trip(fitted: CatalogRecommender, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    # The loaded model runs on the fitted one's thread count (1): float sums in
    # another order could differ in the last bit.
    monkeypatch.setenv("AISLE_REC_THREADS", "1")
    get_settings.cache_clear()
    path = tmp_path / f"model.{fitted.kind}"
    fitted.save(path)
    again = type(fitted).load(path)
    assert again.items == fitted.items
    assert again.training == fitted.training
    assert again.recommend(["3", "4"], k=6) == fitted.recommend(["3", "4"], k=6)
    assert again.score(["3"], ["1", "13"]) == pytest.approx(fitted.score(["3"], ["1", "13"]))


def test_load_refuses_another_models_file(fitted: CatalogRecommender, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    fitted.save(path)
    others = [cls for cls in (Popularity, ItemKNN, SASRec, GRACE) if cls is not type(fitted)]
    for other in others:
        with pytest.raises(ConfigurationError):
            other.load(path)


@pytest.mark.parametrize("name", list(MAKERS))
def test_an_unfitted_model_says_so(name: str) -> None:
    with pytest.raises(RecommenderInputError, match="not fitted"):
        MAKERS[name]().recommend(["1"], k=1)
