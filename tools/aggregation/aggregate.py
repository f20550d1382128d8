"""Learn how much to trust each labeler, and aggregate their labels.

Three methods, all plain vectorised numpy over a long `(task, labeler, label)` table
(missing answers allowed; labels are strings, from a closed class set or an open
vocabulary such as attribute values):

- `mv`, majority vote: every labeler weighs 1.
- `iwmv`, the iterative weighted vote of LLM-ensemble (Fang et al., arXiv 2403.00863;
  the one-coin Dawid-Skene family, Li & Yu 2014): start from the majority vote; estimate
  each labeler's accuracy as its agreement with the current consensus; weigh it by the
  log-odds of that accuracy, `log(acc / (1 - acc)) + log(K - 1)`; vote again; repeat
  until the labels and weights stop changing.
- `ds`, full Dawid-Skene (1979): a confusion matrix per labeler and class priors,
  fitted by EM from the majority-vote start, with the same steps and stopping rule as
  crowd-kit's `DawidSkene` so the two agree.

Ties are broken towards the label that sorts first as a string, in every method, so
results are deterministic and independent of row order. (crowd-kit breaks a tie towards
whichever label its `value_counts` lists first, so on tied tasks the two may pick
different labels from the same tied set.)

A fit returns an `Aggregation`; its `weights` (a `FittedWeights`) can be saved as JSON
and applied to new tasks without refitting: learn once on a batch, apply later.

Example:
    >>> answers = [("t1", "good", "red"), ("t1", "bad1", "blue"), ("t1", "bad2", "blue"),
    ...            ("t2", "good", "big"), ("t2", "bad1", "big"), ("t2", "bad2", "small")]
    >>> mv = aggregate(answers, method="mv")
    >>> mv.label_of("t1"), round(mv.confidence_of("t1"), 3)
    ('blue', 0.667)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, Field, ValidationError

from aisle.tools.aggregation._encode import AnswersError, Encoded, as_answers, encode

__all__ = [
    "Aggregation",
    "FittedWeights",
    "LabelerWeight",
    "Method",
    "aggregate",
    "load_weights",
    "weights_table",
]

Method = Literal["mv", "iwmv", "ds"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Clip for probabilities before a log, as crowd-kit does (so DS results line up).
_EPS = 1e-10
# Scores closer than this are a tie (weights are sums of floats).
_TIE = 1e-9


class LabelerWeight(BaseModel):
    """What a fit learned about one labeler."""

    weight: float = Field(description="Vote weight (1 for mv; log-odds for iwmv; "
                                      "log-odds of the DS accuracy for ds).")
    accuracy: float | None = Field(None, description="Estimated accuracy in [0, 1].")
    n_answers: int = Field(ge=0)
    confusion: list[list[float]] | None = Field(
        None, description="ds only: P(answer = classes[j] | truth = classes[i]) at [i][j].")


class FittedWeights(BaseModel):
    """Learned weights: JSON-serialisable, and applicable to new answers.

    Attributes:
        method: the method that learned them.
        labelers: per-labeler weight, accuracy and answer count.
        classes: ds only, the class set its confusion matrices index.
        priors: ds only, the class priors.
        n_classes: iwmv only, the K in the `log(K - 1)` term (None: plain log-odds).
        iterations: iterations the fit ran.
        converged: whether the fit stopped by its tolerance rather than its cap.
    """

    format: Literal["aisle.ensemble.weights/1"] = "aisle.ensemble.weights/1"
    method: Method
    labelers: dict[str, LabelerWeight]
    classes: list[str] | None = None
    priors: list[float] | None = None
    n_classes: int | None = None
    iterations: int = 0
    converged: bool = True

    def apply(self, answers: pd.DataFrame | Iterable[tuple[Any, Any, Any]], *,
              unknown_labelers: Literal["error", "ignore"] = "error") -> Aggregation:
        """Aggregate new answers with these weights, without refitting.

        Args:
            answers: `task, labeler, label` rows.
            unknown_labelers: `error` (default) raises on a labeler the weights do not
                know; `ignore` drops its answers (a task left with none is an error).

        Raises:
            AnswersError: unknown labeler (with `error`), or for `ds` a label outside the
                fitted classes, or a task with no usable answer.
        """
        frame = as_answers(answers)
        known = frame["labeler"].astype(str).isin(self.labelers.keys())
        if not known.all():
            unknown = sorted(set(frame.loc[~known, "labeler"].astype(str)))
            if unknown_labelers == "error":
                raise AnswersError(f"no weights for labeler(s) {unknown[:5]}; fitted labelers "
                                   f"are {sorted(self.labelers)[:10]} (pass "
                                   "unknown_labelers='ignore' to drop their answers)")
            before = set(frame["task"].astype(str))
            frame = frame[known]
            lost = before - set(frame["task"].astype(str))
            if lost:
                raise AnswersError(f"{len(lost)} task(s) have answers only from unknown "
                                   f"labelers, e.g. {sorted(lost)[:3]}")
        enc = encode(frame)
        if self.method == "ds":
            return self._apply_ds(enc)
        weight = np.array([self.labelers[str(name)].weight for name in enc.labelers])
        votes = _Votes(enc)
        labels, confidence = votes.decide(weight[enc.labeler], self.n_classes,
                                          share=self.method == "mv")
        return Aggregation(enc.tasks, enc.classes[labels], confidence, self)

    def _apply_ds(self, enc: Encoded) -> Aggregation:
        assert self.classes is not None
        assert self.priors is not None
        index = {c: i for i, c in enumerate(self.classes)}
        outside = [c for c in enc.classes if c not in index]
        if outside:
            raise AnswersError(f"label(s) {outside[:5]} are not among the fitted classes "
                               f"{self.classes[:10]}")
        label = np.array([index[c] for c in enc.classes], dtype=np.int64)[enc.label]
        errors = np.stack([np.asarray(self.labelers[str(n)].confusion, dtype=np.float64).T
                           for n in enc.labelers])
        k = len(self.classes)
        probas = _ds_e_step(enc.task, enc.labeler * k + label, enc.n_tasks,
                            np.asarray(self.priors), errors)
        best = _argmax_first(probas)
        return Aggregation(enc.tasks, np.asarray(self.classes)[best],
                           probas[np.arange(enc.n_tasks), best], self)

    def save(self, path: str | Path) -> None:
        """Write the weights as JSON."""
        Path(path).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load_weights(path: str | Path) -> FittedWeights:
    """Read weights written by `FittedWeights.save`.

    Raises:
        AnswersError: the file is missing or is not aisle ensemble weights.
    """
    p = Path(path)
    if not p.is_file():
        raise AnswersError(f"weights file not found: {p}")
    try:
        return FittedWeights.model_validate_json(p.read_text(encoding="utf-8"))
    except ValidationError as e:
        raise AnswersError(f"{p} is not an aisle ensemble weights file "
                           f"({e.error_count()} problem(s): {e.errors()[0]['msg']})") from e


@dataclass(frozen=True)
class Aggregation:
    """Aggregated labels: one per task, with the posterior confidence of that label.

    Attributes:
        tasks: task ids, sorted as strings.
        labels: the chosen label per task.
        confidence: its posterior probability (mv: its share of the votes).
        weights: what was learned, reusable on new tasks.
    """

    tasks: npt.NDArray[np.str_]
    labels: npt.NDArray[np.str_]
    confidence: FloatArray
    weights: FittedWeights

    def to_frame(self) -> pd.DataFrame:
        """`task, label, confidence` rows."""
        return pd.DataFrame({"task": self.tasks, "label": self.labels,
                             "confidence": self.confidence})

    def as_dict(self) -> dict[str, str]:
        """task -> label."""
        return dict(zip(self.tasks.tolist(), self.labels.tolist(), strict=True))

    def label_of(self, task: Any) -> str:
        return str(self.labels[self._index(task)])

    def confidence_of(self, task: Any) -> float:
        return float(self.confidence[self._index(task)])

    def _index(self, task: Any) -> int:
        i = int(np.searchsorted(self.tasks, str(task)))
        if i == len(self.tasks) or self.tasks[i] != str(task):
            raise KeyError(f"unknown task {task!r}")
        return i

    @property
    def iterations(self) -> int:
        return self.weights.iterations

    @property
    def converged(self) -> bool:
        return self.weights.converged


class _Votes:
    """Weighted plurality voting over the (task, label) pairs that received votes.

    Pairs are sorted by task then label, so "first maximum in a task's group" is the
    tie-break towards the label that sorts first.
    """

    def __init__(self, enc: Encoded) -> None:
        k = max(enc.n_classes, 1)
        keys, self.inverse = np.unique(enc.task * k + enc.label, return_inverse=True)
        self.pair_task = keys // k
        self.pair_label = keys % k
        self.start = np.flatnonzero(np.r_[True, self.pair_task[1:] != self.pair_task[:-1]])
        self.n_pairs = np.diff(np.r_[self.start, len(keys)])
        self.enc = enc

    def decide(self, answer_weight: FloatArray, n_classes: int | None, *,
               share: bool) -> tuple[IntArray, FloatArray]:
        """Winning label per task and its confidence.

        `share`: confidence is the winner's share of the summed weights (majority vote).
        Otherwise it is the one-coin posterior, a softmax of the label scores in which
        the labels nobody chose (up to `n_classes` in all) score 0.
        """
        score = np.bincount(self.inverse, weights=answer_weight, minlength=len(self.pair_task))
        top = np.maximum.reduceat(score, self.start)
        at_top = np.flatnonzero(score >= top[self.pair_task] - _TIE)
        first = at_top[np.r_[True, self.pair_task[at_top][1:] != self.pair_task[at_top][:-1]]]
        if share:
            total = np.add.reduceat(score, self.start)
            confidence = np.divide(score[first], total, out=np.zeros_like(total),
                                   where=total > 0)
        else:
            z = np.exp(score - top[self.pair_task])
            unseen = np.maximum((n_classes or 0) - self.n_pairs, 0)
            confidence = 1.0 / (np.add.reduceat(z, self.start) + unseen * np.exp(-top))
        return self.pair_label[first], confidence


def _log_odds(accuracy: FloatArray, n_classes: int | None) -> FloatArray:
    weight = np.log(accuracy / (1.0 - accuracy))
    if n_classes is not None and n_classes > 2:
        weight = weight + math.log(n_classes - 1)
    return weight


def _fit_mv(enc: Encoded) -> tuple[Aggregation, _Votes]:
    votes = _Votes(enc)
    labels, confidence = votes.decide(np.ones(len(enc.task)), None, share=True)
    agree = np.bincount(enc.labeler, weights=(labels[enc.task] == enc.label),
                        minlength=enc.n_labelers)
    n = np.bincount(enc.labeler, minlength=enc.n_labelers)
    weights = FittedWeights(method="mv", labelers={
        str(name): LabelerWeight(weight=1.0, accuracy=float(agree[i] / n[i]),
                                 n_answers=int(n[i]))
        for i, name in enumerate(enc.labelers)})
    return Aggregation(enc.tasks, enc.classes[labels], confidence, weights), votes


def _fit_iwmv(enc: Encoded, *, n_classes: int | None, max_iter: int, tol: float,
              smoothing: float) -> Aggregation:
    votes = _Votes(enc)
    n = np.bincount(enc.labeler, minlength=enc.n_labelers).astype(np.float64)
    labels, _ = votes.decide(np.ones(len(enc.task)), None, share=True)
    weight = np.ones(enc.n_labelers)
    accuracy = np.full(enc.n_labelers, np.nan)
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - read after the loop
        agree = np.bincount(enc.labeler, weights=(labels[enc.task] == enc.label),
                            minlength=enc.n_labelers)
        # Laplace smoothing keeps a labeler that always agrees from an infinite weight.
        accuracy = (agree + smoothing) / (n + 2 * smoothing)
        # A labeler at or below chance gets no say, rather than a vote against its answer.
        new_weight = np.maximum(_log_odds(accuracy, n_classes), 0.0)
        if not new_weight.any():
            raise AnswersError("every labeler is at or below chance against the consensus; "
                               "no weights can be learned from these answers")
        new_labels, _ = votes.decide(new_weight[enc.labeler], n_classes,
                                     share=False)
        stable = np.array_equal(new_labels, labels) and \
            float(np.max(np.abs(new_weight - weight))) < tol
        labels, weight = new_labels, new_weight
        if stable:
            converged = True
            break
    _, confidence = votes.decide(weight[enc.labeler], n_classes, share=False)
    fitted = FittedWeights(
        method="iwmv", n_classes=n_classes, iterations=iterations, converged=converged,
        labelers={str(name): LabelerWeight(weight=float(weight[i]),
                                           accuracy=float(accuracy[i]), n_answers=int(n[i]))
                  for i, name in enumerate(enc.labelers)})
    return Aggregation(enc.tasks, enc.classes[labels], confidence, fitted)


def _argmax_first(probas: FloatArray) -> IntArray:
    """Row-wise argmax; among (near-)equal maxima the first column, i.e. the label that
    sorts first."""
    top = probas.max(axis=1, keepdims=True)
    best: IntArray = np.argmax(probas >= top - _TIE, axis=1).astype(np.int64)
    return best


def _ds_m_step(cell: IntArray, task: IntArray, probas: FloatArray,
               n_labelers: int) -> FloatArray:
    """errors[w, l, k] = P(labeler w answers l | truth k); `cell` is `w * K + l` per
    answer."""
    k = probas.shape[1]
    columns = np.ascontiguousarray(probas.T)  # contiguous gathers are several times faster
    errors = np.stack([np.bincount(cell, weights=np.take(columns[j], task),
                                   minlength=n_labelers * k)
                       for j in range(k)], axis=1).reshape(n_labelers, k, k)
    observed = np.bincount(cell, minlength=n_labelers * k).reshape(n_labelers, k) > 0
    # crowd-kit clips the cells of answers that occur, then normalises per labeler and
    # true class; cells never answered stay 0.
    errors = np.where(observed[:, :, None], np.maximum(errors, _EPS), 0.0)
    totals = errors.sum(axis=1, keepdims=True)
    normalised: FloatArray = np.divide(errors, totals, out=np.zeros_like(errors),
                                       where=totals > 0)
    return normalised


def _ds_log_likelihood(task: IntArray, cell: IntArray, n_tasks: int,
                       errors: FloatArray, log: Any = np.log2) -> FloatArray:
    """Per task and true class, the summed log P(answer | class) of its answers."""
    k = errors.shape[2]
    with np.errstate(divide="ignore"):
        # cells never answered are -inf but never gathered
        columns = np.ascontiguousarray(log(errors).reshape(-1, k).T)
    return np.stack([np.bincount(task, weights=np.take(columns[j], cell), minlength=n_tasks)
                     for j in range(k)], axis=1)


def _ds_e_step(task: IntArray, cell: IntArray, n_tasks: int, priors: FloatArray,
               errors: FloatArray) -> FloatArray:
    """P(truth = k | answers) per task, in log2 space and shifted, as crowd-kit does."""
    loglik = np.log2(np.maximum(priors, _EPS)) + _ds_log_likelihood(task, cell, n_tasks,
                                                                    errors)
    scaled = np.exp2(loglik - loglik.max(axis=1, keepdims=True))
    result: FloatArray = scaled / scaled.sum(axis=1, keepdims=True)
    return result


def _ds_elbo(enc: Encoded, cell: IntArray, probas: FloatArray, priors: FloatArray,
             errors: FloatArray) -> float:
    """crowd-kit's evidence lower bound per answer (its stopping criterion)."""
    per_task = _ds_log_likelihood(enc.task, cell, enc.n_tasks, errors, log=np.log)
    answers_per_task = np.bincount(enc.task, minlength=enc.n_tasks)[:, None]
    joint = per_task + answers_per_task * np.log(np.maximum(priors, _EPS))
    clipped = np.maximum(probas, _EPS)
    entropy = -(np.log(clipped) * clipped).sum()
    return float(((probas * joint).sum() + entropy) / len(enc.task))


def _fit_ds(enc: Encoded, *, max_iter: int, tol: float) -> Aggregation:
    k = enc.n_classes
    votes = _Votes(enc)
    # Majority-vote start: each task's vote shares over all classes.
    counts = np.bincount(votes.inverse, minlength=len(votes.pair_task)).astype(np.float64)
    probas = np.zeros((enc.n_tasks, k))
    probas[votes.pair_task, votes.pair_label] = counts
    probas /= probas.sum(axis=1, keepdims=True)
    priors = probas.mean(axis=0)
    cell = enc.labeler * k + enc.label
    errors = _ds_m_step(cell, enc.task, probas, enc.n_labelers)
    loss = -math.inf
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - read after the loop
        probas = _ds_e_step(enc.task, cell, enc.n_tasks, priors, errors)
        priors = probas.mean(axis=0)
        errors = _ds_m_step(cell, enc.task, probas, enc.n_labelers)
        new_loss = _ds_elbo(enc, cell, probas, priors, errors)
        if new_loss - loss < tol:
            converged = True
            break
        loss = new_loss
    best = _argmax_first(probas)
    n = np.bincount(enc.labeler, minlength=enc.n_labelers)
    # errors[w, l, k]: the diagonal, weighted by the priors, is the labeler's accuracy.
    accuracy = np.einsum("wkk,k->w", errors, priors)
    clipped = np.clip(accuracy, _EPS, 1 - _EPS)
    fitted = FittedWeights(
        method="ds", classes=enc.classes.tolist(), priors=priors.tolist(),
        iterations=iterations, converged=converged,
        labelers={str(name): LabelerWeight(
            weight=float(np.log(clipped[i] / (1 - clipped[i]))),
            accuracy=float(accuracy[i]), n_answers=int(n[i]),
            confusion=errors[i].T.tolist())
            for i, name in enumerate(enc.labelers)})
    return Aggregation(enc.tasks, enc.classes[best], probas[np.arange(enc.n_tasks), best],
                       fitted)


def aggregate(answers: pd.DataFrame | Iterable[tuple[Any, Any, Any]], *,
              method: Method = "iwmv", n_classes: int | None = None, max_iter: int = 100,
              tol: float = 1e-5, smoothing: float = 1.0,
              min_labelers: int = 2) -> Aggregation:
    """Fit `method` to the answers and aggregate them.

    Args:
        answers: a DataFrame with `task, labeler, label` columns, or `(task, labeler,
            label)` triples. A missing label is a non-answer.
        method: `mv`, `iwmv` or `ds` (see the module docstring).
        n_classes: iwmv only. K in the weight `log(acc/(1-acc)) + log(K-1)` and in the
            posterior. None (the default) gives the plain log-odds, which suits open
            vocabularies such as extracted attribute values; pass the class count for a
            closed label set.
        max_iter: cap on iterations (iwmv, ds).
        tol: iwmv stops when the labels are unchanged and no weight moves by `tol`;
            ds when the evidence lower bound per answer gains less than `tol`.
        smoothing: iwmv's Laplace count on accuracies (agreements + s) / (answers + 2s).
        min_labelers: fewer distinct labelers than this is an error: there is nothing
            to weigh.

    Raises:
        AnswersError: empty or malformed answers, too few labelers, or (ds) fewer than
            two classes.
    """
    enc = encode(as_answers(answers))
    if enc.n_labelers < min_labelers:
        raise AnswersError(f"{enc.n_labelers} labeler(s) in the answers; aggregation needs "
                           f"at least {min_labelers} to weigh against each other")
    if method == "mv":
        return _fit_mv(enc)[0]
    if method == "iwmv":
        return _fit_iwmv(enc, n_classes=n_classes, max_iter=max_iter, tol=tol,
                         smoothing=smoothing)
    if method == "ds":
        if enc.n_classes < 2:
            raise AnswersError("Dawid-Skene needs at least two classes among the labels; "
                               f"all answers are {enc.classes[0]!r}")
        return _fit_ds(enc, max_iter=max_iter, tol=tol)
    raise AnswersError(f"unknown method {method!r}: use 'mv', 'iwmv' or 'ds'")


def weights_table(weights: FittedWeights) -> pd.DataFrame:
    """Per-labeler weight, accuracy and answer count, strongest first."""
    rows: Mapping[str, LabelerWeight] = weights.labelers
    frame = pd.DataFrame([{"labeler": k, "weight": v.weight, "accuracy": v.accuracy,
                           "n_answers": v.n_answers} for k, v in rows.items()])
    return frame.sort_values(["weight", "labeler"], ascending=[False, True],
                             ignore_index=True)

