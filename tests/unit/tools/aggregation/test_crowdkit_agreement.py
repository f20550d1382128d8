"""aisle's learner against an outside reference: crowd-kit, on the same inputs.

Stated tolerance: Dawid-Skene posteriors, priors and confusion matrices agree to 1e-8
(absolute) and the labels and iteration counts are identical; majority-vote vote shares
are identical, and the labels too except where a task's vote is tied (crowd-kit then
picks whichever tied label its `value_counts` lists first, aisle the one that sorts
first): there crowd-kit's label must be one of the tied ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene, MajorityVote

from aisle.tools.aggregation import aggregate

TOL = 1e-8

# crowd-kit 1.4 still passes `inplace=` and `copy=` to pandas, which pandas 3.1
# deprecates; that is crowd-kit's business, not a fault in what is compared here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword:DeprecationWarning"),
]


def _crowd_truth(data: Callable[..., Path], folder: str) -> pd.DataFrame:
    path = data("crowd-truth", folder, "answer.csv")
    return pd.read_csv(path, dtype=str, keep_default_na=False).rename(
        columns={"question": "task", "answer": "label"})


def _synthetic(seed: int, n_tasks: int = 400, k: int = 3) -> pd.DataFrame:
    """Five labelers of mixed skill; each skips a random 30% of the tasks."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_tasks)
    rows = []
    for w, acc in enumerate([0.9, 0.75, 0.6, 0.45, 0.35]):
        for t in range(n_tasks):
            if rng.random() < 0.3:
                continue
            label = truth[t] if rng.random() < acc else rng.integers(0, k)
            rows.append((f"t{t}", f"w{w}", f"c{label}"))
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


# Each case takes the `shared_data_dir` fixture, so only the real-data cases skip (or
# fail under AISLE_REQUIRE_DATA=1) when the data is absent.
CASES: dict[str, Callable[[Callable[..., Path]], pd.DataFrame]] = {
    "duck": lambda data: _crowd_truth(data, "d_Duck_Identification"),
    "dog": lambda data: _crowd_truth(data, "s4_Dog_data"),
    "product": lambda data: _crowd_truth(data, "d_jn-product"),
    "synthetic-0": lambda data: _synthetic(0),
    "synthetic-1": lambda data: _synthetic(1, k=5),
}


def _ours(frame: pd.DataFrame, method: str):  # type: ignore[no-untyped-def]
    return aggregate(frame.rename(columns={"worker": "labeler"}), method=method)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(CASES))
def test_dawid_skene_matches_crowdkit(case: str, shared_data_dir: Callable[..., Path]) -> None:
    frame = CASES[case](shared_data_dir)
    reference = DawidSkene(n_iter=100, tol=1e-5).fit(frame)
    ours = _ours(frame, "ds")
    probas = reference.probas_.sort_index()
    probas = probas[sorted(probas.columns)]
    assert list(probas.index) == ours.tasks.tolist()
    assert ours.weights.classes == list(probas.columns)
    assert reference.labels_.sort_index().tolist() == ours.labels.tolist()
    np.testing.assert_allclose(probas.max(axis=1).to_numpy(), ours.confidence, atol=TOL)
    np.testing.assert_allclose(reference.priors_[ours.weights.classes].to_numpy(),
                               ours.weights.priors, atol=TOL)
    assert ours.iterations == len(reference.loss_history_)
    errors = reference.errors_
    for labeler, fitted in ours.weights.labelers.items():
        assert fitted.confusion is not None
        mine = np.asarray(fitted.confusion)  # [truth, answer]
        theirs = errors.loc[labeler]  # rows: answer, columns: truth
        for answer in theirs.index:
            j = ours.weights.classes.index(answer)
            for truth in theirs.columns:
                i = ours.weights.classes.index(truth)
                assert mine[i, j] == pytest.approx(theirs.loc[answer, truth], abs=TOL)


@pytest.mark.parametrize("case", sorted(CASES))
def test_majority_vote_matches_crowdkit(case: str, shared_data_dir: Callable[..., Path]) -> None:
    frame = CASES[case](shared_data_dir)
    reference = MajorityVote().fit(frame)
    ours = _ours(frame, "mv")
    probas = reference.probas_.sort_index()
    np.testing.assert_allclose(probas.max(axis=1).to_numpy(), ours.confidence, atol=1e-12)
    theirs = reference.labels_.sort_index()
    tied = (probas.to_numpy() >= probas.max(axis=1).to_numpy()[:, None] - 1e-12).sum(axis=1) > 1
    untied_ours = ours.labels[~tied]
    assert theirs[~tied].tolist() == untied_ours.tolist()
    for task in theirs.index[tied]:
        row = probas.loc[task]
        top = sorted(row.index[row >= row.max() - 1e-12])
        assert theirs[task] in top
        assert ours.label_of(task) == top[0]
