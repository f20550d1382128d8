"""`load_chat_model`: one function from a `"provider:model"` spec to a LangChain chat model."""

from __future__ import annotations

import logging
import os
import shlex
import threading
from pathlib import Path
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from aisle.errors import ConfigurationError
from aisle.llm._capabilities import Capabilities
from aisle.llm._chat import AisleChatModel
from aisle.llm._http import async_client
from aisle.llm._retry import ConcurrencyLimiter, RetryPolicy
from aisle.llm.cache import SQLiteCache
from aisle.llm.fake import FakeChatModel
from aisle.llm.local import LOCAL_CAPABILITIES, LocalServerConfig, get_local_server
from aisle.llm.registry import DEFAULT_LOCAL_MODEL, builtin_template, resolve_gguf
from aisle.llm.usage import BACKEND_KEY
from aisle.llm.vllm import VLLM_CAPABILITIES, VLLMServer, VLLMServerConfig
from aisle.settings import Settings, get_settings

__all__ = ["BACKENDS", "get_cache", "load_chat_model", "parse_spec"]

logger = logging.getLogger(__name__)

OPENAI_CAPABILITIES = Capabilities(
    json_schema=True, logprobs=True, tool_calls=True, max_top_logprobs=20
)

BACKENDS: dict[str, str] = {
    "local": "embedded llama.cpp server (xllamacpp) on a GGUF model; the default",
    "vllm": "vLLM OpenAI-compatible server, at AISLE_VLLM_BASE_URL or started by aisle",
    "openai": "hosted OpenAI or any OpenAI-compatible endpoint (AISLE_OPENAI_BASE_URL)",
    "fake": "scripted answers, for unit tests of graph logic",
}

_lock = threading.Lock()
_caches: dict[Path, SQLiteCache] = {}
_limiters: dict[tuple[str, str], ConcurrencyLimiter] = {}
_vllm_servers: dict[VLLMServerConfig, VLLMServer] = {}


def parse_spec(spec: str) -> tuple[str, str]:
    """Split `"provider:model"`; a bare provider gets an empty model.

    Raises:
        ConfigurationError: unknown provider.

    Example:
        >>> parse_spec("local:qwen2.5-coder-0.5b")
        ('local', 'qwen2.5-coder-0.5b')
    """
    provider, _, model = spec.partition(":")
    provider = provider.strip().lower()
    if provider not in BACKENDS:
        raise ConfigurationError(
            f"unknown model provider {provider!r} in spec {spec!r}; "
            f"use one of {', '.join(BACKENDS)} as 'provider:model'"
        )
    return provider, model.strip()


def get_cache(settings: Settings | None = None) -> SQLiteCache:
    """The process-wide response cache at the settings' cache path."""
    settings = settings or get_settings()
    path = settings.resolved_cache_path
    with _lock:
        cache = _caches.get(path)
        if cache is None:
            cache = _caches[path] = SQLiteCache(path)
        return cache


def _limiter(backend: str, base_url: str, limit: int) -> ConcurrencyLimiter:
    with _lock:
        limiter = _limiters.get((backend, base_url))
        if limiter is None:
            limiter = _limiters[(backend, base_url)] = ConcurrencyLimiter(limit)
        return limiter


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

    Specs follow LangChain's `init_chat_model` style:

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
        base_url: server root for `openai`/`vllm` (with or without `/v1`).
        api_key: key for `openai`/`vllm`.
        max_concurrency: in-flight requests to this backend.
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
    provider, name = parse_spec(spec or settings.model)
    if provider == "fake":
        return FakeChatModel(**kwargs)

    resolved_cache: BaseCache | bool
    if isinstance(cache, BaseCache):
        resolved_cache = cache
    elif (cache is None and settings.cache_enabled) or cache is True:
        resolved_cache = get_cache(settings)
    else:
        resolved_cache = False

    limit = max_concurrency or settings.max_concurrency
    if provider == "local":
        model_id, path = resolve_gguf(name or DEFAULT_LOCAL_MODEL)
        server = get_local_server(LocalServerConfig(
            model_path=path, ctx=settings.local_ctx, parallel=settings.local_parallel,
            threads=settings.local_threads, chat_template=builtin_template(model_id),
        ))
        root = server.start(timeout=settings.local_startup_timeout)
        caps = capabilities or LOCAL_CAPABILITIES
        key = "sk-no-key-required"
        # More in flight than slots only queues inside llama.cpp.
        limit = max_concurrency or settings.local_parallel
    elif provider == "vllm":
        if not name:
            raise ConfigurationError("the vllm backend needs a model: 'vllm:MODEL'")
        key = api_key or (settings.vllm_api_key.get_secret_value()
                          if settings.vllm_api_key else "sk-no-key-required")
        root = base_url or settings.vllm_base_url or _managed_vllm(name, settings)
        model_id = name
        caps = capabilities or VLLM_CAPABILITIES
    else:  # openai
        if not name:
            raise ConfigurationError("the openai backend needs a model: 'openai:MODEL'")
        root = base_url or settings.openai_base_url or "https://api.openai.com/v1"
        secret = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        resolved_key = api_key or secret or os.environ.get("OPENAI_API_KEY")
        if not resolved_key:
            raise ConfigurationError(
                "the openai backend needs an API key: set AISLE_OPENAI_API_KEY or "
                "OPENAI_API_KEY (any non-empty value for a keyless local endpoint)"
            )
        key = resolved_key
        model_id = name
        caps = capabilities or OPENAI_CAPABILITIES

    api_base = root.rstrip("/")
    if not api_base.endswith("/v1"):
        api_base += "/v1"
    return AisleChatModel(
        model=name or model_id,
        model_id=model_id,
        backend=provider,
        base_url=api_base,
        api_key=SecretStr(key),
        temperature=temperature,
        max_completion_tokens=max_tokens,
        timeout=settings.request_timeout,
        http_async_client=async_client(settings.request_timeout),
        max_retries=0,  # retries live in aisle's one layer (RetryPolicy)
        retry_policy=RetryPolicy(max_retries=settings.max_retries,
                                 initial_wait=settings.retry_initial_wait,
                                 max_wait=settings.retry_max_wait),
        limiter=_limiter(provider, api_base, limit),
        capabilities=caps,
        cache=resolved_cache,
        metadata={BACKEND_KEY: provider, "ls_model_name": model_id},
        **kwargs,
    )


def _managed_vllm(model: str, settings: Settings) -> str:
    config = VLLMServerConfig(
        model=model,
        python=settings.vllm_python or os.environ.get("AISLE_VLLM_PYTHON") or "python",
        max_model_len=settings.vllm_max_model_len,
        dtype=settings.vllm_dtype,
        tensor_parallel_size=settings.vllm_tensor_parallel_size,
        gpu_memory_utilization=settings.vllm_gpu_memory_utilization,
        startup_timeout=settings.vllm_startup_timeout,
        extra_args=tuple(shlex.split(settings.vllm_extra_args)),
    )
    with _lock:
        server = _vllm_servers.get(config)
        if server is None:
            server = _vllm_servers[config] = VLLMServer(config)
    return server.start()
