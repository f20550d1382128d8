"""Loader and metrics for the crowd-truth label-aggregation datasets (Zheng et al., PVLDB 2017).

Files (see `../shared/data/README.md`, section crowd-truth): one folder per dataset under a
`crowd-truth/` root, each with `answer.csv` (`question,worker,answer`: one crowd answer per
row) and `truth.csv` (`question,truth`: the gold label of each task).

| name      | folder                  | tasks | workers | answers | classes |
|-----------|-------------------------|-------|---------|---------|---------|
| `product` | `d_jn-product`          | 8,315 | 176     | 24,945  | 2       |
| `duck`    | `d_Duck_Identification` | 108   | 39      | 4,212   | 2       |
| `dog`     | `s4_Dog_data`           | 807   | 109     | 8,070   | 4       |

Every id and label is read as a string (`"0"`, `"NA"` and `"n/a"` are labels, never numbers or
missing values), and a table of answers always has the columns `task, labeler, label`.

Beware: every Product task id ends in its gold label (`107_1108_0` is a non-match,
`953_1938_1` a match), so task ids must never reach a model or a feature.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aisle.evals._errors import DatasetError

__all__ = [
    "ANSWER_COLUMNS",
    "CROWD_TRUTH_DATASETS",
    "PUBLISHED_ACCURACY",
    "PUBLISHED_F1",
    "CrowdTruth",
    "DatasetError",
    "accuracy",
    "binary_f1",
    "load_crowd_truth",
    "read_answers_csv",
    "read_truth_csv",
]

ANSWER_COLUMNS = ("task", "labeler", "label")
# The crowd-truth files' own names for the same columns.
_CROWD_ANSWER_COLUMNS = ("question", "worker", "answer")
_TRUTH_COLUMNS = ("task", "label")
_CROWD_TRUTH_COLUMNS = ("question", "truth")

CROWD_TRUTH_DATASETS: dict[str, str] = {
    "product": "d_jn-product",
    "duck": "d_Duck_Identification",
    "dog": "s4_Dog_data",
}
"""Short dataset name -> folder name under the `crowd-truth/` root."""

# Accuracy in percent as the data README quotes it (Zheng et al. 2017). Keys: "ds"
# Dawid-Skene, "lfc" LFC, "zencrowd" ZenCrowd, "glad" GLAD, "minimax" Minimax entropy,
# "mv" majority vote. The MV figures were computed from these files, not taken from the
# paper. Product (89.66) and Duck (75.9) have no tied votes. Dog has 50 tied tasks, so its
# MV accuracy depends on the tie-break: 79.18 if every tie counts as wrong, 82.22 expected
# under a uniform random tie-break; 82.3 matches one such draw (664/807 = 82.28).
PUBLISHED_ACCURACY: dict[str, dict[str, float]] = {
    "product": {"ds": 93.66, "lfc": 93.73, "zencrowd": 92.80, "glad": 92.23, "minimax": 84.09,
                "mv": 89.66},
    "duck": {"ds": 87.96, "minimax": 91.67, "lfc": 89.81, "mv": 75.9},
    "dog": {"ds": 84.26, "lfc": 84.26, "glad": 83.52, "mv": 82.3},
}
"""Published accuracy (%) per dataset and aggregation method (see the comment above)."""

PUBLISHED_F1: dict[str, dict[str, float]] = {"product": {"ds": 71.59}}
"""Published F1 (%) of the positive class `"1"` (same product) on Product, Dawid-Skene."""


@dataclass(frozen=True, eq=False)
class CrowdTruth:
    """One crowd-truth dataset: the crowd's answers and the gold label of each task.

    Attributes:
        name: the short name (`product`, `duck` or `dog`).
        answers: one row per answer, columns `task, labeler, label`, all strings.
        truth: task -> gold label.
    """

    name: str
    answers: pd.DataFrame
    truth: dict[str, str]

    @property
    def classes(self) -> tuple[str, ...]:
        """Every label seen in the answers or the truth, sorted."""
        return tuple(sorted({*self.answers["label"], *self.truth.values()}))


def load_crowd_truth(root: str | Path, name: str) -> CrowdTruth:
    """Read one dataset folder's `answer.csv` and `truth.csv`.

    Args:
        root: the `crowd-truth/` folder that holds the dataset folders.
        name: a short name from `CROWD_TRUTH_DATASETS` (or the folder name itself).

    Raises:
        DatasetError: unknown name, missing folder or file, missing columns, no rows,
            blank cells, or a task answered twice by one worker.
    """
    if name in CROWD_TRUTH_DATASETS:
        short, folder_name = name, CROWD_TRUTH_DATASETS[name]
    else:
        by_folder = {folder: key for key, folder in CROWD_TRUTH_DATASETS.items()}
        if name not in by_folder:
            raise DatasetError(f"unknown crowd-truth dataset {name!r}; "
                               f"known: {', '.join(CROWD_TRUTH_DATASETS)}")
        short, folder_name = by_folder[name], name
    folder = Path(root) / folder_name
    if not folder.is_dir():
        raise DatasetError(f"no dataset folder {folder}; root should be the crowd-truth folder "
                           f"that holds {folder_name}/")
    answers = read_answers_csv(folder / "answer.csv")
    truth = read_truth_csv(folder / "truth.csv")
    return CrowdTruth(short, answers, truth)


def read_answers_csv(path: str | Path) -> pd.DataFrame:
    """One row per answer with string columns `task, labeler, label`.

    The header names either `task,labeler,label` or the crowd-truth files'
    `question,worker,answer` (renamed); other columns are dropped. Cells are stripped of
    surrounding whitespace, and every label is kept as text: `NA` and `n/a` are labels.
    Line numbers in errors count the header as line 1.

    Raises:
        DatasetError: the file is missing or not UTF-8 CSV, lacks the columns, has no rows,
            a row has a blank task, labeler or label (the lines are named), or one labeler
            answered one task twice (the first such pair is named).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, "answers.csv")
        ...     _ = path.write_text("question,worker,answer\\nq1,w1,NA\\nq1,w2, 1 \\n")
        ...     frame = read_answers_csv(path)
        >>> frame.to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
        [{'task': 'q1', 'labeler': 'w1', 'label': 'NA'},
         {'task': 'q1', 'labeler': 'w2', 'label': '1'}]
    """
    path = Path(path)
    lines, rows = _read_csv(path, (ANSWER_COLUMNS, _CROWD_ANSWER_COLUMNS))
    _check_blank(path, lines, rows, ANSWER_COLUMNS)
    first_line: dict[tuple[str, str], int] = {}
    for line, (task, labeler, _) in zip(lines, rows, strict=True):
        earlier = first_line.setdefault((task, labeler), line)
        if earlier != line:
            raise DatasetError(f"{path}: labeler {labeler!r} answered task {task!r} twice "
                               f"(lines {earlier} and {line}); keep one answer per labeler "
                               f"and task")
    columns = list(zip(*rows, strict=True))
    return pd.DataFrame({name: list(col) for name, col in zip(ANSWER_COLUMNS, columns,
                                                               strict=True)}, dtype=str)


def read_truth_csv(path: str | Path) -> dict[str, str]:
    """Task -> gold label from a CSV with columns `task,label` or `question,truth`.

    Raises:
        DatasetError: the file is missing, lacks the columns, has no rows, a cell is
            blank, or a task appears twice.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, "truth.csv")
        ...     _ = path.write_text("question,truth\\nq1,0\\nq2,1\\n")
        ...     truth = read_truth_csv(path)
        >>> truth
        {'q1': '0', 'q2': '1'}
    """
    path = Path(path)
    lines, rows = _read_csv(path, (_TRUTH_COLUMNS, _CROWD_TRUTH_COLUMNS))
    _check_blank(path, lines, rows, _TRUTH_COLUMNS)
    truth: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, (task, label) in zip(lines, rows, strict=True):
        if task in truth:
            raise DatasetError(f"{path}: task {task!r} has two gold labels (lines "
                               f"{first_line[task]} and {line}); keep one")
        truth[task], first_line[task] = label, line
    return truth


def accuracy(pred: Mapping[str, str], truth: Mapping[str, str]) -> float:
    """Share of the tasks in `truth` whose predicted label equals the gold one.

    A task without a prediction counts as wrong; predictions for tasks not in `truth`
    are ignored.

    Raises:
        DatasetError: `truth` is empty.

    Example:
        >>> truth = {"t1": "1", "t2": "1", "t3": "0", "t4": "0"}
        >>> accuracy({"t1": "1", "t2": "0", "t9": "1"}, truth)  # t3, t4 unanswered
        0.25
    """
    if not truth:
        raise DatasetError("no gold labels to score against: truth is empty")
    return sum(pred.get(task) == label for task, label in truth.items()) / len(truth)


def binary_f1(pred: Mapping[str, str], truth: Mapping[str, str], positive: str = "1") -> float:
    """F1 of the `positive` class over the tasks in `truth` (0.0 when it has no support).

    A task without a prediction counts as predicted negative.

    Raises:
        DatasetError: `truth` is empty.

    Example:
        >>> truth = {"t1": "1", "t2": "1", "t3": "0", "t4": "0"}
        >>> binary_f1({"t1": "1", "t3": "1", "t4": "0"}, truth)  # tp 1, fp 1, fn 1
        0.5
    """
    if not truth:
        raise DatasetError("no gold labels to score against: truth is empty")
    tp = fp = fn = 0
    for task, label in truth.items():
        said_positive = pred.get(task) == positive
        if label == positive:
            tp += said_positive
            fn += not said_positive
        else:
            fp += said_positive
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _read_csv(path: Path, schemas: Sequence[tuple[str, ...]]
              ) -> tuple[list[int], list[list[str]]]:
    """Line numbers and stripped cells of the first column set in `schemas` the header has.

    Blank lines are skipped; the cells come back in the order of `schemas[0]`'s columns.
    """
    if not path.is_file():
        raise DatasetError(f"missing data file {path}")
    expected = " or ".join(",".join(schema) for schema in schemas)
    lines: list[int] = []
    rows: list[list[str]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path} is empty; expected a header line {expected} "
                                   f"and one row per line")
            names = [name.strip() for name in header]
            for schema in schemas:
                if all(column in names for column in schema):
                    picked = [names.index(column) for column in schema]
                    break
            else:
                raise DatasetError(f"{path}: expected columns {expected}; found "
                                   f"{','.join(names)}")
            for record in reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if len(record) != len(names):
                    raise DatasetError(f"{path}:{reader.line_num}: expected {len(names)} "
                                       f"fields ({','.join(names)}), got {len(record)}: "
                                       f"{record!r}")
                lines.append(reader.line_num)
                rows.append([record[i].strip() for i in picked])
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path} is not UTF-8 text: {e}") from e
    except csv.Error as e:
        raise DatasetError(f"{path}: malformed CSV: {e}") from e
    if not rows:
        raise DatasetError(f"{path} has a header but no rows")
    return lines, rows


def _check_blank(path: Path, lines: Sequence[int], rows: Sequence[Sequence[str]],
                 columns: Sequence[str]) -> None:
    """Raise naming the lines (the first ten) that leave a cell blank."""
    for i, column in enumerate(columns):
        blank = [line for line, row in zip(lines, rows, strict=True) if not row[i]]
        if blank:
            shown = ", ".join(map(str, blank[:10]))
            more = f" and {len(blank) - 10} more" if len(blank) > 10 else ""
            raise DatasetError(f"{path}: blank {column} on line(s) {shown}{more}; every row "
                               f"needs a {', '.join(columns)}")
