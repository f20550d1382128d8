"""Train a recommender once per dataset and config, keep it under `AISLE_HOME`.

A model's folder is `AISLE_HOME/rec/<dataset>-<model>-<hash>/`, the hash over the
dataset's fingerprint, the split and the model's config, so a changed config or dataset
never reuses another's checkpoint. It holds:

- `config.json`: what the folder was trained on (kind, config, dataset, split);
- `state.pt`: SASRec's or GRACE's training state after the last finished epoch (an interrupted
  training resumes from it);
- `codes.npz`: GRACE's semantic IDs (made before its first epoch);
- `model.npz` or `model.pt`: the fitted model, written when training finishes;
- `training.json`: the training record (epochs, validation NDCG@10 per epoch, time);
- `train.log`: the CLI's timestamped progress lines.

Example:
    >>> import tempfile
    >>> from aisle.tools.recommenders.data import SequenceDataset
    >>> ds = SequenceDataset("toy", ("a", "b", "c"), {"u1": ("a", "b", "c"),
    ...                                                "u2": ("b", "c", "a")})
    >>> home = Path(tempfile.mkdtemp())
    >>> first = train_model(ds, ModelKind.pop, home=home)
    >>> again = train_model(ds, ModelKind.pop, home=home)
    >>> first.folder == again.folder, first.loaded, again.loaded
    (True, False, True)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aisle.settings import get_settings
from aisle.tools.recommenders.base import CatalogRecommender, FitProgress, TrainingRecord
from aisle.tools.recommenders.config import ModelConfigs, ModelKind
from aisle.tools.recommenders.data import SequenceDataset, Split, SplitConfig, leave_one_out

if TYPE_CHECKING:
    from aisle.tools.recommenders.grace import ItemSide

__all__ = ["TrainedModel", "checkpoint_dir", "item_side", "load_model", "make_model",
           "model_file", "train_model"]


def item_side(dataset: SequenceDataset) -> ItemSide:
    """What GRACE reads of a dataset's items: titles, and attribute ids as names."""
    from aisle.tools.recommenders.grace import ItemSide

    attributes = None
    if dataset.attributes is not None:
        attributes = {i: [f"attr{a}" for a in attrs] for i, attrs in dataset.attributes.items()}
    return ItemSide(titles=dataset.titles, attributes=attributes)


def make_model(kind: ModelKind, configs: ModelConfigs | None = None, *,
               threads: int | None = None, dataset: SequenceDataset | None = None
               ) -> CatalogRecommender:
    """A new, unfitted model of `kind` (SASRec and GRACE import torch here, not before);
    GRACE reads its item side information (titles, attributes) from `dataset`."""
    configs = configs or ModelConfigs()
    if kind == ModelKind.grace:
        from aisle.tools.recommenders.grace import GRACE

        return GRACE(configs.grace, side=item_side(dataset) if dataset else None,
                     threads=threads)
    if kind == ModelKind.pop:
        from aisle.tools.recommenders.popularity import Popularity

        return Popularity()
    if kind == ModelKind.itemknn:
        from aisle.tools.recommenders.itemknn import ItemKNN

        return ItemKNN(configs.itemknn)
    from aisle.tools.recommenders.sasrec import SASRec

    return SASRec(configs.sasrec, threads=threads)


def model_file(folder: Path, kind: ModelKind) -> Path:
    """The fitted model's file inside its folder."""
    return folder / ("model.pt" if kind in (ModelKind.sasrec, ModelKind.grace) else "model.npz")


def checkpoint_key(dataset: SequenceDataset, kind: ModelKind, configs: ModelConfigs,
                   split: SplitConfig) -> dict[str, Any]:
    """What decides a trained model: the data, the split, the model and its config."""
    return {"dataset": dataset.name, "fingerprint": dataset.fingerprint,
            "split": split.model_dump(mode="json"), "model": kind.value,
            "config": configs.of(kind)}


def checkpoint_dir(dataset: SequenceDataset, kind: ModelKind,
                   configs: ModelConfigs | None = None, split: SplitConfig | None = None, *,
                   home: Path | None = None) -> Path:
    """`<home>/rec/<dataset>-<model>-<hash of checkpoint_key>` (home: AISLE_HOME)."""
    key = checkpoint_key(dataset, kind, configs or ModelConfigs(), split or SplitConfig())
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    root = home if home is not None else get_settings().home
    return root / "rec" / f"{dataset.name}-{kind.value}-{digest}"


@dataclass
class TrainedModel:
    """A fitted model and where it lives."""

    model: CatalogRecommender
    kind: ModelKind
    folder: Path
    loaded: bool
    """True: read from a finished checkpoint, no training ran."""

    @property
    def record(self) -> TrainingRecord:
        return self.model.training or TrainingRecord(model=self.kind.value)


def load_model(folder: Path, kind: ModelKind, *, threads: int | None = None
               ) -> CatalogRecommender | None:
    """The fitted model in `folder`, or None when training has not finished there."""
    path = model_file(folder, kind)
    if not path.is_file():
        return None
    if kind == ModelKind.sasrec:
        from aisle.tools.recommenders.sasrec import SASRec

        return SASRec.load(path, threads=threads)
    if kind == ModelKind.grace:
        from aisle.tools.recommenders.grace import GRACE

        return GRACE.load(path, threads=threads)
    return type(make_model(kind)).load(path)


def train_model(dataset: SequenceDataset, kind: ModelKind, configs: ModelConfigs | None = None,
                split_config: SplitConfig | None = None, *, split: Split | None = None,
                home: Path | None = None, progress: FitProgress | None = None,
                threads: int | None = None) -> TrainedModel:
    """The model of `kind` fitted on `dataset`'s leave-one-out training sequences:
    read from its folder when finished there, else trained (resuming a SASRec training
    from its last finished epoch) and saved.

    Args:
        dataset: the data.
        kind: which model.
        configs: the models' configs (defaults otherwise).
        split_config: how validation users are chosen (`leave_one_out`).
        split: the split, when the caller has it already (must match `split_config`).
        home: instead of AISLE_HOME.
        progress: epoch and batch callbacks.
        threads: torch threads (default: the `rec_threads` setting).
    """
    configs = configs or ModelConfigs()
    split_config = split_config or SplitConfig()
    folder = checkpoint_dir(dataset, kind, configs, split_config, home=home)
    done = load_model(folder, kind, threads=threads)
    if done is not None:
        return TrainedModel(done, kind, folder, loaded=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(
        {**checkpoint_key(dataset, kind, configs, split_config),
         "dataset_summary": dataset.summary()}, indent=2) + "\n")
    split = split or leave_one_out(dataset, split_config)
    model = make_model(kind, configs, threads=threads, dataset=dataset)
    model.fit(split.train_sequences, items=dataset.items, validation=split.validation_pairs,
              checkpoint_dir=folder, progress=progress)
    model.save(model_file(folder, kind))
    if model.training is not None:
        (folder / "training.json").write_text(model.training.model_dump_json(indent=2) + "\n")
    return TrainedModel(model, kind, folder, loaded=False)
