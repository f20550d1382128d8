"""The crowd-truth loader and metrics, on the real files, broken files and tiny cases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from aisle.evals.crowd_truth import (
    CROWD_TRUTH_DATASETS,
    PUBLISHED_ACCURACY,
    PUBLISHED_F1,
    CrowdTruth,
    DatasetError,
    accuracy,
    binary_f1,
    load_crowd_truth,
    read_answers_csv,
    read_truth_csv,
)
from aisle.evals.llmrank import DatasetError as LlmrankDatasetError


@pytest.fixture(scope="module")
def root(shared_data_dir: Callable[..., Path]) -> Path:
    return shared_data_dir("crowd-truth")


def _majority(data: CrowdTruth) -> tuple[dict[str, str], int]:
    """Untied majority labels, and how many tasks had a tie (left out)."""
    votes: dict[str, Counter[str]] = {}
    for task, label in zip(data.answers["task"], data.answers["label"], strict=True):
        votes.setdefault(task, Counter())[label] += 1
    pred, ties = {}, 0
    for task, counter in votes.items():
        (top, n), *rest = counter.most_common()
        if rest and rest[0][1] == n:
            ties += 1
        else:
            pred[task] = top
    return pred, ties


@pytest.mark.parametrize(
    ("name", "tasks", "workers", "answers", "classes"),
    [("product", 8315, 176, 24945, ("0", "1")),
     ("duck", 108, 39, 4212, ("0", "1")),
     ("dog", 807, 109, 8070, ("0", "1", "2", "3"))],
)
def test_real_files_load(root: Path, name: str, tasks: int, workers: int, answers: int,
                         classes: tuple[str, ...]) -> None:
    data = load_crowd_truth(root, name)
    assert data.name == name
    assert list(data.answers.columns) == ["task", "labeler", "label"]
    assert all(str(dtype) == "str" for dtype in data.answers.dtypes)
    assert len(data.answers) == answers
    assert data.answers["task"].nunique() == tasks
    assert data.answers["labeler"].nunique() == workers
    assert len(data.truth) == tasks
    assert set(data.truth) == set(data.answers["task"])
    assert data.classes == classes


def test_product_task_ids_leak_the_gold_label(root: Path) -> None:
    # Documented in the module: the last part of each Product task id is its gold label.
    truth = load_crowd_truth(root, "product").truth
    assert all(task.rsplit("_", 1)[1] == label for task, label in truth.items())


def test_folder_name_is_accepted(root: Path) -> None:
    assert load_crowd_truth(root, "d_Duck_Identification").name == "duck"


def test_first_rows_are_read_as_text(root: Path) -> None:
    product = load_crowd_truth(root, "product")
    assert product.answers.iloc[0].to_dict() == {
        "task": "988_1500_0", "labeler": "A3GVKARKY0E0U9", "label": "0"}
    assert product.truth["107_1108_0"] == "0"


@pytest.mark.parametrize(("name", "published"), [("product", 89.66), ("duck", 75.9)])
def test_majority_vote_matches_the_readme(root: Path, name: str, published: float) -> None:
    # The README's MV figures were computed from these files; these two have no ties.
    data = load_crowd_truth(root, name)
    pred, ties = _majority(data)
    assert ties == 0
    assert PUBLISHED_ACCURACY[name]["mv"] == published
    digits = len(str(published).split(".")[1])
    assert round(100 * accuracy(pred, data.truth), digits) == published


def test_dog_majority_vote_depends_on_ties(root: Path) -> None:
    data = load_crowd_truth(root, "dog")
    pred, ties = _majority(data)
    assert ties == 50
    assert round(100 * accuracy(pred, data.truth), 2) == 79.18  # every tie counted wrong


def test_published_constants() -> None:
    assert set(CROWD_TRUTH_DATASETS) == set(PUBLISHED_ACCURACY) == {"product", "duck", "dog"}
    assert PUBLISHED_ACCURACY["product"]["ds"] == 93.66
    assert PUBLISHED_ACCURACY["dog"]["glad"] == 83.52
    assert PUBLISHED_F1["product"]["ds"] == 71.59


def test_dataset_error_is_shared_with_llmrank() -> None:
    assert DatasetError is LlmrankDatasetError
    assert issubclass(DatasetError, ValueError)


@pytest.mark.parametrize(
    ("setup", "match"),
    [("unknown", "unknown crowd-truth dataset 'nope'; known: product, duck, dog"),
     ("no-folder", "no dataset folder"),
     ("no-truth", r"missing data file .*truth\.csv")],
)
def test_load_errors(tmp_path: Path, setup: str, match: str) -> None:
    name = "nope" if setup == "unknown" else "duck"
    if setup == "no-truth":
        folder = tmp_path / "d_Duck_Identification"
        folder.mkdir()
        (folder / "answer.csv").write_text("question,worker,answer\n1,1,0\n")
    with pytest.raises(DatasetError, match=match):
        load_crowd_truth(tmp_path, name)


def _write(tmp_path: Path, text: str, name: str = "answers.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [("task,labeler,label\nt1,a,x\n", [("t1", "a", "x")]),
     ("question,worker,answer\nq,w,1\n", [("q", "w", "1")]),
     # Literal NA-like labels stay labels; cells are stripped; blank lines are skipped.
     ("task,labeler,label\nt1,a,NA\n\nt1, b ,n/a\nt2,a,None\n",
      [("t1", "a", "NA"), ("t1", "b", "n/a"), ("t2", "a", "None")]),
     # Extra columns are dropped, column order does not matter, ids stay text.
     ("label,conf,labeler,task\n007,0.9,01,1.0\n", [("1.0", "01", "007")]),
     ("\ufefftask,labeler,label\nt,a,\"x, y\"\n", [("t", "a", "x, y")]),
     # Both header spellings: the aisle one wins.
     ("question,worker,answer,task,labeler,label\nq,w,a,t,l,x\n", [("t", "l", "x")])],
)
def test_read_answers(tmp_path: Path, text: str, expected: list[tuple[str, str, str]]) -> None:
    frame = read_answers_csv(_write(tmp_path, text))
    assert list(frame.columns) == ["task", "labeler", "label"]
    assert [tuple(row) for row in frame.itertuples(index=False)] == expected
    assert all(str(dtype) == "str" for dtype in frame.dtypes)


@pytest.mark.parametrize(
    ("text", "match"),
    [("", "is empty; expected a header line task,labeler,label or question,worker,answer"),
     ("task,labeler,label\n", "has a header but no rows"),
     ("task,worker,label\nt,a,x\n",
      "expected columns task,labeler,label or question,worker,answer; found task,worker,label"),
     ("task,labeler,label\nt1,,x\nt2,b,y\n ,c,z\n", r"blank task on line\(s\) 4;"),
     ("task,labeler,label\nt1,,x\nt2,b,y\nt3,,z\n", r"blank labeler on line\(s\) 2, 4;"),
     ("task,labeler,label\nt1,a,\n", r"blank label on line\(s\) 2;"),
     ("task,labeler,label\nt1,a,x\nt2,a,x\nt1,b,y\nt1,a,z\nt2,a,x\n",
      "labeler 'a' answered task 't1' twice \\(lines 2 and 5\\)"),
     ("task,labeler,label\nt1,a\n", r":2: expected 3 fields \(task,labeler,label\), got 2"),
     ("task,labeler,label\nt1,a,x,extra\n", "expected 3 fields"),
     ("task,labeler,label\nt1,a,\"unclosed\n", "malformed CSV: unexpected end of data"),
     ("task,labeler,label\nt1,a,\"x\"y\n", "malformed CSV")],
)
def test_read_answers_errors(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        read_answers_csv(_write(tmp_path, text))


def test_blank_cells_name_at_most_ten_lines(tmp_path: Path) -> None:
    text = "task,labeler,label\n" + "".join(f",a{i},x\n" for i in range(12))
    with pytest.raises(DatasetError, match=r"line\(s\) 2, 3, .*, 11 and 2 more;"):
        read_answers_csv(_write(tmp_path, text))


def test_read_answers_missing_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"missing data file .*nothere\.csv"):
        read_answers_csv(tmp_path / "nothere.csv")
    path = tmp_path / "bin.csv"
    path.write_bytes(b"task,labeler,label\n\xff\xfe,a,b\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_answers_csv(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [("question,truth\nq1,0\nq1,1\n", "task 'q1' has two gold labels \\(lines 2 and 3\\)"),
     ("question,truth\nq1,\n", r"blank label on line\(s\) 2"),
     ("question,answer\nq1,0\n", "expected columns task,label or question,truth"),
     ("question,truth\n", "no rows")],
)
def test_read_truth_errors(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        read_truth_csv(_write(tmp_path, text, "truth.csv"))


TRUTH = {"t1": "1", "t2": "1", "t3": "0", "t4": "0", "t5": "1"}


@pytest.mark.parametrize(
    ("pred", "expected"),
    [(TRUTH, 1.0),
     ({}, 0.0),
     ({"t1": "1", "t2": "0", "t3": "0"}, 2 / 5),          # t4, t5 unanswered: wrong
     ({"t1": "1", "x": "1", "y": "0"}, 1 / 5),            # extra tasks are ignored
     ({t: "1" for t in TRUTH}, 3 / 5)],
)
def test_accuracy(pred: dict[str, str], expected: float) -> None:
    assert accuracy(pred, TRUTH) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("pred", "positive", "expected"),
    [(TRUTH, "1", 1.0),
     ({}, "1", 0.0),
     # tp t1 t2, fp t3, fn t5: 2*2 / (2*2 + 1 + 1)
     ({"t1": "1", "t2": "1", "t3": "1", "t4": "0", "t5": "0"}, "1", 4 / 6),
     ({"t1": "1"}, "1", 2 / 4),                           # missing predictions are negatives
     ({t: "1" for t in TRUTH}, "1", 6 / 8),
     ({t: "1" for t in TRUTH}, "0", 0.0),                 # no tp for class "0"
     ({"t3": "0", "t1": "0"}, "0", 2 / 4),
     ({"t1": "1"}, "2", 0.0)],                            # class without support
)
def test_binary_f1(pred: dict[str, str], positive: str, expected: float) -> None:
    assert binary_f1(pred, TRUTH, positive=positive) == pytest.approx(expected)


@pytest.mark.parametrize("metric", [accuracy, binary_f1])
def test_metrics_need_truth(metric: Callable[[Mapping[str, str], Mapping[str, str]], float]
                            ) -> None:
    with pytest.raises(DatasetError, match="truth is empty"):
        metric({"t": "1"}, {})
