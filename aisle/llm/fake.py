"""A scripted chat model for unit tests of graph logic (never for results)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from aisle.llm._capabilities import Capabilities

__all__ = ["FakeCall", "FakeChatModel", "Reply"]

# A scripted reply: text, a message, a structured answer (pydantic model or dict),
# an exception to raise, or a function of (messages, call kwargs) returning any of these.
Reply = str | AIMessage | BaseModel | dict[str, Any] | Exception | Callable[..., Any]


@dataclass(frozen=True)
class FakeCall:
    """One call the fake received."""

    messages: list[BaseMessage]
    kwargs: dict[str, Any]


class FakeChatModel(BaseChatModel):
    """Answers from a script, in order, and records every call.

    Thread- and task-safe, so it can sit behind a concurrent fan-out; a reply that
    is a function can answer by looking at the prompt, which keeps fan-out tests
    independent of scheduling order.

    Example:
        >>> m = FakeChatModel(responses=["hello", {"score": 0.5}])
        >>> m.invoke("hi").content
        'hello'
        >>> m.invoke("again").content
        '{"score": 0.5}'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # Any, not Reply: pydantic would otherwise coerce a scripted pydantic answer into
    # an AIMessage.
    responses: Sequence[Any] = Field(default_factory=list)
    cycle: bool = False
    capabilities: Capabilities = Field(default_factory=Capabilities)
    model_id: str = "fake"
    backend: str = "fake"
    _calls: list[FakeCall] = PrivateAttr(default_factory=list)
    _index: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "aisle-fake"

    @property
    def calls(self) -> list[FakeCall]:
        """Every call so far, in arrival order."""
        return list(self._calls)

    def _next(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        with self._lock:
            self._calls.append(FakeCall(messages=messages, kwargs=kwargs))
            if not self.responses:
                raise IndexError("FakeChatModel has no scripted responses")
            if self._index >= len(self.responses):
                if not self.cycle:
                    raise IndexError(
                        f"FakeChatModel script exhausted after {len(self.responses)} replies"
                    )
                self._index = 0
            reply = self.responses[self._index]
            self._index += 1
        return self._to_message(reply, messages, kwargs)

    def _to_message(
        self, reply: Any, messages: list[BaseMessage], kwargs: dict[str, Any]
    ) -> AIMessage:
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, BaseModel):
            return self._to_message(reply(messages, kwargs), messages, kwargs)
        if isinstance(reply, AIMessage):
            message = reply
        elif isinstance(reply, BaseModel):
            message = AIMessage(content=reply.model_dump_json())
        elif isinstance(reply, dict):
            message = AIMessage(content=json.dumps(reply))
        else:
            message = AIMessage(content=str(reply))
        if message.usage_metadata is None:
            prompt_tokens = sum(len(str(m.content).split()) for m in messages)
            completion_tokens = len(str(message.content).split())
            message = message.model_copy(update={"usage_metadata": {
                "input_tokens": prompt_tokens,
                "output_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }})
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages, kwargs))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, None, **kwargs)
