"""`aisle rec train|recommend|eval` in-process on a toy S3-Rec dataset under a temporary
data root: one JSON object with --json, one-line errors that name the fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aisle.cli import app
from aisle.tools.recommenders import SequenceDataset

runner = CliRunner()
WriteS3Rec = Callable[[Path, str, dict[str, tuple[str, ...]]], Path]


@pytest.fixture
def data(tmp_path: Path, toy: SequenceDataset, write_s3rec: WriteS3Rec) -> Path:
    write_s3rec(tmp_path / "data" / "amazon-seq", "Toy", toy.sequences)
    return tmp_path / "data"


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_train_then_recommend(data: Path) -> None:
    code, out, err = _run("rec", "train", "--data", str(data), "--dataset", "toy",
                          "--model", "itemknn", "--json")
    assert code == 0, err
    trained = json.loads(out)
    assert trained["model"] == "itemknn"
    assert not trained["loaded"]
    assert trained["dataset"]["users"] == 40
    assert Path(trained["folder"]).name.startswith("toy-itemknn-")

    code, out, err = _run("rec", "recommend", "--data", str(data), "--dataset", "toy",
                          "--model", "itemknn", "--history", "1", "2", "3", "--k", "4",
                          "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["history"] == ["1", "2", "3"]
    assert [r["rank"] for r in result["recommendations"]] == [1, 2, 3, 4]
    assert not {r["item_id"] for r in result["recommendations"]} & {"1", "2", "3"}

    code, out, err = _run("rec", "recommend", "--data", str(data), "-d", "toy", "-m",
                          "itemknn", "--history", "1,2,3", "-k", "4", "--json")
    assert code == 0, err
    assert json.loads(out)["recommendations"] == result["recommendations"]


def test_training_again_loads(data: Path) -> None:
    for loaded in (False, True):
        code, out, err = _run("rec", "train", "--data", str(data), "--dataset", "toy",
                              "--model", "pop")
        assert code == 0, err
        assert ("loaded (already trained)" in out) is loaded


@pytest.mark.parametrize(("args", "message"), [
    (["--history", "1", "999"], "'999'"),
    (["--history", " , "], "--history is empty"),
])
def test_recommend_bad_history_is_one_line(data: Path, args: list[str], message: str) -> None:
    assert _run("rec", "train", "--data", str(data), "-d", "toy", "-m", "pop")[0] == 0
    code, out, err = _run("rec", "recommend", "--data", str(data), "-d", "toy", "-m", "pop",
                          *args)
    assert code == 1
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_recommend_before_training_names_the_command(data: Path) -> None:
    code, _, err = _run("rec", "recommend", "--data", str(data), "-d", "toy", "-m", "sasrec",
                        "--history", "1", "--epochs", "2")
    assert code == 1
    assert "aisle rec train --dataset toy --model sasrec --epochs 2" in " ".join(err.split())


def test_unknown_dataset_is_one_line(data: Path) -> None:
    code, _, err = _run("rec", "train", "--data", str(data), "-d", "nope", "-m", "pop")
    assert code == 1
    assert "no dataset 'nope'" in err
    assert len(err.strip().splitlines()) == 1


def test_eval_writes_the_report(data: Path, tmp_path: Path) -> None:
    out_root = tmp_path / "results"
    code, out, err = _run("rec", "eval", "--data", str(data), "-d", "toy", "--model", "pop",
                          "--model", "itemknn", "--out", str(out_root), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result["report"]["metrics"]) == {"pop", "itemknn"}
    files = [Path(f) for f in result["files"]]
    assert [f.name for f in files] == ["report.json", "report.md", "report.png"]
    assert all(f.parent.parent == out_root / "rec" for f in files)
    assert (files[0].parent / "progress.log").is_file()

    code, out, err = _run("rec", "eval", "--data", str(data), "-d", "toy", "--model", "pop",
                          "--model", "itemknn", "--out", str(out_root), "--report-only")
    assert code == 0, err
    assert "pop" in out
    assert "wrote" in out


def test_eval_refuses_more_users_than_the_data_has(data: Path, tmp_path: Path) -> None:
    code, _, err = _run("rec", "eval", "--data", str(data), "-d", "toy", "-m", "pop",
                        "--users", "41", "--out", str(tmp_path / "r"))
    assert code == 1
    assert "--users 40 or fewer" in err


def test_eval_refuses_a_file_as_out(data: Path, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = _run("rec", "eval", "--data", str(data), "-d", "toy", "-m", "pop",
                        "--out", str(target))
    assert code == 1
    assert "--out" in err


def test_grace_trains_with_its_options_and_explains(data: Path, tmp_path: Path) -> None:
    # The toy file has no attribute file, so the attribute slots are empty: the dense
    # ablation without attribute tokens, with a small epoch cap.
    common = ("--data", str(data), "--dataset", "toy", "--model", "grace", "--epochs", "2",
              "--attention", "dense", "--attribute-tokens", "0")
    code, out, err = _run("rec", "train", *common, "--json")
    assert code == 0, err
    trained = json.loads(out)
    assert trained["training"]["epochs"] <= 2
    config = json.loads((Path(trained["folder"]) / "config.json").read_text())
    assert config["config"]["attention"] == "dense"
    assert config["config"]["attribute_tokens"] == 0

    code, out, err = _run("rec", "recommend", *common, "--history", "1", "2", "-k", "3",
                          "--json")
    assert code == 0, err
    rows = json.loads(out)["recommendations"]
    assert len(rows) == 3
    assert all(row["reasoning"] == [] for row in rows)  # no attribute tokens: no path

    # Another attention is another model: not trained yet, and the hint says how.
    code, _, err = _run("rec", "recommend", "--data", str(data), "--dataset", "toy",
                        "--model", "grace", "--epochs", "2", "--attribute-tokens", "0",
                        "--history", "1")
    assert code == 1
    assert "aisle rec train --dataset toy --model grace --epochs 2 --attribute-tokens 0" in err

    # So is another patience, and the hint repeats it.
    code, _, err = _run("rec", "recommend", *common, "--patience", "2", "--history", "1")
    assert code == 1
    assert "--epochs 2 --patience 2 --attention dense --attribute-tokens 0" in err


def test_patience_reaches_the_trained_config(data: Path) -> None:
    code, out, err = _run("rec", "train", "--data", str(data), "--dataset", "toy", "--model",
                          "sasrec", "--epochs", "3", "--patience", "3", "--json")
    assert code == 0, err
    trained = json.loads(out)
    assert trained["training"]["epochs"] == 3  # patience 3 of 3 epochs: never stops early
    config = json.loads((Path(trained["folder"]) / "config.json").read_text())
    assert config["config"]["patience"] == 3


def test_bad_grace_options_are_one_line_errors(data: Path) -> None:
    code, _, err = _run("rec", "train", "--data", str(data), "--dataset", "toy", "--model",
                        "grace", "--attention", "sparse")
    assert code == 1
    assert "attention" in err
    code, _, err = _run("rec", "train", "--data", str(data), "--dataset", "toy", "--model",
                        "grace", "--budget", "tpu")
    assert code == 1
    assert "--budget must be cpu or gpu" in err
