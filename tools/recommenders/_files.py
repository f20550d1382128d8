"""One-file model formats: `.npz` for the numpy models (no pickle), written atomically."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aisle.errors import ConfigurationError
from aisle.tools.recommenders.base import TrainingRecord

__all__ = ["atomic_target", "read_npz", "read_torch", "write_npz", "write_torch"]


def atomic_target(path: Path) -> Path:
    """A temporary path beside `path`; `os.replace(tmp, path)` then publishes it whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_npz(path: Path, kind: str, items: Sequence[str], training: TrainingRecord | None,
              config: dict[str, Any], **arrays: npt.NDArray[Any]) -> None:
    """Write a model: its kind, catalog, config and training record as JSON, plus arrays."""
    meta = {"kind": kind, "items": list(items), "config": config,
            "training": training.model_dump(mode="json") if training else None}
    payload: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **arrays}
    tmp = atomic_target(path)
    with tmp.open("wb") as f:
        np.savez(f, **payload)
    os.replace(tmp, path)


def read_npz(path: Path, kind: str
             ) -> tuple[list[str], TrainingRecord | None, dict[str, Any],
                        dict[str, npt.NDArray[Any]]]:
    """Read what `write_npz` wrote: `(items, training, config, arrays)`.

    Raises:
        ConfigurationError: the file is missing, not a model file, or another kind's.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in data.files if k != "meta"}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ConfigurationError(f"{path} is not a saved recommender ({e}); train it again "
                                 "with `aisle rec train`") from e
    if meta.get("kind") != kind:
        raise ConfigurationError(f"{path} holds a {meta.get('kind')!r} model, not {kind!r}")
    training = TrainingRecord.model_validate(meta["training"]) if meta["training"] else None
    return list(meta["items"]), training, dict(meta["config"]), arrays


def write_torch(path: Path, kind: str, items: Sequence[str], training: TrainingRecord | None,
                config: dict[str, Any], state: dict[str, Any], **extra: Any) -> None:
    """Write a torch model: kind, catalog, config, training record, weights and `extra`."""
    import torch

    tmp = atomic_target(path)
    torch.save({"kind": kind, "config": config, "items": list(items),
                "training": training.model_dump(mode="json") if training else None,
                **extra, "model": state}, tmp)
    os.replace(tmp, path)


def read_torch(path: Path, kind: str, unreadable: str, wrong_kind: str
               ) -> tuple[dict[str, Any], TrainingRecord | None]:
    """What `write_torch` wrote, and its training record.

    Raises:
        ConfigurationError: `unreadable` (with the reason) or `wrong_kind`.
    """
    import torch

    try:
        # map_location: a model written on a GPU loads on a CPU-only machine too.
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except (OSError, RuntimeError) as e:
        raise ConfigurationError(unreadable.format(path=path, error=e)) from e
    if not isinstance(saved, dict) or saved.get("kind") != kind:
        raise ConfigurationError(wrong_kind.format(path=path))
    training = TrainingRecord.model_validate(saved["training"]) if saved["training"] else None
    return saved, training
