"""Blocking recall on a small hand-made table, entity components, cascade thresholds."""

from __future__ import annotations

import pytest

from aisle.agents.gdo import Thresholds, decide, fit_thresholds
from aisle.errors import ConfigurationError
from aisle.testing.embeddings import trigram_embed
from aisle.tools.blocking import block, connected_components, record_text

LEFT = ["apple ipad air 64gb silver", "sony bravia 55 inch 4k tv", "canon eos r8 camera body",
        "bose quietcomfort 45 headphones", "lego star wars millennium falcon",
        "nintendo switch oled console", "dyson v15 cordless vacuum", "kindle paperwhite 16gb"]
RIGHT = ["kindle paperwhite (16 gb) e-reader", "ipad air 64 gb silver by apple",
         "nintendo switch console oled model", "sony 55in bravia 4k television",
         "bose qc45 quietcomfort headphones", "canon eos r8 mirrorless body",
         "millennium falcon lego star wars set", "dyson v15 detect cordless vacuum",
         "samsung galaxy s23 phone", "garmin forerunner 255 watch", "hp laserjet pro printer",
         "weber spirit gas grill"]
TRUE = {(0, 1), (1, 3), (2, 5), (3, 4), (4, 6), (5, 2), (6, 7), (7, 0)}


def test_blocking_keeps_every_true_match_with_far_fewer_pairs() -> None:
    result = block(LEFT, RIGHT, trigram_embed, k=2)
    assert set(result.pairs) >= TRUE
    assert result.cross_product == 96
    assert len(result.pairs) <= 2 * 2 * len(LEFT) + 2 * len(RIGHT)
    assert result.reduction > 2.5
    assert all(-1.0 <= s <= 1.0 for s in result.scores)


def test_blocking_within_one_table_gives_ordered_pairs_without_self_pairs() -> None:
    rows = ["ipad air silver", "apple ipad air silver", "garden hose", "hose for garden"]
    result = block(rows, None, trigram_embed, k=1)
    assert set(result.pairs) == {(0, 1), (2, 3)}
    assert result.cross_product == 6


def test_min_score_drops_weak_pairs_and_empty_tables_give_nothing() -> None:
    assert block(LEFT, RIGHT, trigram_embed, k=3, min_score=0.99).pairs == []
    assert block([], RIGHT, trigram_embed).pairs == []


def test_record_text_skips_empty_cells() -> None:
    assert record_text({"a": "x", "b": None, "c": float("nan"), "d": " "}) == "a: x"


def test_connected_components_are_transitive() -> None:
    assert connected_components(6, [(4, 5), (1, 4), (2, 3)]) == [0, 1, 2, 2, 1, 1]


def test_fit_for_a_share_puts_the_uncertain_rows_in_the_band() -> None:
    scores = [0.05, 0.1, 0.2, 0.3, 0.45, 0.5, 0.55, 0.7, 0.8, 0.9, 0.95, 0.99]
    labels = [0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1]
    t = fit_thresholds(scores, labels, llm_share=0.25)
    decided = decide(scores, t)
    assert sum(d is None for d in decided) <= 3
    mistakes = sum(1 for d, y in zip(decided, labels, strict=True) if d is not None and d != y)
    assert mistakes == 0


def test_fit_for_an_error_rate() -> None:
    scores = [i / 10 for i in range(10)]
    labels = [0, 0, 0, 1, 0, 1, 0, 1, 1, 1]
    t = fit_thresholds(scores, labels, max_error=0.0)
    decided = decide(scores, t)
    assert decided[:3] == [False] * 3
    assert decided[7:] == [True] * 3
    assert decided[3:7] == [None] * 4


def test_a_share_of_zero_decides_everything_and_one_decides_nothing() -> None:
    scores, labels = [0.1, 0.4, 0.6, 0.9], [0, 0, 1, 1]
    assert None not in decide(scores, fit_thresholds(scores, labels, llm_share=0.0))
    assert decide(scores, fit_thresholds(scores, labels, llm_share=1.0)).count(None) >= 2


def test_bad_fits_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        fit_thresholds([], [], llm_share=0.3)
    with pytest.raises(ConfigurationError):
        fit_thresholds([0.1], [1], llm_share=0.3, max_error=0.1)
    with pytest.raises(ConfigurationError):
        Thresholds(0.5, 0.5)


def test_tfidf_and_hybrid_blocking_find_model_numbers() -> None:
    left = ["sony cybershot dscw120p pink", "canon powershot sd1100is"]
    right = ["dsc-w120p sony camera", "canon sd1100 is powershot", "pink cybershot case"]
    tfidf = block(left, right, k=1, method="tfidf")
    assert {(0, 0), (1, 1)} <= set(tfidf.pairs)
    hybrid = block(left, right, trigram_embed, k=1, method="hybrid")
    assert set(tfidf.pairs) <= set(hybrid.pairs)
    embedding_only = block(left, right, trigram_embed, k=1, method="embedding")
    assert set(embedding_only.pairs) <= set(hybrid.pairs)
    with pytest.raises(ValueError, match="needs an embedding"):
        block(left, right, None, method="hybrid")
    with pytest.raises(ValueError, match="unknown blocking method"):
        block(left, right, trigram_embed, method="minhash")
