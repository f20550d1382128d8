"""Cheap first: a score decides the confident rows, the LLM sees only the uncertain band.

A cascade has two thresholds on a score where higher means "more likely yes" (a match,
an error, keep): rows scoring at or above `high` are decided yes, rows at or below `low`
no, and only rows strictly between go to the LLM. The thresholds are fitted on labelled
validation rows (`fit_thresholds`), either for a share of rows sent to the LLM (the band
with the fewest validation mistakes outside it) or for a mistake rate in the decided
rows; the report states the share of rows that went to the LLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aisle.errors import ConfigurationError

__all__ = ["Thresholds", "decide", "fit_thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """`low` < `high`; scores at or below `low` are no, at or above `high` yes."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ConfigurationError(f"cascade thresholds need low < high, got low={self.low}"
                                     f", high={self.high}")


def decide(scores: Sequence[float], t: Thresholds) -> list[bool | None]:
    """Yes, no, or None (the LLM decides) per score.

    Example:
        >>> decide([0.1, 0.5, 0.9], Thresholds(0.2, 0.8))
        [False, None, True]
    """
    return [True if s >= t.high else False if s <= t.low else None for s in scores]


def fit_thresholds(scores: Sequence[float], labels: Sequence[bool | int], *,
                   llm_share: float | None = None,
                   max_error: float | None = None) -> Thresholds:
    """Thresholds from labelled validation rows.

    With `llm_share`, the band holding at most that share of the rows that leaves the
    fewest mistakes outside it (positives at or below `low`, negatives at or above
    `high`). With `max_error`, the widest decided regions whose mistake rate is at most
    `max_error` on each side (the band is then whatever is left). Ties in score stay on
    one side of a threshold.

    Raises:
        ConfigurationError: no rows, lengths differ, or neither/both options given.

    Example:
        >>> t = fit_thresholds([0.1, 0.2, 0.3, 0.6, 0.8, 0.9], [0, 0, 1, 0, 1, 1], llm_share=0.34)
        >>> t.low < 0.3 and 0.6 <= t.high <= 0.8
        True
    """
    if len(scores) != len(labels):
        raise ConfigurationError(f"{len(scores)} scores but {len(labels)} labels")
    if not scores:
        raise ConfigurationError("no validation rows to fit the cascade on")
    if (llm_share is None) == (max_error is None):
        raise ConfigurationError("fit the cascade for llm_share or for max_error (one)")
    order = np.argsort(np.asarray(scores, dtype=float), kind="stable")
    s = np.asarray(scores, dtype=float)[order]
    y = np.asarray(labels, dtype=int)[order]
    n = len(s)
    # Cut positions: a threshold between s[c-1] and s[c]; only where scores differ.
    cuts = [0] + [c for c in range(1, n) if s[c] > s[c - 1]] + [n]
    pos_before = np.concatenate([[0], np.cumsum(y)])  # positives among the first c rows
    neg_after = np.concatenate([np.cumsum((1 - y)[::-1])[::-1], [0]])  # negatives from c on

    def value_below(c: int) -> float:  # a `low` that puts rows [0, c) at or below it
        return float(s[c - 1]) if c > 0 else float(s[0]) - 1.0

    def value_from(c: int) -> float:  # a `high` that puts rows [c, n) at or above it
        return float(s[c]) if c < n else float(s[-1]) + 1.0

    if llm_share is not None:
        if not 0.0 <= llm_share <= 1.0:
            raise ConfigurationError(f"llm_share must be in [0, 1], not {llm_share}")
        best: tuple[int, int, int] | None = None
        hi_idx = 0
        for lo_c in cuts:
            while hi_idx < len(cuts) and cuts[hi_idx] < lo_c:
                hi_idx += 1
            # the widest band [lo_c, hi_c) within the share
            j = hi_idx
            while j + 1 < len(cuts) and cuts[j + 1] - lo_c <= llm_share * n:
                j += 1
            hi_c = cuts[j]
            if hi_c - lo_c > llm_share * n:
                continue
            mistakes = int(pos_before[lo_c] + neg_after[hi_c])
            if best is None or mistakes < best[0]:
                best = (mistakes, lo_c, hi_c)
        assert best is not None
        _, lo_c, hi_c = best
    else:
        assert max_error is not None
        lo_c = max(c for c in cuts if c == 0 or pos_before[c] <= max_error * c)
        hi_c = min(c for c in cuts if c == n or neg_after[c] <= max_error * (n - c))
        if hi_c < lo_c:
            hi_c = lo_c
    low, high = value_below(lo_c), value_from(hi_c)
    if not low < high:  # an empty band: put the cut between the two scores
        high = np.nextafter(low, np.inf)
    return Thresholds(low=low, high=float(high))
