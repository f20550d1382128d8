"""OA-Mine product attribute value extraction: offers, published LLM runs, and the metric.

Data (see `../shared/data/README.md`, section attribute-extraction; from the ExtractGPT
repository of Brinkmann, Shraga and Bizer, arXiv 2310.12537):

- `oa-mine/{train,train_0.2,test}.jsonl`: one offer per line,
  `{"input": title, "category": ..., "target_scores": {attribute: {value: 1, ...}}}`. The
  test file holds 491 offers in 10 categories with 2,451 annotated attributes, one value each.
- `published-runs/*.gz`: the authors' gzipped GPT-3.5/GPT-4 runs over the test offers, in
  the same order, with each offer's post-processed prediction (`post_pred`, a JSON string
  `{attribute: value}`), the attributes asked for per category (`known_attributes`) and
  the run's scores (`results["micro"]`).

`micro_scores` is the authors' micro precision/recall/F1 (ExtractGPT
`pieutils/evaluation.py`, `calculate_recall_precision_f1_multiple_attributes`), reimplemented
here; on every published run it gives back the stored numbers to the last digit. Two
departures, on inputs no published file has: a target value padded with spaces around `n/a`
reads as "no value" here (the authors test for `n/a` before stripping), and a non-string
predicted value is compared as its JSON text (the authors' code counts it wrong).

On the test offers every annotated attribute has a value (no `n/a` targets), so `nn` and
`nv` are always 0 there: a value predicted for an attribute the offer is not annotated for
is never scored, and precision only counts wrong values.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aisle.evals._errors import DatasetError

__all__ = [
    "NO_VALUE",
    "PUBLISHED_MICRO_F1",
    "DatasetError",
    "MicroScores",
    "Offer",
    "Outcome",
    "PublishedRun",
    "is_correct",
    "is_no_prediction",
    "load_offers",
    "load_published_run",
    "load_published_runs",
    "micro_scores",
    "outcome",
    "run_name",
]

NO_VALUE = "n/a"
"""The marker of an attribute without a value, in targets and predictions alike."""
# A prediction also means "no value" when it is missing or is the string "None" (the
# authors' rule); a target only when its value is exactly "n/a".
_NO_PREDICTION = (NO_VALUE, "None")


def is_no_prediction(value: str | None) -> bool:
    """The authors' rule for a predicted value that means "no value": None, `n/a` or
    `None`, compared as written (the one statement of it; the scorer and the
    ensemble eval's labels use it).

    Example:
        >>> [is_no_prediction(v) for v in (None, "n/a", "None", "none", " n/a")]
        [True, True, True, False, False]
    """
    return value is None or value in _NO_PREDICTION

PUBLISHED_MICRO_F1: dict[str, float] = {
    "gpt-4-schema-10shot-train1.0": 82.16,
    "gpt-4-schema-ensemble-train1.0": 83.43,
    "gpt-3.5-list-10shot": 74.01,
}
"""Micro-F1 (%) on the OA-Mine test offers that the paper reports, keyed by `run_name`."""

Outcome = Literal["nn", "nv", "vn", "vc", "vw"]
"""How one prediction scores: target none/value (first letter) against prediction none,
value, correct value or wrong value (`nn`, `nv`, `vn`, `vc`, `vw`)."""


@dataclass(frozen=True)
class Offer:
    """One product offer with its annotated attribute values.

    Attributes:
        index: 0-based position in the file (published runs are aligned with it).
        title: the offer title, the text values are extracted from.
        category: one of the dataset's product categories, e.g. `Shoes`.
        targets: attribute -> accepted values, stripped of surrounding whitespace (as the
            authors compare them); `("n/a",)` means the attribute has no value.
    """

    index: int
    title: str
    category: str
    targets: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class MicroScores:
    """Micro precision, recall and F1 in percent, rounded as the authors do, and the counts.

    Attributes:
        precision: `vc / (nv + vc + vw)`, in percent, rounded to 2 decimals.
        recall: `vc / (vn + vc + vw)`, in percent, rounded to 2 decimals.
        f1: `2PR / (P + R)` computed from the *rounded* P and R, rounded to 2 decimals.
        counts: the number of scored (offer, attribute) pairs per `Outcome`.
    """

    precision: float
    recall: float
    f1: float
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishedRun:
    """One of the authors' LLM runs over the test offers.

    Attributes:
        name: a short stable labeler name (see `run_name`).
        model: the model snapshot, e.g. `gpt-4-0613`.
        task_name: the run's task name (it names the prompt and the ensembling).
        train_percentage: share of the training offers the in-context shots came from.
        predictions: per offer, in file order, attribute -> predicted value. JSON `null`
            becomes `"n/a"`; other non-string values their JSON text.
        titles: the offer titles the run recorded, for alignment checks.
        known_attributes: category -> the attributes the prompt asked for.
        published_precision: the run's stored micro precision (%).
        published_recall: the run's stored micro recall (%).
        published_f1: the run's stored micro F1 (%).
        invalid_predictions: offers whose `post_pred` was not a JSON object (read as `{}`).
        non_string_values: predicted values that were neither strings nor null.
    """

    name: str
    model: str
    task_name: str
    train_percentage: float
    predictions: list[dict[str, str]]
    titles: tuple[str, ...]
    known_attributes: dict[str, tuple[str, ...]]
    published_precision: float
    published_recall: float
    published_f1: float
    invalid_predictions: int = 0
    non_string_values: int = 0


def load_offers(path: str | Path) -> list[Offer]:
    """Read an OA-Mine JSONL file (`test.jsonl`, `train.jsonl`, `train_0.2.jsonl`).

    Raises:
        DatasetError: the file is missing or empty, or a line is not an offer object
            (the line number is named).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing data file {path}")
    offers: list[Offer] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{lineno}: not valid JSON: {e}") from e
        offers.append(_offer(raw, len(offers), f"{path}:{lineno}"))
    if not offers:
        raise DatasetError(f"{path} holds no offers")
    return offers


def run_name(model: str, task_name: str, *, shots: int | None,
             train_percentage: float | None) -> str:
    """The short labeler name of a published run: `{model}-{prompt}-{shots}[-train{p}]`.

    - model: the snapshot date and `-turbo` dropped (`gpt-3.5-turbo-0613` -> `gpt-3.5`);
    - prompt: `schema` if the task name mentions `json_schema`, else `list` (the paper's
      two prompt formats);
    - shots: `ensemble` if the task name mentions `ensembling`, else `{shots}shot`
      (left out when unknown);
    - `-train{p}` when `train_percentage` is given: `load_published_run` gives it for runs
      whose shots an example selector drew from that share of the training offers (the
      GPT-4 schema runs) and not for the GPT-3.5 list run, which records no selector.

    Example:
        >>> run_name("gpt-3.5-turbo-0613", "multiple_attribute_values-great-incontext-"
        ...          "oa-mine-10-shots", shots=10, train_percentage=None)
        'gpt-3.5-list-10shot'
        >>> run_name("gpt-4-0613", "x_oa_mine_gpt_4_0613_10___json_schema_ensembling_shuffle",
        ...          shots=10, train_percentage=0.2)
        'gpt-4-schema-ensemble-train0.2'
    """
    short_model = re.sub(r"-\d{4}$", "", model).replace("-turbo", "")
    parts = [short_model, "schema" if "json_schema" in task_name else "list"]
    if "ensembling" in task_name:
        parts.append("ensemble")
    elif shots is not None:
        parts.append(f"{shots}shot")
    if train_percentage is not None:
        parts.append(f"train{float(train_percentage)!r}")
    return "-".join(parts)


def load_published_run(path: str | Path, offers: Sequence[Offer] | None = None
                       ) -> PublishedRun:
    """Read one of the authors' gzipped run files (a plain `.json` file works too).

    Args:
        path: the run file.
        offers: if given, the run's examples must have these offers' titles, in order.

    Raises:
        DatasetError: the file is missing, not (gzipped) JSON, lacks a key, or does not
            align with `offers`. A `post_pred` that is not a JSON object is not an error:
            it reads as `{}` and is counted in `invalid_predictions`.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing run file {path}")
    try:
        data = path.read_bytes()
        text = gzip.decompress(data) if path.suffix == ".gz" else data
        raw = json.loads(text)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path} is not a (gzipped) JSON run file: {e}") from e
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    missing = [k for k in ("examples", "known_attributes", "model", "task_name", "results")
               if k not in raw]
    if missing:
        raise DatasetError(f"{path}: missing key(s) {missing}; found {sorted(raw)}")
    examples = raw["examples"]
    if not isinstance(examples, list) or not examples:
        raise DatasetError(f"{path}: 'examples' should be a non-empty list")
    titles: list[str] = []
    predictions: list[dict[str, str]] = []
    invalid = non_string = 0
    for i, example in enumerate(examples):
        if not isinstance(example, dict) or not isinstance(example.get("input"), str):
            raise DatasetError(f"{path}: example {i} has no 'input' title")
        titles.append(example["input"])
        pred, bad, converted = _parse_prediction(example.get("post_pred"))
        predictions.append(pred)
        invalid += bad
        non_string += converted
    try:
        micro = raw["results"]["micro"]
        published = tuple(float(micro[f"micro_{k}"]) for k in ("precision", "recall", "f1"))
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{path}: no micro_precision/recall/f1 under results['micro']") \
            from e
    known = raw["known_attributes"]
    if not isinstance(known, dict) or not all(isinstance(v, list) for v in known.values()):
        raise DatasetError(f"{path}: 'known_attributes' should map category -> attributes")
    shots = raw.get("shots")
    if shots is None:
        found = re.search(r"(\d+)[-_]shots", str(raw["task_name"]))
        shots = int(found.group(1)) if found else None
    train_percentage = float(raw.get("train_percentage", 1.0))
    run = PublishedRun(
        name=run_name(str(raw["model"]), str(raw["task_name"]), shots=shots,
                      train_percentage=train_percentage if "example_selector" in raw else None),
        model=str(raw["model"]),
        task_name=str(raw["task_name"]),
        train_percentage=train_percentage,
        predictions=predictions,
        titles=tuple(titles),
        known_attributes={str(c): tuple(map(str, a)) for c, a in known.items()},
        published_precision=published[0],
        published_recall=published[1],
        published_f1=published[2],
        invalid_predictions=invalid,
        non_string_values=non_string,
    )
    if offers is not None:
        _check_aligned(path, run.titles, [offer.title for offer in offers])
    return run


def load_published_runs(directory: str | Path, offers: Sequence[Offer] | None = None
                        ) -> list[PublishedRun]:
    """Every `*.gz` run in a folder, sorted by name.

    Args:
        directory: the `published-runs/` folder.
        offers: if given, every run must align with them (see `load_published_run`);
            otherwise the runs must at least align with each other.

    Raises:
        DatasetError: no run files, a bad file, two runs with one name, or runs that
            do not align.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"missing run folder {directory}")
    paths = sorted(directory.glob("*.gz"))
    if not paths:
        raise DatasetError(f"no *.gz run files in {directory}")
    runs: dict[str, tuple[Path, PublishedRun]] = {}
    for path in paths:
        run = load_published_run(path, offers)
        if run.name in runs:
            raise DatasetError(f"two runs are both named {run.name!r}: {runs[run.name][0].name} "
                               f"and {path.name}")
        if offers is None and runs:
            first_path, first = next(iter(runs.values()))
            _check_aligned(path, run.titles, list(first.titles), first_path.name)
        runs[run.name] = (path, run)
    return [runs[name][1] for name in sorted(runs)]


def outcome(offer: Offer, attribute: str, value: str | None) -> Outcome:
    """How a predicted value of one attribute scores under the authors' rule.

    The target is "no value" when its first accepted value is `n/a`; the prediction is
    "no value" when it is None, `n/a` or `None`. Predicted values are compared as they
    are (not stripped) with the stripped accepted values.

    Raises:
        DatasetError: the offer has no annotation for `attribute` (the authors skip
            such pairs).

    Example:
        >>> offer = Offer(0, "Fila Men's Hometown", "Shoes", {"Brand": ("Fila",),
        ...               "Color": ("n/a",)})
        >>> [outcome(offer, "Brand", v) for v in ("Fila", "Nike", "n/a")]
        ['vc', 'vw', 'vn']
        >>> [outcome(offer, "Color", v) for v in ("None", "Black")]
        ['nn', 'nv']
    """
    try:
        accepted = offer.targets[attribute]
    except KeyError:
        raise DatasetError(f"offer {offer.index} ({offer.title!r}) has no annotation for "
                           f"attribute {attribute!r}; annotated: {sorted(offer.targets)}") \
            from None
    no_target = accepted[0] == NO_VALUE
    no_prediction = is_no_prediction(value)
    if no_target:
        return "nn" if no_prediction else "nv"
    if no_prediction:
        return "vn"
    return "vc" if value in accepted else "vw"


def is_correct(offer: Offer, attribute: str, value: str | None) -> bool:
    """Whether a predicted value is right: the annotated value, or none where none is.

    Example:
        >>> offer = Offer(0, "Diesel Exposure", "Shoes", {"Brand": ("Diesel",)})
        >>> is_correct(offer, "Brand", "Diesel"), is_correct(offer, "Brand", "n/a")
        (True, False)
    """
    return outcome(offer, attribute, value) in ("nn", "vc")


def micro_scores(offers: Sequence[Offer], predictions: Sequence[Mapping[str, str]],
                 known_attributes: Mapping[str, Sequence[str]]) -> MicroScores:
    """The authors' micro precision, recall and F1 (in percent) over the offers.

    Scored pairs: for each offer, each attribute in `known_attributes[category]` that the
    offer is annotated for; predictions of other attributes are ignored and a missing one
    counts as "no value" (see `outcome`). Then, over all pairs,
    P = vc / (nv + vc + vw), R = vc / (vn + vc + vw), each in percent rounded to 2
    decimals, and F1 = 2PR / (P + R) from those rounded figures, rounded to 2 decimals
    (0.0 where a denominator is 0), exactly as the authors' code does.

    Raises:
        DatasetError: `predictions` is not aligned with `offers`, or a category has no
            entry in `known_attributes`.

    Example:
        >>> offers = [Offer(0, "a", "Tea", {"Brand": ("Lipton",), "Flavor": ("Mint",)}),
        ...           Offer(1, "b", "Tea", {"Brand": ("Twinings",)})]
        >>> scores = micro_scores(offers, [{"Brand": "Lipton", "Flavor": "n/a"},
        ...                                {"Brand": "Tetley", "Size": "1"}],
        ...                       {"Tea": ["Brand", "Flavor", "Size"]})
        >>> scores.precision, scores.recall, scores.f1, scores.counts["vn"]
        (50.0, 33.33, 40.0, 1)
    """
    if len(predictions) != len(offers):
        raise DatasetError(f"{len(predictions)} predictions for {len(offers)} offers; "
                           f"give one (possibly empty) mapping per offer")
    counts: dict[str, int] = dict.fromkeys(("nn", "nv", "vn", "vc", "vw"), 0)
    for offer, pred in zip(offers, predictions, strict=True):
        if offer.category not in known_attributes:
            raise DatasetError(f"category {offer.category!r} of offer {offer.index} is not in "
                               f"known_attributes ({sorted(known_attributes)})")
        for attribute in known_attributes[offer.category]:
            if attribute in offer.targets:
                counts[outcome(offer, attribute, pred.get(attribute))] += 1
    predicted = counts["nv"] + counts["vc"] + counts["vw"]
    annotated = counts["vn"] + counts["vc"] + counts["vw"]
    # The same operations in the same order as the authors', so the floats round alike.
    precision = round((counts["vc"] / predicted) * 100, 2) if predicted else 0.0
    recall = round((counts["vc"] / annotated) * 100, 2) if annotated else 0.0
    f1 = (round(2 * precision * recall / (precision + recall), 2)
          if precision + recall > 0 else 0.0)
    return MicroScores(precision, recall, f1, counts)


def _offer(raw: Any, index: int, where: str) -> Offer:
    """An `Offer` from one decoded JSONL line; `where` names the line in errors."""
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    title, category, scores = raw.get("input"), raw.get("category"), raw.get("target_scores")
    if not isinstance(title, str) or not isinstance(category, str) or not isinstance(
            scores, dict):
        raise DatasetError(f"{where}: expected string 'input' and 'category' and an object "
                           f"'target_scores'; found keys {sorted(raw)}")
    targets: dict[str, tuple[str, ...]] = {}
    for attribute, values in scores.items():
        if not isinstance(values, dict) or not values:
            raise DatasetError(f"{where}: attribute {attribute!r} should map at least one "
                               f"value (or 'n/a') to a score, got {values!r}")
        targets[attribute] = tuple(dict.fromkeys(str(v).strip() for v in values))
    return Offer(index, title, category, targets)


def _parse_prediction(post_pred: Any) -> tuple[dict[str, str], bool, int]:
    """(attribute -> value, whether it was invalid, how many values were converted)."""
    try:
        decoded = json.loads(post_pred) if isinstance(post_pred, str) else None
    except json.JSONDecodeError:
        decoded = None
    if not isinstance(decoded, dict):
        return {}, True, 0
    pred: dict[str, str] = {}
    converted = 0
    for attribute, value in decoded.items():
        if value is None:
            pred[attribute] = NO_VALUE
        elif isinstance(value, str):
            pred[attribute] = value
        else:
            pred[attribute] = json.dumps(value, ensure_ascii=False)
            converted += 1
    return pred, False, converted


def _check_aligned(path: Path, titles: Sequence[str], expected: Sequence[str],
                   against: str = "the offers") -> None:
    """Raise naming the first position where a run's titles leave `expected`."""
    if len(titles) != len(expected):
        raise DatasetError(f"{path}: {len(titles)} examples but {len(expected)} in {against}; "
                           f"is this a run over another file?")
    for i, (title, want) in enumerate(zip(titles, expected, strict=True)):
        if title != want:
            raise DatasetError(f"{path}: example {i} is {title!r}, expected {want!r} (as in "
                               f"{against}); the run is not aligned")
