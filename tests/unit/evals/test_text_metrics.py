"""Text metrics for carousel titles, on hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from aisle.errors import ConfigurationError
from aisle.evals.bundles import Bundle, BundleItem
from aisle.evals.metrics import bootstrap_ci
from aisle.evals.text_metrics import (
    PairedDiff,
    ThresholdFit,
    coverage_by_similarity,
    coverage_share,
    fit_threshold,
    paired_bootstrap,
    rouge_l,
    sign_test,
    similarity_pairs,
)


@pytest.mark.parametrize(("candidate", "reference", "expected"), [
    # LCS 2 of 3 candidate and 2 reference tokens: P = 2/3, R = 1, F = 0.8.
    ("red running shoes", "running shoes", 0.8),
    ("running shoes", "red running shoes", 0.8),
    # Order matters: LCS 1, P = R = 1/2.
    ("shoes running", "running shoes", 0.5),
    # Lowercased, punctuation dropped, stemmed ("runs" and "running" -> "run").
    ("Running SHOES!", "runs shoe", 1.0),
    ("laptop bags", "running shoes", 0.0),
    ("", "running shoes", 0.0),
    ("   ", "running shoes", 0.0),
    ("running shoes", "", 0.0),
])
def test_rouge_l(candidate: str, reference: str, expected: float) -> None:
    assert rouge_l(candidate, reference) == pytest.approx(expected)


ITEMS = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])


@pytest.mark.parametrize(("threshold", "covered"), [
    (0.6, [True, True, False, False]),  # the boundary counts as covered
    (0.61, [True, False, False, False]),
    (-1.0, [True, True, True, True]),
    (1.01, [False, False, False, False]),
])
def test_coverage(threshold: float, covered: list[bool]) -> None:
    title = np.array([1.0, 0.0], dtype=np.float32)
    assert coverage_by_similarity(title, ITEMS, threshold) == covered
    assert coverage_share(title, ITEMS, threshold) == sum(covered) / 4


def test_coverage_edge_cases() -> None:
    title = np.array([1.0, 0.0])
    assert coverage_by_similarity(title, np.zeros((0, 2)), 0.5) == []
    assert coverage_share(title, np.zeros((0, 2)), 0.5) == 0.0
    with pytest.raises(ConfigurationError, match=r"\(n, d\); got \(2,\) and \(4, 3\)"):
        coverage_by_similarity(title, np.ones((4, 3)), 0.5)


@pytest.mark.parametrize(("positive", "negative", "threshold", "tpr", "tnr"), [
    # Separable: midpoints 0.2, 0.55, 0.85; at 0.55 every score is on its side.
    ([0.8, 0.9], [0.1, 0.3], 0.55, 1.0, 1.0),
    # Not separable: midpoints .15 .3 .5 .625 .675 .8 give balanced accuracies
    # 2/3, 13/24, 17/24, 7/12, 3/4, 5/8; the best is .675 (TPR 2/4, TNR 3/3).
    ([0.2, 0.6, 0.7, 0.9], [0.1, 0.4, 0.65], 0.675, 0.5, 1.0),
    # A tie: .3 and .8 both give 3/4 (.6 gives 1/2); the lowest wins.
    ([0.5, 0.9], [0.1, 0.7], 0.3, 1.0, 0.5),
    # One distinct score: no midpoint, the threshold is the score (all positive).
    ([0.5, 0.5], [0.5], 0.5, 1.0, 0.0),
])
def test_fit_threshold(positive: list[float], negative: list[float], threshold: float,
                       tpr: float, tnr: float) -> None:
    fit = fit_threshold(positive, negative)
    assert fit.threshold == pytest.approx(threshold)
    assert (fit.tpr, fit.tnr) == (tpr, tnr)
    assert fit.balanced_accuracy == (tpr + tnr) / 2
    assert (fit.n_positive, fit.n_negative) == (len(positive), len(negative))
    assert fit_threshold(positive[::-1], negative[::-1]) == fit
    assert fit.as_dict() == {"threshold": fit.threshold, "balanced_accuracy": (tpr + tnr) / 2,
                             "tpr": tpr, "tnr": tnr, "n_positive": len(positive),
                             "n_negative": len(negative)}


def test_fit_threshold_rejects_bad_input() -> None:
    with pytest.raises(ConfigurationError, match="got 0 positive and 2 negative"):
        fit_threshold([], [0.1, 0.2])
    with pytest.raises(ConfigurationError, match="got 1 positive and 0 negative"):
        fit_threshold([0.1], [])
    with pytest.raises(ConfigurationError, match="finite"):
        fit_threshold([0.1, math.nan], [0.2])


# Names a, b, c and item titles t1..t4 as 3-d unit vectors; each dot product is exact
# enough to compare with pytest.approx.
VECTORS = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "c": [0.0, 0.0, 1.0],
           "t1": [0.8, 0.6, 0.0], "t2": [0.6, 0.0, 0.8], "t3": [0.6, 0.8, 0.0],
           "t4": [0.0, 0.6, 0.8]}


def _embed(texts: list[str]) -> np.ndarray:
    return np.array([VECTORS[t] for t in texts])


THREE = [Bundle("0", "d", "a", (BundleItem("1", "t1"), BundleItem("2", "t2"))),
         Bundle("1", "d", "b", (BundleItem("3", "t3"),)),
         Bundle("2", "d", None, (BundleItem("9", "t1"),)),
         Bundle("3", "d", "c", (BundleItem("4", "t4"),))]


def test_similarity_pairs_positives_and_valid_negatives() -> None:
    # name . items of each bundle: a.A = .8 .6, a.B = .6, a.C = 0; b.A = .6 0, b.C = .6;
    # c.A = 0 .8, c.B = 0. A bundle paired with itself would give its positives
    # (a.A = .8 .6, b.B = .8, c.C = .8), which no valid pairing matches.
    against = {("a", "B"): [0.6], ("a", "C"): [0.0], ("b", "A"): [0.6, 0.0],
               ("b", "C"): [0.6], ("c", "A"): [0.0, 0.8], ("c", "B"): [0.0]}
    valid = [against[("a", x)] + against[("b", y)] + against[("c", z)]
             for x, y, z in itertools.product("BC", "AC", "AB")]
    outcomes = set()
    for seed in range(20):
        positive, negative = similarity_pairs(THREE, _embed, seed)
        assert positive == pytest.approx([0.8, 0.6, 0.8, 0.8])  # the unnamed one skipped
        assert any(negative == pytest.approx(v) for v in valid)
        assert similarity_pairs(THREE, _embed, seed) == (positive, negative)
        outcomes.add(tuple(round(x, 6) for x in negative))
    assert len(outcomes) > 1  # the seed chooses the pairing


def test_similarity_pairs_leave_out_shared_items() -> None:
    x = Bundle("0", "d", "a", (BundleItem("1", "t1"),))
    y = Bundle("1", "d", "b", (BundleItem("1", "t1"), BundleItem("2", "t2")))
    positive, negative = similarity_pairs([x, y], _embed, seed=0)
    assert positive == pytest.approx([0.8, 0.6, 0.0])
    # a against y's items without the shared t1: a.t2 = .6; b against x's: nothing left.
    assert negative == pytest.approx([0.6])


def test_similarity_pairs_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"at least two named bundles.*got 1"):
        similarity_pairs(THREE[2:], _embed, seed=0)
    with pytest.raises(ConfigurationError, match=r"shape \(1, 3\) for 3 texts"):
        similarity_pairs(THREE, lambda texts: np.ones((1, 3)), seed=0)


@pytest.mark.parametrize(("wins", "losses", "p"), [
    (8, 0, 0.0078125),  # 2 * 0.5**8
    (0, 8, 0.0078125),
    (6, 2, 0.2890625),  # 2 * (1 + 8 + 28) / 256
    (3, 3, 1.0),
    (0, 0, 1.0),
    (1, 0, 1.0),
])
def test_sign_test(wins: int, losses: int, p: float) -> None:
    assert sign_test(wins, losses) == p


def test_sign_test_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for wins, losses in [(8, 0), (6, 2), (17, 5), (40, 61), (3, 3)]:
        expected = stats.binomtest(wins, wins + losses, 0.5).pvalue
        assert sign_test(wins, losses) == pytest.approx(expected, rel=1e-12)


def test_paired_bootstrap_all_wins() -> None:
    diff = paired_bootstrap([0.9] * 8, [0.4] * 8)
    assert diff == PairedDiff(8, pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.5),
                              8, 0, 0, 0.0078125)


def test_paired_bootstrap_mixed() -> None:
    a = [0.5, 0.7, 0.4, 0.9, 0.1, 0.3]
    b = [0.5, 0.3, 0.2, 0.6, 0.4, 0.3]
    diff = paired_bootstrap(a, b, n_boot=500, seed=3)
    # Differences 0, .4, .2, .3, -.3, 0: mean 0.1; 3 wins, 2 ties, 1 loss.
    assert diff.mean == pytest.approx(0.1)
    assert (diff.n, diff.wins, diff.ties, diff.losses) == (6, 3, 2, 1)
    assert diff.p_value == 2 * (1 + 4) / 16
    interval = bootstrap_ci([x - y for x, y in zip(a, b, strict=True)], n_boot=500, seed=3)
    assert (diff.low, diff.high) == pytest.approx((interval.low, interval.high))
    assert -0.3 <= diff.low < diff.mean < diff.high <= 0.4
    swapped = paired_bootstrap(b, a, n_boot=500, seed=3)
    assert swapped.mean == pytest.approx(-0.1)
    assert (swapped.wins, swapped.losses, swapped.p_value) == (1, 3, diff.p_value)
    assert diff.as_dict() == {"n": 6, "mean": diff.mean, "ci_low": diff.low,
                              "ci_high": diff.high, "wins": 3, "ties": 2, "losses": 1,
                              "p_value": 0.625}


def test_paired_bootstrap_errors() -> None:
    with pytest.raises(ConfigurationError, match="got 2 and 3"):
        paired_bootstrap([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(ConfigurationError, match="finite"):
        paired_bootstrap([math.nan], [0.1])


def test_threshold_fit_is_frozen() -> None:
    fit = fit_threshold([0.8], [0.2])
    assert isinstance(fit, ThresholdFit)
    with pytest.raises(AttributeError):
        fit.threshold = 0.0  # type: ignore[misc]
