"""`load_chat_model`: one function from a `"provider:model"` spec to a LangChain chat model.

The spec names a provider in the registry (`aisle.llm.providers`), which builds the model.
"""

from __future__ import annotations

from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.language_models import BaseChatModel

from aisle.errors import ConfigurationError
from aisle.llm._capabilities import Capabilities
from aisle.llm.providers import ModelOptions, get_cache, get_provider, providers
from aisle.settings import Settings, get_settings

__all__ = ["get_cache", "load_chat_model", "parse_spec"]


def parse_spec(spec: str) -> tuple[str, str]:
    """Split `"provider:model"`; a bare provider gets an empty model.

    Raises:
        ConfigurationError: the provider is not registered.

    Example:
        >>> parse_spec("local:qwen2.5-coder-0.5b")
        ('local', 'qwen2.5-coder-0.5b')
    """
    provider, _, model = spec.partition(":")
    provider = provider.strip().lower()
    names = [p.name for p in providers()]
    if provider not in names:
        raise ConfigurationError(
            f"unknown model provider {provider!r} in spec {spec!r}; "
            f"use one of {', '.join(names)} as 'provider:model' "
            "(or add one with aisle.llm.register_provider)"
        )
    return provider, model.strip()


def load_chat_model(
    spec: str | BaseChatModel | None = None,
    *,
    settings: Settings | None = None,
    cache: bool | BaseCache | None = None,
    temperature: float = 0.0,
    max_tokens: int = 512,
    capabilities: Capabilities | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    max_concurrency: int | None = None,
    **kwargs: Any,
) -> BaseChatModel:
    """Build a chat model from a spec, starting its server if aisle manages one.

    Specs follow LangChain's `init_chat_model` style, `"provider:model"`, where the
    provider is any registered one (`aisle.llm.providers()`). The built-ins:

    - `local` or `local:NAME` (a registered model) or `local:/path/model.gguf`
    - `vllm:MODEL` (a served model name, or an HF model directory for a managed server)
    - `openai:MODEL` (hosted OpenAI, or any OpenAI-compatible endpoint via `base_url`)
    - `fake` (pass `responses=[...]`)

    A `BaseChatModel` is returned unchanged, so every graph also takes a model the
    user built.

    Args:
        spec: the model spec; defaults to `settings.model`.
        settings: defaults to the environment's (`AISLE_*`).
        cache: True/False to switch the persistent response cache, a cache object to
            use it, None to follow `settings.cache_enabled`.
        temperature: sampling temperature (0 by default, for reproducible evals).
        max_tokens: cap on generated tokens.
        capabilities: override the backend's capability flags.
        base_url: server root for a network backend (with or without `/v1`).
        api_key: key for a network backend.
        max_concurrency: in-flight requests to this backend (the provider's
            default otherwise).
        **kwargs: passed to the chat model (`FakeChatModel` fields for `fake`;
            `ChatOpenAI` fields otherwise, e.g. `seed`).

    Raises:
        ConfigurationError: bad spec or missing credentials.
        ModelNotFoundError: a local model file is missing.
        ServerStartupError: a managed server did not start.

    Example:
        >>> m = load_chat_model("fake", responses=["hi"])
        >>> m.invoke("hello").content
        'hi'
    """
    if isinstance(spec, BaseChatModel):
        return spec
    settings = settings or get_settings()
    name, model = parse_spec(spec or settings.model)
    provider = get_provider(name)
    provider.check_model(model)
    return provider.chat_model(model, ModelOptions(
        settings=settings, cache=cache, temperature=temperature, max_tokens=max_tokens,
        capabilities=capabilities, base_url=base_url, api_key=api_key,
        max_concurrency=max_concurrency, kwargs=kwargs,
    ))
