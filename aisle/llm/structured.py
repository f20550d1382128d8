"""Ask a chat model for a validated answer: a pydantic model, or a raw JSON Schema.

Constrained decoding to the JSON schema where the backend supports it (llama.cpp
server, vLLM, OpenAI); prompted JSON elsewhere. A failed validation gets one repair
turn that shows the model its error; then `StructuredOutputError` carries the raw
output.

A pydantic schema is validated by pydantic. A raw JSON Schema (a dict, or a
`JsonSchema`) is checked as Draft 2020-12 up front and every answer is validated
against the whole schema with `jsonschema`, whatever keywords the backend's
constrained decoding enforces (many enforce only some: `benchmarks/schema_keywords.py`
measures which).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
from jsonschema_specifications import REGISTRY as _SPECIFICATIONS  # type: ignore[import-untyped]
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, convert_to_messages
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from aisle.errors import ConfigurationError, StructuredOutputError
from aisle.llm._capabilities import capabilities_of
from aisle.llm.usage import AGENT_KEY, SCHEMA_KEY

__all__ = [
    "JsonSchema",
    "SchemaViolation",
    "StructuredAnswer",
    "ainvoke_structured",
    "invoke_structured",
    "parse_structured",
]

T = TypeVar("T", bound=BaseModel)
V = TypeVar("V")

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
# OpenAI's rule for `response_format.json_schema.name`; a title that breaks it is not sent.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Values that are data, not subschemas: never searched for keywords.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
_BASE_URI = "urn:aisle:answer"
_MAX_ERRORS = 10
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class StructuredAnswer(Generic[V]):
    """A validated answer and how it was obtained.

    Attributes:
        value: the validated pydantic instance, or for a `JsonSchema` the parsed JSON
            value (usually a dict).
        raw: the model's text that validated.
        attempts: 1, or 2 when the repair turn was needed.
        message: the model's final message (usage, logprobs, cache flag).
    """

    value: V
    raw: str
    attempts: int
    message: AIMessage


class SchemaViolation(ValueError):
    """A JSON value breaks a `JsonSchema`; the message lists each violation with its
    JSON path (`$.product: 'Nike ...' is too long (maxLength: 60)`)."""


class JsonSchema:
    """A raw JSON Schema (Draft 2020-12) as the answer's schema.

    The schema is checked when built: an invalid one (against the 2020-12
    metaschema), an empty `enum` or a `$ref` that does not resolve inside it is a
    `ConfigurationError` naming the problem and its JSON path. Answers are validated
    against the whole schema, `format` included where `jsonschema` has a checker for
    it (date, email, ipv4, ipv6, uuid, regex, ...). Remote `$ref`s are never fetched.

    Args:
        schema: the JSON Schema, a JSON object.
        name: the schema's name in requests, usage accounting and errors; defaults to
            its `title` when that is a valid OpenAI schema name, else "Answer".

    Raises:
        ConfigurationError: the schema is not a valid JSON Schema.

    Example:
        >>> s = JsonSchema({"type": "object", "properties": {"n": {"maximum": 3}}})
        >>> s.validate({"n": 2})
        >>> s.violations({"n": 5})
        ['$.n: 5 is greater than the maximum of 3 (maximum: 3)']
        >>> try:
        ...     JsonSchema({"type": "object", "properties": {"a": 1}})
        ... except ConfigurationError as e:
        ...     print(e)
        invalid JSON Schema at $.properties.a: 1 is not of type 'object', 'boolean'
    """

    def __init__(self, schema: Mapping[str, Any], name: str | None = None) -> None:
        if not isinstance(schema, Mapping):
            raise ConfigurationError(
                f"a JSON Schema for a structured answer must be a JSON object, not "
                f"{type(schema).__name__}"
            )
        self.schema: dict[str, Any] = dict(schema)
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as e:
            raise ConfigurationError(
                f"invalid JSON Schema at {e.json_path}: {_shorten(e.message)}"
            ) from e
        _check_satisfiable(self.schema)
        registry = _check_refs(self.schema)
        self._validator = Draft202012Validator(
            self.schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        title = self.schema.get("title")
        if name is None:
            name = title if isinstance(title, str) and _NAME.match(title) else "Answer"
        elif not _NAME.match(name):
            raise ConfigurationError(
                f"schema name {name!r} is not usable in a request: use 1-64 letters, "
                "digits, '_' or '-'"
            )
        self.name: str = name

    def __repr__(self) -> str:
        return f"JsonSchema({self.schema!r}, name={self.name!r})"

    def violations(self, value: Any) -> list[str]:
        """Every way `value` breaks the schema, one line each, in JSON-path order
        (at most 10, then a count)."""
        try:
            errors = sorted(self._validator.iter_errors(value), key=lambda e: e.json_path)
        except Unresolvable as e:  # a $ref under a nested $id that the build check skips
            raise ConfigurationError(f"JSON Schema {self.name}: unresolvable $ref: {e}") from e
        lines = []
        for error in errors[:_MAX_ERRORS]:
            line = f"{error.json_path}: {_shorten(error.message)}"
            if not isinstance(error.validator_value, dict | list):
                line += f" ({error.validator}: {json.dumps(error.validator_value)})"
            lines.append(line)
        if len(errors) > _MAX_ERRORS:
            lines.append(f"... and {len(errors) - _MAX_ERRORS} more")
        return lines

    def validate(self, value: Any) -> None:
        """Raise `SchemaViolation` unless `value` is valid for the whole schema."""
        lines = self.violations(value)
        if lines:
            raise SchemaViolation("; ".join(lines))

    def parse(self, text: str) -> Any:
        """Parse a model's text (a Markdown code fence is tolerated) and validate it.

        Raises:
            ValueError: not JSON (`json.JSONDecodeError`) or not valid for the
                schema (`SchemaViolation`).
        """
        value = json.loads(_unfence(text))
        self.validate(value)
        return value


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


def _walk(node: Any, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every subschema (dict) of `node` with its JSON path, skipping data values."""
    if isinstance(node, dict):
        yield node, path
        for key, child in node.items():
            if key not in _DATA_KEYWORDS:
                yield from _walk(child, f"{path}.{key}" if _NAME.match(key) else
                                 f"{path}[{json.dumps(key)}]")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _walk(child, f"{path}[{i}]")


def _check_satisfiable(schema: dict[str, Any]) -> None:
    # The 2020-12 metaschema allows `enum: []`, but nothing can match it.
    for node, path in _walk(schema, "$"):
        if node.get("enum") == []:
            raise ConfigurationError(
                f"invalid JSON Schema at {path}.enum: an empty enum allows no value; "
                "list at least one"
            )


def _check_refs(schema: dict[str, Any]) -> Registry[Any]:
    """A registry for validating `schema` that never fetches; every local `$ref`
    checked to resolve."""
    resource = DRAFT202012.create_resource(schema)
    base = resource.id() or _BASE_URI
    registry: Registry[Any] = Registry().with_resource(base, resource).crawl()
    nodes = list(_walk(schema, "$"))
    if any("$id" in node for node, path in nodes if path != "$"):
        return registry  # nested base URIs: leave resolution to validation
    resolver = _SPECIFICATIONS.combine(registry).resolver(base_uri=base)
    for node, path in nodes:
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except Unresolvable as e:
                raise ConfigurationError(
                    f"invalid JSON Schema at {path}.$ref: {ref!r} does not resolve "
                    "(only references inside the schema, such as '#/$defs/Name', are "
                    "followed)"
                ) from e
    return registry


def _unfence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1) if match else text.strip()


@overload
def parse_structured(text: str, schema: type[T]) -> T: ...
@overload
def parse_structured(text: str, schema: JsonSchema) -> Any: ...
def parse_structured(text: str, schema: type[BaseModel] | JsonSchema) -> Any:
    """Parse a model's text as `schema`, tolerating a Markdown code fence.

    Raises:
        ValueError: not JSON (`json.JSONDecodeError`) or not valid for the schema
            (`pydantic.ValidationError`, or `SchemaViolation` for a `JsonSchema`).
    """
    if isinstance(schema, JsonSchema):
        return schema.parse(text)
    return schema.model_validate(json.loads(_unfence(text)))


class _Target:
    """What a call asks for, whichever kind of schema: its name, its JSON Schema, and
    how to parse an answer."""

    def __init__(self, schema: type[BaseModel] | JsonSchema | Mapping[str, Any]) -> None:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            self.name = schema.__name__
            self.json_schema = schema.model_json_schema()
        else:
            if not isinstance(schema, JsonSchema):
                schema = JsonSchema(schema)
            self.name, self.json_schema = schema.name, schema.schema
        self.schema = schema

    def parse(self, text: str) -> Any:
        return parse_structured(text, self.schema)


def _schema_instruction(json_schema: dict[str, Any]) -> str:
    return (
        "Respond with only a JSON object, no other text, that matches this JSON schema:\n"
        + json.dumps(json_schema)
    )


# Keywords whose value maps names to subschemas: a key there is a name, not a keyword.
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                        "dependentSchemas"})


def _without_keywords(schema: Any, drop: set[str]) -> Any:
    """`schema` with the keywords in `drop` removed at every level (names of properties
    and definitions are kept even when they match). The answer is still validated against
    the original."""
    if not drop:
        return schema

    def walk(node: Any, names: bool) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, not names and k in _NAME_MAPS) for k, v in node.items()
                    if names or k not in drop}
        if isinstance(node, list):
            return [walk(v, False) for v in node]
        return node

    return walk(schema, False)


def _prepare(
    model: BaseChatModel,
    messages: LanguageModelInput,
    target: _Target,
    agent: str | None,
    config: RunnableConfig | None,
    bind: dict[str, Any],
) -> tuple[Runnable[LanguageModelInput, BaseMessage], list[BaseMessage], RunnableConfig]:
    msgs = list(convert_to_messages([messages] if isinstance(messages, str) else messages))
    runnable: Runnable[LanguageModelInput, BaseMessage]
    capabilities = capabilities_of(model)
    if capabilities.json_schema:
        sent = _without_keywords(target.json_schema, set(capabilities.refused_schema_keywords))
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": target.name, "schema": sent},
        }
        runnable = model.bind(response_format=response_format, **bind)
    else:
        # No constrained decoding: state the schema after the user's request.
        msgs.append(HumanMessage(_schema_instruction(target.json_schema)))
        runnable = model.bind(**bind) if bind else model
    cfg: RunnableConfig = dict(config or {})  # type: ignore[assignment]
    metadata = {**(cfg.get("metadata") or {}), SCHEMA_KEY: target.name}
    if agent:
        metadata[AGENT_KEY] = agent
    cfg["metadata"] = metadata
    return runnable, msgs, cfg


def _as_ai(message: BaseMessage) -> AIMessage:
    return message if isinstance(message, AIMessage) else AIMessage(content=message.text)


class _Attempts:
    """The first attempt and, if allowed, one repair turn; shared by sync and async."""

    def __init__(self, target: _Target, messages: list[BaseMessage], repair: bool) -> None:
        self.target = target
        self.messages = messages
        self.limit = 2 if repair else 1
        self.raws: list[str] = []
        self.errors: list[str] = []

    def __iter__(self) -> Iterator[int]:
        return iter(range(1, self.limit + 1))

    def check(self, attempt: int, reply: BaseMessage) -> StructuredAnswer[Any] | None:
        """The validated answer, or None after queueing a repair turn that shows the error."""
        message = _as_ai(reply)
        raw = message.text
        try:
            return StructuredAnswer(self.target.parse(raw), raw, attempt, message)
        except (ValueError, ValidationError) as e:
            error = str(e)
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
        return StructuredOutputError(self.target.name, self.raws, self.errors)


@overload
async def ainvoke_structured(
    model: BaseChatModel, messages: LanguageModelInput, schema: type[T], *,
    agent: str | None = None, repair: bool = True, config: RunnableConfig | None = None,
    **bind: Any,
) -> StructuredAnswer[T]: ...
@overload
async def ainvoke_structured(
    model: BaseChatModel, messages: LanguageModelInput,
    schema: JsonSchema | Mapping[str, Any], *,
    agent: str | None = None, repair: bool = True, config: RunnableConfig | None = None,
    **bind: Any,
) -> StructuredAnswer[Any]: ...
async def ainvoke_structured(
    model: BaseChatModel,
    messages: LanguageModelInput,
    schema: type[BaseModel] | JsonSchema | Mapping[str, Any],
    *,
    agent: str | None = None,
    repair: bool = True,
    config: RunnableConfig | None = None,
    **bind: Any,
) -> StructuredAnswer[Any]:
    """Ask `model` for an answer that validates as `schema`.

    Args:
        model: any LangChain chat model; its capabilities decide constrained vs
            prompted JSON.
        messages: a string or a list of messages.
        schema: the pydantic model of the answer (may be built at run time, e.g.
            with an enum of allowed ids), or a raw JSON Schema (a dict, checked when
            the call starts, or a `JsonSchema` built once); the answer's `value` is
            then the parsed JSON.
        agent: name recorded in usage accounting.
        repair: allow one repair turn after a validation failure.
        config: LangChain run config (callbacks, tags, metadata).
        **bind: extra generation parameters (`max_tokens`, `temperature`, ...).

    Raises:
        StructuredOutputError: still invalid after the repair turn.
        ConfigurationError: `schema` is not a valid JSON Schema.

    Example:
        >>> import asyncio
        >>> from pydantic import BaseModel
        >>> from aisle.llm import FakeChatModel
        >>> class Answer(BaseModel):
        ...     city: str
        >>> m = FakeChatModel(responses=['{"city": "Paris"}'])
        >>> asyncio.run(ainvoke_structured(m, "Capital of France?", Answer)).value.city
        'Paris'
        >>> m = FakeChatModel(responses=['{"city": "Paris"}'])
        >>> city = {"type": "object", "properties": {"city": {"maxLength": 10}}}
        >>> asyncio.run(ainvoke_structured(m, "Capital of France?", city)).value
        {'city': 'Paris'}
    """
    target = _Target(schema)
    runnable, msgs, cfg = _prepare(model, messages, target, agent, config, bind)
    attempts = _Attempts(target, msgs, repair)
    for n in attempts:
        answer = attempts.check(n, await runnable.ainvoke(attempts.messages, cfg))
        if answer is not None:
            return answer
    raise attempts.failure()


@overload
def invoke_structured(
    model: BaseChatModel, messages: LanguageModelInput, schema: type[T], *,
    agent: str | None = None, repair: bool = True, config: RunnableConfig | None = None,
    **bind: Any,
) -> StructuredAnswer[T]: ...
@overload
def invoke_structured(
    model: BaseChatModel, messages: LanguageModelInput,
    schema: JsonSchema | Mapping[str, Any], *,
    agent: str | None = None, repair: bool = True, config: RunnableConfig | None = None,
    **bind: Any,
) -> StructuredAnswer[Any]: ...
def invoke_structured(
    model: BaseChatModel,
    messages: LanguageModelInput,
    schema: type[BaseModel] | JsonSchema | Mapping[str, Any],
    *,
    agent: str | None = None,
    repair: bool = True,
    config: RunnableConfig | None = None,
    **bind: Any,
) -> StructuredAnswer[Any]:
    """Synchronous `ainvoke_structured`, for the CLI and scripts."""
    target = _Target(schema)
    runnable, msgs, cfg = _prepare(model, messages, target, agent, config, bind)
    attempts = _Attempts(target, msgs, repair)
    for n in attempts:
        answer = attempts.check(n, runnable.invoke(attempts.messages, cfg))
        if answer is not None:
            return answer
    raise attempts.failure()
