"""Data-wrangling evals (LLM-GDO operators): entity matching, imputation, error detection.

Loaders, metrics and deterministic non-LLM baselines for three tasks, on the files
described in `../shared/data/README.md` (sections er-magellan and data-wrangling):

- Entity matching (`er-magellan/<dataset>/{train,valid,test}.txt`, Ditto's serialisation
  of the DeepMatcher benchmark): one labelled pair per line,
  `COL attr VAL value COL attr VAL value ...<TAB>COL attr VAL value ...<TAB>label`.
  `load_pairs` reads one split, `pair_tables` rebuilds the two source tables from all
  three splits (for measuring blocking), `EmbeddingMatcher` is a cosine-threshold
  baseline.
- Imputation (`data-wrangling/imputation-buy/{train,valid,test}.csv`, columns
  `name,description,manufacturer`; Narayan et al., "Can Foundation Models Wrangle Your
  Data?", VLDB 2023): `load_imputation`, `imputation_accuracy`, and the baselines
  `most_frequent_impute` and `NearestNeighbourImputer`.
- Error detection (`data-wrangling/error-detection-hospital/`: the dirty `table.csv`
  whose first column `Unnamed: 0` is the row id, and `{train,valid,test}.csv` with rows
  `row_id,col_name,is_clean`): `load_error_detection`, and the baseline
  `FrequencyOutlierDetector`. An *error* is a labelled cell with `is_clean == 0`; every
  prediction and gold list here uses 1 for "error".

What the files hold, and what the code does about it:

- No side repeats an attribute and no value contains a `COL <attr> VAL` token, so
  splitting on that token is exact on these files; a repeated attribute is an error.
- Each side ends with a space and empty values are written `VAL  COL` (or `VAL ` at the
  end); values are stripped of surrounding whitespace, so an empty value reads as `""`.
- The same (left, right) text pair can appear more than once, in one or several splits,
  sometimes with different labels (Abt-Buy: 31 repeated pairs, 13 of them with both
  labels; Walmart-Amazon: 6 and 1; iTunes-Amazon: 44 and 0): the source tables hold
  records with identical text under different ids. `pair_tables` counts such a pair
  as a match if any occurrence is one, and lists the pairs that carry both labels in
  `PairTables.conflicting`.
- In Hospital every labelled empty cell (Address2, Address3, some Score and Sample
  cells; 2,227 over the three splits) is clean, so an empty cell is never flagged.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import pandas as pd

from aisle.errors import AisleError, MissingDependencyError
from aisle.evals._errors import DatasetError

__all__ = [
    "SPLITS",
    "DatasetError",
    "Embed",
    "EmbeddingMatcher",
    "ErrorDetectionData",
    "FrequencyOutlierDetector",
    "ImputationData",
    "NearestNeighbourImputer",
    "NotFittedError",
    "Pair",
    "PairTables",
    "Scores",
    "Split",
    "best_threshold",
    "imputation_accuracy",
    "load_error_detection",
    "load_imputation",
    "load_pairs",
    "most_frequent_impute",
    "normalise_value",
    "pair_tables",
    "parse_record",
    "precision_recall_f1",
    "serialize_record",
]

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("train", "valid", "test")
"""The three splits every dataset folder holds, in the order ids are handed out."""

Embed = Callable[[list[str]], Any]
"""Texts -> an `(n, d)` array of embeddings (e.g. `aisle.tools.retrieval.Embedder().embed`)."""

# `COL <attr> VAL` at the start of the text or after whitespace, then one space (or the
# end of the text, for an empty last value). The lookbehind leaves the space before
# `COL` to the previous value, so an empty value written `VAL COL` (one space) still splits.
_ATTRIBUTE = re.compile(r"(?:^|(?<=\s))COL (\S+) VAL(?:\s|$)")
_ERROR_ROW_ID = "Unnamed: 0"


class NotFittedError(AisleError, RuntimeError):
    """A baseline was asked to predict before `fit` was called."""


# --------------------------------------------------------------------------------------
# Entity matching
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One labelled candidate pair of an entity-matching split.

    Attributes:
        left: the left record, attribute -> value (`""` for an empty value), in file order.
        right: the right record, likewise.
        label: 1 for a match, 0 for a non-match.
    """

    left: dict[str, str]
    right: dict[str, str]
    label: int


@dataclass(frozen=True)
class PairTables:
    """The two source tables of a matching dataset, rebuilt from its three splits.

    Attributes:
        left: one row per distinct left record, in first-seen order over train, valid,
            test; an `id` column (`l0`, `l1`, ...) then the attribute columns (a cell is
            None where a record lacks the attribute, `""` where its value is empty).
        right: the same for the right records (`r0`, `r1`, ...).
        matches: the (left id, right id) pairs labelled a match (in any occurrence).
        labelled: every labelled (left id, right id) pair -> its label (1 if any
            occurrence is a match).
        conflicting: the labelled pairs that occur with both labels.
    """

    left: pd.DataFrame
    right: pd.DataFrame
    matches: set[tuple[str, str]]
    labelled: dict[tuple[str, str], int]
    conflicting: set[tuple[str, str]] = field(default_factory=set)

    @property
    def cross_product(self) -> int:
        """Number of pairs a blocker starts from: `len(left) * len(right)`."""
        return len(self.left) * len(self.right)


def parse_record(text: str) -> dict[str, str]:
    """Parse one side of a pair line, `COL attr VAL value COL attr VAL value ...`.

    The text is split on `COL <attr> VAL` tokens (at the start or after whitespace);
    values are stripped, so an empty value reads as `""`. A value that itself contained
    a whole `COL <word> VAL` token would be split there: no file in the benchmark has one.

    Raises:
        DatasetError: the text does not start with `COL <attr> VAL`, or an attribute
            appears twice.

    Example:
        >>> parse_record("COL name VAL sony tv COL price VAL  COL color VAL black ")
        {'name': 'sony tv', 'price': '', 'color': 'black'}
    """
    parts = _ATTRIBUTE.split(text)
    if len(parts) < 3 or parts[0] != "":
        raise DatasetError(f"a record should start with 'COL <attr> VAL', got {text[:60]!r}")
    record: dict[str, str] = {}
    for attribute, value in zip(parts[1::2], parts[2::2], strict=True):
        if attribute in record:
            raise DatasetError(f"attribute {attribute!r} appears twice in the record "
                               f"{text[:60]!r}...")
        record[attribute] = value.strip()
    return record


def load_pairs(folder: str | Path, split: Split) -> list[Pair]:
    """Read one split (`<folder>/<split>.txt`) of an er-magellan dataset.

    Args:
        folder: a dataset folder, e.g. `.../er-magellan/Abt-Buy`.
        split: `train`, `valid` or `test`.

    Raises:
        DatasetError: unknown split, missing or empty file, or a malformed line (not
            three tab-separated fields, a label other than 0/1, or a side that is not
            a `COL .. VAL ..` record); the message names the file and line.

    Example:
        >>> pairs = load_pairs("../shared/data/er-magellan/Beer", "test")  # doctest: +SKIP
        >>> len(pairs), pairs[0].label  # doctest: +SKIP
        (91, 0)
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    path = Path(folder) / f"{split}.txt"
    if not path.is_file():
        raise DatasetError(f"missing data file {path}: is {folder} an er-magellan dataset "
                           f"folder with train.txt, valid.txt and test.txt?")
    pairs: list[Pair] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DatasetError(f"{path}:{lineno}: expected 3 tab-separated fields "
                               f"(left, right, label), found {len(fields)}")
        label = fields[2].strip()
        if label not in ("0", "1"):
            raise DatasetError(f"{path}:{lineno}: the label should be 0 or 1, got {label!r}")
        try:
            left, right = parse_record(fields[0]), parse_record(fields[1])
        except DatasetError as e:
            raise DatasetError(f"{path}:{lineno}: {e}") from e
        pairs.append(Pair(left, right, int(label)))
    if not pairs:
        raise DatasetError(f"{path} holds no pairs")
    return pairs


def pair_tables(folder: str | Path) -> PairTables:
    """Rebuild the left and right tables of a matching dataset from all three splits.

    Two records are the same when their attributes and values are identical. Ids are
    handed out in first-seen order over train, valid, then test (left `l0, l1, ...`,
    right `r0, r1, ...`), so they are stable for a given set of files. The tables hold
    exactly the records that appear in some labelled pair, so
    `PairTables.cross_product` is the full candidate space a blocker is measured against.

    Raises:
        DatasetError: as `load_pairs`, for any of the three splits.

    Example:
        >>> tables = pair_tables("../shared/data/er-magellan/Beer")  # doctest: +SKIP
        >>> len(tables.left), len(tables.right), len(tables.matches)  # doctest: +SKIP
        (275, 269, 68)
    """
    left_ids: dict[tuple[tuple[str, str], ...], str] = {}
    right_ids: dict[tuple[tuple[str, str], ...], str] = {}
    left_rows: list[dict[str, str]] = []
    right_rows: list[dict[str, str]] = []
    labels: dict[tuple[str, str], set[int]] = {}

    def record_id(record: dict[str, str], ids: dict[tuple[tuple[str, str], ...], str],
                  rows: list[dict[str, str]], prefix: str) -> str:
        key = tuple(record.items())
        if key not in ids:
            ids[key] = f"{prefix}{len(ids)}"
            rows.append(record)
        return ids[key]

    for split in SPLITS:
        for pair in load_pairs(folder, split):
            key = (record_id(pair.left, left_ids, left_rows, "l"),
                   record_id(pair.right, right_ids, right_rows, "r"))
            labels.setdefault(key, set()).add(pair.label)
    labelled = {key: max(seen) for key, seen in labels.items()}
    return PairTables(
        left=_records_frame(list(left_ids.values()), left_rows),
        right=_records_frame(list(right_ids.values()), right_rows),
        matches={key for key, label in labelled.items() if label == 1},
        labelled=labelled,
        conflicting={key for key, seen in labels.items() if len(seen) > 1},
    )


def _records_frame(ids: list[str], rows: list[dict[str, str]]) -> pd.DataFrame:
    """An `id` column then every attribute (in first-seen order), object dtype."""
    columns = list(dict.fromkeys(attribute for row in rows for attribute in row))
    data = [[record_id, *(row.get(c) for c in columns)]
            for record_id, row in zip(ids, rows, strict=True)]
    return pd.DataFrame(data, columns=["id", *columns], dtype=object)


def serialize_record(record: Mapping[str, str | None]) -> str:
    """A record as `attr: value; attr: value`, leaving out empty and missing values.

    Example:
        >>> serialize_record({"name": "sony tv", "price": "", "brand": "sony"})
        'name: sony tv; brand: sony'
    """
    return "; ".join(f"{attribute}: {value}" for attribute, value in record.items()
                     if value is not None and value.strip())


def best_threshold(scores: Sequence[float] | np.ndarray, gold: Sequence[bool | int]
                   ) -> tuple[float, float]:
    """The threshold `t` maximising F1 of the rule "positive iff score >= t".

    The candidates are the distinct scores; among thresholds with the same (best) F1 the
    lowest one is kept, which predicts the most positives for that F1 (the recall side
    a blocker or a first-pass matcher prefers).

    Returns:
        `(threshold, f1)`, with F1 as a fraction.

    Raises:
        ValueError: lengths differ, or `gold` has no positive (every threshold scores 0).

    Example:
        >>> best_threshold([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
        (0.3, 0.8)
    """
    values = np.asarray(scores, dtype=float)
    truth = np.asarray(_as_binary(gold, "gold"), dtype=bool)
    if values.shape != truth.shape:
        raise ValueError(f"{values.size} scores for {truth.size} gold labels")
    positives = int(truth.sum())
    if positives == 0:
        raise ValueError("cannot fit a threshold: the gold labels hold no positive")
    order = np.argsort(-values, kind="stable")
    sorted_values, sorted_truth = values[order], truth[order]
    tp = np.cumsum(sorted_truth)
    predicted = np.arange(1, values.size + 1)
    # Only the last position of each run of equal scores is a real cut.
    last = np.r_[sorted_values[1:] != sorted_values[:-1], True]
    f1 = 2 * tp[last] / (predicted[last] + positives)
    candidates = sorted_values[last]
    best = f1.max()
    # candidates descend, so the last maximum is the lowest threshold
    index = int(np.flatnonzero(f1 == best)[-1])
    return float(candidates[index]), float(best)


class EmbeddingMatcher:
    """Match a pair when the cosine of its two records' embeddings reaches a threshold.

    Each record is serialised with `serialize_record`, embedded with `embed`, and
    L2-normalised (a zero vector scores 0 against anything); the pair's score is the
    cosine. `fit` picks the threshold with the best F1 on labelled pairs (the
    validation split), see `best_threshold`; `predict` returns 1 where the score is at
    least the threshold.

    In production pass the repository's all-MiniLM-L6-v2 embedder,
    `EmbeddingMatcher(aisle.tools.retrieval.Embedder().embed)` (needs the `retrieval`
    extra); tests pass a fake deterministic embedding.

    Args:
        embed: texts -> an `(n, d)` array, one row per text.

    Example:
        >>> fake = lambda texts: np.array([[len(t), 1.0] for t in texts])
        >>> matcher = EmbeddingMatcher(fake)
        >>> pairs = [Pair({"a": "xx"}, {"a": "xx"}, 1), Pair({"a": "x"}, {"a": "long text"}, 0)]
        >>> matcher.fit(pairs).predict(pairs)
        [1, 0]
    """

    def __init__(self, embed: Embed) -> None:
        self.embed = embed
        self.threshold: float | None = None
        self.valid_f1: float | None = None

    def scores(self, pairs: Sequence[Pair]) -> np.ndarray:
        """The cosine score of each pair, in order (each distinct text embedded once)."""
        if not pairs:
            return np.zeros(0)
        lefts = [serialize_record(p.left) for p in pairs]
        rights = [serialize_record(p.right) for p in pairs]
        texts = list(dict.fromkeys(lefts + rights))
        vectors = np.asarray(self.embed(texts), dtype=float)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"embed returned shape {vectors.shape} for {len(texts)} texts; "
                             f"it should return one row per text")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        row = {text: i for i, text in enumerate(texts)}
        left = unit[[row[t] for t in lefts]]
        right = unit[[row[t] for t in rights]]
        scores: np.ndarray = np.einsum("ij,ij->i", left, right)
        return scores

    def fit(self, pairs: Sequence[Pair]) -> EmbeddingMatcher:
        """Set `threshold` to the F1-maximising one on `pairs` (ties: the lowest).

        Raises:
            ValueError: `pairs` holds no match.
        """
        self.threshold, self.valid_f1 = best_threshold(self.scores(pairs),
                                                       [p.label for p in pairs])
        return self

    def predict(self, pairs: Sequence[Pair]) -> list[int]:
        """1 for each pair scoring at least `threshold`, else 0.

        Raises:
            NotFittedError: `fit` was not called.
        """
        if self.threshold is None:
            raise NotFittedError("call EmbeddingMatcher.fit(valid_pairs) before predict")
        return [int(s >= self.threshold) for s in self.scores(pairs)]


# --------------------------------------------------------------------------------------
# Imputation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImputationData:
    """The three splits of an imputation dataset.

    Attributes:
        column: the column to impute, e.g. `manufacturer`.
        train: the training rows, every cell a str, or None where the file has none.
        valid: the validation rows, likewise.
        test: the test rows, likewise.
    """

    column: str
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def split(self, split: Split) -> pd.DataFrame:
        """One split by name."""
        return {"train": self.train, "valid": self.valid, "test": self.test}[split]


def load_imputation(folder: str | Path, column: str = "manufacturer") -> ImputationData:
    """Read `<folder>/{train,valid,test}.csv` of an imputation dataset (e.g. imputation-buy).

    Cells are read as strings exactly as written; an empty cell becomes None.

    Raises:
        DatasetError: a file is missing, empty or unreadable, the three files do not
            share one header, or `column` is not one of its columns.

    Example:
        >>> data = load_imputation("../shared/data/data-wrangling/imputation-buy")  # doctest: +SKIP
        >>> len(data.test), list(data.test.columns)  # doctest: +SKIP
        (65, ['name', 'description', 'manufacturer'])
    """
    frames: dict[str, pd.DataFrame] = {}
    for split in SPLITS:
        path = Path(folder) / f"{split}.csv"
        frame = _read_csv(path)
        if column not in frame.columns:
            raise DatasetError(f"{path}: no column {column!r} to impute; its columns are "
                               f"{list(frame.columns)}")
        if frames and list(frame.columns) != list(frames["train"].columns):
            raise DatasetError(f"{path}: columns {list(frame.columns)} differ from the "
                               f"train file's {list(frames['train'].columns)}")
        frames[split] = frame
    return ImputationData(column, frames["train"], frames["valid"], frames["test"])


def normalise_value(value: str | None) -> str | None:
    """How imputed values are compared: stripped and case-folded (None stays None).

    Example:
        >>> normalise_value("  Sony "), normalise_value(None)
        ('sony', None)
    """
    return None if value is None else value.strip().casefold()


def imputation_accuracy(predicted: Sequence[str | None], gold: Sequence[str | None]) -> float:
    """Share of rows whose prediction equals the gold value after `normalise_value`.

    This is Narayan et al.'s rule: their `compute_metrics` (fm_data_tasks
    `utils/utils.py`) counts a prediction correct when `pred.strip().lower() ==
    label.strip().lower()`; `casefold` differs from `lower` only beyond ASCII (e.g. `ß`),
    which the Buy files do not contain. A None prediction is wrong.

    Raises:
        ValueError: the lengths differ or there are no rows.

    Example:
        >>> imputation_accuracy(["sony ", "LG", None], ["Sony", "Samsung", "Apple"])
        0.3333333333333333
    """
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold values")
    if not gold:
        raise ValueError("imputation_accuracy needs at least one row")
    correct = sum(p is not None and normalise_value(p) == normalise_value(g)
                  for p, g in zip(predicted, gold, strict=True))
    return correct / len(gold)


def most_frequent_impute(train: pd.DataFrame, column: str) -> str:
    """The most frequent value of `column` in `train`, the constant-prediction baseline.

    Values are counted after `normalise_value` (as they are scored); the answer is the
    first spelling seen of the winning value, and a tie goes to the value seen first.

    Raises:
        DatasetError: `column` is missing or has no value.

    Example:
        >>> train = pd.DataFrame({"manufacturer": ["Sony", "LG", "SONY", None]})
        >>> most_frequent_impute(train, "manufacturer")
        'Sony'
    """
    values = _column_values(train, column)
    counts = Counter(normalise_value(v) for v in values)
    best = max(counts.values())
    return next(v for v in values if counts[normalise_value(v)] == best)


class NearestNeighbourImputer:
    """Impute a column with its value in the most similar training row.

    Rows are compared by cosine similarity of TF-IDF vectors of character n-grams
    (scikit-learn's `TfidfVectorizer(analyzer="char_wb")`, sublinear tf) over the
    concatenated `features` columns, lower-cased. Training rows without a value for the
    target column are left out; among equally similar rows the first in the file wins.

    Args:
        column: the column to impute.
        features: the columns whose text is compared.
        ngram_range: the character n-gram lengths.

    Raises:
        MissingDependencyError: scikit-learn is not installed.

    Example:
        >>> train = pd.DataFrame({"name": ["Sony Bravia TV", "Apple iPod nano"],
        ...                       "description": ["LCD", "8GB"],
        ...                       "manufacturer": ["Sony", "Apple"]})
        >>> test = pd.DataFrame({"name": ["iPod nano 4GB"], "description": ["player"]})
        >>> NearestNeighbourImputer().fit(train).predict(test)
        ['Apple']
    """

    def __init__(self, column: str = "manufacturer",
                 features: Sequence[str] = ("name", "description"),
                 ngram_range: tuple[int, int] = (2, 4)) -> None:
        self.column = column
        self.features = tuple(features)
        self.ngram_range = ngram_range
        self._vectorizer: Any = None
        self._matrix: Any = None
        self._values: list[str] = []

    def _texts(self, frame: pd.DataFrame) -> list[str]:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise DatasetError(f"no feature column(s) {missing}; the columns are "
                               f"{list(frame.columns)}")
        return [" ".join(str(v) for v in row if v is not None and v == v)
                for row in frame[list(self.features)].itertuples(index=False)]

    def fit(self, train: pd.DataFrame) -> NearestNeighbourImputer:
        """Index the training rows that have a value for `column`.

        Raises:
            DatasetError: a feature column or `column` is missing, or no row has a value.
        """
        try:
            from sklearn.feature_extraction.text import (  # type: ignore[import-untyped]
                TfidfVectorizer,
            )
        except ImportError as e:
            raise MissingDependencyError("scikit-learn", "NearestNeighbourImputer",
                                         install="pip install scikit-learn") from e
        _column_values(train, self.column)
        known = train[train[self.column].map(lambda v: isinstance(v, str) and bool(v))]
        self._vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=self.ngram_range,
                                           lowercase=True, sublinear_tf=True)
        self._matrix = self._vectorizer.fit_transform(self._texts(known))
        self._values = [str(v) for v in known[self.column]]
        return self

    def _similarity(self, rows: pd.DataFrame) -> np.ndarray:
        if self._vectorizer is None:
            raise NotFittedError("call NearestNeighbourImputer.fit(train) before predict")
        similarity = (self._vectorizer.transform(self._texts(rows)) @ self._matrix.T)
        return np.asarray(similarity.toarray())

    def predict(self, rows: pd.DataFrame) -> list[str]:
        """The imputed value for each row, in order.

        Raises:
            NotFittedError: `fit` was not called.
        """
        if rows.empty:
            return []
        nearest = self._similarity(rows).argmax(axis=1)
        return [self._values[int(i)] for i in nearest]

    def similarities(self, rows: pd.DataFrame) -> list[float]:
        """Each row's cosine similarity to its nearest training row (how sure `predict`
        is; a cascade's score).

        Raises:
            NotFittedError: `fit` was not called.
        """
        if rows.empty:
            return []
        return [float(s) for s in self._similarity(rows).max(axis=1)]


def _column_values(frame: pd.DataFrame, column: str) -> list[str]:
    """The non-empty string values of a column, in order."""
    if column not in frame.columns:
        raise DatasetError(f"no column {column!r}; the columns are {list(frame.columns)}")
    values = [v for v in frame[column] if isinstance(v, str) and v]
    if not values:
        raise DatasetError(f"column {column!r} holds no value to learn from")
    return values


# --------------------------------------------------------------------------------------
# Error detection
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorDetectionData:
    """A dirty table and its labelled cells.

    Attributes:
        table: the table indexed by integer row id (index name `row_id`), every cell a
            str or None where the file's cell is empty.
        labels: split -> a DataFrame of labelled cells with columns `row_id` (int),
            `col_name` (str) and `is_clean` (int: 1 clean, 0 an error).
    """

    table: pd.DataFrame
    labels: dict[str, pd.DataFrame]

    def values(self, split: Split) -> list[str | None]:
        """The table's value of each labelled cell of a split, in order."""
        cells = self.labels[split]
        return [self.table.at[r, c] for r, c in zip(cells["row_id"], cells["col_name"],
                                                    strict=True)]

    def errors(self, split: Split) -> list[int]:
        """Gold labels of a split as 1 for an error (`is_clean == 0`), else 0."""
        return [int(v == 0) for v in self.labels[split]["is_clean"]]


def load_error_detection(folder: str | Path) -> ErrorDetectionData:
    """Read an error-detection folder: `table.csv` and `{train,valid,test}.csv`.

    `table.csv`'s first column (`Unnamed: 0`, pandas' unnamed index) holds the row ids.

    Raises:
        DatasetError: a file is missing, the row ids are not distinct integers, a label
            file lacks `row_id,col_name,is_clean`, or a labelled cell has a non-integer
            row id, an `is_clean` other than 0/1, or names a row or column that is not
            in the table (the message names the file and line).

    Example:
        >>> data = load_error_detection(
        ...     "../shared/data/data-wrangling/error-detection-hospital")  # doctest: +SKIP
        >>> data.table.shape, len(data.labels["test"])  # doctest: +SKIP
        ((1000, 19), 17101)
    """
    folder = Path(folder)
    table_path = folder / "table.csv"
    raw = _read_csv(table_path)
    if raw.columns[0] != _ERROR_ROW_ID:
        raise DatasetError(f"{table_path}: the first column should be the row id "
                           f"{_ERROR_ROW_ID!r}, found {raw.columns[0]!r}")
    try:
        ids = [int(v) for v in raw[_ERROR_ROW_ID]]
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{table_path}: the row ids in {_ERROR_ROW_ID!r} should be "
                           f"integers: {e}") from e
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{table_path}: the row ids in {_ERROR_ROW_ID!r} repeat")
    table = raw.drop(columns=_ERROR_ROW_ID)
    table.index = pd.Index(ids, name="row_id")
    rows, columns = set(ids), set(table.columns)
    labels: dict[str, pd.DataFrame] = {}
    for split in SPLITS:
        path = folder / f"{split}.csv"
        frame = _read_csv(path, empty_as_none=False)
        if list(frame.columns) != ["row_id", "col_name", "is_clean"]:
            raise DatasetError(f"{path}: expected the header row_id,col_name,is_clean, "
                               f"found {','.join(frame.columns)}")
        row_ids: list[int] = []
        flags: list[int] = []
        for lineno, (row_id, col_name, is_clean) in enumerate(
                frame.itertuples(index=False, name=None), 2):
            where = f"{path}:{lineno}"
            try:
                row = int(row_id)
            except ValueError:
                raise DatasetError(f"{where}: row_id should be an integer, got {row_id!r}") \
                    from None
            if row not in rows:
                raise DatasetError(f"{where}: row {row} is not in {table_path} "
                                   f"(ids {min(ids)}..{max(ids)})")
            if col_name not in columns:
                raise DatasetError(f"{where}: column {col_name!r} is not in {table_path}")
            if is_clean not in ("0", "1"):
                raise DatasetError(f"{where}: is_clean should be 0 or 1, got {is_clean!r}")
            row_ids.append(row)
            flags.append(int(is_clean))
        labels[split] = pd.DataFrame({"row_id": pd.Series(row_ids, dtype="int64"),
                                      "col_name": pd.Series(list(frame["col_name"]),
                                                            dtype=object),
                                      "is_clean": pd.Series(flags, dtype="int64")})
    return ErrorDetectionData(table, labels)


class FrequencyOutlierDetector:
    """Flag a cell as an error when its value is rare in its column.

    A cell's frequency is how often its exact value occurs in its column of the table
    the cell comes from. A cell is flagged when that frequency is at or below
    `threshold`; `fit` picks the threshold with the best F1 on labelled cells (ties: the
    lowest, i.e. the fewest flags). Empty cells (None or blank) are never flagged: in
    Hospital every labelled empty cell is clean. Errors there are mostly typos (a
    letter replaced by `x`), which make a value unique among the rows that repeat it.

    Example:
        >>> table = pd.DataFrame({"city": ["boston", "boston", "bxston", None]})
        >>> cells = pd.DataFrame({"row_id": [0, 2, 3], "col_name": ["city"] * 3,
        ...                       "is_clean": [1, 0, 1]})
        >>> detector = FrequencyOutlierDetector().fit(table, cells)
        >>> detector.threshold, detector.predict(table, cells)
        (1, [0, 1, 0])
    """

    def __init__(self) -> None:
        self.threshold: int | None = None
        self.fit_f1: float | None = None

    @staticmethod
    def frequencies(table: pd.DataFrame, cells: pd.DataFrame) -> list[int | None]:
        """Each cell's value frequency in its column; None for an empty cell.

        Raises:
            DatasetError: a cell names a row or column not in `table`.
        """
        counts: dict[str, Counter[Any]] = {}
        out: list[int | None] = []
        for row, column in zip(cells["row_id"], cells["col_name"], strict=True):
            if column not in table.columns:
                raise DatasetError(f"column {column!r} is not in the table")
            if row not in table.index:
                raise DatasetError(f"row {row!r} is not in the table")
            value = table.at[row, column]
            if _is_empty(value):
                out.append(None)
                continue
            if column not in counts:
                counts[column] = Counter(table[column])
            out.append(counts[column][value])
        return out

    def fit(self, table: pd.DataFrame, cells: pd.DataFrame) -> FrequencyOutlierDetector:
        """Pick the threshold with the best F1 on labelled cells (`is_clean` 0 = error).

        The candidates are the frequencies of the non-empty labelled cells; F1 counts
        every gold error, empty cells included (they are never flagged). Ties go to the
        lowest threshold, the one that flags the fewest cells. Pass the train and
        validation cells together (`pd.concat`) to fit on both.

        Raises:
            ValueError: the cells hold no error, or no non-empty cell.
        """
        frequencies = self.frequencies(table, cells)
        gold = np.asarray([v == 0 for v in cells["is_clean"]], dtype=bool)
        positives = int(gold.sum())
        if positives == 0:
            raise ValueError("cannot fit a threshold: the labelled cells hold no error")
        filled = np.asarray([f is not None for f in frequencies], dtype=bool)
        if not filled.any():
            raise ValueError("cannot fit a threshold: every labelled cell is empty")
        freq = np.asarray([f if f is not None else 0 for f in frequencies])
        best_f1, best_t = -1.0, 0
        for t in np.unique(freq[filled]):  # ascending, so a tie keeps the lowest
            flagged = filled & (freq <= t)
            tp = int((flagged & gold).sum())
            f1 = 2 * tp / (int(flagged.sum()) + positives)
            if f1 > best_f1:
                best_f1, best_t = f1, int(t)
        self.threshold, self.fit_f1 = best_t, best_f1
        return self

    def predict(self, table: pd.DataFrame, cells: pd.DataFrame) -> list[int]:
        """1 for each cell flagged as an error, else 0.

        Raises:
            NotFittedError: `fit` was not called.
        """
        if self.threshold is None:
            raise NotFittedError("call FrequencyOutlierDetector.fit(table, cells) first")
        threshold = self.threshold
        return [int(f is not None and f <= threshold)
                for f in self.frequencies(table, cells)]


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (
        isinstance(value, str) and not value.strip())


# --------------------------------------------------------------------------------------
# Metrics and shared helpers
# --------------------------------------------------------------------------------------


class Scores(TypedDict):
    """Precision, recall and F1 as fractions in [0, 1], and the counts behind them."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def precision_recall_f1(predicted: Sequence[bool | int], gold: Sequence[bool | int]
                        ) -> Scores:
    """Precision, recall and F1 of binary predictions (1/True = positive).

    Precision is `tp / (tp + fp)`, recall `tp / (tp + fn)`, F1 `2PR / (P + R)`, each a
    fraction in [0, 1]; each is 0.0 where it is undefined (no positive predicted, no
    positive in `gold`, or P + R = 0), as scikit-learn's `zero_division=0` does.

    Raises:
        ValueError: the lengths differ, or a value is not 0/1/True/False.

    Example:
        >>> precision_recall_f1([1, 1, 0, 0], [1, 0, 1, 0])
        {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'tp': 1, 'fp': 1, 'fn': 1}
        >>> precision_recall_f1([0, 0], [1, 0])["precision"]
        0.0
    """
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold labels")
    pred, truth = _as_binary(predicted, "predicted"), _as_binary(gold, "gold")
    tp = sum(p and g for p, g in zip(pred, truth, strict=True))
    fp = sum(p and not g for p, g in zip(pred, truth, strict=True))
    fn = sum(g and not p for p, g in zip(pred, truth, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision=precision, recall=recall, f1=f1, tp=tp, fp=fp, fn=fn)


def _as_binary(values: Iterable[Any], name: str) -> list[bool]:
    out: list[bool] = []
    for i, v in enumerate(values):
        if v in (0, 1) and not isinstance(v, float | str):
            out.append(bool(v))
        else:
            raise ValueError(f"{name}[{i}] is {v!r}; binary labels must be 0/1 or bool")
    return out


def _read_csv(path: Path, *, empty_as_none: bool = True) -> pd.DataFrame:
    """A CSV with every cell read as the str written (empty cells None if asked)."""
    if not path.is_file():
        raise DatasetError(f"missing data file {path}")
    try:
        frame = pd.read_csv(path, dtype=object, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path} is not a readable CSV file: {e}") from e
    if frame.empty:
        raise DatasetError(f"{path} holds no rows")
    return frame.where(frame != "", None) if empty_as_none else frame
