"""The typer CLI, driven in-process against the stub server (no real model)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aisle.cli import app
from aisle.llm import Capabilities, FakeChatModel
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


LIMITED = json.dumps({"type": "object", "properties": {
    "product": {"type": "string", "maxLength": 20},
    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
    "price": {"type": "number", "minimum": 0}}, "required": ["product", "sku", "price"]})
GOOD = {"product": "Pegasus 40", "sku": "NIK-0040", "price": 129.99}


def scripted(monkeypatch: pytest.MonkeyPatch, *replies: object) -> FakeChatModel:
    """Make `aisle chat` talk to a constrained-decoding fake that answers `replies`."""
    fake = FakeChatModel(responses=list(replies), capabilities=Capabilities(json_schema=True))
    monkeypatch.setattr("aisle.cli.chat.load_chat_model", lambda *args, **kwargs: fake)
    return fake


@pytest.mark.parametrize(("bad", "shown"), [
    ({**GOOD, "product": "Nike Air Zoom Pegasus 40 running shoes"}, "(maxLength: 20)"),
    ({**GOOD, "sku": "pegasus"}, "$.sku: 'pegasus' does not match"),
    ({**GOOD, "price": -5}, "$.price: -5 is less than the minimum of 0"),
])
def test_chat_json_schema_is_enforced_with_a_repair_turn(
        monkeypatch: pytest.MonkeyPatch, bad: dict[str, object], shown: str) -> None:
    fake = scripted(monkeypatch, bad, GOOD)
    result = runner.invoke(app, ["chat", "-m", "openai:stub", "--json-schema", LIMITED,
                                 "--json", "Nike Pegasus"])
    assert result.exit_code == 0, result.output
    assert "(needed a repair turn)" in result.stderr
    out = json.loads(result.stdout)
    assert out["answer"] == GOOD
    assert out["attempts"] == 2
    # The whole schema went out for constrained decoding, keywords included.
    sent = fake.calls[0].kwargs["response_format"]["json_schema"]["schema"]
    assert sent == json.loads(LIMITED)
    assert shown in str(fake.calls[1].messages[-1].content)


def test_chat_json_schema_two_violations_fail_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    scripted(monkeypatch, {**GOOD, "product": "x" * 67}, {**GOOD, "price": -1})
    result = runner.invoke(app, ["chat", "-m", "openai:stub", "--json-schema", LIMITED, "x"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: model output did not validate as Answer after 2 attempt(s)")
    assert "$.price: -1 is less than the minimum of 0" in line


@pytest.mark.parametrize(("schema", "message"), [
    ('{"type":"object","properties":{"a":1}}',
     "--json-schema: invalid JSON Schema at $.properties.a: 1 is not of type 'object', "
     "'boolean'"),
    ('{"type":"object","properties":{"c":{"type":"string","enum":[]}}}',
     "--json-schema: invalid JSON Schema at $.properties.c.enum: an empty enum allows no value"),
    ('{"type":"object","properties":{"n":{"type":"int"}}}',
     "--json-schema: invalid JSON Schema at $.properties.n.type: 'int' is not valid"),
    ('{"properties":{"a":{"$ref":"#/$defs/A"}}}',
     "--json-schema: invalid JSON Schema at $.properties.a.$ref: '#/$defs/A' does not resolve"),
    ('["not", "an", "object"]', "--json-schema must be a JSON object"),
])
def test_chat_malformed_schema_fails_in_one_line(stub_env: StubServer, schema: str,
                                                 message: str) -> None:
    result = runner.invoke(app, ["chat", "-m", "openai:stub", "--json-schema", schema, "x"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}")
    assert stub_env.stats.requests == 0  # refused before any model call


def test_chat_bare_fake_model_fails_in_one_line() -> None:
    result = runner.invoke(app, ["chat", "-m", "fake", "hi"], env={"COLUMNS": "80"})
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "-m fake:schema" in line
    assert "Traceback" not in result.output
    ok = runner.invoke(app, ["chat", "-m", "fake:schema", "--json-schema", SCHEMA, "hi"])
    assert ok.exit_code == 0, ok.output


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
