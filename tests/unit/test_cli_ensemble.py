"""`aisle ensemble fit|apply`: learn weights from an answers CSV, apply them, and give
clear errors for malformed files and unwritable outputs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aisle.cli import app

runner = CliRunner()


def _write(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _answers() -> list[tuple[str, str, str]]:
    """`good` always right; `bad1` and `bad2` wrong alone on 8 tasks each and together
    on 2 (where they outvote `good`)."""
    rows = []
    for i in range(20):
        right, wrong = ("1", "0") if i % 2 else ("0", "1")
        rows.append((f"q{i}", "good", right))
        rows.append((f"q{i}", "bad1", wrong if i < 10 else right))
        rows.append((f"q{i}", "bad2", wrong if i < 2 or i >= 12 else right))
    return rows


@pytest.mark.parametrize("header", [["task", "labeler", "label"],
                                    ["question", "worker", "answer"]])
def test_fit_then_apply(tmp_path: Path, header: list[str]) -> None:
    answers = _write(tmp_path / "answers.csv", header, _answers())
    weights = tmp_path / "weights.json"
    result = runner.invoke(app, ["ensemble", "fit", "--answers", str(answers),
                                 "--out", str(weights), "--method", "iwmv"])
    assert result.exit_code == 0, result.output
    fitted = json.loads(weights.read_text())
    assert fitted["method"] == "iwmv"
    assert fitted["labelers"]["good"]["weight"] > (fitted["labelers"]["bad1"]["weight"] +
                                                    fitted["labelers"]["bad2"]["weight"])
    new = _write(tmp_path / "new.csv", header,
                 [("n1", "good", "1"), ("n1", "bad1", "0"), ("n1", "bad2", "0"),
                  ("n2", "good", "0"), ("n2", "bad1", "0")])
    labels = tmp_path / "labels.csv"
    result = runner.invoke(app, ["ensemble", "apply", "--answers", str(new),
                                 "--weights", str(weights), "--out", str(labels)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(labels.open()))
    assert [r["task"] for r in rows] == ["n1", "n2"]
    assert [r["label"] for r in rows] == ["1", "0"]
    assert 0.5 < float(rows[0]["confidence"]) <= 1.0


@pytest.mark.parametrize("method", ["mv", "ds"])
def test_fit_other_methods(tmp_path: Path, method: str) -> None:
    answers = _write(tmp_path / "a.csv", ["task", "labeler", "label"], _answers())
    out = tmp_path / "w.json"
    labels = tmp_path / "labels.csv"
    result = runner.invoke(app, ["ensemble", "fit", "--answers", str(answers), "--out",
                                 str(out), "--method", method, "--labels-out", str(labels)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["method"] == method
    assert len(list(csv.DictReader(labels.open()))) == 20


@pytest.mark.parametrize(("header", "rows", "message"), [
    (["task", "who", "label"], [("q", "a", "1")], "labeler"),
    (["task", "labeler", "label"], [], "no answers|empty|no rows"),
    (["task", "labeler", "label"], [("q1", "a", "1"), ("q2", "a", "0")], "at least two"),
    (["task", "labeler", "label"], [("q1", "", "1"), ("q1", "b", "0")], "blank"),
    (["task", "labeler", "label"], [("q1", "a", "1"), ("q1", "a", "0"), ("q1", "b", "1")],
     "answered task .q1. twice"),
])
def test_malformed_answer_files(tmp_path: Path, header: list[str],
                                rows: list[tuple[str, ...]], message: str) -> None:
    answers = _write(tmp_path / "bad.csv", header, rows)
    result = runner.invoke(app, ["ensemble", "fit", "--answers", str(answers),
                                 "--out", str(tmp_path / "w.json")])
    assert result.exit_code == 1
    assert "error" in result.output
    assert re.search(message, result.output, flags=re.IGNORECASE), result.output
    assert not (tmp_path / "w.json").exists()


def test_missing_files_and_bad_method(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ensemble", "fit", "--answers", str(tmp_path / "nope.csv"),
                                 "--out", str(tmp_path / "w.json")])
    assert result.exit_code == 1
    assert "missing data file" in result.output
    assert "nope.csv" in result.output
    answers = _write(tmp_path / "a.csv", ["task", "labeler", "label"], _answers())
    result = runner.invoke(app, ["ensemble", "fit", "--answers", str(answers),
                                 "--out", str(tmp_path / "w.json"), "--method", "vote"],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 2  # a usage error: the choices are mv, iwmv, ds
    assert "--method" in result.output
    assert "'vote' is not one of 'mv', 'iwmv', 'ds'" in result.output
    result = runner.invoke(app, ["ensemble", "apply", "--answers", str(answers),
                                 "--weights", str(tmp_path / "none.json"),
                                 "--out", str(tmp_path / "l.csv")])
    assert result.exit_code == 1
    assert "weights file not found" in result.output


def test_apply_with_a_stranger(tmp_path: Path) -> None:
    answers = _write(tmp_path / "a.csv", ["task", "labeler", "label"], _answers())
    weights = tmp_path / "w.json"
    assert runner.invoke(app, ["ensemble", "fit", "--answers", str(answers),
                               "--out", str(weights)]).exit_code == 0
    new = _write(tmp_path / "new.csv", ["task", "labeler", "label"],
                 [("n1", "good", "1"), ("n1", "stranger", "0")])
    out = tmp_path / "l.csv"
    result = runner.invoke(app, ["ensemble", "apply", "--answers", str(new), "--weights",
                                 str(weights), "--out", str(out)])
    assert result.exit_code == 1
    assert "stranger" in result.output
    result = runner.invoke(app, ["ensemble", "apply", "--answers", str(new), "--weights",
                                 str(weights), "--out", str(out), "--ignore-unknown"])
    assert result.exit_code == 0, result.output
    assert next(iter(csv.DictReader(out.open())))["label"] == "1"


@pytest.mark.parametrize("target", ["folder", "under_a_file"])
def test_fit_refuses_an_unwritable_out_before_fitting(tmp_path: Path, target: str) -> None:
    answers = _write(tmp_path / "a.csv", ["task", "labeler", "label"], _answers())
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path if target == "folder" else tmp_path / "file" / "w.json"
    result = runner.invoke(app, ["ensemble", "fit", "--answers", str(answers),
                                 "--out", str(out)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--out" in result.stderr
    assert "Traceback" not in result.output


def test_fit_n_classes_is_bounded(tmp_path: Path) -> None:
    answers = _write(tmp_path / "a.csv", ["task", "labeler", "label"], _answers())
    result = runner.invoke(app, ["ensemble", "fit", "--answers", str(answers), "--out",
                                 str(tmp_path / "w.json"), "--n-classes", "1"])
    assert result.exit_code == 2
    assert "--n-classes" in result.stderr
    assert not (tmp_path / "w.json").exists()


def test_fit_and_apply_json(tmp_path: Path) -> None:
    answers = _write(tmp_path / "a.csv", ["task", "labeler", "label"], _answers())
    weights = tmp_path / "w.json"
    result = runner.invoke(app, ["ensemble", "fit", "--answers", str(answers), "--out",
                                 str(weights), "--json"])
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.stdout)
    assert fitted["method"] == "iwmv"
    assert fitted["tasks"] == 20
    assert {r["labeler"] for r in fitted["labelers"]} == {"good", "bad1", "bad2"}
    assert fitted["files"] == [str(weights)]
    labels = tmp_path / "labels.csv"
    result = runner.invoke(app, ["ensemble", "apply", "--answers", str(answers), "--weights",
                                 str(weights), "--out", str(labels), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"method": "iwmv", "tasks": 20,
                                         "files": [str(labels)]}
