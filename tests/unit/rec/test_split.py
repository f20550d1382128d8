"""Leave-one-out on toy data, and the leakage test on the real files: no user's test
target (nor, for users who validate, its validation target) is ever in training."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisle.evals.rec_data import load_rec_data
from aisle.tools.recommenders import SequenceDataset, SplitConfig, leave_one_out


def test_last_item_tests_second_to_last_validates() -> None:
    ds = SequenceDataset("t", tuple("abcde"), {"u": tuple("abcde"), "v": ("a", "b"),
                                               "w": ("c",)})
    split = leave_one_out(ds)
    assert split.train == {"u": ("a", "b", "c"), "v": ("a",), "w": ("c",)}
    assert split.valid == [("u", ("a", "b", "c"), "d")]
    assert split.test == [("u", tuple("abcd"), "e"), ("v", ("a",), "b")]


def test_sampled_validation_users_only_give_up_their_second_to_last_item() -> None:
    seqs = {f"u{i}": ("a", "b", "c", "d") for i in range(10)}
    split = leave_one_out(SequenceDataset("t", tuple("abcd"), seqs), SplitConfig(valid_users=3))
    validating = {u for u, _, _ in split.valid}
    assert len(validating) == 3
    for user, train in split.train.items():
        assert train == (("a", "b") if user in validating else ("a", "b", "c"))
    again = leave_one_out(SequenceDataset("t", tuple("abcd"), seqs), SplitConfig(valid_users=3))
    assert again.valid == split.valid  # seeded


@pytest.mark.parametrize("name", ["beauty", "llmrank-games"])
def test_no_held_out_item_is_ever_trained_on(shared_data: Path, name: str) -> None:
    rec = load_rec_data(shared_data, name)
    ds = rec.dataset
    split = leave_one_out(ds, rec.split)
    validating = {u for u, _, _ in split.valid}
    assert len(split.test) == ds.n_users
    for user, history, target in split.test:
        full = ds.sequences[user]
        assert (*history, target) == full
        held_out = 2 if user in validating else 1
        # Training is exactly the prefix before the held-out items: never the test
        # target's interaction, never the validation target's.
        assert split.train[user] == full[:-held_out]
        assert target not in split.train[user]  # (no target repeats a history item)
    trained = sum(len(s) for s in split.train.values())
    assert trained == ds.n_interactions - len(split.test) - len(split.valid)
    if rec.games is not None:
        # The eval's users: their training sequences stop before their target, which is
        # the ARAG eval's held-out item.
        for case in rec.games.cases("random"):
            assert split.train[case.user_id] == case.history[:len(split.train[case.user_id])]
            assert case.target not in split.train[case.user_id]
            assert ds.sequences[case.user_id][-1] == case.target
