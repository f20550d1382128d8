"""`aisle gdo run` in-process: dry run, a run on fake:hash, the budget's exit code, and
bad input as one-line errors before any model call."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from aisle.agents.gdo import read_table
from aisle.cli import app

PIPELINE = """
name: demo
model: fake:hash
concurrency: 2
{budget}
steps:
  - op: map
    name: brand
    udp: {{prompt: "Brand of <t>{{{{ title }}}}</t>?", output: {{brand: string}}}}
  - op: classify
    name: kind
    labels: [camera, toy]
    udp: {{prompt: "<t>{{{{ title }}}}</t> by {{{{ brand }}}}"}}
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE.format(budget=""))
    source = tmp_path / "in.csv"
    pd.DataFrame({"title": ["Sony A7", "Lego castle", "Nikon Z5", "Canon R8"]}).to_csv(
        source, index=False)
    return pipeline, source


def test_dry_run_estimates_every_step_without_output(files: tuple[Path, Path]) -> None:
    pipeline, source = files
    result = CliRunner().invoke(app, ["gdo", "run", str(pipeline), "--input", str(source),
                                      "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [s["step"] for s in out["steps"]] == ["brand", "kind"]
    assert [s["calls"] for s in out["steps"]] == [4, 4]


def test_run_writes_the_output_table_and_stats(files: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    pipeline, source = files
    output = tmp_path / "out" / "result.parquet"
    result = CliRunner().invoke(app, ["gdo", "run", str(pipeline), "--input", str(source),
                                      "--output", str(output), "--limit", "3", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    table = read_table(output)
    assert len(table) == out["rows"] == 3
    assert {"title", "brand", "label", "brand_error", "kind_error"} <= set(table.columns)
    assert set(table["label"]) <= {"camera", "toy"}
    assert out["stopped"] is None


def test_a_budget_stop_writes_what_finished_and_exits_2(files: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    pipeline, source = files
    pipeline.write_text(PIPELINE.format(budget="budget: {calls: 5}"))
    output = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["gdo", "run", str(pipeline), "--input", str(source),
                                      "--output", str(output), "--json"])
    assert result.exit_code == 2, result.output
    assert "budget" in json.loads(result.stdout)["stopped"]
    table = read_table(output)
    assert table["kind_error"].notna().sum() >= 1


@pytest.mark.parametrize(("change", "message"), [
    ({"pipeline": "steps: [{op: frob, udp: {prompt: x}}]"}, "unknown operator 'frob'"),
    ({"input": "in.xlsx"}, "unknown table format"),
    ({"pipeline": "steps: [{op: map, udp: {prompt: '{{ titel }}', output: {a: string}}}]"},
     "'titel'"),
    ({"input": "empty.csv"}, "empty"),
])
def test_bad_input_is_one_clear_error(files: tuple[Path, Path], tmp_path: Path,
                                      change: dict[str, str], message: str) -> None:
    pipeline, source = files
    if "pipeline" in change:
        pipeline.write_text("model: fake:hash\n" + change["pipeline"])
    if change.get("input") == "in.xlsx":
        source = tmp_path / "in.xlsx"
        source.write_text("x")
    if change.get("input") == "empty.csv":
        source = tmp_path / "empty.csv"
        source.write_text("title\n")
    result = CliRunner().invoke(app, ["gdo", "run", str(pipeline), "--input", str(source),
                                      "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "o.csv").exists()


def test_output_is_required_unless_dry_run(files: tuple[Path, Path]) -> None:
    pipeline, source = files
    result = CliRunner().invoke(app, ["gdo", "run", str(pipeline), "--input", str(source)])
    assert result.exit_code == 1
    assert "--output" in result.output
