"""Length-bucketed batches: most histories are short, so batches of random sequences
padded to their longest member are mostly padding; batches of like lengths are not.

A batch holds as many sequences as fit a token budget (`count x longest <= budget`),
so every batch bounds the memory of the full-catalog logits the same way.

Example:
    >>> import numpy as np
    >>> lengths = np.array([1, 9, 2, 8, 1, 9])
    >>> rng = np.random.default_rng(0)
    >>> batches = token_batches(bucketed_order(lengths, rng), lengths, budget=18)
    >>> sorted(sorted(lengths[b].tolist()) for b in batches)
    [[1, 1, 2], [8, 9], [9]]
    >>> round(padding_share(batches, lengths), 3)
    0.091
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["bucketed_order", "padding_share", "random_order", "token_batches"]

IntArray = npt.NDArray[np.int64]


def bucketed_order(lengths: IntArray, rng: np.random.Generator) -> IntArray:
    """Indices by length, ties in a random order (so batches differ between epochs)."""
    return np.lexsort((rng.random(len(lengths)), lengths)).astype(np.int64)


def random_order(lengths: IntArray, rng: np.random.Generator) -> IntArray:
    """Indices in a random order (no bucketing)."""
    return rng.permutation(len(lengths)).astype(np.int64)


def token_batches(order: IntArray, lengths: IntArray, budget: int) -> list[IntArray]:
    """Consecutive runs of `order` whose `count x longest` stays within `budget` tokens
    (a sequence longer than the budget gets a batch of its own)."""
    batches: list[IntArray] = []
    start, longest = 0, 0
    for pos, idx in enumerate(order):
        longest_with = max(longest, int(lengths[idx]))
        if pos > start and (pos - start + 1) * longest_with > budget:
            batches.append(order[start:pos])
            start, longest_with = pos, int(lengths[idx])
        longest = longest_with
    if start < len(order):
        batches.append(order[start:])
    return batches


def padding_share(batches: list[IntArray], lengths: IntArray) -> float:
    """The fraction of batch positions that are padding."""
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches if len(b))
    return 1.0 - real / padded if padded else 0.0
