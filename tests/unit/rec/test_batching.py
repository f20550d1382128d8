"""Length-bucketed batches: every sequence once, within the token budget, and far less
padding than random batches."""

from __future__ import annotations

import numpy as np

from aisle.tools.recommenders._batching import (
    bucketed_order,
    padding_share,
    random_order,
    token_batches,
)


def _lengths() -> np.ndarray:
    # Mostly short histories with a long tail, like the amazon-seq data.
    rng = np.random.default_rng(1)
    return np.minimum(rng.geometric(0.15, size=2000) + 3, 50).astype(np.int64)


def test_batches_cover_every_sequence_once_within_the_budget() -> None:
    lengths = _lengths()
    for order in (bucketed_order(lengths, np.random.default_rng(0)),
                  random_order(lengths, np.random.default_rng(0))):
        batches = token_batches(order, lengths, budget=256)
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
        assert all(len(b) * lengths[b].max() <= 256 for b in batches)


def test_a_sequence_longer_than_the_budget_gets_its_own_batch() -> None:
    lengths = np.array([3, 40, 2], dtype=np.int64)
    batches = token_batches(np.arange(3), lengths, budget=10)
    assert [b.tolist() for b in batches] == [[0], [1], [2]]


def test_bucketing_cuts_the_padding() -> None:
    lengths = _lengths()
    rng = np.random.default_rng(0)
    bucketed = padding_share(token_batches(bucketed_order(lengths, rng), lengths, 512), lengths)
    shuffled = padding_share(token_batches(random_order(lengths, rng), lengths, 512), lengths)
    assert bucketed < 0.05 < 0.3 < shuffled


def test_padding_share_by_hand() -> None:
    lengths = np.array([2, 4, 4], dtype=np.int64)
    # One batch of 3 padded to 4: 12 positions, 10 real.
    assert padding_share([np.arange(3)], lengths) == 1 - 10 / 12
