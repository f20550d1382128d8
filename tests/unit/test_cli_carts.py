"""`aisle carts title|eval` in-process: the JSON shape, exit codes, and one-line errors
for bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aisle.cli import app

runner = CliRunner()


def test_title_json_has_the_documented_keys() -> None:
    result = runner.invoke(app, ["carts", "title", "--items", "USB-C cable 2m", "HDMI cable",
                                 "--max-words", "3", "-m", "fake:schema", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"title", "words", "chars", "coverage", "rounds", "satisfied"} <= set(out)
    assert out["satisfied"] is True
    assert out["words"] <= 3
    assert out["words"] == len(out["title"].split())
    assert out["chars"] == len(out["title"])


def test_no_feasible_title_exits_2_with_the_reason() -> None:
    # fake:schema writes a 4-character title: no candidate meets a 2-character limit.
    result = runner.invoke(app, ["carts", "title", "--items", "a b", "c d", "--max-chars", "2",
                                 "--rounds", "1", "-m", "fake:schema", "--json"])
    assert result.exit_code == 2, result.output
    out = json.loads(result.stdout)
    assert out["title"] is None
    assert out["satisfied"] is False
    assert "no title met the limit (at most 2 characters) after 1 refinement" in out["reason"]


@pytest.mark.parametrize(("args", "message"), [
    (["--items", "a", "--max-words", "0"], "invalid length limit max_words"),
    (["--items", "a", "  ", "--max-words", "2"], "item 2 has an empty title"),
    (["--items", "a"], "needs max_words or max_chars"),
])
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["carts", "title", *args, "-m", "fake:schema"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_a_very_long_item_title_is_cut_not_refused() -> None:
    long = "Cable " * 1000
    result = runner.invoke(app, ["carts", "title", "--items", long, "HDMI cable",
                                 "--max-words", "3", "-m", "fake:schema", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["satisfied"] is True


def test_eval_refuses_more_bundles_than_there_are(tmp_path: Path,
                                                 toy_bundles: Callable[..., Path]) -> None:
    data = toy_bundles(tmp_path / "data", n=30)
    result = runner.invoke(app, ["carts", "eval", "--data", str(data), "--domain", "electronic",
                                 "--bundles", "31", "-m", "fake:schema",
                                 "--out", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "--bundles 31 is more than the 30 named electronic bundles" in result.stderr


def test_eval_report_only_with_nothing_stored(tmp_path: Path,
                                             toy_bundles: Callable[..., Path]) -> None:
    data = toy_bundles(tmp_path / "data", n=30)
    result = runner.invoke(app, ["carts", "eval", "--data", str(data), "--domain", "electronic",
                                 "--bundles", "5", "-m", "fake:schema", "--report-only",
                                 "--out", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "no answers are stored for this run" in result.stderr
