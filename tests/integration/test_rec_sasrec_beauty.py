"""SASRec fitted for one epoch on a slice of the real Beauty data (the whole catalog,
the first 4,000 users) through `train_model`, then loaded back and scored: the real
file, the real training loop, well under a minute on one thread."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aisle.evals.rec_data import load_rec_data
from aisle.tools.recommenders import ModelConfigs, ModelKind, SASRecConfig, train_model
from aisle.tools.recommenders.data import leave_one_out, subset

pytestmark = pytest.mark.integration


def test_sasrec_one_epoch_on_a_beauty_slice(shared_data: Path, tmp_path: Path) -> None:
    beauty = load_rec_data(shared_data, "beauty")
    users = list(beauty.dataset.sequences)[:4000]
    data = subset(beauty.dataset, users)
    configs = ModelConfigs(sasrec=SASRecConfig(max_epochs=1))
    trained = train_model(data, ModelKind.sasrec, configs, beauty.split, home=tmp_path,
                          threads=1)
    record = trained.record
    assert record.epochs == 1
    assert record.best_epoch == 1
    (epoch,) = record.history
    # A catalog of 12,101 items: the loss starts near ln(12101) = 9.4 and has fallen.
    assert epoch.loss is not None
    assert epoch.loss < math.log(data.n_items)
    assert epoch.valid_ndcg10 is not None
    assert 0.0 <= epoch.valid_ndcg10 <= 1.0

    loaded = train_model(data, ModelKind.sasrec, configs, beauty.split, home=tmp_path)
    assert loaded.loaded
    split = leave_one_out(data, beauty.split)
    _, history, target = split.test[0]
    top = loaded.model.recommend(history, k=10)
    assert len(top) == 10
    assert not {r.item_id for r in top} & set(history)
    (rank,) = loaded.model.rank_targets([history], [target])
    assert rank is not None
    assert 1 <= rank <= data.n_items - len(history)
    scores = loaded.model.score(history, [r.item_id for r in top])
    assert scores == pytest.approx([r.score for r in top], abs=1e-5)
