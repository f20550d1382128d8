"""Sequence datasets and the leave-one-out split.

A `SequenceDataset` holds each user's whole item sequence (oldest first) and the
catalog. The S3-Rec format (`load_s3rec`) is the one the amazon-seq data uses, so any
dataset in it works unchanged:

- `NAME.txt`: one user per line, `user_id item_id item_id ...` in time order;
- `NAME_item2attributes.json` (optional, beside it): item id -> attribute ids.

`leave_one_out` splits every user's sequence: the last item is the test target, the
second-to-last the validation target, and the items before train. With `valid_users`,
only a seeded sample of that many users gives up its second-to-last item for
validation; every other user trains on all but its test item (LLMRank Games, whose
users have short histories, uses this). No test target is ever in a training sequence
(a user's training sequence always ends before its held-out items).

Example:
    >>> ds = SequenceDataset("toy", ("a", "b", "c", "d"),
    ...                      {"u1": ("a", "b", "c", "d"), "u2": ("b", "c", "a")})
    >>> split = leave_one_out(ds)
    >>> split.train["u1"], split.valid[0], split.test[1]
    (('a', 'b'), ('u1', ('a', 'b'), 'c'), ('u2', ('b', 'c'), 'a'))
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aisle.errors import AisleError

__all__ = ["RecDataError", "SequenceDataset", "Split", "SplitConfig", "leave_one_out",
           "load_s3rec", "subset"]


class RecDataError(AisleError, ValueError):
    """A sequence file is missing or malformed."""


@dataclass(frozen=True)
class SequenceDataset:
    """Users' item sequences (oldest first, the held-out items included) and the catalog.

    Attributes:
        name: a short name (checkpoint folders and run ids start with it).
        items: the catalog, in a stable order (numeric ids in numeric order).
        sequences: user id -> that user's items, oldest first.
        attributes: item id -> attribute ids, when the dataset has them.
        source: the file or folder it was read from.
        titles: item id -> title, when the dataset has them (LLMRank Games).
    """

    name: str
    items: tuple[str, ...]
    sequences: dict[str, tuple[str, ...]]
    attributes: dict[str, tuple[int, ...]] | None = None
    source: Path | None = field(default=None, compare=False)
    titles: dict[str, str] | None = field(default=None, compare=False, repr=False)

    @property
    def n_users(self) -> int:
        return len(self.sequences)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return sum(len(s) for s in self.sequences.values())

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the catalog and every sequence: equal exactly when two datasets
        would train the same models."""
        h = hashlib.sha256()
        h.update("\n".join(self.items).encode())
        for user, seq in self.sequences.items():
            h.update(f"\0{user}\t{' '.join(seq)}".encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, int | str]:
        return {"name": self.name, "users": self.n_users, "items": self.n_items,
                "interactions": self.n_interactions}


class SplitConfig(BaseModel):
    """How `leave_one_out` chooses validation users."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    valid_users: int | None = Field(None, ge=1, description="Validate on this many "
                                    "sampled users (the rest train on all but their test "
                                    "item); None: every user.")
    seed: int = 0


@dataclass(frozen=True)
class Split:
    """Training sequences, and validation and test cases `(user, history, target)`."""

    train: dict[str, tuple[str, ...]]
    valid: list[tuple[str, tuple[str, ...], str]]
    test: list[tuple[str, tuple[str, ...], str]]

    @property
    def train_sequences(self) -> list[tuple[str, ...]]:
        return [s for s in self.train.values() if s]

    @property
    def validation_pairs(self) -> list[tuple[tuple[str, ...], str]]:
        return [(h, t) for _, h, t in self.valid]


def leave_one_out(dataset: SequenceDataset, config: SplitConfig | None = None) -> Split:
    """Last item test, second-to-last validation, the rest train (see the module doc).

    Users with fewer than 2 items give no test case; with fewer than 3, no validation
    case (what they have trains)."""
    config = config or SplitConfig()
    users = [u for u, s in dataset.sequences.items() if len(s) >= 3]
    if config.valid_users is None or config.valid_users >= len(users):
        validating = set(users)
    else:
        validating = set(random.Random(config.seed).sample(users, config.valid_users))
    train: dict[str, tuple[str, ...]] = {}
    valid: list[tuple[str, tuple[str, ...], str]] = []
    test: list[tuple[str, tuple[str, ...], str]] = []
    for user, seq in dataset.sequences.items():
        if len(seq) < 2:
            train[user] = seq
            continue
        test.append((user, seq[:-1], seq[-1]))
        if user in validating:
            valid.append((user, seq[:-2], seq[-2]))
            train[user] = seq[:-2]
        else:
            train[user] = seq[:-1]
    return Split(train, valid, test)


def _sorted_ids(ids: set[str]) -> tuple[str, ...]:
    """Numeric ids in numeric order, otherwise string order."""
    if all(i.isdigit() for i in ids):
        return tuple(sorted(ids, key=int))
    return tuple(sorted(ids))


def load_s3rec(path: str | Path, name: str | None = None) -> SequenceDataset:
    """Read an S3-Rec sequence file (`NAME.txt`) and its `NAME_item2attributes.json`
    if present. The catalog is every item in the file.

    Raises:
        RecDataError: the file is missing, empty, or has a malformed or repeated line.
    """
    path = Path(path)
    if not path.is_file():
        raise RecDataError(f"no sequence file {path}; pass a NAME.txt in the S3-Rec format "
                           "(`user_id item_id item_id ...` per line)")
    sequences: dict[str, tuple[str, ...]] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise RecDataError(f"{path}:{lineno}: expected 'user_id item_id ...', got "
                                   f"{line.strip()!r}")
            if parts[0] in sequences:
                raise RecDataError(f"{path}:{lineno}: user {parts[0]!r} appears twice")
            sequences[parts[0]] = tuple(parts[1:])
    if not sequences:
        raise RecDataError(f"{path} holds no sequences")
    ids = {i for s in sequences.values() for i in s}
    attributes = None
    attr_path = path.with_name(f"{path.stem}_item2attributes.json")
    if attr_path.is_file():
        try:
            raw = json.loads(attr_path.read_text(encoding="utf-8"))
            attributes = {str(k): tuple(int(a) for a in v) for k, v in raw.items()}
        except (ValueError, TypeError, AttributeError) as e:
            raise RecDataError(f"{attr_path}: expected {{item id: [attribute ids]}} ({e})") \
                from e
    return SequenceDataset(name or path.stem.lower(), _sorted_ids(ids), sequences, attributes,
                           path)


def subset(dataset: SequenceDataset, users: Sequence[str], name: str | None = None
           ) -> SequenceDataset:
    """The same catalog with only `users`' sequences (quick runs and tests)."""
    return SequenceDataset(name or f"{dataset.name}-{len(users)}u", dataset.items,
                           {u: dataset.sequences[u] for u in users}, dataset.attributes,
                           dataset.source, dataset.titles)
