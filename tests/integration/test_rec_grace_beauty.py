"""GRACE fitted for one epoch on a slice of the real Beauty data (the whole catalog,
the first 3,000 users) through `train_model`: real attributes, real co-occurrence, the
real semantic IDs and training loop, then loaded back, decoded and explained."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aisle.evals.rec_data import load_rec_data
from aisle.tools.recommenders import GRACE, GRACEConfig, ModelConfigs, ModelKind, train_model
from aisle.tools.recommenders.data import leave_one_out, subset

pytestmark = pytest.mark.integration


def test_grace_one_epoch_on_a_beauty_slice(shared_data: Path, tmp_path: Path) -> None:
    beauty = load_rec_data(shared_data, "beauty")
    users = list(beauty.dataset.sequences)[:3000]
    data = subset(beauty.dataset, users)
    configs = ModelConfigs(grace=GRACEConfig(max_epochs=1, valid_users=300))
    trained = train_model(data, ModelKind.grace, configs, beauty.split, home=tmp_path,
                          threads=1)
    model = trained.model
    assert isinstance(model, GRACE)
    # Every one of the 12,101 items has its own path; the statistics are kept.
    assert model.code_stats["items"] == data.n_items == 12101
    assert len({tuple(p) for p in model.tokens.paths[1:].tolist()}) == data.n_items
    assert model.tokens.depth == 2 + 3 + 1
    (epoch,) = trained.record.history
    assert epoch.loss is not None
    assert epoch.loss < math.log(model.tokens.vocab)
    assert epoch.valid_ndcg10 is not None

    loaded = train_model(data, ModelKind.grace, configs, beauty.split, home=tmp_path)
    assert loaded.loaded
    split = leave_one_out(data, beauty.split)
    _, history, target = split.test[0]
    top = loaded.model.recommend(history, k=10)
    assert len(top) == 10
    assert len({r.item_id for r in top}) == 10
    assert not {r.item_id for r in top} & set(history)
    scores = loaded.model.score(history, [r.item_id for r in top])
    assert scores == pytest.approx([r.score for r in top], abs=1e-4)
    (rank,) = loaded.model.rank_targets([history], [target])
    assert rank is None or 1 <= rank <= configs.grace.beam
    paths = loaded.model.reasoning(history, [top[0].item_id])  # type: ignore[attr-defined]
    attrs = {f"attr{a}" for a in data.attributes[top[0].item_id]}  # type: ignore[index]
    assert {step.attribute for step in paths[0]} <= attrs
