"""The epoch loop the torch models share (SASRec, GRACE): early stopping on validation
NDCG@10, a wall-clock budget, and a checkpoint after every epoch that a later fit
resumes from.

A model supplies three callables: `run_epoch(epoch) -> mean loss`, `validate() ->
{"ndcg@10", "recall@10"}` (or None without validation data) and `extra_state()`, the
model-specific part of a checkpoint (its config and catalog size, checked on resume).
The loop keeps the best epoch's weights and loads them into the network at the end.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from aisle.errors import ConfigurationError
from aisle.tools.recommenders._files import atomic_target
from aisle.tools.recommenders.base import EpochLog, FitProgress, TrainingRecord

__all__ = ["STATE_FILE", "EpochBudget", "TrainState", "train_epochs"]

STATE_FILE = "state.pt"
"""The per-epoch training state inside a checkpoint folder."""


class EpochBudget:
    """When training stops: `max_epochs`, `patience` epochs without a better validation
    NDCG@10, or (with `max_minutes`) no time left for another epoch as long as the last."""

    def __init__(self, max_epochs: int, patience: int, max_minutes: float | None) -> None:
        self.max_epochs = max_epochs
        self.patience = patience
        self.max_minutes = max_minutes


class TrainState:
    """The loop's state between epochs (what a checkpoint restores)."""

    KEYS = ("epoch", "best_epoch", "best_score", "best_weights", "bad_epochs",
            "stopped_early", "done", "seconds")

    def __init__(self) -> None:
        self.epoch = 0
        self.best_epoch: int | None = None
        self.best_score = 0.0
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.stopped_by_time = False
        self.done = False
        self.seconds = 0.0
        self.history: list[EpochLog] = []

    def as_dict(self) -> dict[str, Any]:
        return {**{key: getattr(self, key) for key in self.KEYS},
                "stopped_by_time": self.stopped_by_time,
                "history": [h.model_dump(mode="json") for h in self.history]}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> TrainState:
        state = cls()
        for key in cls.KEYS:
            setattr(state, key, saved[key])
        state.stopped_by_time = bool(saved.get("stopped_by_time", False))
        state.history = [EpochLog.model_validate(h) for h in saved["history"]]
        return state


def _save(path: Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
          state: TrainState, extra: dict[str, Any]) -> None:
    tmp = atomic_target(path)
    torch.save({**extra, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                "rng": torch.get_rng_state(), **state.as_dict()}, tmp)
    os.replace(tmp, path)


def _resume(path: Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
            extra: dict[str, Any]) -> TrainState:
    # Tensors come back on the CPU; load_state_dict copies them to the network's and
    # the optimizer's device, so a training resumes on another device than it began on.
    saved = torch.load(path, weights_only=True, map_location="cpu")
    if any(saved.get(key) != value for key, value in extra.items()):
        raise ConfigurationError(
            f"the checkpoint {path} was made with another config or catalog; delete "
            f"{path.parent} to train from scratch")
    net.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["rng"])
    return TrainState.from_dict(saved)


def train_epochs(kind: str, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 budget: EpochBudget, *, run_epoch: Callable[[int], float],
                 validate: Callable[[], dict[str, float]] | None,
                 extra_state: dict[str, Any], checkpoint_dir: Path | None,
                 progress: FitProgress | None) -> TrainingRecord:
    """Train `net` epoch by epoch (see the module docstring); the training record.

    `extra_state` is written into every checkpoint and must match on resume (a changed
    config or catalog refuses to resume rather than mixing two trainings)."""
    state = TrainState()
    path = checkpoint_dir / STATE_FILE if checkpoint_dir is not None else None
    if path is not None and path.is_file():
        state = _resume(path, net, optimizer, extra_state)
    resumed_at = state.epoch + 1 if state.epoch and not state.done else None
    epoch = state.epoch
    while not state.done and epoch < budget.max_epochs:
        epoch += 1
        t0 = time.perf_counter()
        loss = run_epoch(epoch)
        scores = validate() if validate is not None else None
        ndcg = scores["ndcg@10"] if scores else None
        # Without validation the last epoch is the one kept.
        best = ndcg is None or state.best_epoch is None or ndcg > state.best_score
        if best:
            state.best_epoch, state.best_score = epoch, ndcg if ndcg is not None else 0.0
            state.best_weights = copy.deepcopy(net.state_dict())
            state.bad_epochs = 0
        else:
            state.bad_epochs += 1
        log = EpochLog(epoch=epoch, loss=loss, valid_ndcg10=ndcg,
                       valid_recall10=scores["recall@10"] if scores else None,
                       seconds=time.perf_counter() - t0, best=best)
        state.history.append(log)
        state.epoch = epoch
        state.stopped_early = state.bad_epochs >= budget.patience
        state.seconds += time.perf_counter() - t0
        # Another epoch as long as this one would end past the budget: stop now.
        state.stopped_by_time = (
            not state.stopped_early and epoch < budget.max_epochs
            and budget.max_minutes is not None
            and state.seconds + (time.perf_counter() - t0) > budget.max_minutes * 60)
        state.done = state.stopped_early or state.stopped_by_time or epoch >= budget.max_epochs
        if path is not None:
            _save(path, net, optimizer, state, extra_state)
        if progress is not None:
            progress.on_epoch(log, budget.max_epochs)
        if state.stopped_early or state.stopped_by_time:
            break
    if state.best_weights is not None:
        net.load_state_dict(state.best_weights)
    net.eval()
    best_log = next((h for h in state.history if h.epoch == state.best_epoch), None)
    return TrainingRecord(
        model=kind, epochs=state.epoch, best_epoch=state.best_epoch,
        stopped_early=state.stopped_early, stopped_by_time=state.stopped_by_time,
        seconds=state.seconds, resumed_at=resumed_at,
        valid_ndcg10=best_log.valid_ndcg10 if best_log else None,
        valid_recall10=best_log.valid_recall10 if best_log else None,
        history=list(state.history))
