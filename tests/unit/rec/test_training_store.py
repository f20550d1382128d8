"""`train_model`: one folder per dataset, split and config under AISLE_HOME/rec/, a
finished model loaded instead of retrained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aisle.settings import get_settings
from aisle.tools.recommenders import (
    ItemKNNConfig,
    ModelConfigs,
    ModelKind,
    SASRecConfig,
    SequenceDataset,
    SplitConfig,
    checkpoint_dir,
    load_model,
    train_model,
)


def test_models_live_under_aisle_home_keyed_by_dataset_and_config(toy: SequenceDataset) -> None:
    folder = checkpoint_dir(toy, ModelKind.itemknn)
    assert folder.parent == get_settings().home / "rec"
    assert folder.name.startswith("toy-itemknn-")
    other = ModelConfigs(itemknn=ItemKNNConfig(neighbors=5))
    assert checkpoint_dir(toy, ModelKind.itemknn, other) != folder
    assert checkpoint_dir(toy, ModelKind.itemknn, split=SplitConfig(valid_users=3)) != folder
    # Another model's config does not move this one's folder.
    sasrec = ModelConfigs(sasrec=SASRecConfig(max_epochs=3))
    assert checkpoint_dir(toy, ModelKind.itemknn, sasrec) == folder
    assert checkpoint_dir(toy, ModelKind.sasrec, sasrec) != checkpoint_dir(toy, ModelKind.sasrec)


@pytest.mark.parametrize("kind", [ModelKind.pop, ModelKind.itemknn, ModelKind.sasrec])
def test_trained_once_then_loaded(toy: SequenceDataset, tiny_sasrec: SASRecConfig,
                                  kind: ModelKind) -> None:
    configs = ModelConfigs(sasrec=tiny_sasrec)
    first = train_model(toy, kind, configs, threads=1)
    assert not first.loaded
    files = {p.name for p in first.folder.iterdir()}
    assert {"config.json", "training.json"} <= files
    assert json.loads((first.folder / "config.json").read_text())["model"] == kind.value
    second = train_model(toy, kind, configs, threads=1)
    assert second.loaded
    assert second.folder == first.folder
    assert second.record == first.record
    assert second.model.recommend(["1", "2"], k=4) == first.model.recommend(["1", "2"], k=4)
    assert load_model(first.folder, kind) is not None


def test_an_unfinished_folder_has_no_model(tmp_path: Path) -> None:
    assert load_model(tmp_path, ModelKind.sasrec) is None
