"""The typer CLI, driven in-process against the stub server (no real model)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aisle.cli import app
from aisle.cli.chat import schema_model
from aisle.errors import ConfigurationError
from aisle.testing import StubServer

runner = CliRunner()

SCHEMA = json.dumps({"type": "object", "properties": {
    "product": {"type": "string"}, "category": {"type": "string", "enum": ["shoes", "toys"]},
    "price": {"type": "number"}}, "required": ["product", "category", "price"]})


@pytest.fixture
def stub_env(monkeypatch: pytest.MonkeyPatch, stub: StubServer) -> StubServer:
    monkeypatch.setenv("AISLE_OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("AISLE_OPENAI_API_KEY", "test")
    return stub


def test_chat_plain(stub_env: StubServer) -> None:
    result = runner.invoke(app, ["chat", "-m", "openai:stub", "hello"])
    assert result.exit_code == 0, result.output
    assert "stub answer" in result.output


def test_chat_json_schema_and_usage(stub_env: StubServer) -> None:
    result = runner.invoke(app, ["chat", "-m", "openai:stub", "--json-schema", SCHEMA,
                                 "--usage", "Nike Pegasus"])
    assert result.exit_code == 0, result.output
    start = result.output.index("{")
    answer = json.loads(result.output[start: result.output.index("}") + 1])
    assert answer["category"] in {"shoes", "toys"}
    assert "total" in result.output  # the usage table
    sent = stub_env.stats.bodies[0]["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["category"]["enum"] == ["shoes", "toys"]


def test_chat_schema_from_file(stub_env: StubServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.json"
    path.write_text(SCHEMA)
    result = runner.invoke(app, ["chat", "-m", "openai:stub", "--json-schema", str(path), "x"])
    assert result.exit_code == 0, result.output


def test_chat_bad_schema_and_bad_spec_fail_clearly(stub_env: StubServer) -> None:
    bad = runner.invoke(app, ["chat", "-m", "openai:stub", "--json-schema", "{nope", "x"])
    assert bad.exit_code == 1
    assert "json-schema" in bad.output
    spec = runner.invoke(app, ["chat", "-m", "bogus:model", "x"])
    assert spec.exit_code == 1
    assert "unknown model provider" in spec.output


def test_chat_server_down_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("AISLE_OPENAI_API_KEY", "test")
    monkeypatch.setenv("AISLE_MAX_RETRIES", "0")
    result = runner.invoke(app, ["chat", "-m", "openai:x", "hi"])
    assert result.exit_code == 1
    assert "is the server running" in result.output


def test_models_list_and_info() -> None:
    listed = runner.invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m"):
        assert name in listed.output
    info = runner.invoke(app, ["info"], env={"COLUMNS": "250"})
    assert info.exit_code == 0, info.output
    assert "json-schema output" in info.output
    assert "vllm" in info.output


def test_pull_unknown_model() -> None:
    result = runner.invoke(app, ["models", "pull", "nope"])
    assert result.exit_code == 1
    assert "unknown local model" in result.output


def test_schema_model_enum_required_optional() -> None:
    model = schema_model(json.loads(SCHEMA))
    assert model.model_json_schema()["properties"]["category"]["enum"] == ["shoes", "toys"]
    with pytest.raises(ConfigurationError):
        schema_model({"type": "string"})


@pytest.mark.parametrize("command", [
    ["arag", "eval", "--data", "nowhere", "--out", "results"],
    ["arag", "recommend", "--user", "1", "--data", "nowhere"],
])
@pytest.mark.parametrize(("option", "value", "choices"), [
    ("--ranker-order", "best", ("nli", "given")),
    ("--nli-mode", "maybe", ("auto", "logprob", "generate")),
])
def test_arag_commands_reject_unknown_modes(command: list[str], option: str, value: str,
                                            choices: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, option, value], env={"COLUMNS": "250"})
    assert result.exit_code == 2  # a usage error, before any work
    assert f"Invalid value for '{option}'" in result.stderr
    assert f"'{value}' is not one of" in result.stderr
    for choice in choices:
        assert f"'{choice}'" in result.stderr
