"""Data-wrangling loaders, metrics and baselines, on small hand-made files (plus one
check of the real files under the shared data)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aisle.evals.wrangling import (
    DatasetError,
    EmbeddingMatcher,
    FrequencyOutlierDetector,
    NearestNeighbourImputer,
    NotFittedError,
    Pair,
    best_threshold,
    imputation_accuracy,
    load_error_detection,
    load_imputation,
    load_pairs,
    most_frequent_impute,
    pair_tables,
    parse_record,
    precision_recall_f1,
    serialize_record,
)


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _line(left: str, right: str, label: str) -> str:
    return f"{left}\t{right}\t{label}\n"


# --- parse_record / load_pairs ---------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("COL name VAL sony tv COL price VAL 9.99 ", {"name": "sony tv", "price": "9.99"}),
    # empty values: in the middle (two spaces, as the files write it), one space, at the end
    ("COL name VAL x COL price VAL  COL brand VAL sony ",
     {"name": "x", "price": "", "brand": "sony"}),
    ("COL name VAL x COL price VAL COL brand VAL sony",
     {"name": "x", "price": "", "brand": "sony"}),
    ("COL name VAL x COL price VAL  ", {"name": "x", "price": ""}),
    ("COL name VAL x COL price VAL", {"name": "x", "price": ""}),
    # the word COL (or VAL) inside a value is not a token
    ("COL title VAL COLOR printer COL note VAL a COL b c VAL d COL x VAL VAL ",
     {"title": "COLOR printer", "note": "a COL b c VAL d", "x": "VAL"}),
])
def test_parse_record(text: str, expected: dict[str, str]) -> None:
    record = parse_record(text)
    assert record == expected
    assert list(record) == list(expected)  # file order kept


@pytest.mark.parametrize(("text", "message"), [
    ("name VAL x", "should start with 'COL <attr> VAL'"),
    (" COL name VAL x", "should start with"),
    ("", "should start with"),
    ("COL a VAL x COL a VAL y", "attribute 'a' appears twice"),
])
def test_parse_record_rejects(text: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_record(text)


def test_load_pairs_reads_labels_and_skips_blank_lines(tmp_path: Path) -> None:
    _write(tmp_path, "test.txt",
           _line("COL a VAL x ", "COL a VAL y ", "0")
           + _line("COL a VAL x COL b VAL  ", "COL a VAL x COL b VAL 1 ", "1") + "\n")
    pairs = load_pairs(tmp_path, "test")
    assert pairs == [Pair({"a": "x"}, {"a": "y"}, 0),
                     Pair({"a": "x", "b": ""}, {"a": "x", "b": "1"}, 1)]


@pytest.mark.parametrize(("bad_line", "message"), [
    ("COL a VAL x \tCOL a VAL y \n", "expected 3 tab-separated fields"),
    ("COL a VAL x \tCOL a VAL y \t1\textra\n", "found 4"),
    ("COL a VAL x \tCOL a VAL y \t2\n", "label should be 0 or 1, got '2'"),
    ("COL a VAL x \tCOL a VAL y \tyes\n", "label should be 0 or 1"),
    ("a VAL x \tCOL a VAL y \t0\n", "should start with 'COL <attr> VAL'"),
    ("COL a VAL x \tVAL y \t0\n", "should start with 'COL <attr> VAL'"),
])
def test_load_pairs_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = _write(tmp_path, "train.txt", _line("COL a VAL x ", "COL a VAL y ", "0") + "\n"
                  + bad_line)
    with pytest.raises(DatasetError, match=message) as info:
        load_pairs(tmp_path, "train")
    assert f"{path}:3:" in str(info.value)


def test_load_pairs_missing_file_and_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing data file"):
        load_pairs(tmp_path, "valid")
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        load_pairs(tmp_path, "dev")  # type: ignore[arg-type]
    _write(tmp_path, "test.txt", "\n")
    with pytest.raises(DatasetError, match="holds no pairs"):
        load_pairs(tmp_path, "test")


# --- pair_tables ----------------------------------------------------------------------


def _matching_folder(folder: Path) -> Path:
    a, b, c = "COL n VAL apple COL p VAL 1 ", "COL n VAL pear COL p VAL  ", "COL n VAL plum "
    x, y, z = "COL n VAL Apple ", "COL n VAL Pear inc ", "COL n VAL fig "
    _write(folder, "train.txt", _line(a, x, "1") + _line(a, y, "0") + _line(b, y, "1"))
    _write(folder, "valid.txt", _line(c, z, "0") + _line(b, x, "0") + _line(a, x, "1"))
    # (b, y) repeated with the other label; a new right record seen first in test
    _write(folder, "test.txt", _line(b, y, "0") + _line(c, "COL n VAL kiwi ", "0"))
    return folder


def test_pair_tables_dedups_records_and_hands_out_ids_in_order(tmp_path: Path) -> None:
    tables = pair_tables(_matching_folder(tmp_path))
    assert tables.left["id"].tolist() == ["l0", "l1", "l2"]
    assert tables.left["n"].tolist() == ["apple", "pear", "plum"]
    # missing attribute -> None, empty value -> ""
    assert tables.left["p"].tolist() == ["1", "", None]
    assert tables.right["id"].tolist() == ["r0", "r1", "r2", "r3"]
    assert tables.right["n"].tolist() == ["Apple", "Pear inc", "fig", "kiwi"]
    assert list(tables.left.columns) == ["id", "n", "p"]
    assert tables.matches == {("l0", "r0"), ("l1", "r1")}
    assert tables.labelled == {("l0", "r0"): 1, ("l0", "r1"): 0, ("l1", "r1"): 1,
                               ("l2", "r2"): 0, ("l1", "r0"): 0, ("l2", "r3"): 0}
    assert tables.conflicting == {("l1", "r1")}
    assert tables.cross_product == 12


# --- metrics --------------------------------------------------------------------------


def test_precision_recall_f1_counts() -> None:
    scores = precision_recall_f1([1, 1, 1, 0, 0], [True, False, True, True, False])
    assert (scores["tp"], scores["fp"], scores["fn"]) == (2, 1, 1)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(("predicted", "gold", "expected"), [
    ([0, 0, 0], [1, 0, 1], (0.0, 0.0, 0.0)),   # no positive predicted
    ([1, 0, 0], [0, 0, 0], (0.0, 0.0, 0.0)),   # no positive in gold
    ([0, 0], [0, 0], (0.0, 0.0, 0.0)),         # nothing at all
    ([], [], (0.0, 0.0, 0.0)),
    ([1, 1], [1, 1], (1.0, 1.0, 1.0)),
])
def test_precision_recall_f1_undefined_is_zero(predicted: list[int], gold: list[int],
                                               expected: tuple[float, float, float]) -> None:
    scores = precision_recall_f1(predicted, gold)
    assert (scores["precision"], scores["recall"], scores["f1"]) == expected


def test_precision_recall_f1_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 predictions for 3 gold"):
        precision_recall_f1([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match=r"predicted\[1\] is 2"):
        precision_recall_f1([1, 2], [1, 0])
    with pytest.raises(ValueError, match=r"gold\[0\] is 'yes'"):
        precision_recall_f1([1], ["yes"])  # type: ignore[list-item]


def test_imputation_accuracy_normalises_and_counts_none_wrong() -> None:
    assert imputation_accuracy([" SONY", "lg", None, "Apple Inc"],
                               ["Sony ", "LG", "Apple", "Apple"]) == 0.5
    with pytest.raises(ValueError, match="1 predictions for 2"):
        imputation_accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one row"):
        imputation_accuracy([], [])


@pytest.mark.parametrize(("scores", "gold", "expected"), [
    ([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0], (0.3, 0.8)),
    # F1 2/3 at 0.9 and at 0.6: the tie goes to the lower threshold
    ([0.9, 0.8, 0.7, 0.6], [1, 0, 0, 1], (0.6, 2 / 3)),
    # equal scores form one cut
    ([0.5, 0.5, 0.5, 0.2], [1, 0, 1, 1], (0.2, 6 / 7)),
])
def test_best_threshold(scores: list[float], gold: list[int],
                        expected: tuple[float, float]) -> None:
    threshold, f1 = best_threshold(scores, gold)
    assert threshold == pytest.approx(expected[0])
    assert f1 == pytest.approx(expected[1])


def test_best_threshold_needs_a_positive() -> None:
    with pytest.raises(ValueError, match="no positive"):
        best_threshold([0.1, 0.2], [0, 0])


# --- EmbeddingMatcher -----------------------------------------------------------------


def _angle_embedding(texts: list[str]) -> np.ndarray:
    """`name: base` is the unit x axis; `name: s<c>` a vector at cosine c to it, scaled
    by 3 so the matcher must normalise; anything else the zero vector."""
    rows = []
    for text in texts:
        value = text.removeprefix("name: ")
        if value == "base":
            rows.append([1.0, 0.0])
        elif value.startswith("s"):
            c = float(value[1:])
            rows.append([3 * c, 3 * math.sqrt(1 - c * c)])
        else:
            rows.append([0.0, 0.0])
    return np.array(rows)


def _scored(score: float, label: int) -> Pair:
    return Pair({"name": "base"}, {"name": f"s{score}", "price": ""}, label)


def test_embedding_matcher_scores_are_cosines() -> None:
    matcher = EmbeddingMatcher(_angle_embedding)
    scores = matcher.scores([_scored(0.9, 1), _scored(0.25, 0),
                             Pair({"name": "base"}, {"name": "nothing"}, 0)])
    assert scores == pytest.approx([0.9, 0.25, 0.0])
    assert matcher.scores([]).shape == (0,)


def test_embedding_matcher_fit_picks_the_f1_maximising_threshold() -> None:
    valid = [_scored(s, y) for s, y in
             [(0.95, 1), (0.9, 1), (0.8, 0), (0.7, 1), (0.5, 0), (0.2, 0)]]
    matcher = EmbeddingMatcher(_angle_embedding).fit(valid)
    # F1 at each cut: .5, .8, .667, .857, .75, .667 -> 0.7
    assert matcher.threshold == pytest.approx(0.7)
    assert matcher.valid_f1 == pytest.approx(6 / 7)
    scores = matcher.scores(valid)
    brute = max(precision_recall_f1([int(s >= t) for s in scores],
                                    [p.label for p in valid])["f1"] for t in scores)
    assert matcher.valid_f1 == pytest.approx(brute)
    test = [_scored(0.75, 1), _scored(0.69, 1), _scored(0.99, 0)]
    assert matcher.predict(test) == [1, 0, 1]


def test_embedding_matcher_errors() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        EmbeddingMatcher(_angle_embedding).predict([_scored(0.5, 1)])
    with pytest.raises(ValueError, match="one row per text"):
        EmbeddingMatcher(lambda texts: np.zeros((1, 2))).scores([_scored(0.5, 1)])
    with pytest.raises(ValueError, match="no positive"):
        EmbeddingMatcher(_angle_embedding).fit([_scored(0.5, 0)])


def test_serialize_record_skips_empty_values() -> None:
    assert serialize_record({"a": "x", "b": "", "c": " ", "d": None, "e": "y"}) == "a: x; e: y"


# --- imputation -----------------------------------------------------------------------


def _imputation_folder(folder: Path) -> Path:
    header = "name,description,manufacturer\n"
    _write(folder, "train.csv", header + "Sony Bravia KDL-40,LCD TV,Sony\n"
           'Apple iPod nano,"8GB, silver",Apple\n'
           "SONY Cybershot DSC-W120,camera,SONY\n"
           "Linksys router WRT54G,,Linksys\n")
    _write(folder, "valid.csv", header + "Apple iPod touch,16GB,Apple\n")
    _write(folder, "test.csv", header + "iPod nano 4GB,player,Apple\n"
           "Sony Bravia KDL-32,,Sony\n" "Linksys WRT54GL router,wireless,Cisco\n")
    return folder


def test_load_imputation_reads_strings_and_none(tmp_path: Path) -> None:
    data = load_imputation(_imputation_folder(tmp_path))
    assert data.column == "manufacturer"
    assert (len(data.train), len(data.valid), len(data.test)) == (4, 1, 3)
    assert data.train.loc[1, "description"] == "8GB, silver"
    assert data.train.loc[3, "description"] is None
    assert data.split("test")["manufacturer"].tolist() == ["Apple", "Sony", "Cisco"]


def test_load_imputation_errors_name_the_file(tmp_path: Path) -> None:
    folder = _imputation_folder(tmp_path)
    with pytest.raises(DatasetError, match=r"train\.csv: no column 'brand' to impute") as info:
        load_imputation(folder, column="brand")
    assert "['name', 'description', 'manufacturer']" in str(info.value)
    _write(folder, "test.csv", "name,manufacturer\nx,y\n")
    with pytest.raises(DatasetError, match=r"test\.csv: columns .* differ"):
        load_imputation(folder)
    (folder / "valid.csv").unlink()
    with pytest.raises(DatasetError, match=r"missing data file .*valid\.csv"):
        load_imputation(folder)


def test_most_frequent_impute_counts_normalised_values() -> None:
    data = pd.DataFrame({"m": ["LG", "Sony", "lg ", "SONY", None, "Apple"]})
    assert most_frequent_impute(data, "m") == "LG"   # tie with Sony: first seen wins
    assert most_frequent_impute(data.iloc[1:], "m") == "Sony"
    with pytest.raises(DatasetError, match="no column 'x'"):
        most_frequent_impute(data, "x")
    with pytest.raises(DatasetError, match="no value"):
        most_frequent_impute(pd.DataFrame({"m": [None, ""]}), "m")


def test_nearest_neighbour_imputer(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    data = load_imputation(_imputation_folder(tmp_path))
    imputer = NearestNeighbourImputer().fit(data.train)
    predicted = imputer.predict(data.test)
    assert predicted == ["Apple", "Sony", "Linksys"]
    assert imputation_accuracy(predicted, data.test["manufacturer"].tolist()) == pytest.approx(
        2 / 3)
    assert imputer.predict(data.test.iloc[:0]) == []
    with pytest.raises(NotFittedError):
        NearestNeighbourImputer().predict(data.test)
    with pytest.raises(DatasetError, match=r"no feature column\(s\) \['title'\]"):
        NearestNeighbourImputer(features=("title",)).fit(data.train)


# --- error detection ------------------------------------------------------------------


def _hospital_folder(folder: Path) -> Path:
    _write(folder, "table.csv", "Unnamed: 0,City,Phone,Note\n"
           "0,boston,555,\n" "1,boston,555,\n" "2,bxston,555,\n" "3,boston,556,\n"
           "4,austin,557,x\n" "5,austin,557,\n")
    _write(folder, "train.csv", "row_id,col_name,is_clean\n"
           "2,City,0\n" "0,City,1\n" "3,Phone,0\n" "1,Note,1\n" "4,City,1\n")
    _write(folder, "valid.csv", "row_id,col_name,is_clean\n" "5,Phone,1\n" "0,Note,1\n")
    _write(folder, "test.csv", "row_id,col_name,is_clean\n"
           "2,Phone,1\n" "4,Note,0\n" "3,City,1\n" "1,Note,1\n")
    return folder


def test_load_error_detection(tmp_path: Path) -> None:
    data = load_error_detection(_hospital_folder(tmp_path))
    assert data.table.index.name == "row_id"
    assert data.table.index.tolist() == [0, 1, 2, 3, 4, 5]
    assert list(data.table.columns) == ["City", "Phone", "Note"]
    assert data.table.at[2, "City"] == "bxston"
    assert data.table.at[0, "Note"] is None
    test = data.labels["test"]
    assert test["row_id"].tolist() == [2, 4, 3, 1]
    assert test["is_clean"].tolist() == [1, 0, 1, 1]
    assert str(test["row_id"].dtype) == "int64"
    assert data.values("test") == ["555", "x", "boston", None]
    assert data.errors("train") == [1, 0, 1, 0, 0]


@pytest.mark.parametrize(("line", "message"), [
    ("9,City,1", "row 9 is not in"),
    ("1,Town,1", "column 'Town' is not in"),
    ("1,City,2", "is_clean should be 0 or 1, got '2'"),
    ("one,City,1", "row_id should be an integer, got 'one'"),
])
def test_load_error_detection_names_file_and_line(tmp_path: Path, line: str,
                                                  message: str) -> None:
    folder = _hospital_folder(tmp_path)
    path = _write(folder, "valid.csv", f"row_id,col_name,is_clean\n0,City,1\n{line}\n")
    with pytest.raises(DatasetError, match=message) as info:
        load_error_detection(folder)
    assert f"{path}:3:" in str(info.value)


def test_load_error_detection_checks_the_table(tmp_path: Path) -> None:
    folder = _hospital_folder(tmp_path)
    _write(folder, "table.csv", "id,City\n0,a\n")
    with pytest.raises(DatasetError, match="first column should be the row id"):
        load_error_detection(folder)
    _write(folder, "table.csv", "Unnamed: 0,City\n0,a\n0,b\n")
    with pytest.raises(DatasetError, match=r"row ids .* repeat"):
        load_error_detection(folder)


def test_frequency_outlier_detector(tmp_path: Path) -> None:
    data = load_error_detection(_hospital_folder(tmp_path))
    cells = pd.concat([data.labels["train"], data.labels["valid"]], ignore_index=True)
    detector = FrequencyOutlierDetector()
    # City: boston 3, bxston 1, austin 2; Phone: 555 3, 556 1, 557 2; Note: x 1, rest empty
    assert detector.frequencies(data.table, cells) == [1, 3, 1, None, 2, 2, None]
    detector.fit(data.table, cells)
    # threshold 1 flags both errors and nothing else; 2 would add two clean cells
    assert detector.threshold == 1
    assert detector.fit_f1 == pytest.approx(1.0)
    predicted = detector.predict(data.table, data.labels["test"])
    assert predicted == [0, 1, 0, 0]     # the empty Note cell of row 1 is never flagged
    assert precision_recall_f1(predicted, data.errors("test"))["f1"] == 1.0


def test_frequency_outlier_detector_errors(tmp_path: Path) -> None:
    data = load_error_detection(_hospital_folder(tmp_path))
    with pytest.raises(NotFittedError):
        FrequencyOutlierDetector().predict(data.table, data.labels["test"])
    with pytest.raises(ValueError, match="no error"):
        FrequencyOutlierDetector().fit(data.table, data.labels["valid"])
    all_empty = pd.DataFrame({"row_id": [0, 1], "col_name": ["Note", "Note"],
                              "is_clean": [0, 1]})
    with pytest.raises(ValueError, match="every labelled cell is empty"):
        FrequencyOutlierDetector().fit(data.table, all_empty)
    unknown = pd.DataFrame({"row_id": [0], "col_name": ["Town"], "is_clean": [0]})
    with pytest.raises(DatasetError, match="column 'Town'"):
        FrequencyOutlierDetector().fit(data.table, unknown)


# --- the real files -------------------------------------------------------------------


def test_real_files_load_with_the_documented_counts(shared_data: Path) -> None:
    magellan = shared_data / "er-magellan"
    sizes = {"Abt-Buy": (5743, 1916, 1916), "Beer": (268, 91, 91),
             "Walmart-Amazon": (6144, 2049, 2049), "iTunes-Amazon": (321, 109, 109)}
    for name, expected in sizes.items():
        counts = tuple(len(load_pairs(magellan / name, s))
                       for s in ("train", "valid", "test"))
        assert counts == expected, name
    abt_buy = pair_tables(magellan / "Abt-Buy")
    assert (len(abt_buy.left), len(abt_buy.right), len(abt_buy.matches)) == (1068, 1035, 1028)
    assert len(abt_buy.conflicting) == 13
    beer = pair_tables(magellan / "Beer")
    assert (len(beer.left), len(beer.right), len(beer.matches)) == (275, 269, 68)

    wrangling = shared_data / "data-wrangling"
    buy = load_imputation(wrangling / "imputation-buy")
    assert (len(buy.train), len(buy.valid), len(buy.test)) == (469, 117, 65)
    assert buy.test["manufacturer"].notna().all()

    hospital = load_error_detection(wrangling / "error-detection-hospital")
    assert hospital.table.shape == (1000, 19)
    assert {s: len(v) for s, v in hospital.labels.items()} == {
        "train": 1710, "valid": 189, "test": 17101}
    assert sum(hospital.errors("test")) == 459
    # every labelled empty cell is clean: the reason empty cells are never flagged
    for split in ("train", "valid", "test"):
        errors = hospital.errors(split)  # type: ignore[arg-type]
        values = hospital.values(split)  # type: ignore[arg-type]
        assert not any(e for e, v in zip(errors, values, strict=True) if v is None)
