"""evals/decoding_cost.py pairs the same users across the two decodings."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from aisle.evals.decoding import DETERMINISTIC
from aisle.evals.decoding_cost import measure


def _store(path: Path, rows: list[tuple[str, dict[str, object], float]]) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("create table answer_keys (key_hash text primary key, answer_key text)")
        db.execute("create table answers (task text, case_id text, key_hash text, value text)")
        for n, (case, key, seconds) in enumerate(rows):
            db.execute("insert or ignore into answer_keys values (?, ?)",
                       (json.dumps(key, sort_keys=True), json.dumps(key)))
            db.execute("insert into answers values ('arag', ?, ?, ?)",
                       (case, json.dumps(key, sort_keys=True), json.dumps({"seconds": seconds,
                                                                           "n": n})))
    return path


def test_only_users_stored_both_ways_under_the_same_key_are_compared(tmp_path: Path) -> None:
    base = {"model": "m", "agents": 6}
    det = {**base, "decoding": DETERMINISTIC}
    other = {"model": "m", "agents": 5}
    store = _store(tmp_path / "a.sqlite", [
        ("u1", det, 40.0), ("u1", base, 10.0),
        ("u2", det, 30.0), ("u2", base, 20.0),
        ("u3", det, 99.0),                      # batched missing
        ("u4", other, 1.0),                     # another agents version
        ("u5", {"model": "x", "decoding": DETERMINISTIC}, 5.0), ("u5", {"model": "x"}, 1.0),
    ])
    result = measure(store, "m")
    assert set(result["users"]) == {"u1", "u2"}
    assert result["mean_seconds"] == {"deterministic": 35.0, "batched": 15.0}
    assert result["deterministic_cost_x"] == pytest.approx(35 / 15)


def test_no_pair_is_a_clear_exit(tmp_path: Path) -> None:
    store = _store(tmp_path / "a.sqlite", [("u1", {"model": "m"}, 1.0)])
    with pytest.raises(SystemExit, match="stored with both decodings"):
        measure(store, "m")
