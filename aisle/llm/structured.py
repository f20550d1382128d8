"""Ask a chat model for a validated pydantic answer.

Constrained decoding to the JSON schema where the backend supports it (llama.cpp
server, vLLM, OpenAI); prompted JSON elsewhere. A failed validation gets one repair
turn that shows the model its error; then `StructuredOutputError` carries the raw
output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, convert_to_messages
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ValidationError

from aisle.errors import StructuredOutputError
from aisle.llm._capabilities import capabilities_of
from aisle.llm.usage import AGENT_KEY, SCHEMA_KEY

__all__ = ["StructuredAnswer", "ainvoke_structured", "invoke_structured", "parse_structured"]

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class StructuredAnswer(Generic[T]):
    """A validated answer and how it was obtained.

    Attributes:
        value: the validated pydantic instance.
        raw: the model's text that validated.
        attempts: 1, or 2 when the repair turn was needed.
        message: the model's final message (usage, logprobs, cache flag).
    """

    value: T
    raw: str
    attempts: int
    message: AIMessage


def parse_structured(text: str, schema: type[T]) -> T:
    """Parse a model's text as `schema`, tolerating a Markdown code fence.

    Raises:
        ValueError: not JSON (`json.JSONDecodeError`) or not valid for the schema
            (`pydantic.ValidationError`).
    """
    match = _FENCE.match(text)
    body = match.group(1) if match else text.strip()
    return schema.model_validate(json.loads(body))


def _schema_instruction(schema: type[BaseModel]) -> str:
    return (
        "Respond with only a JSON object, no other text, that matches this JSON schema:\n"
        + json.dumps(schema.model_json_schema())
    )


def _prepare(
    model: BaseChatModel,
    messages: LanguageModelInput,
    schema: type[BaseModel],
    agent: str | None,
    config: RunnableConfig | None,
    bind: dict[str, Any],
) -> tuple[Runnable[LanguageModelInput, BaseMessage], list[BaseMessage], RunnableConfig]:
    msgs = list(convert_to_messages([messages] if isinstance(messages, str) else messages))
    runnable: Runnable[LanguageModelInput, BaseMessage]
    if capabilities_of(model).json_schema:
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
        }
        runnable = model.bind(response_format=response_format, **bind)
    else:
        # No constrained decoding: state the schema after the user's request.
        msgs.append(HumanMessage(_schema_instruction(schema)))
        runnable = model.bind(**bind) if bind else model
    cfg: RunnableConfig = dict(config or {})  # type: ignore[assignment]
    metadata = {**(cfg.get("metadata") or {}), SCHEMA_KEY: schema.__name__}
    if agent:
        metadata[AGENT_KEY] = agent
    cfg["metadata"] = metadata
    return runnable, msgs, cfg


def _as_ai(message: BaseMessage) -> AIMessage:
    return message if isinstance(message, AIMessage) else AIMessage(content=message.text)


def _check(message: AIMessage, schema: type[T]) -> tuple[T | None, str, str]:
    raw = message.text
    try:
        return parse_structured(raw, schema), raw, ""
    except (ValueError, ValidationError) as e:
        return None, raw, str(e)


class _Attempts(Generic[T]):
    """The first attempt and, if allowed, one repair turn; shared by sync and async."""

    def __init__(self, schema: type[T], messages: list[BaseMessage], repair: bool) -> None:
        self.schema = schema
        self.messages = messages
        self.limit = 2 if repair else 1
        self.raws: list[str] = []
        self.errors: list[str] = []

    def __iter__(self) -> Iterator[int]:
        return iter(range(1, self.limit + 1))

    def check(self, attempt: int, reply: BaseMessage) -> StructuredAnswer[T] | None:
        """The validated answer, or None after queueing a repair turn that shows the error."""
        message = _as_ai(reply)
        value, raw, error = _check(message, self.schema)
        if value is not None:
            return StructuredAnswer(value, raw, attempt, message)
        self.raws.append(raw)
        self.errors.append(error)
        self.messages = [
            *self.messages,
            AIMessage(content=raw),
            HumanMessage("Your answer is not valid: "
                         f"{error.strip()}\nReply again with only the corrected JSON object."),
        ]
        return None

    def failure(self) -> StructuredOutputError:
        return StructuredOutputError(self.schema.__name__, self.raws, self.errors)


async def ainvoke_structured(
    model: BaseChatModel,
    messages: LanguageModelInput,
    schema: type[T],
    *,
    agent: str | None = None,
    repair: bool = True,
    config: RunnableConfig | None = None,
    **bind: Any,
) -> StructuredAnswer[T]:
    """Ask `model` for an answer that validates as `schema`.

    Args:
        model: any LangChain chat model; its capabilities decide constrained vs
            prompted JSON.
        messages: a string or a list of messages.
        schema: the pydantic model of the answer (may be built at run time, e.g.
            with an enum of allowed ids).
        agent: name recorded in usage accounting.
        repair: allow one repair turn after a validation failure.
        config: LangChain run config (callbacks, tags, metadata).
        **bind: extra generation parameters (`max_tokens`, `temperature`, ...).

    Raises:
        StructuredOutputError: still invalid after the repair turn.

    Example:
        >>> import asyncio
        >>> from pydantic import BaseModel
        >>> from aisle.llm import FakeChatModel
        >>> class Answer(BaseModel):
        ...     city: str
        >>> m = FakeChatModel(responses=['{"city": "Paris"}'])
        >>> asyncio.run(ainvoke_structured(m, "Capital of France?", Answer)).value.city
        'Paris'
    """
    runnable, msgs, cfg = _prepare(model, messages, schema, agent, config, bind)
    attempts = _Attempts(schema, msgs, repair)
    for n in attempts:
        answer = attempts.check(n, await runnable.ainvoke(attempts.messages, cfg))
        if answer is not None:
            return answer
    raise attempts.failure()


def invoke_structured(
    model: BaseChatModel,
    messages: LanguageModelInput,
    schema: type[T],
    *,
    agent: str | None = None,
    repair: bool = True,
    config: RunnableConfig | None = None,
    **bind: Any,
) -> StructuredAnswer[T]:
    """Synchronous `ainvoke_structured`, for the CLI and scripts."""
    runnable, msgs, cfg = _prepare(model, messages, schema, agent, config, bind)
    attempts = _Attempts(schema, msgs, repair)
    for n in attempts:
        answer = attempts.check(n, runnable.invoke(attempts.messages, cfg))
        if answer is not None:
            return answer
    raise attempts.failure()
