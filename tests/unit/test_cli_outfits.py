"""`aisle outfits plan|eval` in-process on `fake:schema` and the small hand-made catalog
(trigram embeddings in place of MiniLM): the JSON shape, exit codes, one-line errors,
and an eval run that writes its report and resumes from the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aisle.cli import app
from aisle.testing.outfits import SMALL_CATALOG, TrigramEmbedder, write_small_catalog_files

runner = CliRunner()

CHARACTERS = """
- name: Indiana Jones
  source: film
  work: Raiders of the Lost Ark
  gender: male
  age: adult
  note: 1930s archaeologist
"""


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import aisle.tools.outfit_catalog as catalog

    monkeypatch.setattr(catalog, "Embedder", TrigramEmbedder)
    monkeypatch.setenv("AISLE_HOME", str(tmp_path / "home"))
    write_small_catalog_files(tmp_path / "data" / "bundles" / "clothing")
    return tmp_path / "data"


def test_plan_json_names_only_catalog_items(data: Path) -> None:
    result = runner.invoke(app, ["outfits", "plan", "-c", "Indiana Jones", "--gender", "male",
                                 "--data", str(data), "-m", "fake:schema", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["character"] == "Indiana Jones"
    assert out["wearer"] == {"gender": "male", "age": "adult"}
    (outfit,) = out["outfits"]
    found = [i for i in outfit["items"] if i["item_id"]]
    assert found
    assert all(i["item_id"] in SMALL_CATALOG for i in found)
    assert out["image"]["status"] == "skipped"
    assert out["failures"] == []


def test_plan_prints_the_outfit(data: Path) -> None:
    result = runner.invoke(app, ["outfits", "plan", "-c", "Indiana Jones", "--gender", "male",
                                 "--data", str(data), "-m", "fake:schema"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Indiana Jones for an adult man" in result.stdout
    assert "top " in result.stdout
    assert "image: skipped" in result.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (["-c", " ", "--gender", "male"], 1, "no character"),
    (["-c", "Mario", "--gender", "robot"], 2, "'robot' is not one of"),
    (["-c", "Mario", "--gender", "male", "--age", "toddler"], 2, "'toddler' is not one of"),
])
def test_bad_input_is_one_line(data: Path, args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, ["outfits", "plan", *args, "--data", str(data),
                                 "-m", "fake:schema"], env={"COLUMNS": "200"})
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_eval_writes_its_report_and_resumes(data: Path, tmp_path: Path) -> None:
    characters = tmp_path / "characters.yaml"
    characters.write_text(CHARACTERS)
    args = ["outfits", "eval", "--data", str(data), "--characters", str(characters),
            "-m", "fake:schema", "--judge", "fake:schema", "--styles", "2",
            "--out", str(tmp_path / "out"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["failures"] == []
    report = out["report"]
    assert report["characters"] == 2  # the character and its gender-swapped twin
    assert set(report["metrics"]) == {"baseline", "graph", "diverse"}
    files = [Path(f) for f in out["files"]]
    assert {f.name for f in files} >= {"report.json", "report.md"}
    assert "## Bias audit" in next(f for f in files if f.name == "report.md").read_text()
    # Rerun: every answer comes from the store; the report is the same.
    again = runner.invoke(app, [*args[:-1], "--report-only", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["report"] == report


def test_eval_report_only_with_nothing_stored(data: Path, tmp_path: Path) -> None:
    characters = tmp_path / "characters.yaml"
    characters.write_text(CHARACTERS)
    result = runner.invoke(app, ["outfits", "eval", "--data", str(data), "--characters",
                                 str(characters), "-m", "fake:schema", "--report-only",
                                 "--out", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "no answers are stored for this run" in result.stderr
