"""A scripted chat model for unit tests of graph logic (never for results)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from aisle.llm._capabilities import Capabilities
from aisle.llm.usage import AGENT_KEY, SCHEMA_KEY

__all__ = ["FakeCall", "FakeChatModel", "Reply"]

# A scripted reply: text, a message, a structured answer (pydantic model or dict),
# an exception to raise, or a function of (messages, call kwargs) returning any of these.
Reply = str | AIMessage | BaseModel | dict[str, Any] | Exception | Callable[..., Any]


@dataclass(frozen=True)
class FakeCall:
    """One call the fake received, with the agent and answer schema it was made for
    (from the run metadata aisle's roles set; None when the caller set none)."""

    messages: list[BaseMessage]
    kwargs: dict[str, Any]
    agent: str | None = None
    schema: str | None = None


class FakeChatModel(BaseChatModel):
    """Answers from a script and records every call.

    Two kinds of script: `by_schema` maps the name of the answer schema a call asks
    for (a pydantic model's name, or a choice role's `YesNo`) to its reply, so a graph
    test is independent of prompt wording and of scheduling order; `responses` are
    replies in order, for calls no `by_schema` entry matches. Thread- and task-safe,
    so it can sit behind a concurrent fan-out. A reply that is a function gets
    `(messages, kwargs)`. `bind_tools` sends the tools' OpenAI schemas as the `tools`
    keyword (as a real backend would), so a script can answer with an `AIMessage`
    holding `tool_calls` and a test can check what the model was offered.

    Example:
        >>> m = FakeChatModel(responses=["hello", {"score": 0.5}])
        >>> m.invoke("hi").content
        'hello'
        >>> m.invoke("again").content
        '{"score": 0.5}'
        >>> m = FakeChatModel(by_schema={"Score": {"score": 1}})
        >>> m.invoke("hi", config={"metadata": {"aisle_schema": "Score"}}).content
        '{"score": 1}'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # Any, not Reply: pydantic would otherwise coerce a scripted pydantic answer into
    # an AIMessage.
    responses: Sequence[Any] = Field(default_factory=list)
    by_schema: Mapping[str, Any] = Field(default_factory=dict)
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

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """The model with `tools` (as OpenAI tool schemas) in every call's kwargs."""
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _next(self, messages: list[BaseMessage], kwargs: dict[str, Any],
              metadata: Mapping[str, Any] | None = None) -> AIMessage:
        meta = metadata or {}
        schema = meta.get(SCHEMA_KEY) or _response_format_name(kwargs)
        with self._lock:
            self._calls.append(FakeCall(messages=messages, kwargs=kwargs,
                                        agent=meta.get(AGENT_KEY), schema=schema))
            if schema is not None and schema in self.by_schema:
                return self._to_message(self.by_schema[schema], messages, kwargs)
            if not self.responses:
                raise IndexError(f"FakeChatModel has no reply for schema {schema!r} and no "
                                 "scripted responses")
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
        metadata = run_manager.metadata if run_manager is not None else None
        return ChatResult(generations=[ChatGeneration(
            message=self._next(messages, kwargs, metadata))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        metadata = run_manager.metadata if run_manager is not None else None
        return ChatResult(generations=[ChatGeneration(
            message=self._next(messages, kwargs, metadata))])


def _response_format_name(kwargs: Mapping[str, Any]) -> str | None:
    """The schema name of a constrained-decoding request, if any."""
    fmt = kwargs.get("response_format")
    if isinstance(fmt, Mapping):
        name = (fmt.get("json_schema") or {}).get("name")
        return str(name) if name else None
    return None
