"""The GDO eval suite on toy datasets in the benchmarks' layouts, with fake models: each
task and method, the cascade's share, result-file merging, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aisle.cli import app
from aisle.errors import ConfigurationError
from aisle.evals.gdo_suite import GDOEvalConfig, check_merge, evaluate, merge_result, method_key
from aisle.llm import FakeChatModel
from aisle.testing.embeddings import trigram_embed

from ..gdo.conftest import reply


def _side(record: dict[str, str]) -> str:
    return " ".join(f"COL {k} VAL {v}" for k, v in record.items())


PRODUCTS = [("sony alpha 7 camera", "sony a7 alpha camera body"),
            ("lego castle set", "castle by lego"), ("nikon z5 body", "nikon z 5 camera"),
            ("bose qc45 headphones", "bose quietcomfort 45"),
            ("dyson v15 vacuum", "dyson v15 detect cordless"),
            ("kindle paperwhite", "paperwhite kindle"),
            ("apple ipad air", "ipad air apple"), ("weber gas grill", "weber spirit grill")]


def _er_folder(root: Path) -> Path:
    folder = root / "Toy"
    folder.mkdir()
    lines = []
    for i, (a, b) in enumerate(PRODUCTS):
        lines.append(f"{_side({'name': a, 'price': ''})}\t{_side({'name': b, 'price': '9'})}\t1")
        c = PRODUCTS[(i + 3) % len(PRODUCTS)][1]
        lines.append(f"{_side({'name': a, 'price': ''})}\t{_side({'name': c, 'price': '9'})}\t0")
    for split in ("train", "valid", "test"):
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return folder


def _same_product(prompt: str) -> dict[str, bool]:
    """An oracle: the gold label of the pair in the prompt."""
    a = prompt.split("<record_a>")[-1].split("</record_a>")[0]
    b = prompt.split("<record_b>")[-1].split("</record_b>")[0]
    name = lambda s: s.split("name: ")[1].split(";")[0]  # noqa: E731
    return {"match": (name(a), name(b)) in PRODUCTS}


async def test_match_llm_scores_the_labelled_test_pairs(tmp_path: Path) -> None:
    fake = FakeChatModel(by_schema={"match": reply(_same_product)})
    run = await evaluate(GDOEvalConfig(task="match", data=_er_folder(tmp_path), method="llm",
                                       model=fake, embed=trigram_embed, shots=2))
    m = run["metrics"]
    assert m["rows"] == 16
    assert m["calls"] == 16
    assert m["llm_share"] == 1.0
    assert m["f1"] == 1.0  # answers are scored against their own pairs
    assert run["dataset"] == "Toy"
    assert run["split"] == "test"
    # the shots come from train and are sent as earlier turns
    assert len(fake.calls[0].messages) >= 5


async def test_match_cascade_sends_at_most_its_share(tmp_path: Path) -> None:
    fake = FakeChatModel(by_schema={"match": reply(_same_product)})
    run = await evaluate(GDOEvalConfig(task="match", data=_er_folder(tmp_path),
                                       method="cascade", model=fake, embed=trigram_embed,
                                       llm_share=0.25))
    m = run["metrics"]
    assert m["llm_share"] <= 0.25 + 1e-9
    assert m["calls"] == m["llm_rows"]
    assert m["thresholds"]["fit_on"] == "valid"


async def test_match_baseline_needs_no_model(tmp_path: Path) -> None:
    run = await evaluate(GDOEvalConfig(task="match", data=_er_folder(tmp_path),
                                       method="baseline", embed=trigram_embed))
    assert run["model"] is None
    assert run["metrics"]["calls"] == 0
    assert 0.0 <= run["metrics"]["f1"] <= 1.0


def _buy_folder(root: Path) -> Path:
    folder = root / "buy"
    folder.mkdir()
    rows = [("Sony Bravia 40in TV", "LCD", "Sony"), ("Apple iPod nano", "8GB", "Apple"),
            ("Sony Walkman", "MP3", "Sony"), ("Apple iPad", "tablet", "Apple"),
            ("Canon EOS camera", "DSLR", "Canon")]
    text = "name,description,manufacturer\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
    for split in ("train", "valid", "test"):
        (folder / f"{split}.csv").write_text(text)
    return folder


async def test_impute_llm_fills_the_emptied_column(tmp_path: Path) -> None:
    def first_word(prompt: str) -> dict[str, str]:
        record = prompt.split("<record>")[-1]
        return {"value": record.split("name: ")[1].split()[0]}

    fake = FakeChatModel(by_schema={"impute": reply(first_word)})
    run = await evaluate(GDOEvalConfig(task="impute", data=_buy_folder(tmp_path), method="llm",
                                       model=fake, shots=1))
    assert run["metrics"]["accuracy"] == pytest.approx(1.0)
    # the gold value is never shown to the model
    prompts = [str(c.messages[-1].content) for c in fake.calls]
    assert all("manufacturer:" not in p.split("<record>")[-1] for p in prompts)


async def test_impute_baseline_and_cascade(tmp_path: Path) -> None:
    folder = _buy_folder(tmp_path)
    base = await evaluate(GDOEvalConfig(task="impute", data=folder, method="baseline"))
    assert base["metrics"]["accuracy"] == 1.0  # every test row is also a training row
    assert base["metrics"]["most_frequent_accuracy"] == pytest.approx(0.4)
    fake = FakeChatModel(by_schema={"impute": {"value": "Nobody"}})
    run = await evaluate(GDOEvalConfig(task="impute", data=folder, method="cascade",
                                       model=fake, llm_share=0.2))
    assert run["metrics"]["llm_share"] <= 0.2
    assert len(fake.calls) <= 1


def _hospital(root: Path) -> Path:
    folder = root / "hospital"
    folder.mkdir()
    cities = ["birmingham"] * 6 + ["birmxngham", "dothan", "dothan", "dothan"]
    (folder / "table.csv").write_text(
        "Unnamed: 0,City,State\n" + "".join(f"{i},{c},al\n" for i, c in enumerate(cities)))
    cells = "row_id,col_name,is_clean\n" + "".join(
        f"{i},City,{0 if c == 'birmxngham' else 1}\n{i},State,1\n" for i, c in enumerate(cities))
    for split in ("train", "valid", "test"):
        (folder / f"{split}.csv").write_text(cells)
    return folder


async def test_detect_llm_and_cascade_score_the_labelled_cells(tmp_path: Path) -> None:
    def typo(prompt: str) -> dict[str, bool]:
        return {"is_error": "x" in prompt.split("<value>")[-1].split("</value>")[0]}

    folder = _hospital(tmp_path)
    fake = FakeChatModel(by_schema={"detect_errors": reply(typo)})
    run = await evaluate(GDOEvalConfig(task="detect", data=folder, method="llm", model=fake,
                                       shots=2))
    assert run["metrics"]["f1"] == 1.0
    assert run["metrics"]["rows"] == 20
    cascade = await evaluate(GDOEvalConfig(task="detect", data=folder, method="cascade",
                                           model=fake, llm_share=0.34))
    assert cascade["metrics"]["llm_share"] <= 0.34
    assert cascade["metrics"]["f1"] == 1.0


async def test_limit_is_a_fixed_seeded_sample(tmp_path: Path) -> None:
    folder = _hospital(tmp_path)
    a = await evaluate(GDOEvalConfig(task="detect", data=folder, method="baseline", limit=7))
    b = await evaluate(GDOEvalConfig(task="detect", data=folder, method="baseline", limit=7))
    assert a["metrics"] == {**b["metrics"], "seconds": a["metrics"]["seconds"],
                            "seconds_per_row": a["metrics"]["seconds_per_row"]}
    assert a["metrics"]["rows"] == 7
    assert a["seed"] == 2025


def _run(method: str, f1: float) -> dict[str, Any]:
    return {"task": "match", "dataset": "Beer", "split": "test", "limit": None, "seed": None,
            "method": method, "model": None, "shots": None, "agents_version": 1,
            "prompts": "x", "metrics": {"f1": f1}}


def test_result_file_keeps_one_object_per_method() -> None:
    merged = merge_result(None, _run("baseline", 0.8))
    merged = merge_result(merged, _run("llm", 0.6))
    assert set(merged["metrics"]) == {"baseline", "llm"}
    with pytest.raises(ConfigurationError, match="already holds method 'llm'"):
        merge_result(merged, _run("llm", 0.7))
    assert merge_result(merged, _run("llm", 0.7), replace=True)["metrics"]["llm"]["f1"] == 0.7
    with pytest.raises(ConfigurationError, match="dataset"):
        check_merge(merged, GDOEvalConfig(task="match", data=Path("x/Abt-Buy"), method="llm"))


def test_cli_eval_writes_and_merges_the_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    import aisle.evals.gdo_suite as suite

    monkeypatch.setattr(suite.GDOEvalConfig, "embed", staticmethod(trigram_embed))
    folder = _hospital(tmp_path)
    out = tmp_path / "res" / "hospital.json"
    runner = CliRunner()
    first = runner.invoke(app, ["gdo", "eval", "--task", "detect", "--data", str(folder),
                                "--method", "baseline", "--out", str(out)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["gdo", "eval", "--task", "detect", "--data", str(folder),
                                "--method", "baseline", "--out", str(out)])
    assert again.exit_code == 1
    assert "already holds method" in again.output
    no_model = runner.invoke(app, ["gdo", "eval", "--task", "detect", "--data", str(folder),
                                   "--method", "llm", "--out", str(out)])
    assert no_model.exit_code == 1
    assert "--model" in no_model.output
    data = json.loads(out.read_text())
    assert data["metrics"]["baseline"]["f1"] == 1.0


async def test_detect_logprob_fits_its_threshold_on_validation(tmp_path: Path) -> None:
    import math

    from langchain_core.messages import AIMessage

    from aisle.llm._capabilities import Capabilities

    def answer(messages: list[Any], kwargs: dict[str, Any]) -> AIMessage:
        value = str(messages[-1].content).split("<value>")[-1].split("</value>")[0]
        p = 0.35 if "x" in value else 0.2  # a biased model: never above 0.5
        top = [{"token": "Yes", "logprob": math.log(p)}, {"token": "No",
                                                          "logprob": math.log(1 - p)}]
        return AIMessage(content="No", response_metadata={"logprobs": {"content": [
            {"token": "No", "logprob": top[1]["logprob"], "top_logprobs": top}]}})

    fake = FakeChatModel(capabilities=Capabilities(logprobs=True, max_top_logprobs=5),
                         by_schema={"YesNo": answer})
    run = await evaluate(GDOEvalConfig(task="detect", data=_hospital(tmp_path), method="llm",
                                       model=fake, decide="logprob", shots=2))
    assert run["method"] == "llm_logprob"
    fit = run["metrics"]["fit"]
    assert fit["threshold"] == pytest.approx(0.35)
    assert fit["valid_rows"] == 20
    assert run["metrics"]["f1"] == 1.0


def test_a_cascade_fitted_for_another_share_gets_its_own_key() -> None:
    default = GDOEvalConfig(task="match", data=Path("x/Beer"), method="cascade")
    tighter = GDOEvalConfig(task="match", data=Path("x/Beer"), method="cascade",
                            llm_share=0.25, decide="logprob")
    merged = merge_result(None, {**_run("cascade", 0.6), "method": method_key(default)})
    check_merge(merged, tighter)  # a second fit of the cascade goes beside the first
    assert method_key(tighter) == "cascade_logprob_share25"
    assert method_key(GDOEvalConfig(task="match", data=Path("x"), method="llm",
                                    llm_share=0.25)) == "llm"  # only the cascade has a share
