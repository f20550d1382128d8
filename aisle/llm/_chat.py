"""The one wire path: an OpenAI-compatible chat model with aisle's reliability layer.

Hosted APIs, vLLM and the embedded llama.cpp server all speak the OpenAI chat
completions protocol, so they share this class and differ only in base URL, key,
capabilities and how their server is started.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from pydantic import ConfigDict, Field, PrivateAttr

from aisle.llm._capabilities import Capabilities
from aisle.llm._retry import ConcurrencyLimiter, RetryPolicy, RetryStats, translate_error

__all__ = ["AisleChatModel"]

# Parameters that do not change the answer, left out of the cache key. Credentials
# and the server address never enter it either: the same request to the same model
# is a hit whether the local server came up on port 8080 or 41234.
_NOT_IN_CACHE_KEY = {"stream", "stream_options"}


class AisleChatModel(ChatOpenAI):
    """`ChatOpenAI` plus aisle's retry policy, concurrency bound, capabilities and a
    credential-free cache key. Build it with `aisle.llm.load_chat_model`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: str = Field(description="Backend name: local, vllm, openai.")
    model_id: str = Field(description="Stable model identity used in cache keys and reports.")
    capabilities: Capabilities = Field(default_factory=Capabilities)
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    limiter: ConcurrencyLimiter = Field(default_factory=lambda: ConcurrencyLimiter(4),
                                        exclude=True)
    _retry_stats: RetryStats = PrivateAttr(default_factory=RetryStats)

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return False

    @property
    def retry_stats(self) -> RetryStats:
        """Attempts, retries and back-off sleeps so far (shared by `bind` copies)."""
        return self._retry_stats

    @property
    def _llm_type(self) -> str:
        return f"aisle-{self.backend}"

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        params = self._get_invocation_params(stop=stop, **kwargs)
        params = {k: v for k, v in params.items() if k not in _NOT_IN_CACHE_KEY}
        params["model"] = self.model_id
        key = {"backend": self.backend, "params": params}
        return json.dumps(key, sort_keys=True, default=str)

    def _route_response_format(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # ChatOpenAI sends any `response_format` through the SDK's beta `parse()`,
        # which raises on a truncated answer instead of returning it. Sent as an
        # extra body field the request is the same on the wire, and a truncated
        # answer comes back as text, where the structured-output repair turn sees it.
        fmt = kwargs.get("response_format")
        if not isinstance(fmt, dict):
            return kwargs
        rest = {k: v for k, v in kwargs.items() if k != "response_format"}
        rest["extra_body"] = {**(self.extra_body or {}), **(kwargs.get("extra_body") or {}),
                              "response_format": fmt}
        return rest

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            for attempt in self.retry_policy.retrying(self._retry_stats):
                with attempt, self.limiter.slot():
                    self._retry_stats.attempts += 1
                    return super()._generate(messages, stop, run_manager,
                                             **self._route_response_format(kwargs))
        except Exception as exc:
            translated = translate_error(exc, self.backend, self.openai_api_base,
                                         self.retry_policy.timeout_setting)
            if translated is exc:
                raise
            raise translated from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            async for attempt in self.retry_policy.async_retrying(self._retry_stats):
                with attempt:
                    async with self.limiter.aslot():
                        self._retry_stats.attempts += 1
                        return await super()._agenerate(
                            messages, stop, run_manager, **self._route_response_format(kwargs)
                        )
        except Exception as exc:
            translated = translate_error(exc, self.backend, self.openai_api_base,
                                         self.retry_policy.timeout_setting)
            if translated is exc:
                raise
            raise translated from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")
