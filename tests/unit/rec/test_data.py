"""Sequence loaders on the real files (counts match the data README), the S3-Rec
format's errors, and `--dataset` resolution under the data root."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aisle.evals._errors import DatasetError
from aisle.evals.rec_data import GAMES_VALID_USERS, load_rec_data
from aisle.tools.recommenders import RecDataError, SequenceDataset, load_s3rec

WriteS3Rec = Callable[[Path, str, dict[str, tuple[str, ...]]], Path]


@pytest.mark.parametrize(("name", "users", "items", "interactions"), [
    ("beauty", 22_363, 12_101, 198_502),
    ("sports", 35_598, 18_357, 296_337),
])
def test_amazon_seq_counts_match_the_readme(shared_data: Path, name: str, users: int,
                                            items: int, interactions: int) -> None:
    rec = load_rec_data(shared_data, name)
    ds = rec.dataset
    assert (ds.name, ds.n_users, ds.n_items, ds.n_interactions) == \
        (name, users, items, interactions)
    assert rec.protocol == "full"
    assert rec.split.valid_users is None  # every user validates
    assert ds.attributes is not None
    assert len(ds.attributes) == items
    assert ds.items[:3] == ("1", "2", "3")  # numeric ids in numeric order
    assert min(len(s) for s in ds.sequences.values()) >= 5  # 5-core


def test_llmrank_games_as_sequences(shared_data: Path) -> None:
    rec = load_rec_data(shared_data, "llmrank-games")
    ds, games = rec.dataset, rec.games
    assert games is not None
    assert (ds.n_users, ds.n_items) == (50_546, 16_859)
    assert rec.protocol == "candidates"
    assert rec.split.valid_users == GAMES_VALID_USERS
    for user in list(games.histories)[:100]:
        assert ds.sequences[user] == (*games.histories[user], games.targets[user])


def test_a_path_or_an_amazon_seq_name_selects_the_file(tmp_path: Path,
                                                       write_s3rec: WriteS3Rec) -> None:
    path = write_s3rec(tmp_path / "amazon-seq", "Toys_and_Games",
                       {"1": ("3", "1", "2"), "2": ("2", "10")})
    for given in ("toys_and_games", str(path), str(path.parent)):
        rec = load_rec_data(tmp_path, given)
        assert rec.dataset.name == "toys_and_games"
        assert rec.dataset.items == ("1", "2", "3", "10")
        assert rec.key == given


def test_an_unknown_dataset_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="beauty, sports, llmrank-games"):
        load_rec_data(tmp_path, "nope")


@pytest.mark.parametrize(("text", "match"), [
    ("1 5 6\n1 7\n", "appears twice"),
    ("1\n", "expected 'user_id item_id"),
    ("\n\n", "holds no sequences"),
])
def test_malformed_s3rec_files_name_the_line(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "Bad.txt"
    path.write_text(text)
    with pytest.raises(RecDataError, match=match):
        load_s3rec(path)


def test_attributes_beside_the_file_are_read(tmp_path: Path, write_s3rec: WriteS3Rec) -> None:
    path = write_s3rec(tmp_path, "Shop", {"1": ("1", "2")})
    (tmp_path / "Shop_item2attributes.json").write_text('{"1": [4, 5], "2": [6]}')
    ds = load_s3rec(path)
    assert isinstance(ds, SequenceDataset)
    assert ds.attributes == {"1": (4, 5), "2": (6,)}
    assert ds.summary() == {"name": "shop", "users": 1, "items": 2, "interactions": 2}


def test_the_fingerprint_follows_the_sequences(tmp_path: Path, write_s3rec: WriteS3Rec) -> None:
    a = load_s3rec(write_s3rec(tmp_path / "a", "X", {"1": ("1", "2"), "2": ("2", "3")}))
    b = load_s3rec(write_s3rec(tmp_path / "b", "X", {"1": ("1", "2"), "2": ("2", "3")}))
    c = load_s3rec(write_s3rec(tmp_path / "c", "X", {"1": ("1", "2"), "2": ("3", "2")}))
    assert a.fingerprint == b.fingerprint != c.fingerprint
