"""One CLI grammar, `aisle <area> <verb>`: the command tree, choices listed in `--help`,
`--json` printing exactly one JSON object on stdout, `--data` as the datasets root, and
one-line errors before any work. Models are `fake:schema` (a schema-valid answer to any
structured request); no real model runs."""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from rich.text import Text
from typer.testing import CliRunner

from aisle.cli import app
from aisle.cli.arag import Candidates, NLIModeChoice, RankerOrder
from aisle.cli.ensemble import FitMethod
from aisle.evals.arag_suite import Method
from aisle.graphs import get_graph_spec
from aisle.settings import get_settings

runner = CliRunner()
WIDE = {"COLUMNS": "250"}  # no wrapping inside help texts

TREE = {
    "arag": {"recommend", "eval"},
    "ensemble": {"fit", "apply", "extract", "eval"},
    "index": {"build"},
    "models": {"list", "pull", "path", "serve"},
    "graphs": {"list"},
    "rec": {"train", "recommend", "eval"},
    "carts": {"title", "eval"},
    "gdo": {"run", "eval"},
    "outfits": {"plan", "eval"},
    "chat": None,
    "info": None,
    "serve": None,
    "demo": None,
}


def _subcommands(command: Any) -> dict[str, Any] | None:
    """A group's commands by name; None for a plain command (typer's own command
    classes, which typer >= 0.2x no longer derives from click's)."""
    commands = getattr(command, "commands", None)
    return dict(commands) if commands is not None else None


def _commands() -> Iterator[tuple[list[str], Any]]:
    """Every command and group under the root, with its path."""
    def walk(path: list[str], command: Any) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        for name, sub in (_subcommands(command) or {}).items():
            yield from walk([*path, name], sub)
    yield from walk([], typer.main.get_command(app))


def llmrank_games(root: Path) -> Path:
    """A tiny LLMRank Games folder at `root/llmrank-games`: 40 items, users a, b, c with
    22 random candidates besides their target (the protocol keeps 19 + the target)."""
    folder = root / "llmrank-games"
    folder.mkdir(parents=True)
    (folder / "Games.item").write_text("item_id:token\ttitle:token_seq\n" + "".join(
        f"{i}\tGame {i}\n" for i in range(40)))
    users = {"a": ("0 1 2", "3"), "b": ("4 5 6", "7"), "c": ("8 9 10", "11")}
    (folder / "Games-6k.test.inter").write_text("u\th\tt\n" + "".join(
        f"{u}\t{h}\t{t}\n" for u, (h, t) in users.items()))
    others = " ".join(str(i) for i in range(12, 34))
    (folder / "Games.random").write_text("".join(
        f"{u}\t{others} {t}\n" for u, (_, t) in users.items()))
    return root


class HashEmbedder:
    """Deterministic 8-d unit vectors from a title's hash (no embedding model)."""

    batch_size = 64
    dim = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8)
                .astype(np.float32) + 1.0 for t in texts]
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def games_root(tmp_path: Path) -> Path:
    return llmrank_games(tmp_path / "data")


def _json(result: Any) -> dict[str, Any]:
    """The whole of stdout as one JSON object (json.loads rejects anything around it)."""
    assert result.exit_code == 0, result.output
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    return value


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# -- the tree ------------------------------------------------------------------------

def test_command_tree() -> None:
    root = _subcommands(typer.main.get_command(app))
    assert root is not None
    assert set(root) == set(TREE)
    for name, verbs in TREE.items():
        sub = _subcommands(root[name])
        assert (set(sub) if sub is not None else None) == verbs, name


@pytest.mark.parametrize("args", [
    ["recommend", "--user", "1"],
    ["index", "--items", "Games.item"],
    ["extract", "--title", "x"],
    ["eval", "arag"],
    ["eval", "ensemble"],
])
def test_old_commands_are_gone(args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == 2


def test_help_texts_keep_literal_brackets() -> None:
    """Rich markup must not swallow `[...]` in any help text: brackets are escaped."""
    for path, command in _commands():
        texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
        for text in texts:
            assert Text.from_markup(text).plain == text.replace("\\[", "["), (path, text)


def test_extract_help_shows_the_labeler_grammar() -> None:
    result = runner.invoke(app, ["ensemble", "extract", "--help"], env=WIDE)
    assert result.exit_code == 0
    assert "MODEL_SPEC[@VARIANT]" in result.stdout


def test_arag_eval_help_lists_the_choices() -> None:
    result = runner.invoke(app, ["arag", "eval", "--help"], env=WIDE)
    assert result.exit_code == 0
    for choice in ("auto", "logprob", "generate", "nli", "given", *Candidates):
        assert choice in result.stdout
    for method in Method:
        assert method.value in result.stdout
    assert "OUT/arag/<run id>/" in result.stdout


def test_cli_choices_are_the_libraries_choices() -> None:
    from aisle.evals.llmrank import RETRIEVERS
    from aisle.graphs.arag import ARAGConfig
    from aisle.tools.aggregation import Method as AggregationMethod

    def literal(annotation: Any) -> set[str]:
        out: set[str] = set()
        for arg in typing.get_args(annotation):
            out |= literal(arg) if typing.get_args(arg) else {arg}
        return out

    fields = ARAGConfig.model_fields
    assert {c.value for c in NLIModeChoice} == literal(fields["nli_mode"].annotation)
    assert {c.value for c in RankerOrder} == literal(fields["ranker_order"].annotation)
    assert tuple(c.value for c in Candidates) == RETRIEVERS
    assert {c.value for c in FitMethod} == set(typing.get_args(AggregationMethod))


# -- --json: exactly one object on stdout ----------------------------------------------

def _csv(tmp: Path) -> Path:
    rows = "".join(f"q{i},{who},{(i + bad) % 2}\n"
                   for i in range(6) for who, bad in (("a", 0), ("b", 0), ("c", i < 2)))
    path = tmp / "answers.csv"
    path.write_text("task,labeler,label\n" + rows)
    return path


def _weights(tmp: Path) -> Path:
    out = tmp / "w.json"
    result = runner.invoke(app, ["ensemble", "fit", "--answers", str(_csv(tmp)),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _gguf(tmp: Path) -> Path:
    path = tmp / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return path


JSON_COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "arag recommend": lambda tmp, data: [
        "arag", "recommend", "--user", "b", "--data", str(data), "--candidates", "random",
        "--model", "fake:schema"],
    "arag eval": lambda tmp, data: [
        "arag", "eval", "--data", str(data), "--users", "2", "--methods",
        "random,popularity,vanilla_rag", "--model", "fake:schema", "--out", str(tmp / "r")],
    "ensemble fit": lambda tmp, data: [
        "ensemble", "fit", "--answers", str(_csv(tmp)), "--out", str(tmp / "w.json")],
    "ensemble apply": lambda tmp, data: [
        "ensemble", "apply", "--answers", str(_csv(tmp)), "--weights", str(_weights(tmp)),
        "--out", str(tmp / "labels.csv")],
    "ensemble extract": lambda tmp, data: [
        "ensemble", "extract", "--title", "Nike [Air] Zoom", "--attributes", "Brand,Color",
        "--labelers", "fake:schema,fake:schema@fewshot", "--examples", str(_shots(tmp))],
    "index build": lambda tmp, data: [
        "index", "build", "--items", str(data / "llmrank-games" / "Games.item"),
        "--out", str(tmp / "index")],
    "models list": lambda tmp, data: ["models", "list"],
    "models path": lambda tmp, data: ["models", "path", str(_gguf(tmp))],
    "chat": lambda tmp, data: ["chat", "--model", "fake:schema", "hello"],
    "graphs list": lambda tmp, data: ["graphs", "list"],
    "info": lambda tmp, data: ["info"],
}


@pytest.mark.parametrize("name", list(JSON_COMMANDS))
def test_json_prints_exactly_one_object(name: str, tmp_path: Path, games_root: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aisle.tools.retrieval.Embedder", HashEmbedder)
    args = JSON_COMMANDS[name](tmp_path, games_root)
    out = _json(runner.invoke(app, [*args, "--json"]))
    assert out
    if name == "index build":
        assert out == {"path": str(tmp_path / "index"), "items": 40}
    if name == "models path":
        assert out["path"] == str(tmp_path / "tiny.gguf")
    if name == "arag recommend":
        assert sorted(r["id"] for r in out["ranking"]) == sorted(
            [*(str(i) for i in range(12, 31)), "7"])
        assert out["target"]["id"] == "7"
    if name == "chat":
        assert out["answer"] == "fake answer"


def test_ensemble_eval_json(shared_data: Path, tmp_path: Path) -> None:
    out = _json(runner.invoke(app, [
        "ensemble", "eval", "--data", str(shared_data), "--labelers", "fake:schema",
        "--offers", "2", "--out", str(tmp_path), "--json"]))
    assert set(out) == {"report", "files", "failures"}
    assert set(out["report"]["oa_mine"]["local_failures"]) == {"fake:schema@zeroshot"}
    assert out["report"]["crowd_truth"]
    folder = Path(out["files"][0]).parent
    assert folder.parent == tmp_path / "ensemble"
    assert (folder / "report.md").is_file()


def test_graphs_list_json_lists_the_registry() -> None:
    out = _json(runner.invoke(app, ["graphs", "list", "--json"]))
    graphs = {g["name"]: g for g in out["graphs"]}
    assert list(graphs)[:2] == ["arag", "ensemble"]
    assert graphs["arag"]["agents"] == ["user_understanding", "nli", "context_summary",
                                        "item_ranker"]
    assert graphs["ensemble"]["agents"] == ["labeler"]
    assert graphs["arag"]["langgraph_path"] == get_graph_spec("arag").langgraph_path
    assert "config" in graphs["arag"]["context_schema"]["properties"]
    assert "labelers" in graphs["ensemble"]["context_schema"]["properties"]
    assert "candidates" in graphs["arag"]["input_schema"]["properties"]


def test_graphs_list_table() -> None:
    result = runner.invoke(app, ["graphs", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "user_understanding, nli, context_summary, item_ranker" in result.stdout
    assert get_graph_spec("ensemble").langgraph_path in result.stdout


# -- arag eval end to end --------------------------------------------------------------

def test_arag_eval_writes_a_run_folder_and_reports_it_again(games_root: Path,
                                                            tmp_path: Path) -> None:
    args = ["arag", "eval", "--data", str(games_root), "--users", "3", "--methods",
            "random,popularity,vanilla_rag", "--model", "fake:schema", "--out",
            str(tmp_path / "results")]
    first = runner.invoke(app, args, env=WIDE)
    assert first.exit_code == 0, first.output
    assert "vanilla_rag" in first.stdout
    runs = [p for p in (tmp_path / "results" / "arag").iterdir() if p.is_dir()]
    assert len(runs) == 1
    report = json.loads((runs[0] / "report.json").read_text())
    assert report["users_scored"] == 3
    assert str(runs[0] / "report.json") in first.stdout.replace("\n", "")

    again = _json(runner.invoke(app, [*args, "--report-only", "--json"]))
    assert again["report"]["metrics"] == report["metrics"]
    assert again["files"][0] == str(runs[0] / "report.json")
    assert again["failures"] == []


def test_arag_eval_report_only_with_nothing_stored_fails(games_root: Path,
                                                         tmp_path: Path) -> None:
    result = runner.invoke(app, ["arag", "eval", "--data", str(games_root), "--users", "3",
                                 "--methods", "arag", "--model", "fake:schema", "--out",
                                 str(tmp_path / "results"), "--report-only", "--json"])
    line = _one_line_error(result)
    assert "no answers are stored" in line
    assert "without --report-only" in line
    assert not list((tmp_path / "results").rglob("report.json"))


def test_arag_eval_refuses_an_out_file_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    out.write_text("{}")
    for target in (out, out / "deeper"):
        # The data root does not exist: reaching it would be a different error.
        result = runner.invoke(app, ["arag", "eval", "--data", str(tmp_path / "nowhere"),
                                     "--out", str(target)])
        line = _one_line_error(result)
        assert "pass another --out" in line
        assert "nowhere" not in line


@pytest.mark.parametrize(("args", "option"), [
    (["arag", "eval", "--users", "0"], "--users"),
    (["arag", "eval", "--concurrency", "0"], "--concurrency"),
    (["arag", "eval", "--methods", "random,bm25"], "--methods"),
    (["arag", "eval", "--candidates", "bm25"], "--candidates"),
    (["ensemble", "eval", "--offers", "0"], "--offers"),
])
def test_bad_option_values_are_refused(args: list[str], option: str) -> None:
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 2
    assert option in result.stderr
    if option == "--methods":
        assert "bm25" in result.stderr
        assert ", ".join(Method) in result.stderr


# -- --data and one-line errors --------------------------------------------------------

def test_data_defaults_to_the_setting(games_root: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    monkeypatch.setenv("AISLE_DATA", str(games_root))
    get_settings.cache_clear()
    out = _json(runner.invoke(app, ["arag", "recommend", "--user", "a", "--candidates",
                                    "random", "--model", "fake:schema", "--json"]))
    assert out["user"] == "a"
    assert get_settings().data == games_root


def test_recommend_unknown_user_is_one_line(games_root: Path) -> None:
    result = runner.invoke(app, ["arag", "recommend", "--user", "zz", "--data",
                                 str(games_root), "--candidates", "random"])
    assert "user id 'zz'" in _one_line_error(result)


@pytest.mark.parametrize(("labelers", "message"), [
    ("fake:schema@nope", "unknown prompt variant 'nope'"),
    ("fake:schema,fake:schema@zeroshot", "labeler names must be distinct"),
])
def test_invalid_context_is_one_line(labelers: str, message: str) -> None:
    result = runner.invoke(app, ["ensemble", "extract", "--title", "x", "--attributes",
                                 "Brand", "--labelers", labelers, "--json"])
    line = _one_line_error(result)
    assert "invalid EnsembleContext: labelers:" in line
    assert message in line


def test_extract_with_a_missing_weights_file_fails_before_any_call(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ensemble", "extract", "--title", "x", "--attributes",
                                 "Brand", "--labelers", "fake:schema", "--weights",
                                 str(tmp_path / "none.json")])
    assert "weights file not found" in _one_line_error(result)


def test_a_fewshot_labeler_without_examples_fails_before_any_call() -> None:
    result = runner.invoke(app, ["ensemble", "extract", "--title", "x", "--attributes",
                                 "Brand", "--labelers", "fake:schema@fewshot,fake:schema"])
    line = _one_line_error(result)
    assert "fake:schema@fewshot use(s) the fewshot prompt" in line
    assert "--examples FILE" in line


@pytest.mark.parametrize(("content", "message"), [
    ('[{"title": 3, "values": {}}]', "valid string at 0.title"),
    ('{"title": "x"}', "valid array at the top level"),
    ("[]", "holds no examples"),
])
def test_malformed_examples_are_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "shots.json"
    path.write_text(content)
    result = runner.invoke(app, ["ensemble", "extract", "--title", "x", "--attributes",
                                 "Brand", "--labelers", "fake:schema@fewshot",
                                 "--examples", str(path)])
    assert message in _one_line_error(result)


def test_examples_reach_the_fewshot_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    from aisle.llm import FakeChatModel

    fake = FakeChatModel(by_schema={"AttributeValues": '{"Brand": "Nike"}'})
    monkeypatch.setattr("aisle.graphs.ensemble.EnsembleContext.amodel_of",
                        lambda self, spec: _async_value(fake))
    path = tmp_path / "shots.json"
    path.write_text(json.dumps([{"title": "Adidas Samba OG, White", "values":
                                 {"Brand": "Adidas"}}]))
    result = runner.invoke(app, ["ensemble", "extract", "--title", "Nike Pegasus 40",
                                 "--attributes", "Brand", "--labelers",
                                 "fake:schema@fewshot", "--examples", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"]["Brand"]["value"] == "Nike"
    prompt = "\n".join(str(m.content) for m in fake.calls[0].messages)
    assert "Adidas Samba OG, White" in prompt
    assert "Nike Pegasus 40" in prompt


def _shots(tmp: Path) -> Path:
    path = tmp / "shots.json"
    path.write_text(json.dumps([{"title": "Adidas Samba", "values": {"Brand": "Adidas"}}]))
    return path


async def _async_value(value: Any) -> Any:
    return value
