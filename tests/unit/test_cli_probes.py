"""The tester's probes of bad input (issue 10), run in-process: each ends in a non-zero
exit and exactly one line on stderr that names the fix, with no traceback anywhere; an
unexpected exception says where its traceback was written. Also: Ctrl-C during long
work, progress when stderr is not a terminal, and how soon a silent server is reported.
No real model runs."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from aisle.cli import app
from aisle.errors import BackendUnavailableError, ServerStartupError
from aisle.llm import (
    OpenAICompatibleProvider,
    get_provider,
    load_chat_model,
    register_provider,
    unregister_provider,
)
from aisle.llm.local import LocalServer, LocalServerConfig
from aisle.settings import Settings, get_settings
from aisle.testing import StubServer
from aisle.testing.stub_server import Fault

runner = CliRunner()


# -- fixtures: tiny inputs -------------------------------------------------------------

def _games(root: Path) -> Path:
    """A tiny LLMRank Games folder, `root/llmrank-games`: 40 items and 3 users (a, b, c),
    each with 22 random candidates besides the target."""
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


class _HashEmbedder:
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


@dataclass
class Env:
    """What a probe's arguments may refer to."""

    tmp: Path
    data: Path  # a data root holding the tiny llmrank-games/
    file: Path  # an existing plain file
    folder: Path  # an existing folder
    binary: Path  # a file that is not text
    answers: Path  # a valid answers CSV
    port: int  # a port another socket listens on


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    file = tmp_path / "a-file"
    file.write_text("x\n")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    binary = tmp_path / "binary.bin"
    binary.write_bytes(bytes([0x81, 0xff, 0x00, 0xfe]) * 256)
    answers = tmp_path / "answers.csv"
    answers.write_text("task,labeler,label\nq1,a,1\nq1,b,1\nq2,a,0\nq2,b,1\n")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield Env(tmp_path, _games(tmp_path / "data"), file, folder, binary, answers,
                  listener.getsockname()[1])


# -- the probes ------------------------------------------------------------------------

def _arag_eval(e: Env, *extra: str, out: Path | None = None) -> list[str]:
    return ["arag", "eval", "--data", str(e.data), "--methods", "random,popularity",
            "--out", str(out or e.tmp / "results"), *extra]


@dataclass(frozen=True)
class Probe:
    """One bad command: its arguments, the exit code, and text its one line must hold."""

    args: Callable[[Env], list[str]]
    code: int
    says: tuple[str, ...]


PROBES: dict[str, Probe] = {
    "arag eval --users -1": Probe(lambda e: _arag_eval(e, "--users", "-1"), 2,
                                  ("--users", "greater than or equal to 1", "--help")),
    "arag eval --users 0": Probe(lambda e: _arag_eval(e, "--users", "0"), 2,
                                 ("--users", "greater than or equal to 1")),
    "arag eval --users beyond the file": Probe(
        lambda e: _arag_eval(e, "--users", "1000"), 1,
        ("--users 1000", "3 users", "pass --users 3 or fewer")),
    "arag eval --concurrency 0": Probe(lambda e: _arag_eval(e, "--concurrency", "0"), 2,
                                       ("--concurrency", "greater than or equal to 1")),
    "arag eval --concurrency -1": Probe(lambda e: _arag_eval(e, "--concurrency", "-1"), 2,
                                        ("--concurrency", "greater than or equal to 1")),
    "arag eval --methods unknown": Probe(lambda e: _arag_eval(e, "--methods", "bm25"), 2,
                                         ("--methods", "choose from")),
    "arag eval --candidates unknown": Probe(lambda e: _arag_eval(e, "--candidates", "x"), 2,
                                            ("--candidates",)),
    "arag eval --ranker-order recommender without one": Probe(
        lambda e: _arag_eval(e, "--ranker-order", "recommender"), 2,
        ("--ranker-order recommender needs --recommender",)),
    "arag eval --methods recommender without one": Probe(
        lambda e: _arag_eval(e, "--methods", "recommender"), 2,
        ("the recommender method needs --recommender",)),
    "arag eval --recommender unknown": Probe(
        lambda e: _arag_eval(e, "--recommender", "bert4rec"), 2, ("--recommender",)),
    "arag recommend --fusion-weights without a recommender": Probe(
        lambda e: ["arag", "recommend", "--user", "a", "--data", str(e.data),
                   "--fusion-weights", "1,1,1"], 2, ("--fusion-weights needs --recommender",)),
    "arag recommend --fusion-weights two numbers": Probe(
        lambda e: ["arag", "recommend", "--user", "a", "--data", str(e.data), "--recommender",
                   "pop", "--fusion-weights", "1,2"], 2, ("expected three numbers",)),
    "arag recommend --fusion-weights all zero": Probe(
        lambda e: ["arag", "recommend", "--user", "a", "--data", str(e.data), "--recommender",
                   "pop", "--fusion-weights", "0,0,0"], 2, ("at least one fusion weight",)),
    "arag eval --out an existing file": Probe(
        lambda e: _arag_eval(e, out=e.file), 1, ("is a file", "pass another --out")),
    "arag eval --out a path under a file": Probe(
        lambda e: _arag_eval(e, out=e.file / "deeper"), 1, ("pass another --out",)),
    "ensemble eval --concurrency 0": Probe(
        lambda e: ["ensemble", "eval", "--concurrency", "0"], 2, ("--concurrency",)),
    "ensemble eval --offers 0": Probe(lambda e: ["ensemble", "eval", "--offers", "0"], 2,
                                      ("--offers",)),
    "ensemble fit --n-classes 0": Probe(
        lambda e: ["ensemble", "fit", "--answers", str(e.answers), "--n-classes", "0",
                   "--out", str(e.tmp / "w.json")], 2,
        ("--n-classes", "greater than or equal to 2")),
    "ensemble fit --n-classes -3": Probe(
        lambda e: ["ensemble", "fit", "--answers", str(e.answers), "--n-classes", "-3",
                   "--out", str(e.tmp / "w.json")], 2, ("--n-classes",)),
    "ensemble fit --method unknown": Probe(
        lambda e: ["ensemble", "fit", "--answers", str(e.answers), "--method", "vote",
                   "--out", str(e.tmp / "w.json")], 2, ("--method", "'mv', 'iwmv', 'ds'")),
    "ensemble fit --out a folder": Probe(
        lambda e: ["ensemble", "fit", "--answers", str(e.answers), "--out", str(e.folder)],
        1, ("is a folder", "pass a file path")),
    "ensemble fit --out a path under a file": Probe(
        lambda e: ["ensemble", "fit", "--answers", str(e.answers), "--out",
                   str(e.file / "w.json")], 1, ("pass another --out",)),
    "ensemble fit --answers binary": Probe(
        lambda e: ["ensemble", "fit", "--answers", str(e.binary), "--out",
                   str(e.tmp / "w.json")], 1, ("--answers", "not a text file", "pass a CSV")),
    "ensemble apply --weights binary": Probe(
        lambda e: ["ensemble", "apply", "--answers", str(e.answers), "--weights",
                   str(e.binary), "--out", str(e.tmp / "labels.csv")], 1,
        ("--weights", "not a text file", "aisle ensemble fit")),
    "ensemble apply --weights a folder": Probe(
        lambda e: ["ensemble", "apply", "--answers", str(e.answers), "--weights",
                   str(e.folder), "--out", str(e.tmp / "labels.csv")], 1,
        ("--weights", "is a folder")),
    "ensemble extract --weights binary": Probe(
        lambda e: ["ensemble", "extract", "--title", "x", "--attributes", "Brand",
                   "--labelers", "fake:schema", "--weights", str(e.binary)], 1,
        ("--weights", "not a text file")),
    "index build --out an existing file": Probe(
        lambda e: ["index", "build", "--items", str(e.data / "llmrank-games" / "Games.item"),
                   "--out", str(e.file)], 1, ("is a file", "pass another --out")),
    "index build --items binary": Probe(
        lambda e: ["index", "build", "--items", str(e.binary), "--out", str(e.tmp / "ix")],
        1, ("--items", "not a text file", "item_id<TAB>title")),
    "index build --items missing": Probe(
        lambda e: ["index", "build", "--items", str(e.tmp / "none.item")], 1,
        ("item file not found", "--items")),
    "chat -m fake": Probe(lambda e: ["chat", "-m", "fake", "hi"], 1, ("-m fake:schema",)),
    "models serve --port taken": Probe(
        lambda e: ["models", "serve", "--port", str(e.port)], 1,
        ("already in use", "pass another --port")),
    "models serve --port out of range": Probe(
        lambda e: ["models", "serve", "--port", "70000"], 2, ("--port", "65535")),
    "models path: not pulled": Probe(lambda e: ["models", "path", "gemma3-270m"], 1,
                                     ("not ready", "aisle models pull gemma3-270m")),
    "models path: unknown": Probe(lambda e: ["models", "path", "nope"], 1,
                                  ("unknown local model", "registered models")),
    "unknown command": Probe(lambda e: ["arag", "evaluate"], 2, ("evaluate",)),
}


def _one_line(result: Any) -> str:
    """The single stderr line of a failed command; no traceback anywhere."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def no_pull(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to install or assemble a model."""
    def refuse(*args: Any, **kwargs: Any) -> Path:
        raise AssertionError("a probe tried to pull a model")

    monkeypatch.setattr("aisle.llm.registry.LocalModel.pull", refuse)


@pytest.mark.parametrize("name", list(PROBES))
def test_probe_is_one_line_naming_the_fix(name: str, env: Env, no_pull: None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aisle.tools.retrieval.Embedder", _HashEmbedder)
    probe = PROBES[name]
    result = runner.invoke(app, probe.args(env))
    assert result.exit_code == probe.code, result.output
    line = _one_line(result)
    assert line.startswith("error: "), line
    for text in probe.says:
        assert text in line, (text, line)
    assert result.stdout == ""
    assert not (env.tmp / "results").exists() or not any((env.tmp / "results").rglob("*.json"))


def test_users_zero_writes_no_report(env: Env) -> None:
    """Never a NaN report: zero users is refused before any file is written."""
    result = runner.invoke(app, _arag_eval(env, "--users", "0", "--json"))
    assert result.exit_code == 2
    assert not (env.tmp / "results").exists()


def test_users_up_to_the_file_runs(env: Env) -> None:
    result = runner.invoke(app, _arag_eval(env, "--users", "3", "--json"))
    assert result.exit_code == 0, result.output
    assert "NaN" not in result.stdout


def test_offers_beyond_the_test_set_is_an_error(shared_data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ensemble", "eval", "--data", str(shared_data), "--offers",
                                 "100000", "--out", str(tmp_path)])
    assert result.exit_code == 1
    line = _one_line(result)
    assert "--offers 100000" in line
    assert "or fewer" in line
    assert not list(tmp_path.rglob("report.json"))


def test_invalid_setting_is_one_line_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_REQUEST_TIMEOUT", "soon")
    get_settings.cache_clear()
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 1
    assert "AISLE_REQUEST_TIMEOUT" in _one_line(result)


# -- unexpected errors -----------------------------------------------------------------

def _logged(line: str) -> Path:
    """The log file an `internal error` line names; it holds the traceback."""
    assert line.startswith("internal error: "), line
    path = Path(line.rsplit("full traceback in ", 1)[1])
    assert path.is_file()
    assert path.parent == get_settings().home / "logs"
    assert "Traceback (most recent call last)" in path.read_text()
    return path


def test_unexpected_exception_is_one_line_and_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("aisle.cli.info._report", boom)
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 1
    line = _one_line(result)
    assert line.startswith("internal error: RuntimeError: boom second line; full traceback in ")
    log = _logged(line).read_text()
    assert "aisle info --json" in log
    assert "RuntimeError: boom" in log
    assert result.stdout == ""


def test_vllm_with_a_missing_interpreter_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_VLLM_PYTHON", "/nonexistent/python")
    get_settings.cache_clear()
    result = runner.invoke(app, ["chat", "-m", "vllm:x", "hi"])
    assert result.exit_code == 1
    line = _one_line(result)
    assert line.startswith("error: ")
    assert "/nonexistent/python" in line
    assert "AISLE_VLLM_PYTHON" in line
    assert "internal error" not in line


# -- Ctrl-C ----------------------------------------------------------------------------

async def _interrupted(*args: Any, **kwargs: Any) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_in_arag_eval_keeps_answers_and_exits_130(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aisle.evals.runner.EvalRunner.run", _interrupted)
    result = runner.invoke(app, _arag_eval(env, "--users", "3"))
    assert result.exit_code == 130
    line = _one_line(result)
    assert line.startswith("interrupted: the answers stored in ")
    assert str(env.tmp / "results" / "arag" / "answers.sqlite") in line
    assert "same command again to resume" in line
    (log,) = (env.tmp / "results" / "arag").glob("*/progress.log")
    lines = log.read_text().splitlines()
    assert lines[0].endswith("started: aisle " + " ".join(_arag_eval(env, "--users", "3")))
    assert lines[-1].endswith("interrupted (rerun the same command to resume)")


def test_ctrl_c_in_ensemble_eval_exits_130(shared_data: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aisle.evals.runner.EvalRunner.run", _interrupted)
    result = runner.invoke(app, ["ensemble", "eval", "--data", str(shared_data), "--labelers",
                                 "fake:schema", "--offers", "2", "--out", str(tmp_path)])
    assert result.exit_code == 130
    assert "same command again to resume" in _one_line(result)


def test_ctrl_c_in_index_build_exits_130(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("aisle.tools.retrieval.Embedder", _HashEmbedder)
    monkeypatch.setattr("aisle.tools.retrieval.CatalogIndex.sync", interrupted)
    result = runner.invoke(app, ["index", "build", "--items",
                                 str(env.data / "llmrank-games" / "Games.item"),
                                 "--out", str(env.tmp / "ix")])
    assert result.exit_code == 130
    line = _one_line(result)
    assert "embedded items of Games.item" in line
    assert "same command again to resume" in line


# -- progress when stderr is not a terminal --------------------------------------------

def test_index_build_prints_progress_lines_when_not_a_terminal(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aisle.tools.retrieval.Embedder", _HashEmbedder)
    result = runner.invoke(app, ["index", "build", "--items",
                                 str(env.data / "llmrank-games" / "Games.item"),
                                 "--out", str(env.tmp / "ix"), "--json"])
    assert result.exit_code == 0, result.output
    assert "embedding Games.item: 40/40 items" in result.stderr
    log = (env.tmp / "ix" / "build.log").read_text().splitlines()
    assert log[1].endswith(" embedding Games.item: 40/40 items")
    assert log[-1].endswith(" finished")


def test_arag_eval_prints_progress_lines_when_not_a_terminal(env: Env) -> None:
    result = runner.invoke(app, _arag_eval(env, "--users", "3", "--json"))
    assert result.exit_code == 0, result.output
    assert "random: 3/3 users" in result.stderr
    assert "popularity: 3/3 users" in result.stderr
    (log,) = (env.tmp / "results" / "arag").glob("*/progress.log")
    text = log.read_text()
    assert " random: 3/3 users\n" in text
    assert " popularity: 3/3 users\n" in text
    assert text.endswith(" finished\n")


# -- a silent server is reported within about a minute ---------------------------------

def test_default_silent_server_budget_is_about_a_minute(stub: StubServer) -> None:
    defaults = Settings(cache_enabled=False)
    assert defaults.request_timeout == Settings.model_fields["request_timeout"].default
    model: Any = load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                                 settings=defaults)
    budget = model.retry_policy.silent_server_budget(model.request_timeout)
    assert 45 <= budget <= 75
    assert model.retry_policy.max_retries == defaults.max_retries  # other faults keep theirs


def test_silent_server_fails_after_one_timeout_retry(stub: StubServer) -> None:
    settings = Settings(cache_enabled=False, request_timeout=0.3, max_retries=4,
                        retry_initial_wait=0.01, retry_max_wait=0.05)
    stub.inject(*[Fault(delay=3.0)] * 10)
    model: Any = load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                                 settings=settings)
    with pytest.raises(BackendUnavailableError, match="did not answer in time"):
        model.invoke("hello")
    assert stub.stats.requests == 2  # a timeout is retried once, not max_retries times
    assert model.retry_stats.retries == 1


def test_other_faults_keep_their_retries_after_a_timeout(stub: StubServer) -> None:
    settings = Settings(cache_enabled=False, request_timeout=0.3, max_retries=4,
                        retry_initial_wait=0.01, retry_max_wait=0.05)
    stub.inject(Fault(delay=3.0), Fault(status=500), Fault(status=503), Fault(drop=True))
    model: Any = load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                                 settings=settings)
    assert model.invoke("hello").content == "stub answer"
    assert stub.stats.requests == 5


def test_chat_against_a_silent_server_is_one_line(stub: StubServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("AISLE_OPENAI_API_KEY", "test")
    monkeypatch.setenv("AISLE_REQUEST_TIMEOUT", "0.3")
    monkeypatch.setenv("AISLE_RETRY_INITIAL_WAIT", "0.01")
    get_settings.cache_clear()
    stub.inject(*[Fault(delay=3.0)] * 10)
    result = runner.invoke(app, ["chat", "-m", "openai:stub", "hi"])
    assert result.exit_code == 1
    line = _one_line(result)
    assert "did not answer in time" in line
    assert "AISLE_REQUEST_TIMEOUT" in line
    assert stub.stats.requests == 2


# -- the library's own port check --------------------------------------------------------

def test_local_server_on_a_taken_port_says_so(env: Env) -> None:
    gguf = env.tmp / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    server = LocalServer(LocalServerConfig(model_path=gguf, port=env.port))
    with pytest.raises(ServerStartupError, match=f"port {env.port} .* already in use"):
        server.start(timeout=1)


class _OwnServerProvider(OpenAICompatibleProvider):
    """A backend with its own timeout setting and no timeout retries, as `local` has."""

    name = "ownserver"
    description = "a server the project started itself"
    base_url_env = "OWNSERVER_BASE_URL"
    timeout_setting = "OWNSERVER_TIMEOUT"
    timeout_retries = 0

    def request_timeout(self, settings: Settings) -> float:
        return 0.3


def test_a_provider_sets_its_own_timeout_and_timeout_retries(
        stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OWNSERVER_BASE_URL", stub.base_url.removesuffix("/v1"))
    register_provider(_OwnServerProvider())
    try:
        stub.inject(*[Fault(delay=3.0)] * 10)
        model: Any = load_chat_model("ownserver:m", settings=Settings(
            cache_enabled=False, request_timeout=60, max_retries=4,
            retry_initial_wait=0.01, retry_max_wait=0.05))
        with pytest.raises(BackendUnavailableError, match="raise OWNSERVER_TIMEOUT"):
            model.invoke("hello")
        assert stub.stats.requests == 1  # not retried, and 0.3 s rather than 60 s
    finally:
        unregister_provider("ownserver")


def test_the_embedded_server_gets_the_local_timeout_unretried() -> None:
    local = get_provider("local")
    assert isinstance(local, OpenAICompatibleProvider)
    assert local.request_timeout(Settings(local_request_timeout=123.0)) == 123.0
    assert local.timeout_retries == 0
    assert local.timeout_setting == "AISLE_LOCAL_REQUEST_TIMEOUT"
    assert Settings().local_request_timeout > Settings().request_timeout
    assert get_provider("openai").timeout_retries == 1  # type: ignore[attr-defined]


# -- a recommender beside ARAG ------------------------------------------------------------

def test_arag_eval_trains_the_recommender_on_first_use_and_reports_it(env: Env) -> None:
    args = _arag_eval(env, "--recommender", "pop", "--users", "3", "--json")
    args[args.index("--methods") + 1] = "random,recommender"
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "no trained pop for LLMRank Games yet: training it now" in first.stderr
    report = json.loads(first.stdout)["report"]
    assert set(report["metrics"]) == {"random", "recommender"}
    assert report["run"]["run_key"]["answers"]["recommender"]["model"] == "pop"
    assert report["run"]["run_id"].startswith("games-random-3-baselines-pop-")
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert "training it now" not in again.stderr  # loaded, not retrained


def test_arag_recommend_takes_its_candidates_from_the_recommender(env: Env) -> None:
    result = runner.invoke(app, ["arag", "recommend", "--user", "a", "--data", str(env.data),
                                 "--recommender", "pop", "--model", "fake:schema", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    ranked = [row["id"] for row in out["ranking"]]
    assert len(ranked) == 20
    assert not set(ranked) & {"0", "1", "2"}  # the user's history is never recommended
    assert all(row["recommender_rank"] is not None for row in out["ranking"])
    assert out["fusion"]["weights"]["recommender"] == 1.0
    assert sorted(out["fusion"]["orders"]["recommender"]) == sorted(ranked)
