"""`evals/rec_tune.py`: trials parsed against the model's config, GRACE trials scored
at several beam widths on the validation sample (never a test target)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aisle.evals.rec_tune import parse_trial, run_trial
from aisle.tools.recommenders import ModelKind, SequenceDataset


def test_trials_are_checked_against_the_models_config() -> None:
    assert parse_trial("hidden=16,attention=dense,valid_users=none", ModelKind.grace) == \
        {"hidden": 16, "attention": "dense", "valid_users": None}
    with pytest.raises(ValueError, match="NAME one of"):
        parse_trial("attention=dense")  # SASRec has no such knob
    with pytest.raises(ValueError, match="attention"):
        parse_trial("attention=sparse", ModelKind.grace)  # not jsa or dense


def test_grace_trial_reports_its_curve_and_each_beam(
        tmp_path: Path, toy: SequenceDataset,
        write_s3rec: Callable[[Path, str, dict[str, tuple[str, ...]]], Path]) -> None:
    write_s3rec(tmp_path / "data" / "amazon-seq", "Toy", toy.sequences)
    changes = parse_trial("hidden=8,heads=2,inner=16,layers=1,max_len=8,codebook=3,"
                          "code_levels=2,embedding_dim=4,batch_tokens=256,valid_users=none",
                          ModelKind.grace)
    trial = run_trial(tmp_path / "data", "toy", changes, 2, 1, ModelKind.grace, (1, 20))
    assert [c["epoch"] for c in trial["curve"]] == [1, 2]
    assert trial["config"]["max_epochs"] == 2
    assert trial["config"]["patience"] == 3
    one, twenty = trial["beams"]
    assert (one["beam"], twenty["beam"]) == (1, 20)
    assert one["valid_users"] == twenty["valid_users"] == 40  # valid_users None: all
    # Width 1 ranks one item: every hit is at rank 1, so NDCG@10 equals Recall@10.
    assert one["ndcg@10"] == pytest.approx(one["recall@10"])
    # The config's own width (20) on the same sample is the training's validation of
    # the kept (best) epoch.
    assert twenty["ndcg@10"] == pytest.approx(trial["best_valid_ndcg10"])
    assert twenty["recall@10"] == pytest.approx(trial["best_valid_recall10"])
    again = run_trial(tmp_path / "data", "toy", changes, 2, 1, ModelKind.grace, ())
    assert again["loaded"]
    assert "beams" not in again
