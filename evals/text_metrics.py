"""Metrics for generated text (CARTS carousel titles): ROUGE-L against a human name,
item coverage by embedding similarity with a fitted threshold, and a paired comparison
of two methods on the same cases.

- `rouge_l`: ROUGE-L F-measure from Google's `rouge-score` package (stemmed; its
  tokenizer lowercases and keeps only ASCII letters and digits).
- `coverage_by_similarity` / `coverage_share`: which of a bundle's items a title covers,
  an item counting when the cosine of the title and the item title reaches a threshold.
- `fit_threshold` on `similarity_pairs`: that threshold, fitted on human names (each
  against its own bundle's items and against another bundle's) to maximise balanced
  accuracy, on bundles kept apart from the ones scored (`aisle.evals.bundles`).
- `paired_bootstrap`: the mean per-case difference of two methods with a bootstrap
  interval, win/tie/loss counts and a two-sided sign test.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aisle.errors import ConfigurationError, MissingDependencyError
from aisle.evals.metrics import bootstrap_ci

if TYPE_CHECKING:
    from aisle.evals.bundles import Bundle

__all__ = [
    "PairedDiff",
    "ThresholdFit",
    "coverage_by_similarity",
    "coverage_share",
    "fit_threshold",
    "paired_bootstrap",
    "rouge_l",
    "sign_test",
    "similarity_pairs",
]


@functools.cache
def _rouge_scorer() -> Any:
    try:
        from rouge_score import rouge_scorer  # type: ignore[import-untyped]
    except ImportError as e:
        raise MissingDependencyError("rouge-score", "ROUGE-L",
                                     install="pip install 'aisle[eval]'") from e
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure of `candidate` against `reference` (the longest common
    subsequence of stemmed tokens); 0.0 for an empty candidate.

    Raises:
        MissingDependencyError: `rouge-score` is not installed.

    Example:
        >>> round(rouge_l("red running shoes", "Running shoes"), 4)
        0.8
        >>> rouge_l("", "running shoes")
        0.0
    """
    if not candidate.strip():
        return 0.0
    return float(_rouge_scorer().score(reference, candidate)["rougeL"].fmeasure)


def _cosines(title_vec: np.ndarray, item_vecs: np.ndarray) -> np.ndarray:
    title = np.asarray(title_vec, dtype=np.float64)
    items = np.asarray(item_vecs, dtype=np.float64)
    if title.ndim != 1 or items.ndim != 2 or items.shape[1] != title.shape[0]:
        raise ConfigurationError(f"expected a title vector (d,) and item vectors (n, d); got "
                                 f"{title.shape} and {items.shape}")
    return items @ title


def coverage_by_similarity(title_vec: np.ndarray, item_vecs: np.ndarray,
                           threshold: float) -> list[bool]:
    """Per item, whether the title covers it: cosine(title, item) >= `threshold`.

    The vectors are L2-normalised (as `aisle.tools.retrieval.Embedder` gives them), so
    the cosine is the dot product.

    Raises:
        ConfigurationError: the shapes are not (d,) and (n, d).

    Example:
        >>> items = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
        >>> coverage_by_similarity(np.array([1.0, 0.0]), items, 0.5)
        [True, True, False]
    """
    return [bool(c >= threshold) for c in _cosines(title_vec, item_vecs)]


def coverage_share(title_vec: np.ndarray, item_vecs: np.ndarray, threshold: float) -> float:
    """The share of items the title covers (see `coverage_by_similarity`); 0.0 for no items.

    Example:
        >>> items = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
        >>> coverage_share(np.array([1.0, 0.0]), items, 0.5)
        0.5
    """
    covered = coverage_by_similarity(title_vec, item_vecs, threshold)
    return sum(covered) / len(covered) if covered else 0.0


@dataclass(frozen=True)
class ThresholdFit:
    """A score threshold fitted to separate positives (>= threshold) from negatives.

    Attributes:
        threshold: the fitted threshold.
        balanced_accuracy: the mean of `tpr` and `tnr` at it.
        tpr: share of positives at or above it.
        tnr: share of negatives below it.
        n_positive: how many positive scores it was fitted on.
        n_negative: how many negative scores.
    """

    threshold: float
    balanced_accuracy: float
    tpr: float
    tnr: float
    n_positive: int
    n_negative: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def fit_threshold(positive: Sequence[float], negative: Sequence[float]) -> ThresholdFit:
    """The threshold that maximises balanced accuracy (mean of TPR and TNR).

    The candidates are the midpoints between consecutive distinct scores (positives and
    negatives together); among equally good ones the lowest wins. With a single distinct
    score there is no midpoint, and the threshold is that score.

    Raises:
        ConfigurationError: no positives, no negatives, or a score that is not finite.

    Example:
        >>> fit = fit_threshold([0.8, 0.9], [0.1, 0.3])
        >>> fit.threshold, fit.balanced_accuracy
        (0.55, 1.0)
    """
    pos = np.sort(np.asarray(positive, dtype=np.float64))
    neg = np.sort(np.asarray(negative, dtype=np.float64))
    if pos.size == 0 or neg.size == 0:
        raise ConfigurationError(f"fitting a threshold needs positive and negative scores; got "
                                 f"{pos.size} positive and {neg.size} negative")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ConfigurationError("fitting a threshold needs finite scores; got NaN or inf")
    unique = np.unique(np.concatenate([pos, neg]))
    candidates = (unique[:-1] + unique[1:]) / 2.0 if unique.size > 1 else unique
    tp = pos.size - np.searchsorted(pos, candidates, side="left")  # scores >= threshold
    tn = np.searchsorted(neg, candidates, side="left")  # scores < threshold
    # Balanced accuracy times 2 * n_pos * n_neg, in integers: equal accuracies compare
    # equal, so the tie rule is exact. argmax takes the first (lowest) maximum.
    best = int(np.argmax(tp.astype(np.int64) * neg.size + tn.astype(np.int64) * pos.size))
    tpr = int(tp[best]) / pos.size
    tnr = int(tn[best]) / neg.size
    return ThresholdFit(float(candidates[best]), (tpr + tnr) / 2.0, tpr, tnr,
                        int(pos.size), int(neg.size))


def similarity_pairs(bundles: Sequence[Bundle], embed: Callable[[list[str]], np.ndarray],
                     seed: int) -> tuple[list[float], list[float]]:
    """Cosines of human bundle names with items, to fit a coverage threshold on.

    Positives: each named bundle's name against each of its own items' titles.
    Negatives: the same name against the items of one other named bundle, drawn with a
    seeded `random.Random` (never the bundle itself; items it shares with the bundle
    are left out). Bundles without a name are skipped.

    Args:
        bundles: the bundles (kept apart from the ones the threshold will score).
        embed: texts -> L2-normalised vectors, one row per text
            (`aisle.tools.retrieval.Embedder().embed`).
        seed: seeds the choice of the other bundle.

    Returns:
        (positive, negative) cosines, bundle by bundle in the given order.

    Raises:
        ConfigurationError: fewer than two named bundles, or `embed` returned the wrong
            number of rows.

    Example:
        >>> from aisle.evals.bundles import Bundle, BundleItem
        >>> vec = {"usb": [1.0, 0.0], "flash drive": [0.8, 0.6], "dress": [0.0, 1.0],
        ...        "gown": [0.6, 0.8]}
        >>> embed = lambda texts: np.array([vec[t] for t in texts])
        >>> bs = [Bundle("0", "d", "usb", (BundleItem("1", "flash drive"),)),
        ...       Bundle("1", "d", "dress", (BundleItem("2", "gown"),))]
        >>> pos, neg = similarity_pairs(bs, embed, seed=0)
        >>> [round(x, 2) for x in pos], [round(x, 2) for x in neg]
        ([0.8, 0.8], [0.6, 0.6])
    """
    named = [b for b in bundles if b.name]
    if len(named) < 2:
        raise ConfigurationError(f"similarity pairs need at least two named bundles (each is "
                                 f"paired with another); got {len(named)}")
    names = [b.name or "" for b in named]
    titles = sorted({item.title for b in named for item in b.items})
    name_vecs = _embedded(embed, names)
    title_vecs = _embedded(embed, titles)
    row = {title: i for i, title in enumerate(titles)}
    rng = random.Random(seed)
    positive: list[float] = []
    negative: list[float] = []
    for i, bundle in enumerate(named):
        other = rng.randrange(len(named) - 1)
        other += other >= i  # skip the bundle itself
        own_ids = {item.id for item in bundle.items}
        own = [row[item.title] for item in bundle.items]
        others = [row[item.title] for item in named[other].items if item.id not in own_ids]
        positive.extend(float(c) for c in title_vecs[own] @ name_vecs[i])
        negative.extend(float(c) for c in title_vecs[others] @ name_vecs[i])
    return positive, negative


def _embedded(embed: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
    vectors = np.asarray(embed(texts), dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ConfigurationError(f"embed returned an array of shape {vectors.shape} for "
                                 f"{len(texts)} texts; expected one row per text")
    return vectors


@dataclass(frozen=True)
class PairedDiff:
    """Method A against method B on the same cases.

    Attributes:
        n: the number of cases.
        mean: the mean of a - b over cases.
        low: the lower end of its 95% percentile bootstrap interval.
        high: the upper end.
        wins: cases where a > b.
        ties: cases where a == b.
        losses: cases where a < b.
        p_value: the two-sided sign test of wins against losses (ties left out).
    """

    n: int
    mean: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int
    p_value: float

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "mean": self.mean, "ci_low": self.low, "ci_high": self.high,
                "wins": self.wins, "ties": self.ties, "losses": self.losses,
                "p_value": self.p_value}


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the chance, if wins and losses were equally likely, of
    a split at least as uneven as this one. 1.0 when there is neither.

    Example:
        >>> sign_test(8, 0)
        0.0078125
        >>> sign_test(3, 3)
        1.0
    """
    if wins < 0 or losses < 0:
        raise ConfigurationError(f"counts must be 0 or more, got {wins} wins, {losses} losses")
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / (1 << n))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = 2000,
                     seed: int = 0) -> PairedDiff:
    """The mean per-case difference a - b with a 95% percentile bootstrap interval
    (cases resampled with replacement, the same cases for both methods), the win/tie/loss
    counts, and the sign test.

    Raises:
        ConfigurationError: `a` and `b` differ in length, or a score is not finite.

    Example:
        >>> d = paired_bootstrap([0.5, 0.7, 0.4, 0.9], [0.5, 0.3, 0.2, 0.6])
        >>> round(d.mean, 3), (d.wins, d.ties, d.losses), d.p_value
        (0.225, (3, 1, 0), 0.25)
    """
    if len(a) != len(b):
        raise ConfigurationError(f"paired scores need one a and one b per case; got {len(a)} "
                                 f"and {len(b)}")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not np.isfinite(diff).all():
        raise ConfigurationError("paired scores must be finite; got NaN or inf")
    # Resampling the differences resamples the same cases for both methods.
    interval = bootstrap_ci(diff.tolist(), n_boot=n_boot, seed=seed)
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    return PairedDiff(int(diff.size), interval.mean, interval.low, interval.high, wins,
                      int(diff.size) - wins - losses, losses, sign_test(wins, losses))
