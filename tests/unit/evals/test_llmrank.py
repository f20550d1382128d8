"""The LLMRank Games loader, on the real files and on broken ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aisle.evals.llmrank import DatasetError, load_games


@pytest.fixture(scope="module")
def games(shared_data_dir: Callable[..., Path]):  # type: ignore[no-untyped-def]
    return load_games(shared_data_dir("llmrank-games"))


def test_real_files_load(games) -> None:  # type: ignore[no-untyped-def]
    assert len(games.items) == 16859
    assert games.items["0"] == "Fire Emblem: The Sacred Stones"
    assert len(games.histories) == 50546
    assert games.histories["0"][:3] == ("0", "1", "2")
    assert games.targets["0"] == "14"


@pytest.mark.parametrize("retriever", ["random", "pop", "bpr", "sasrec", "gru4rec"])
def test_protocol_on_every_retriever(games, retriever: str) -> None:  # type: ignore[no-untyped-def]
    cases = games.cases(retriever)
    assert len(cases) == 200
    for case in cases:
        assert len(case.candidates) == 20
        assert len(set(case.candidates)) == 20
        assert case.target in case.candidates
        assert all(c in games.items for c in case.candidates)
    # The ground truth is not always in the same slot: the shuffle happened.
    assert len({c.candidates.index(c.target) for c in cases}) > 10


def test_protocol_is_deterministic_and_seeded(games) -> None:  # type: ignore[no-untyped-def]
    a = games.cases("random", n_users=5)
    assert a == games.cases("random", n_users=5)
    assert [c.candidates for c in a] != [c.candidates for c in games.cases("random", n_users=5,
                                                                          seed=7)]
    # A user's list does not depend on which other users are asked for.
    one = games.cases("random", users=[a[3].user_id])[0]
    assert one == a[3]


def test_first_19_non_target_candidates_are_kept(games) -> None:  # type: ignore[no-untyped-def]
    lists = games.retriever_candidates("random")
    case = games.cases("random", n_users=1)[0]
    expected = [c for c in lists[case.user_id] if c != case.target][:19]
    assert sorted(case.candidates) == sorted([*expected, case.target])


def test_unknown_user_and_retriever(games) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError, match="'nobody'"):
        games.cases("random", users=["nobody"])
    with pytest.raises(DatasetError, match="no candidate file"):
        games.cases("bm25")
    with pytest.raises(DatasetError, match=r"not in .*Games\.item"):
        games.title("99999999")


def test_broken_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing data file"):
        load_games(tmp_path)
    (tmp_path / "Games.item").write_text("item_id:token\ttitle:token_seq\n0\tA\n1\tB\n")
    (tmp_path / "Games-6k.test.inter").write_text("h\th\th\n7\t0\n")
    with pytest.raises(DatasetError, match="3 tab-separated"):
        load_games(tmp_path)
    (tmp_path / "Games-6k.test.inter").write_text("h\th\th\n7\t0\t1\n")
    (tmp_path / "Games.random").write_text("7\t0 1 42\n")
    games = load_games(tmp_path)
    with pytest.raises(DatasetError, match=r"not in Games\.item: \['42'\]"):
        games.cases("random", n_candidates=2)
