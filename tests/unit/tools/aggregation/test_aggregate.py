"""The weight learner on hand-built cases, where the right answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aisle.tools.aggregation import AnswersError, aggregate, as_answers, load_weights


def _reliable_vs_two_unreliable() -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """20 binary tasks. `good` is always right. `bad1` and `bad2` are each wrong alone
    on 8 tasks, and both wrong together on t00 and t01, where they outvote `good`."""
    rows, truth = [], {}
    for i in range(20):
        task = f"t{i:02d}"
        right, wrong = ("yes", "no") if i % 2 else ("no", "yes")
        truth[task] = right
        rows.append((task, "good", right))
        rows.append((task, "bad1", wrong if i < 2 or 2 <= i < 10 else right))
        rows.append((task, "bad2", wrong if i < 2 or 10 <= i < 18 else right))
    return rows, truth


def test_reliable_labeler_outvotes_two_unreliable_ones() -> None:
    rows, truth = _reliable_vs_two_unreliable()
    mv = aggregate(rows, method="mv")
    iwmv = aggregate(rows, method="iwmv")
    assert [mv.label_of(t) == truth[t] for t in ("t00", "t01")] == [False, False]
    assert iwmv.as_dict() == truth
    w = iwmv.weights.labelers
    assert w["good"].weight > w["bad1"].weight + w["bad2"].weight
    assert iwmv.converged
    assert 1 < iwmv.iterations < 10
    # Dawid-Skene learns the same from its confusion matrices.
    assert aggregate(rows, method="ds").as_dict() == truth


def test_weights_are_log_odds_of_smoothed_agreement() -> None:
    rows, _ = _reliable_vs_two_unreliable()
    fit = aggregate(rows, method="iwmv")
    good = fit.weights.labelers["good"]
    # At convergence the consensus is the truth: good agrees 20/20, smoothed 21/22.
    assert good.accuracy == pytest.approx(21 / 22)
    assert good.weight == pytest.approx(np.log(21))
    # bad1 agrees on 10 of 20: accuracy 1/2, log-odds 0: no say.
    assert fit.weights.labelers["bad1"].weight == pytest.approx(0.0)
    # With K classes the weight gains log(K - 1).
    k4 = aggregate(rows, method="iwmv", n_classes=4).weights.labelers["good"]
    assert k4.weight == pytest.approx(np.log(21) + np.log(3))


def test_missing_answers_are_allowed() -> None:
    rows = [("a", "x", "1"), ("a", "y", "1"), ("a", "z", None),
            ("b", "x", "2"), ("b", "z", "2"),
            ("c", "y", "3")]
    for method in ("mv", "iwmv"):
        fit = aggregate(rows, method=method)  # type: ignore[arg-type]
        assert fit.as_dict() == {"a": "1", "b": "2", "c": "3"}, method
    assert aggregate(rows, method="mv").weights.labelers["z"].n_answers == 1
    # Dawid-Skene on three tasks is degenerate: y never answered a task whose truth is
    # "2", so its (clipped) confusion column for "2" is uniform over what it did answer,
    # and the prior for "2" wins c. crowd-kit gives the same {'c': '2'}.
    assert aggregate(rows, method="ds").as_dict() == {"a": "1", "b": "2", "c": "2"}


@pytest.mark.parametrize(("votes", "winner"), [
    (["b", "a"], "a"),             # 1-1: the label that sorts first
    (["zeta", "alpha", "zeta", "alpha"], "alpha"),
    (["2", "10"], "10"),           # as strings, "10" < "2"
    (["b", "a", "b"], "b"),        # no tie: the majority
])
def test_ties_break_towards_the_first_label_as_a_string(votes: list[str], winner: str) -> None:
    rows = [("t", f"w{i}", v) for i, v in enumerate(votes)]
    other = [("u", f"w{i}", "a") for i in range(len(votes))]  # keeps iwmv well posed
    for order in (rows + other, list(reversed(rows + other))):
        assert aggregate(order, method="mv").label_of("t") == winner
        assert aggregate(order, method="iwmv").label_of("t") == winner


def test_one_class_only() -> None:
    rows = [(f"t{i}", f"w{j}", "same") for i in range(5) for j in range(3)]
    for method in ("mv", "iwmv"):
        fit = aggregate(rows, method=method)  # type: ignore[arg-type]
        assert set(fit.labels) == {"same"}
        assert fit.confidence == pytest.approx(np.ones(5))
    with pytest.raises(AnswersError, match="at least two classes"):
        aggregate(rows, method="ds")


def test_confidence_is_a_probability() -> None:
    rows, _ = _reliable_vs_two_unreliable()
    for method in ("mv", "iwmv", "ds"):
        fit = aggregate(rows, method=method)  # type: ignore[arg-type]
        assert np.all((fit.confidence > 0.5 - 1e-9) & (fit.confidence <= 1.0)), method
    mv = aggregate(rows, method="mv")
    assert mv.confidence_of("t00") == pytest.approx(2 / 3)  # two of three votes


def test_result_does_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    acc = [0.9, 0.7, 0.6, 0.5]
    rows = [(f"t{t}", f"w{w}", str(truth[t] if rng.random() < a else rng.integers(0, 3)))
            for t in range(300) for w, a in enumerate(acc)]
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    for method in ("mv", "iwmv", "ds"):
        a = aggregate(rows, method=method, n_classes=3)  # type: ignore[arg-type]
        b = aggregate(shuffled, method=method, n_classes=3)  # type: ignore[arg-type]
        assert a.as_dict() == b.as_dict(), method
        np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-9)


def test_learned_weights_track_true_accuracy() -> None:
    rng = np.random.default_rng(1)
    n, acc = 2000, [0.95, 0.8, 0.65, 0.5]
    truth = rng.integers(0, 4, n)
    rows = []
    for w, a in enumerate(acc):
        right = rng.random(n) < a
        wrong = (truth + rng.integers(1, 4, n)) % 4
        rows += [(f"t{t}", f"w{w}", str(v)) for t, v in enumerate(np.where(right, truth, wrong))]
    truth_map = {f"t{t}": str(v) for t, v in enumerate(truth)}
    fits = {m: aggregate(rows, method=m, n_classes=4) for m in ("mv", "iwmv", "ds")}  # type: ignore[arg-type]
    accuracy = {m: np.mean([f.as_dict()[t] == v for t, v in truth_map.items()])
                for m, f in fits.items()}
    assert accuracy["iwmv"] > accuracy["mv"]
    assert accuracy["ds"] > accuracy["mv"]
    for method in ("iwmv", "ds"):
        learned = [fits[method].weights.labelers[f"w{w}"].accuracy for w in range(4)]
        assert learned == sorted(learned, reverse=True), method
        assert learned == pytest.approx(acc, abs=0.05), method


def test_fitted_weights_round_trip_and_apply(tmp_path: Path) -> None:
    rows, _truth = _reliable_vs_two_unreliable()
    for method in ("mv", "iwmv", "ds"):
        fit = aggregate(rows, method=method)  # type: ignore[arg-type]
        path = tmp_path / f"{method}.json"
        fit.weights.save(path)
        loaded = load_weights(path)
        assert loaded == fit.weights
        # Applying to the answers it learned from reproduces the fit.
        again = loaded.apply(rows)
        assert again.as_dict() == fit.as_dict(), method
        # ds: the fit's posteriors come from the last E-step, the saved confusion
        # matrices from the M-step after it (crowd-kit's order), so applying them is
        # one more E-step: close, not identical.
        tolerance = 5e-3 if method == "ds" else 1e-9
        np.testing.assert_allclose(again.confidence, fit.confidence, rtol=tolerance)
    # New tasks: good against bad1 + bad2 agreeing; iwmv's weights side with good.
    new = [("n1", "good", "yes"), ("n1", "bad1", "no"), ("n1", "bad2", "no")]
    assert load_weights(tmp_path / "iwmv.json").apply(new).label_of("n1") == "yes"
    assert load_weights(tmp_path / "mv.json").apply(new).label_of("n1") == "no"
    assert load_weights(tmp_path / "ds.json").apply(new).label_of("n1") == "yes"


def test_apply_rejects_what_the_weights_do_not_know(tmp_path: Path) -> None:
    rows, _ = _reliable_vs_two_unreliable()
    weights = aggregate(rows, method="ds").weights
    with pytest.raises(AnswersError, match="no weights for labeler"):
        weights.apply([("n", "good", "yes"), ("n", "stranger", "no")])
    ignored = weights.apply([("n", "good", "yes"), ("n", "stranger", "no")],
                            unknown_labelers="ignore")
    assert ignored.label_of("n") == "yes"
    with pytest.raises(AnswersError, match="only from unknown"):
        weights.apply([("n", "stranger", "no")], unknown_labelers="ignore")
    with pytest.raises(AnswersError, match="not among the fitted classes"):
        weights.apply([("n", "good", "maybe")])
    bad = tmp_path / "bad.json"
    bad.write_text('{"method": "nope"}')
    with pytest.raises(AnswersError, match="not an aisle ensemble weights file"):
        load_weights(bad)
    with pytest.raises(AnswersError, match="not found"):
        load_weights(tmp_path / "missing.json")


@pytest.mark.parametrize(("answers", "message"), [
    ([], "no answers"),
    ([("t", "only", "x"), ("u", "only", "y")], "1 labeler"),
    ([("t", "a", "x"), ("t", "a", "y"), ("t", "b", "x")], "more than once"),
    ([(None, "a", "x"), ("t", "b", "x")], "no task or labeler"),
    (pd.DataFrame({"task": ["t"], "worker": ["a"], "label": ["x"]}), r"missing \['labeler'\]"),
])
def test_bad_answers_get_clear_errors(answers: object, message: str) -> None:
    with pytest.raises(AnswersError, match=message):
        aggregate(answers, method="iwmv")  # type: ignore[arg-type]


def test_labels_compare_as_strings() -> None:
    frame = as_answers([("t", "a", 1), ("t", "b", "1"), ("t", "c", 2)])
    assert aggregate(frame, method="mv").label_of("t") == "1"
