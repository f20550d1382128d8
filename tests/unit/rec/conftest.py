"""Toy sequence data and small models shared by the recommender tests."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from aisle.tools.recommenders import SASRecConfig, SequenceDataset

TINY_SASREC = SASRecConfig(hidden=8, heads=2, inner=16, layers=1, dropout=0.1, max_len=8,
                           batch_tokens=64, max_epochs=2, patience=2, seed=7)


def toy_sequences(n_users: int = 40, n_items: int = 12, seed: int = 0
                  ) -> dict[str, tuple[str, ...]]:
    """Users walking a cycle of items (next item = current + 1, with some noise), so a
    sequential model has something to learn. Item ids are "1".."n_items"."""
    rng = random.Random(seed)
    out = {}
    for u in range(n_users):
        start, length = rng.randrange(n_items), rng.randint(4, 9)
        seq = []
        for step in range(length):
            item = (start + step) % n_items if rng.random() > 0.15 else rng.randrange(n_items)
            if str(item + 1) not in seq:
                seq.append(str(item + 1))
        while len(seq) < 4:
            extra = str(rng.randrange(n_items) + 1)
            if extra not in seq:
                seq.append(extra)
        out[f"u{u}"] = tuple(seq)
    return out


@pytest.fixture
def toy() -> SequenceDataset:
    """40 users over a catalog of 13 items, the last never interacted with."""
    items = tuple(str(i) for i in range(1, 14))
    return SequenceDataset("toy", items, toy_sequences())


def _write_s3rec(folder: Path, name: str, sequences: dict[str, tuple[str, ...]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    path.write_text("".join(f"{u} {' '.join(s)}\n" for u, s in sequences.items()))
    return path


@pytest.fixture
def write_s3rec() -> Callable[[Path, str, dict[str, tuple[str, ...]]], Path]:
    """`write_s3rec(folder, name, sequences)`: the sequences as an S3-Rec `NAME.txt`."""
    return _write_s3rec


@pytest.fixture
def tiny_sasrec() -> SASRecConfig:
    """A SASRec small enough to train in well under a second."""
    return TINY_SASREC
