"""SASRec's training loop: an interrupted training resumes at the next epoch and ends
exactly where an uninterrupted one does; early stopping on validation NDCG@10; the
thread setting; checkpoints refused for another config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from aisle.errors import ConfigurationError
from aisle.settings import Settings
from aisle.tools.recommenders import (
    EpochLog,
    SASRec,
    SASRecConfig,
    SequenceDataset,
    leave_one_out,
)
from aisle.tools.recommenders.sasrec import STATE_FILE, resolve_threads, torch_threads


class Recorder:
    """Progress callbacks that record epochs, and interrupt after `stop_after`."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.epochs: list[int] = []
        self.batches = 0
        self.stop_after = stop_after

    def on_batch(self, epoch: int, done: int, total: int) -> None:
        self.batches += 1

    def on_epoch(self, log: EpochLog, max_epochs: int) -> None:
        self.epochs.append(log.epoch)
        if log.epoch == self.stop_after:
            raise KeyboardInterrupt


def _fit(toy: SequenceDataset, config: SASRecConfig, folder: Path | None,
         progress: Recorder | None = None) -> SASRec:
    split = leave_one_out(toy)
    return SASRec(config, threads=1).fit(split.train_sequences, items=toy.items,
                                         validation=split.validation_pairs,
                                         checkpoint_dir=folder, progress=progress)


def test_interrupted_training_resumes_at_the_next_epoch(
        toy: SequenceDataset, tiny_sasrec: SASRecConfig, tmp_path: Path) -> None:
    config = tiny_sasrec.model_copy(update={"max_epochs": 3, "patience": 5})
    first = Recorder(stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        _fit(toy, config, tmp_path / "ckpt", first)
    assert first.epochs == [1]
    assert (tmp_path / "ckpt" / STATE_FILE).is_file()

    second = Recorder()
    resumed = _fit(toy, config, tmp_path / "ckpt", second)
    assert second.epochs == [2, 3]  # continues at epoch 2, epoch 1 is not redone
    assert resumed.training is not None
    assert resumed.training.resumed_at == 2
    assert [h.epoch for h in resumed.training.history] == [1, 2, 3]

    straight = _fit(toy, config, None)
    assert straight.training is not None
    assert [h.loss for h in straight.training.history] == \
        [h.loss for h in resumed.training.history]
    for name, tensor in straight.net.state_dict().items():
        assert torch.equal(tensor, resumed.net.state_dict()[name]), name

    # Finished: a third fit runs no epoch and keeps the same model.
    third = Recorder()
    again = _fit(toy, config, tmp_path / "ckpt", third)
    assert third.epochs == []
    assert again.recommend(["1", "2"], k=5) == resumed.recommend(["1", "2"], k=5)


def test_training_stops_when_validation_stops_improving(
        toy: SequenceDataset, tiny_sasrec: SASRecConfig) -> None:
    # A learning rate too small to move any ranking: validation NDCG@10 never improves
    # on epoch 1, so training stops after `patience` more epochs, keeping epoch 1.
    config = tiny_sasrec.model_copy(update={"lr": 1e-12, "max_epochs": 20, "patience": 2})
    record = _fit(toy, config, None).training
    assert record is not None
    assert (record.epochs, record.best_epoch, record.stopped_early) == (3, 1, True)
    assert [h.best for h in record.history] == [True, False, False]
    assert record.valid_ndcg10 == record.history[0].valid_ndcg10


def test_training_stops_at_the_time_budget(toy: SequenceDataset, tiny_sasrec: SASRecConfig,
                                           tmp_path: Path) -> None:
    # A budget shorter than any epoch: the first epoch runs, no second one starts.
    config = tiny_sasrec.model_copy(update={"max_epochs": 5, "patience": 5,
                                            "max_minutes": 1e-9})
    record = _fit(toy, config, tmp_path / "ckpt").training
    assert record is not None
    assert (record.epochs, record.stopped_by_time, record.stopped_early) == (1, True, False)
    assert record.best_epoch == 1

    # Finished: the same folder trains no further epoch.
    again = Recorder()
    resumed = _fit(toy, config, tmp_path / "ckpt", again).training
    assert again.epochs == []
    assert resumed is not None
    assert (resumed.epochs, resumed.stopped_by_time) == (1, True)

    # No budget: every epoch runs, and the record says no budget stopped it.
    unbounded = _fit(toy, config.model_copy(update={"max_minutes": None}), None).training
    assert unbounded is not None
    assert (unbounded.epochs, unbounded.stopped_by_time) == (5, False)


def test_the_loss_falls_on_learnable_sequences(toy: SequenceDataset,
                                               tiny_sasrec: SASRecConfig) -> None:
    config = tiny_sasrec.model_copy(update={"max_epochs": 8, "patience": 8, "lr": 0.01})
    record = _fit(toy, config, None).training
    assert record is not None
    losses = [h.loss for h in record.history]
    assert losses[-1] < losses[0]


def test_a_checkpoint_of_another_config_is_refused(
        toy: SequenceDataset, tiny_sasrec: SASRecConfig, tmp_path: Path) -> None:
    _fit(toy, tiny_sasrec.model_copy(update={"max_epochs": 1}), tmp_path)
    with pytest.raises(ConfigurationError, match="another config"):
        _fit(toy, tiny_sasrec.model_copy(update={"max_epochs": 1, "hidden": 16}), tmp_path)


def test_threads_come_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_threads(3) == 3
    monkeypatch.setenv("AISLE_REC_THREADS", "2")
    from aisle.settings import get_settings

    get_settings.cache_clear()
    assert get_settings().rec_threads == 2
    assert resolve_threads(None) == 2
    assert resolve_threads(0) >= 1  # all cores
    before = torch.get_num_threads()
    with torch_threads(1) as n:
        assert n == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert Settings(rec_threads=0).rec_threads == 0
    with pytest.raises(ValidationError):
        Settings(rec_threads=-1)


def test_heads_must_divide_hidden() -> None:
    with pytest.raises(ValidationError, match="must divide"):
        SASRecConfig(hidden=10, heads=3)
