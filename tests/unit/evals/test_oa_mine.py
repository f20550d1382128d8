"""OA-Mine offers, the authors' published runs, and their micro P/R/F1 reproduced exactly."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aisle.evals.oa_mine import (
    PUBLISHED_MICRO_F1,
    DatasetError,
    MicroScores,
    Offer,
    PublishedRun,
    is_correct,
    load_offers,
    load_published_run,
    load_published_runs,
    micro_scores,
    outcome,
    run_name,
)


@pytest.fixture(scope="module")
def data(shared_data_dir: Callable[..., Path]) -> Path:
    return shared_data_dir("attribute-extraction")


@pytest.fixture(scope="module")
def offers(data: Path) -> list[Offer]:
    return load_offers(data / "oa-mine" / "test.jsonl")


@pytest.fixture(scope="module")
def runs(data: Path, offers: list[Offer]) -> dict[str, PublishedRun]:
    return {run.name: run for run in load_published_runs(data / "published-runs", offers)}


def test_test_offers(offers: list[Offer]) -> None:
    assert len(offers) == 491
    assert [o.index for o in offers] == list(range(491))
    assert Counter(o.category for o in offers) == {
        "Vitamin": 50, "Coffee": 50, "Toothbrush": 50, "Breakfast Cereal": 50, "Sunscreen": 50,
        "Safety Mask": 50, "Tea": 50, "Shoes": 48, "Laundry Detergent": 48, "Conditioner": 45}
    assert offers[0] == Offer(0, "Diesel Men's Exposure High-Top Sneaker", "Shoes", {
        "Brand": ("Diesel",), "Gender": ("Men's",), "Model name": ("Exposure",),
        "Shoe type": ("High-Top Sneaker",)})
    # The README's 2,451 "attribute-value pairs" are the annotated (offer, attribute)
    # pairs; each has exactly one value and none is "n/a".
    assert sum(len(o.targets) for o in offers) == 2451
    values = [v for o in offers for vs in o.targets.values() for v in vs]
    assert len(values) == 2451
    assert "n/a" not in values
    # Six raw values carry stray spaces; the loader strips them as the authors' metric does.
    assert all(v == v.strip() and v for v in values)


@pytest.mark.parametrize(("name", "count"), [("train.jsonl", 1452), ("train_0.2.jsonl", 286)])
def test_train_offers(data: Path, offers: list[Offer], name: str, count: int) -> None:
    train = load_offers(data / "oa-mine" / name)
    assert len(train) == count
    assert {o.category for o in train} == {o.category for o in offers}


# Stored results["micro"] of each run: (precision, recall, F1), and the counts behind them.
PUBLISHED_RUNS = {
    "gpt-3.5-list-10shot": ((78.86, 69.73, 74.01), (284, 1709, 458)),
    "gpt-4-schema-10shot-train0.2": ((82.55, 77.97, 80.19), (136, 1911, 404)),
    "gpt-4-schema-10shot-train1.0": ((83.98, 80.42, 82.16), (104, 1971, 376)),
    "gpt-4-schema-ensemble-train0.2": ((83.99, 80.05, 81.97), (115, 1962, 374)),
    "gpt-4-schema-ensemble-train1.0": ((85.26, 81.68, 83.43), (103, 2002, 346)),
}


def test_published_runs_load(runs: dict[str, PublishedRun]) -> None:
    assert list(runs) == sorted(PUBLISHED_RUNS)
    for run in runs.values():
        assert len(run.predictions) == 491
        assert run.invalid_predictions == 0
        assert run.non_string_values == 0
        assert len(run.known_attributes) == 10
    gpt35 = runs["gpt-3.5-list-10shot"]
    assert (gpt35.model, gpt35.train_percentage) == ("gpt-3.5-turbo-0613", 1.0)
    # That run writes 248 JSON nulls; they read as "n/a".
    assert sum(v == "n/a" for p in gpt35.predictions for v in p.values()) == 2585 + 248
    assert runs["gpt-4-schema-ensemble-train0.2"].model == "gpt-4-0613"


@pytest.mark.parametrize("name", sorted(PUBLISHED_RUNS))
def test_metric_reproduces_published_run(offers: list[Offer], runs: dict[str, PublishedRun],
                                         name: str) -> None:
    run = runs[name]
    (precision, recall, f1), (vn, vc, vw) = PUBLISHED_RUNS[name]
    assert (run.published_precision, run.published_recall, run.published_f1) == (
        precision, recall, f1)
    scores = micro_scores(offers, run.predictions, run.known_attributes)
    assert scores == MicroScores(precision, recall, f1,
                                 {"nn": 0, "nv": 0, "vn": vn, "vc": vc, "vw": vw})
    assert sum(scores.counts.values()) == 2451


def test_readme_figures_match_the_runs(runs: dict[str, PublishedRun]) -> None:
    assert PUBLISHED_MICRO_F1 == {"gpt-4-schema-10shot-train1.0": 82.16,
                                  "gpt-4-schema-ensemble-train1.0": 83.43,
                                  "gpt-3.5-list-10shot": 74.01}
    for name, f1 in PUBLISHED_MICRO_F1.items():
        assert runs[name].published_f1 == f1


def test_misaligned_offers_are_refused(data: Path, offers: list[Offer]) -> None:
    path = next((data / "published-runs").glob("list-*.gz"))
    with pytest.raises(DatasetError, match="491 examples but 490"):
        load_published_run(path, offers[1:])
    swapped = [offers[1], offers[0], *offers[2:]]
    with pytest.raises(DatasetError, match="example 0 is \"Diesel Men's Exposure"):
        load_published_run(path, swapped)


# --- malformed files -------------------------------------------------------------------

OFFER = {"input": "Lipton Green Tea 20ct", "category": "Tea",
         "target_scores": {"Brand": {"Lipton": 1}, "Flavor": {" Green ": 1}}}


def _jsonl(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "offers.jsonl"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_offer_values_are_stripped_and_blank_lines_skipped(tmp_path: Path) -> None:
    loaded = load_offers(_jsonl(tmp_path, json.dumps(OFFER), "", json.dumps(OFFER)))
    assert [o.index for o in loaded] == [0, 1]
    assert loaded[0].targets == {"Brand": ("Lipton",), "Flavor": ("Green",)}


@pytest.mark.parametrize(
    ("lines", "match"),
    [((), "holds no offers"),
     ((json.dumps(OFFER), "{not json"), r":2: not valid JSON"),
     (("[1, 2]",), r":1: expected a JSON object, got list"),
     ((json.dumps({"input": "x", "category": "Tea"}),),
      r":1: expected string 'input' .* found keys \['category', 'input'\]"),
     ((json.dumps({**OFFER, "target_scores": {"Brand": {}}}),),
      "attribute 'Brand' should map at least one value")],
)
def test_offer_errors(tmp_path: Path, lines: tuple[str, ...], match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        load_offers(_jsonl(tmp_path, *lines))
    with pytest.raises(DatasetError, match="missing data file"):
        load_offers(tmp_path / "absent.jsonl")


def _run(**overrides: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "model": "gpt-4-0613",
        "task_name": "chatgpt_x_oa_mine_gpt_4_0613_10_SemanticSimilarity_1_0___json_schema",
        "shots": 10, "example_selector": "SemanticSimilarity", "train_percentage": 1.0,
        "known_attributes": {"Tea": ["Brand", "Flavor"]},
        "results": {"micro": {"micro_precision": 50.0, "micro_recall": 50.0, "micro_f1": 50.0}},
        "examples": [{"input": OFFER["input"], "post_pred": '{"Brand": "Lipton"}'}],
    }
    run.update(overrides)
    return run


def _write_run(folder: Path, run: dict[str, Any], name: str = "run.gz") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(json.dumps(run).encode()))
    return path


@pytest.mark.parametrize(
    ("post_pred", "expected", "invalid", "converted"),
    [('{"Brand": "Lipton"}', {"Brand": "Lipton"}, 0, 0),
     ('{"Brand": "Lipton", "Flavor": null}', {"Brand": "Lipton", "Flavor": "n/a"}, 0, 0),
     ('{"Brand": ["Lipton", "Pure"], "Flavor": 12}',
      {"Brand": '["Lipton", "Pure"]', "Flavor": "12"}, 0, 2),
     ('{"Brand": " Lipton"}', {"Brand": " Lipton"}, 0, 0),    # predictions are not stripped
     ("Brand: Lipton", {}, 1, 0),
     ('["Lipton"]', {}, 1, 0),
     (None, {}, 1, 0)],
)
def test_prediction_parsing(tmp_path: Path, post_pred: str | None, expected: dict[str, str],
                            invalid: int, converted: int) -> None:
    examples = [{"input": OFFER["input"], "post_pred": post_pred}]
    run = load_published_run(_write_run(tmp_path, _run(examples=examples)))
    assert run.predictions == [expected]
    assert (run.invalid_predictions, run.non_string_values) == (invalid, converted)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"not gzip", "not a \\(gzipped\\) JSON run file"),
     (gzip.compress(b"{"), "not a \\(gzipped\\) JSON run file"),
     (gzip.compress(b"[]"), "expected a JSON object, got list"),
     (gzip.compress(json.dumps({k: v for k, v in _run().items() if k != "results"}).encode()),
      r"missing key\(s\) \['results'\]"),
     (gzip.compress(json.dumps(_run(results={"macro": {}})).encode()),
      r"no micro_precision/recall/f1 under results\['micro'\]"),
     (gzip.compress(json.dumps(_run(examples=[])).encode()), "should be a non-empty list"),
     (gzip.compress(json.dumps(_run(examples=[{"post_pred": "{}"}])).encode()),
      "example 0 has no 'input' title")],
)
def test_run_errors(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "run.gz"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=match):
        load_published_run(path)


def test_run_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing run folder"):
        load_published_runs(tmp_path / "absent")
    with pytest.raises(DatasetError, match=r"no \*\.gz run files"):
        load_published_runs(tmp_path)
    _write_run(tmp_path / "dup", _run(), "a.gz")
    _write_run(tmp_path / "dup", _run(), "b.gz")
    with pytest.raises(DatasetError, match=r"two runs are both named "
                                           r"'gpt-4-schema-10shot-train1\.0': a\.gz and b\.gz"):
        load_published_runs(tmp_path / "dup")
    _write_run(tmp_path / "skew", _run(), "a.gz")
    _write_run(tmp_path / "skew", _run(train_percentage=0.2,
                                       examples=[{"input": "other", "post_pred": "{}"}]), "b.gz")
    with pytest.raises(DatasetError, match=r"example 0 is 'other', expected 'Lipton Green "
                                           r"Tea 20ct' \(as in a\.gz\)"):
        load_published_runs(tmp_path / "skew")


@pytest.mark.parametrize(
    ("model", "task_name", "shots", "train", "expected"),
    [("gpt-3.5-turbo-0613", "multiple_attribute_values-great-incontext-oa-mine-10-shots", 10,
      None, "gpt-3.5-list-10shot"),
     ("gpt-4-0613", "a_0_2___json_schema", 10, 0.2, "gpt-4-schema-10shot-train0.2"),
     ("gpt-4-0613", "a_1_0___json_schema_ensembling_shuffle", 10, 1.0,
      "gpt-4-schema-ensemble-train1.0"),
     ("gpt-4", "zero-shot list", None, None, "gpt-4-list")],
)
def test_run_name(model: str, task_name: str, shots: int | None, train: float | None,
                  expected: str) -> None:
    assert run_name(model, task_name, shots=shots, train_percentage=train) == expected


def test_run_name_takes_shots_from_the_task_name(tmp_path: Path) -> None:
    raw = _run(model="gpt-3.5-turbo-0613", task_name="list-oa-mine-5-shots")
    for key in ("shots", "example_selector"):
        del raw[key]
    assert load_published_run(_write_run(tmp_path, raw)).name == "gpt-3.5-list-5shot"


# --- the metric on hand-computed cases ----------------------------------------------------

TEA = Offer(0, "t", "Tea", {"Brand": ("Lipton",), "Flavor": ("Green", "Green Tea"),
                            "Size": ("n/a",)})


@pytest.mark.parametrize(
    ("attribute", "value", "expected"),
    [("Brand", "Lipton", "vc"), ("Brand", "lipton", "vw"), ("Brand", " Lipton", "vw"),
     ("Brand", None, "vn"), ("Brand", "n/a", "vn"), ("Brand", "None", "vn"),
     ("Brand", "", "vw"),
     ("Flavor", "Green Tea", "vc"), ("Flavor", "Green", "vc"), ("Flavor", "Tea", "vw"),
     ("Size", None, "nn"), ("Size", "n/a", "nn"), ("Size", "None", "nn"), ("Size", "20ct", "nv")],
)
def test_outcome(attribute: str, value: str | None, expected: str) -> None:
    assert outcome(TEA, attribute, value) == expected
    assert is_correct(TEA, attribute, value) == (expected in ("nn", "vc"))


def test_outcome_of_an_unannotated_attribute() -> None:
    with pytest.raises(DatasetError, match="no annotation for attribute 'Color'"):
        outcome(TEA, "Color", "green")


def test_only_the_first_target_value_decides_no_value() -> None:
    offer = Offer(0, "t", "Tea", {"Size": ("n/a", "20ct")})
    assert outcome(offer, "Size", "20ct") == "nv"
    offer = Offer(0, "t", "Tea", {"Size": ("20ct", "n/a")})
    assert outcome(offer, "Size", "n/a") == "vn"


KNOWN = {"Tea": ["Brand", "Flavor", "Size"]}


@pytest.mark.parametrize(
    ("predictions", "counts", "scores"),
    [  # Brand vc, Flavor vc, Size nn: perfect.
     ([{"Brand": "Lipton", "Flavor": "Green", "Size": "n/a"}], (1, 0, 0, 2, 0), (100, 100, 100)),
     # Nothing predicted: every valued attribute is vn, precision has no denominator.
     ([{}], (1, 0, 2, 0, 0), (0, 0, 0)),
     # Brand vw, Flavor vc, Size nv: P 1/3, R 1/2.
     ([{"Brand": "Tetley", "Flavor": "Green Tea", "Size": "20ct", "Color": "x"}],
      (0, 1, 0, 1, 1), (33.33, 50.0, 40.0))],
)
def test_micro_scores_by_hand(predictions: list[dict[str, str]],
                              counts: tuple[int, int, int, int, int],
                              scores: tuple[float, float, float]) -> None:
    result = micro_scores([TEA], predictions, KNOWN)
    assert tuple(result.counts[k] for k in ("nn", "nv", "vn", "vc", "vw")) == counts
    assert (result.precision, result.recall, result.f1) == scores


def test_micro_f1_comes_from_the_rounded_precision_and_recall() -> None:
    # vc 1, vn 5: P 100, R 16.67 (1/6 rounded); F1 from those is 28.58, the exact F1 28.57.
    offers = [Offer(i, "t", "Tea", {"Brand": ("Lipton",)}) for i in range(6)]
    predictions = [{"Brand": "Lipton"}] + [{}] * 5
    result = micro_scores(offers, predictions, {"Tea": ["Brand"]})
    assert (result.precision, result.recall, result.f1) == (100.0, 16.67, 28.58)


def test_attributes_outside_known_attributes_are_not_scored() -> None:
    result = micro_scores([TEA], [{"Brand": "Lipton"}], {"Tea": ["Brand"]})
    assert result.counts == {"nn": 0, "nv": 0, "vn": 0, "vc": 1, "vw": 0}


def test_micro_scores_errors() -> None:
    with pytest.raises(DatasetError, match="2 predictions for 1 offers"):
        micro_scores([TEA], [{}, {}], KNOWN)
    with pytest.raises(DatasetError, match="category 'Tea' of offer 0 is not in known_attr"):
        micro_scores([TEA], [{}], {"Shoes": ["Brand"]})
