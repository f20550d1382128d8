"""The provider registry: the built-ins, and a new OpenAI-compatible backend added with
one class and one `register_provider` call, end to end through the stub server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aisle.cli import app
from aisle.errors import ConfigurationError
from aisle.llm import (
    AisleChatModel,
    Capabilities,
    FakeChatModel,
    OpenAICompatibleProvider,
    Provider,
    capabilities_of,
    get_provider,
    load_chat_model,
    parse_spec,
    providers,
    register_provider,
    unregister_provider,
)
from aisle.settings import Settings, get_settings
from aisle.testing import StubServer

runner = CliRunner()

TOY_CAPS = Capabilities(json_schema=True, logprobs=False, tool_calls=True, max_top_logprobs=0)


class ToyProvider(OpenAICompatibleProvider):
    name = "toy"
    description = "a toy OpenAI-compatible backend"
    capabilities = TOY_CAPS
    base_url_env = "TOY_BASE_URL"
    api_key_env = "TOY_API_KEY"


@pytest.fixture
def toy(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ToyProvider]:
    monkeypatch.setenv("TOY_BASE_URL", stub.base_url.removesuffix("/v1"))
    monkeypatch.setenv("TOY_API_KEY", "toy-key")
    provider = ToyProvider()
    register_provider(provider)
    yield provider
    if "toy" in _names():
        unregister_provider("toy")


def _names() -> list[str]:
    return [p.name for p in providers()]


def _info_json(env: dict[str, str] | None = None) -> dict[str, Any]:
    get_settings.cache_clear()  # read this call's environment
    result = runner.invoke(app, ["info", "--json"], env=env)
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)  # the whole of stdout is one object
    return report


def test_a_registered_provider_answers_end_to_end(toy: ToyProvider, stub: StubServer) -> None:
    model = load_chat_model("toy:m", settings=Settings())
    assert isinstance(model, AisleChatModel)
    assert model.invoke("hi").content == "stub answer"
    assert stub.stats.requests == 1
    assert stub.stats.bodies[0]["model"] == "m"
    assert model.openai_api_base == stub.base_url
    assert model.openai_api_key is not None
    assert model.openai_api_key.get_secret_value() == "toy-key"
    assert capabilities_of(model) == TOY_CAPS
    assert model.metadata is not None
    assert model.metadata["aisle_backend"] == "toy"
    assert model.limiter.limit == Settings().max_concurrency


def test_parse_spec_accepts_a_registered_provider(toy: ToyProvider) -> None:
    assert parse_spec("Toy:some/model") == ("toy", "some/model")
    assert get_provider("toy") is toy
    assert _names()[-1] == "toy"  # registration order; the built-ins come first


def test_info_json_lists_a_registered_provider(toy: ToyProvider) -> None:
    report = _info_json()
    (entry,) = [p for p in report["providers"] if p["name"] == "toy"]
    assert entry["description"] == "a toy OpenAI-compatible backend"
    assert entry["capabilities"] == {"json_schema": True, "logprobs": False,
                                     "tool_calls": True, "max_top_logprobs": 0,
                                     "refused_schema_keywords": []}
    assert entry["requires_model"] is True


def test_unregistering_removes_a_provider(toy: ToyProvider) -> None:
    assert unregister_provider("toy") is toy
    assert "toy" not in _names()
    with pytest.raises(ConfigurationError, match="unknown model provider 'toy'"):
        parse_spec("toy:m")
    with pytest.raises(ConfigurationError, match="unknown model provider 'toy'"):
        load_chat_model("toy:m")
    assert "toy" not in [p["name"] for p in _info_json()["providers"]]
    with pytest.raises(ConfigurationError, match="unknown model provider 'toy'"):
        unregister_provider("toy")


def test_unknown_provider_lists_the_registered_ones(toy: ToyProvider) -> None:
    with pytest.raises(ConfigurationError,
                       match=r"unknown model provider 'nope'; registered: local, vllm, "
                             r"openai, fake, toy"):
        get_provider("nope")


def test_a_duplicate_name_needs_replace(toy: ToyProvider) -> None:
    with pytest.raises(ConfigurationError, match=r"'toy' is already registered.*replace=True"):
        register_provider(ToyProvider())
    assert get_provider("toy") is toy
    newer = ToyProvider()
    register_provider(newer, replace=True)
    assert get_provider("toy") is newer
    assert _names().count("toy") == 1


@pytest.mark.parametrize("name", ["", "Toy", "toy:x", "my toy"])
def test_a_name_unusable_in_a_spec_is_refused(name: str) -> None:
    provider = ToyProvider()
    provider.name = name
    with pytest.raises(ConfigurationError, match="not usable in a spec"):
        register_provider(provider)
    assert name not in _names()


def test_a_missing_key_names_the_env_var(toy: ToyProvider, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.delenv("TOY_API_KEY")
    with pytest.raises(ConfigurationError, match="toy backend needs an API key: set TOY_API_KEY"):
        load_chat_model("toy:m", settings=Settings())
    monkeypatch.delenv("TOY_BASE_URL")
    with pytest.raises(ConfigurationError, match="needs a server URL: set TOY_BASE_URL"):
        load_chat_model("toy:m", api_key="k", settings=Settings())


def test_explicit_arguments_win_over_the_provider(toy: ToyProvider, stub: StubServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("TOY_API_KEY")
    model = load_chat_model("toy:m", base_url=stub.base_url, api_key="mine", max_concurrency=2,
                            capabilities=Capabilities(), settings=Settings())
    assert isinstance(model, AisleChatModel)
    assert model.invoke("hi").content == "stub answer"
    assert model.limiter.limit == 2
    assert capabilities_of(model) == Capabilities()


def test_a_spec_without_a_model_is_refused(toy: ToyProvider) -> None:
    with pytest.raises(ConfigurationError, match="'toy:MODEL'"):
        load_chat_model("toy", settings=Settings())


# Today's flags, which agents rely on (README "Backends" shows the same table).
BUILTINS = [
    ("local", Capabilities(json_schema=True, logprobs=True, tool_calls=True,
                           max_top_logprobs=20), False),
    ("vllm", Capabilities(json_schema=True, logprobs=True, tool_calls=False,
                          max_top_logprobs=20, refused_schema_keywords=("uniqueItems",)),
     True),
    ("openai", Capabilities(json_schema=True, logprobs=True, tool_calls=True,
                            max_top_logprobs=20), True),
    ("fake", Capabilities(), False),
]


@pytest.mark.parametrize(("name", "caps", "requires_model"), BUILTINS)
def test_builtin_providers(name: str, caps: Capabilities, requires_model: bool) -> None:
    provider = get_provider(name)
    assert isinstance(provider, Provider)
    assert provider.name == name
    assert provider.capabilities == caps
    assert provider.requires_model is requires_model
    assert provider.description
    provider.stop()  # nothing started: a no-op


def test_builtins_come_first_in_order() -> None:
    assert _names()[:4] == ["local", "vllm", "openai", "fake"]


def test_default_concurrency_per_provider() -> None:
    s = Settings(max_concurrency=3, local_parallel=7)
    assert get_provider("local").concurrency(s) == 7  # one request per llama.cpp slot
    assert get_provider("vllm").concurrency(s) == 3
    assert get_provider("openai").concurrency(s) == 3


def test_openai_key_falls_back_to_openai_api_key(monkeypatch: pytest.MonkeyPatch,
                                                 stub: StubServer) -> None:
    monkeypatch.delenv("AISLE_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai-env")
    provider = get_provider("openai")
    assert provider.resolve_api_key(Settings()) == "from-openai-env"
    assert provider.resolve_base_url("m", Settings()) == "https://api.openai.com/v1"
    monkeypatch.setenv("AISLE_OPENAI_API_KEY", "from-aisle-env")
    monkeypatch.setenv("AISLE_OPENAI_BASE_URL", stub.base_url)
    assert provider.resolve_api_key(Settings()) == "from-aisle-env"
    assert provider.resolve_base_url("m", Settings()) == stub.base_url


def test_vllm_uses_its_base_url_and_key_from_settings(stub: StubServer) -> None:
    provider = get_provider("vllm")
    s = Settings(vllm_base_url=stub.base_url)
    assert provider.resolve_base_url("m", s) == stub.base_url  # no managed server started
    assert provider.resolve_api_key(s) == "sk-no-key-required"
    model = load_chat_model("vllm:m", settings=s)
    assert model.invoke("hi").content == "stub answer"


def test_fake_builds_a_fake_chat_model() -> None:
    model = load_chat_model("fake", responses=["scripted"])
    assert isinstance(model, FakeChatModel)
    assert model.invoke("hi").content == "scripted"


def test_info_json_is_one_object_with_secrets_masked(tmp_path: Path) -> None:
    env = {"AISLE_OPENAI_API_KEY": "sk-very-secret", "AISLE_MODEL": "fake"}
    report = _info_json(env)
    assert set(report) == {"version", "default_model", "home", "providers", "settings",
                           "cache"}
    assert report["default_model"] == "fake"
    assert [p["name"] for p in report["providers"]][:4] == ["local", "vllm", "openai", "fake"]
    assert report["settings"]["openai_api_key"] == "***"
    assert report["settings"]["vllm_api_key"] is None
    assert report["cache"]["enabled"] is False
    assert report["cache"]["entries"] is None
    cache_path = tmp_path / "c.sqlite"
    on = _info_json({"AISLE_CACHE_ENABLED": "true", "AISLE_CACHE_PATH": str(cache_path)})
    assert on["cache"] == {"enabled": True, "path": str(cache_path), "entries": 0}
    get_settings.cache_clear()
    result = runner.invoke(app, ["info", "--json"], env=env)
    assert "sk-very-secret" not in result.output
