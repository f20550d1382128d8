"""Model backends as providers: one object per backend, kept in an ordered registry.

A provider knows its name, what it can do (`Capabilities`), where its server is
(a base URL from settings or arguments, or a server aisle starts), its API key, how
many requests to keep in flight, and how to stop the servers it started.
`load_chat_model("name:model")` looks the provider up here and lets it build the model.

Every real backend speaks the OpenAI chat-completions protocol, so an
`OpenAICompatibleProvider` subclass is all a new one needs: one class and one
`register_provider` call.

Example:
    >>> from aisle.llm import Capabilities, OpenAICompatibleProvider, load_chat_model
    >>> class Gateway(OpenAICompatibleProvider):
    ...     name = "gateway"
    ...     description = "our team's OpenAI-compatible gateway"
    ...     capabilities = Capabilities(json_schema=True, tool_calls=True)
    ...     default_base_url = "http://gateway.internal:8000"
    ...     api_key_env = "GATEWAY_API_KEY"
    >>> register_provider(Gateway())
    >>> model = load_chat_model("gateway:llama-3.1-8b", api_key="k", cache=False)
    >>> model.openai_api_base
    'http://gateway.internal:8000/v1'
    >>> [p.name for p in providers()][:4]
    ['local', 'vllm', 'openai', 'fake']
    >>> get_provider("gateway").capabilities.tool_calls
    True
    >>> unregister_provider("gateway")
    Gateway(name='gateway')
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
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
from aisle.llm.local import LocalServer, LocalServerConfig, get_local_server
from aisle.llm.registry import DEFAULT_LOCAL_MODEL, builtin_template, resolve_gguf
from aisle.llm.usage import BACKEND_KEY
from aisle.llm.vllm import VLLMServer, VLLMServerConfig
from aisle.settings import Settings, get_settings

__all__ = [
    "NO_KEY",
    "FakeProvider",
    "LocalProvider",
    "ModelOptions",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "Provider",
    "VLLMProvider",
    "get_cache",
    "get_provider",
    "providers",
    "register_provider",
    "unregister_provider",
]

logger = logging.getLogger(__name__)

NO_KEY = "sk-no-key-required"
"""The key sent to servers that check none (llama.cpp, a vLLM without `--api-key`)."""


@dataclass(frozen=True)
class ModelOptions:
    """What `load_chat_model` asks of a provider besides the model name.

    Attributes:
        settings: the run's settings.
        cache: a cache object, True/False, or None to follow `settings.cache_enabled`.
        temperature: sampling temperature.
        max_tokens: cap on generated tokens.
        capabilities: flags that override the provider's own.
        base_url: an explicit server root, which wins over the provider's.
        api_key: an explicit key, which wins over the provider's.
        max_concurrency: an explicit in-flight bound, which wins over the provider's.
        kwargs: extra fields for the chat model.
    """

    settings: Settings
    cache: BaseCache | bool | None = None
    temperature: float = 0.0
    max_tokens: int = 512
    capabilities: Capabilities | None = None
    base_url: str | None = None
    api_key: str | None = None
    max_concurrency: int | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class Provider(ABC):
    """One model backend, reached by the spec `"<name>:<model>"`.

    Subclasses set the class attributes and implement `chat_model`; the other
    methods have defaults for a backend with no server, no key and nothing to stop.

    Attributes:
        name: the spec prefix: lowercase, no colon or spaces.
        description: one line for `aisle info`.
        capabilities: what the backend supports (agents consult these flags).
        requires_model: whether a spec must name a model (`"openai"` alone is an error).
    """

    name: str
    description: str
    capabilities: Capabilities = Capabilities()
    requires_model: bool = True

    @abstractmethod
    def chat_model(self, model: str, options: ModelOptions) -> BaseChatModel:
        """Build the chat model for `model` (the part of the spec after the colon)."""

    def resolve_base_url(self, model: str, settings: Settings) -> str | None:
        """The server root for `model` (None: nothing to reach over the network)."""
        return None

    def resolve_api_key(self, settings: Settings) -> str | None:
        """The API key (None: the backend takes none)."""
        return None

    def concurrency(self, settings: Settings) -> int:
        """Requests kept in flight to this backend unless the caller says otherwise."""
        return settings.max_concurrency

    def stop(self) -> None:  # noqa: B027 (a no-op by default: most backends start nothing)
        """Stop every server this provider started; safe to call twice."""

    def check_model(self, model: str) -> None:
        """Raise if the spec names no model and this backend needs one.

        Raises:
            ConfigurationError: `requires_model` and an empty `model`.
        """
        if self.requires_model and not model:
            raise ConfigurationError(
                f"the {self.name} backend needs a model: '{self.name}:MODEL'"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={getattr(self, 'name', None)!r})"


class OpenAICompatibleProvider(Provider):
    """A backend that speaks the OpenAI chat-completions protocol (aisle's one wire path).

    By default the base URL comes from the environment variable `base_url_env`, else
    `default_base_url`; the key from `api_key_env` (none needed when that is None).
    Override `resolve_base_url` / `resolve_api_key` to read settings or start a server.

    Attributes:
        default_base_url: server root used when nothing else names one.
        base_url_env: environment variable holding the server root.
        api_key_env: environment variable holding the key; None for a keyless server.
        timeout_setting: the setting named when a request times out.
        timeout_retries: how often a timed-out request is retried (`RetryPolicy`).
    """

    default_base_url: str | None = None
    base_url_env: str | None = None
    api_key_env: str | None = None
    timeout_setting: str = "AISLE_REQUEST_TIMEOUT"
    timeout_retries: int = 1

    def request_timeout(self, settings: Settings) -> float:
        """Seconds before one request times out (`AISLE_REQUEST_TIMEOUT`)."""
        return settings.request_timeout

    def resolve_base_url(self, model: str, settings: Settings) -> str:
        """The server root, from `base_url_env` or `default_base_url`.

        Raises:
            ConfigurationError: neither is set.
        """
        url = (os.environ.get(self.base_url_env) if self.base_url_env else None) \
            or self.default_base_url
        if not url:
            where = f"set {self.base_url_env} or " if self.base_url_env else ""
            raise ConfigurationError(
                f"the {self.name} backend needs a server URL: {where}pass base_url=..."
            )
        return url

    def resolve_api_key(self, settings: Settings) -> str:
        """The key from `api_key_env`, or `NO_KEY` when the backend takes none.

        Raises:
            ConfigurationError: `api_key_env` is set in the class but not in the environment.
        """
        if self.api_key_env is None:
            return NO_KEY
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigurationError(
                f"the {self.name} backend needs an API key: set {self.api_key_env} "
                f"or pass api_key=..."
            )
        return key

    def chat_model(self, model: str, options: ModelOptions) -> BaseChatModel:
        """Resolve key and server (explicit options first), then build the model."""
        key = options.api_key or self.resolve_api_key(options.settings)
        root = options.base_url or self.resolve_base_url(model, options.settings)
        return self.build(model=model, model_id=model, base_url=root, api_key=key,
                          options=options)

    def build(
        self, *, model: str, model_id: str, base_url: str, api_key: str, options: ModelOptions
    ) -> AisleChatModel:
        """The one place an `AisleChatModel` is made: aisle's retry policy, the
        per-server concurrency bound, capability flags and the response cache.

        Args:
            model: the model name sent to the server.
            model_id: the stable identity used in cache keys and reports.
            base_url: the server root, with or without `/v1`.
            api_key: the key to send.
            options: the rest of the request.
        """
        settings = options.settings
        api_base = base_url.rstrip("/")
        if not api_base.endswith("/v1"):
            api_base += "/v1"
        limit = options.max_concurrency or self.concurrency(settings)
        return AisleChatModel(
            model=model or model_id,
            model_id=model_id,
            backend=self.name,
            base_url=api_base,
            api_key=SecretStr(api_key),
            temperature=options.temperature,
            max_completion_tokens=options.max_tokens,
            timeout=self.request_timeout(settings),
            http_async_client=async_client(self.request_timeout(settings)),
            max_retries=0,  # retries live in aisle's one layer (RetryPolicy)
            retry_policy=RetryPolicy(max_retries=settings.max_retries,
                                     initial_wait=settings.retry_initial_wait,
                                     max_wait=settings.retry_max_wait,
                                     max_timeout_retries=self.timeout_retries,
                                     timeout_setting=self.timeout_setting),
            limiter=_limiter(self.name, api_base, limit),
            capabilities=options.capabilities or self.capabilities,
            cache=_resolve_cache(options.cache, settings),
            metadata={BACKEND_KEY: self.name, "ls_model_name": model_id},
            **options.kwargs,
        )


class LocalProvider(OpenAICompatibleProvider):
    """`local`, `local:NAME` or `local:/path/model.gguf`: llama.cpp embedded in this
    process (xllamacpp), started on first use with `AISLE_LOCAL_*` settings.

    The server is aisle's own, so explicit `base_url`/`api_key` options are ignored.
    """

    name = "local"
    description = "embedded llama.cpp server (xllamacpp) on a GGUF model; the default"
    capabilities = Capabilities(json_schema=True, logprobs=True, tool_calls=True,
                                max_top_logprobs=20)
    requires_model = False

    def __init__(self) -> None:
        self._started: dict[LocalServerConfig, LocalServer] = {}
        self._lock = threading.Lock()

    def _start(self, model: str, settings: Settings) -> tuple[str, str]:
        model_id, path = resolve_gguf(model or DEFAULT_LOCAL_MODEL)
        config = LocalServerConfig(
            model_path=path, ctx=settings.local_ctx, parallel=settings.local_parallel,
            threads=settings.local_threads, chat_template=builtin_template(model_id),
        )
        server = get_local_server(config)
        with self._lock:
            self._started[config] = server
        return model_id, server.start(timeout=settings.local_startup_timeout)

    def resolve_base_url(self, model: str, settings: Settings) -> str:
        """Start (once) the embedded server for `model` and return its root.

        Raises:
            ModelNotFoundError: the GGUF is missing.
            ServerStartupError: llama.cpp did not start.
        """
        return self._start(model, settings)[1]

    def resolve_api_key(self, settings: Settings) -> str:
        return NO_KEY

    def concurrency(self, settings: Settings) -> int:
        # More in flight than decoding slots only queues inside llama.cpp.
        return settings.local_parallel

    # The embedded server is aisle's own and health-checked at start; what makes a local
    # request slow is the CPU (a long answer, slots sharing two cores), not a silent
    # server, and a timed-out local request would only be decoded again.
    timeout_setting = "AISLE_LOCAL_REQUEST_TIMEOUT"
    timeout_retries = 0

    def request_timeout(self, settings: Settings) -> float:
        return settings.local_request_timeout

    def chat_model(self, model: str, options: ModelOptions) -> BaseChatModel:
        model_id, root = self._start(model, options.settings)
        return self.build(model=model, model_id=model_id, base_url=root, api_key=NO_KEY,
                          options=options)

    def stop(self) -> None:
        with self._lock:
            servers, self._started = list(self._started.values()), {}
        for server in servers:
            server.stop()


class VLLMProvider(OpenAICompatibleProvider):
    """`vllm:MODEL`: a vLLM server at `AISLE_VLLM_BASE_URL`, or one aisle starts (once
    per configuration) with `AISLE_VLLM_PYTHON` and the other `AISLE_VLLM_*` settings.
    """

    name = "vllm"
    description = "vLLM OpenAI-compatible server, at AISLE_VLLM_BASE_URL or started by aisle"
    # vLLM's guided decoding answers a schema holding `uniqueItems` with HTTP 400
    # ("Unimplemented keys"; benchmarks/schema_keywords.py).
    capabilities = Capabilities(json_schema=True, logprobs=True, tool_calls=False,
                                max_top_logprobs=20, refused_schema_keywords=("uniqueItems",))

    def __init__(self) -> None:
        self._servers: dict[VLLMServerConfig, VLLMServer] = {}
        self._lock = threading.Lock()

    @property
    def managed_servers(self) -> Mapping[VLLMServerConfig, VLLMServer]:
        """The servers this provider started (or is starting), by configuration."""
        with self._lock:
            return MappingProxyType(dict(self._servers))

    def resolve_api_key(self, settings: Settings) -> str:
        return settings.vllm_api_key.get_secret_value() if settings.vllm_api_key else NO_KEY

    def resolve_base_url(self, model: str, settings: Settings) -> str:
        """`AISLE_VLLM_BASE_URL`, else the managed server for `model`, started if needed.

        Raises:
            MissingDependencyError: the interpreter has no vLLM.
            ServerStartupError: the managed server did not become ready.
        """
        return settings.vllm_base_url or self.managed_server(model, settings).start()

    def managed_server(self, model: str, settings: Settings) -> VLLMServer:
        """The process-wide managed server for `model` under these settings (not started)."""
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
        with self._lock:
            server = self._servers.get(config)
            if server is None:
                server = self._servers[config] = VLLMServer(config)
            return server

    def stop(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.stop()


class OpenAIProvider(OpenAICompatibleProvider):
    """`openai:MODEL`: hosted OpenAI, or any OpenAI-compatible endpoint at
    `AISLE_OPENAI_BASE_URL`; the key from `AISLE_OPENAI_API_KEY` or `OPENAI_API_KEY`.
    """

    name = "openai"
    description = "hosted OpenAI or any OpenAI-compatible endpoint (AISLE_OPENAI_BASE_URL)"
    capabilities = Capabilities(json_schema=True, logprobs=True, tool_calls=True,
                                max_top_logprobs=20)
    default_base_url = "https://api.openai.com/v1"

    def resolve_base_url(self, model: str, settings: Settings) -> str:
        return settings.openai_base_url or super().resolve_base_url(model, settings)

    def resolve_api_key(self, settings: Settings) -> str:
        """`AISLE_OPENAI_API_KEY`, else `OPENAI_API_KEY`.

        Raises:
            ConfigurationError: neither is set.
        """
        secret = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        key = secret or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigurationError(
                "the openai backend needs an API key: set AISLE_OPENAI_API_KEY or "
                "OPENAI_API_KEY (any non-empty value for a keyless local endpoint)"
            )
        return key


class FakeProvider(Provider):
    """`fake`: a `FakeChatModel` built from the keyword arguments (`responses=[...]`);
    `fake:schema` answers every structured request with a minimal schema-valid object
    (for running a graph's wiring with no model, e.g. under `langgraph dev`; never for
    results); `fake:hash` with a schema-valid object whose choices follow a hash of
    the prompt (the same in every process: engine agreement tests)."""

    name = "fake"
    description = "scripted answers, for unit tests of graph logic ('fake:schema': any schema)"
    requires_model = False

    def chat_model(self, model: str, options: ModelOptions) -> BaseChatModel:
        if model == "schema":
            from aisle.testing.schema_instance import schema_reply

            return FakeChatModel(responses=[schema_reply], cycle=True, **options.kwargs)
        if model == "hash":
            from aisle.testing.schema_instance import hashed_reply

            return FakeChatModel(responses=[hashed_reply], cycle=True, **options.kwargs)
        if model == "script":
            return _scripted_fake(options)
        if model:
            raise ConfigurationError(f"unknown fake model {model!r}: use 'fake' (scripted "
                                     "with responses=[...]), 'fake:schema', 'fake:hash' or "
                                     "'fake:script'")
        return FakeChatModel(**options.kwargs)


def _scripted_fake(options: ModelOptions) -> BaseChatModel:
    """`fake:script`: the JSON file `AISLE_FAKE_SCRIPT` names, `{"by_schema": {schema name:
    reply}, "text": "a plain answer"}`; schemas it does not script get a minimal valid
    object (as `fake:schema`). For driving a whole app (the demo's browser test) from
    another process."""
    import json

    from aisle.testing.schema_instance import PLAIN_FAKE_ANSWER, schema_reply

    path = os.environ.get("AISLE_FAKE_SCRIPT")
    if not path:
        raise ConfigurationError("fake:script needs AISLE_FAKE_SCRIPT, the path of a JSON "
                                 'script {"by_schema": {...}, "text": "..."}')
    try:
        script = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"AISLE_FAKE_SCRIPT {path}: not a readable JSON script "
                                 f"({e})") from e
    text = str(script.get("text", "ok"))

    def reply(messages: Any, kwargs: dict[str, Any]) -> Any:
        answer = schema_reply(messages, kwargs)
        return text if answer == PLAIN_FAKE_ANSWER else answer

    return FakeChatModel(by_schema=dict(script.get("by_schema", {})), responses=[reply],
                         cycle=True, **options.kwargs)


# The registry, and the process-wide resources that providers share.
_lock = threading.Lock()
_providers: dict[str, Provider] = {}
_caches: dict[Path, SQLiteCache] = {}
_limiters: dict[tuple[str, str], ConcurrencyLimiter] = {}


def register_provider(provider: Provider, *, replace: bool = False) -> None:
    """Make `provider` reachable as `"<provider.name>:<model>"`.

    Args:
        provider: the backend.
        replace: allow taking over a name already registered (the old provider is
            not stopped; call its `stop()` if it started servers).

    Raises:
        ConfigurationError: the name is malformed, or taken and `replace` is False.
    """
    name = getattr(provider, "name", "")
    if not isinstance(name, str) or not name or name != name.strip().lower() \
            or ":" in name or any(c.isspace() for c in name):
        raise ConfigurationError(
            f"provider name {name!r} of {type(provider).__name__} is not usable in a spec: "
            "use a non-empty lowercase name without ':' or spaces"
        )
    with _lock:
        if name in _providers and not replace:
            raise ConfigurationError(
                f"a provider named {name!r} is already registered "
                f"({type(_providers[name]).__name__}); pass replace=True to take its place"
            )
        _providers[name] = provider


def unregister_provider(name: str) -> Provider:
    """Remove a provider and return it (its servers keep running until its `stop()`).

    Raises:
        ConfigurationError: no provider has that name.
    """
    with _lock:
        provider = _providers.pop(name, None)
        if provider is None:
            raise _unknown(name)
        return provider


def get_provider(name: str) -> Provider:
    """The provider registered under `name` (case-insensitive).

    Raises:
        ConfigurationError: none is; the message lists the registered names.

    Example:
        >>> get_provider("openai").capabilities.json_schema
        True
    """
    with _lock:
        provider = _providers.get(name.strip().lower())
        if provider is None:
            raise _unknown(name)
        return provider


def providers() -> tuple[Provider, ...]:
    """Every registered provider, in registration order (the built-ins first)."""
    with _lock:
        return tuple(_providers.values())


def _unknown(name: str) -> ConfigurationError:
    # Called with _lock held.
    return ConfigurationError(
        f"unknown model provider {name!r}; registered: {', '.join(_providers)} "
        "(add one with aisle.llm.register_provider)"
    )


def get_cache(settings: Settings | None = None) -> SQLiteCache:
    """The process-wide response cache at the settings' cache path."""
    settings = settings or get_settings()
    path = settings.resolved_cache_path
    with _lock:
        cache = _caches.get(path)
        if cache is None:
            cache = _caches[path] = SQLiteCache(path)
        return cache


def _resolve_cache(cache: BaseCache | bool | None, settings: Settings) -> BaseCache | bool:
    if isinstance(cache, BaseCache):
        return cache
    if cache is True or (cache is None and settings.cache_enabled):
        return get_cache(settings)
    return False


def _limiter(backend: str, base_url: str, limit: int) -> ConcurrencyLimiter:
    with _lock:
        limiter = _limiters.get((backend, base_url))
        if limiter is None:
            limiter = _limiters[(backend, base_url)] = ConcurrencyLimiter(limit)
        return limiter


for _builtin in (LocalProvider(), VLLMProvider(), OpenAIProvider(), FakeProvider()):
    register_provider(_builtin)
del _builtin
