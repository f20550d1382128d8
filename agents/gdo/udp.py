"""A user-defined prompt (UDP): the LLM-GDO replacement for a user-defined function.

A UDP is a Jinja2 prompt template whose variables are the row's columns, an output
contract (simple typed columns, or a JSON Schema), optional few-shot examples and a
model spec. Every value a template prints is a cell of the user's table, so every
`{{ ... }}` output goes through the project's `data` filter (angle brackets neutralised,
control characters and line breaks flattened, long values cut): a cell can neither close
the delimiters the template puts around it (`<title>{{ title }}</title>`) nor forge an
instruction line. The template's own text is trusted.

Everything is checked before any model call: the template parses, the schema is a valid
JSON Schema, each example's output validates, and (when the operator renders its tasks)
every variable the template uses exists in the table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aisle.engines import RowFunction, RowResult, failed_row
from aisle.errors import AisleError, ConfigurationError
from aisle.llm.structured import JsonSchema
from aisle.llm.usage import UsageTracker
from aisle.prompts._render import data

__all__ = ["UDP", "ColumnType", "Example", "UDPCall", "UDPChoiceCall", "compile_template",
           "template_variables"]

ColumnType = Literal["string", "integer", "number", "boolean"]
"""A simple output column's type; a list of strings instead is a closed set of labels."""

_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
}


def _cell(value: Any) -> Any:
    # Jinja's `finalize`: every printed value is table data.
    if value is None:
        return ""
    if isinstance(value, str):
        return data(value)
    if isinstance(value, bool | int | float):
        return value
    return data(str(value))


_env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, finalize=_cell,
                            keep_trailing_newline=True, autoescape=False)


def compile_template(text: str, where: str = "prompt") -> jinja2.Template:
    """The template, parsed once.

    Raises:
        ConfigurationError: a syntax error, with its line.
    """
    try:
        return _env.from_string(text)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigurationError(f"{where}: template syntax error on line {e.lineno}: "
                                 f"{e.message}") from e


def template_variables(text: str) -> set[str]:
    """The top-level variables a template reads (`{{ name }}`, `{{ left.brand }}` gives
    `left`).

    Example:
        >>> sorted(template_variables("<a>{{ name }}</a>{% if brand %}{{ brand }}{% endif %}"))
        ['brand', 'name']
    """
    return set(meta.find_undeclared_variables(_env.parse(text)))


class Example(BaseModel):
    """One few-shot example: the template's variables and the answer it should get."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: dict[str, Any]
    output: dict[str, Any]


class UDP(BaseModel):
    """A user-defined prompt.

    Attributes:
        prompt: the template text (Jinja2; the row's columns are its variables).
        prompt_file: or a template file (relative paths resolve against the pipeline
            file's folder, or the working directory from Python).
        output: simple output columns, `{"brand": "string", "in_stock": "boolean",
            "size": ["S", "M", "L"]}`; every column is required.
        output_schema: or a JSON Schema of an object, for anything richer.
        examples: few-shot examples, sent as earlier chat turns.
        model: a model spec (`local:qwen2.5-coder-0.5b`, `openai:gpt-4o-mini`); None
            takes the pipeline's.
        max_tokens: the answer's token budget.
        temperature: None keeps the model's (aisle loads models at 0).

    Example:
        >>> udp = UDP(prompt="Brand of <title>{{ title }}</title>?", output={"brand": "string"})
        >>> udp.json_schema()["required"]
        ['brand']
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = None
    prompt_file: str | None = None
    output: dict[str, ColumnType | list[str]] | None = None
    output_schema: dict[str, Any] | None = None
    examples: list[Example] = Field(default_factory=list)
    model: str | None = None
    max_tokens: int = Field(256, ge=1, le=8192)
    temperature: float | None = Field(None, ge=0.0, le=2.0)

    @model_validator(mode="after")
    def _check(self) -> UDP:
        if (self.prompt is None) == (self.prompt_file is None):
            raise ValueError("give exactly one of 'prompt' (the template text) and "
                             "'prompt_file'")
        if self.output is not None and self.output_schema is not None:
            raise ValueError("give 'output' (simple columns) or 'output_schema', not both")
        if self.output is not None:
            for column, kind in self.output.items():
                if isinstance(kind, list) and not kind:
                    raise ValueError(f"output column {column!r}: an empty list of labels")
        if self.prompt is not None:
            compile_template(self.prompt)
        if self.output is not None or self.output_schema is not None:
            self.json_schema()
        return self

    def template_text(self, base: Path | None = None) -> str:
        """The template's text (read from `prompt_file` when that is set).

        Raises:
            ConfigurationError: the file is missing.
        """
        if self.prompt is not None:
            return self.prompt
        path = Path(self.prompt_file or "")
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise ConfigurationError(f"prompt file {path} not found")
        return path.read_text(encoding="utf-8")

    def json_schema(self, default: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The answer's JSON Schema: `output_schema`, else built from `output`, else the
        operator's `default`.

        Raises:
            ConfigurationError: none given and no default, or not a JSON Schema of an
                object.
        """
        if self.output_schema is not None:
            schema = dict(self.output_schema)
        elif self.output is not None:
            props = {c: ({"enum": list(k)} if isinstance(k, list) else dict(_TYPES[k]))
                     for c, k in self.output.items()}
            schema = {"type": "object", "properties": props, "required": list(props),
                      "additionalProperties": False}
        elif default is not None:
            schema = dict(default)
        else:
            raise ConfigurationError("this operator needs an output contract: give "
                                     "'output' (columns and types) or 'output_schema'")
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
            raise ConfigurationError("an output schema must be a JSON Schema of an object "
                                     "with 'properties'")
        JsonSchema(schema)  # raises ConfigurationError naming the problem
        return schema


class UDPCall(RowFunction):
    """One UDP call per task (`{"prompt": rendered text}`), as an engine's row function.

    Holds plain data only (the model as a spec string), so it pickles to Ray actors;
    `setup()` loads the model in the worker. From Python, `model` may also be a chat
    model object (the local engine only).
    """

    def __init__(self, *, agent: str, schema: Mapping[str, Any], model: str | BaseChatModel,
                 shots: Sequence[tuple[str, str]] = (), max_tokens: int = 256,
                 temperature: float | None = None) -> None:
        self.agent = agent
        self.schema = dict(schema)
        self.model = model
        self.shots = [tuple(s) for s in shots]
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._chat: BaseChatModel | None = None
        self._validator: JsonSchema | None = None

    def __getstate__(self) -> dict[str, Any]:
        if not isinstance(self.model, str):
            raise ConfigurationError("a UDP whose model is a Python object runs only on the "
                                     "local engine: give the model as a spec string")
        state = dict(self.__dict__)
        state["_chat"] = None
        state["_validator"] = None
        return state

    def messages(self, task: Mapping[str, Any]) -> list[BaseMessage]:
        """The few-shot turns, then the task's prompt."""
        out: list[BaseMessage] = []
        for user, shown in self.shots:
            out += [HumanMessage(user), AIMessage(shown)]
        out.append(HumanMessage(str(task["prompt"])))
        return out

    def setup(self) -> None:
        from aisle.llm import load_chat_model

        if self._chat is None:
            self._chat = load_chat_model(self.model)
        self._validator = JsonSchema(self.schema, name=_schema_name(self.agent))

    async def __call__(self, task: Mapping[str, Any]) -> RowResult:
        from aisle.llm import ainvoke_structured

        if self._chat is None or self._validator is None:
            self.setup()
        assert self._chat is not None
        assert self._validator is not None
        messages = self.messages(task)
        bind: dict[str, Any] = {"max_tokens": self.max_tokens}
        if self.temperature is not None:
            bind["temperature"] = self.temperature
        tracker = UsageTracker()
        start = time.perf_counter()
        value: Any = None
        error: str | None = None
        try:
            answer = await ainvoke_structured(self._chat, messages, self._validator,
                                              agent=self.agent,
                                              config={"callbacks": [tracker]}, **bind)
            value = answer.value
        except AisleError as e:  # invalid after the repair turn, server down, ...
            error = f"{type(e).__name__}: {e}"
        except Exception as e:  # keep the row whatever went wrong
            error = f"{type(e).__name__}: {e}"
        total = tracker.total()
        if error is not None and total.calls == 0:
            return failed_row(error, time.perf_counter() - start)
        return RowResult(value=value, error=error, prompt_tokens=total.prompt_tokens,
                         completion_tokens=total.completion_tokens,
                         calls=total.calls - total.cache_hits,
                         cached=total.calls > 0 and total.cache_hits == total.calls,
                         seconds=time.perf_counter() - start)


class UDPChoiceCall(UDPCall):
    """A yes/no decision read from the first answer token's probabilities instead of a
    generated JSON boolean: the value is `{"p_yes": P(Yes)}` (Yes and No renormalised),
    and the operator compares it with its threshold. Small models say "true" to almost
    everything when asked for JSON; the probability, with a threshold fitted on labelled
    validation rows, separates far better (ARAG's NLI agent works the same way). Needs a
    backend with logprobs; few-shot answers are sent as "Yes"/"No" turns."""

    choices = ("Yes", "No")

    def setup(self) -> None:
        super().setup()
        from aisle.llm import capabilities_of

        assert self._chat is not None
        if not capabilities_of(self._chat).logprobs:
            raise ConfigurationError(f"{self.agent}: decide: logprob needs a backend that "
                                     "returns logprobs (local, vllm, openai); use decide: json")

    async def __call__(self, task: Mapping[str, Any]) -> RowResult:
        from aisle.llm import capabilities_of, choice_probabilities
        from aisle.llm.usage import AGENT_KEY, SCHEMA_KEY

        if self._chat is None:
            self.setup()
        assert self._chat is not None
        messages = self.messages(task)
        k = max(1, min(20, capabilities_of(self._chat).max_top_logprobs or 20))
        tracker = UsageTracker()
        start = time.perf_counter()
        try:
            message = await self._chat.ainvoke(
                messages, config={"callbacks": [tracker], "metadata": {
                    AGENT_KEY: self.agent, SCHEMA_KEY: "".join(self.choices)}},
                logprobs=True, top_logprobs=k, max_tokens=1, temperature=0.0)
            probabilities = choice_probabilities(message, list(self.choices))
            error = None if probabilities is not None else (
                f"neither Yes nor No among the first token's top {k} alternatives "
                f"(answer {str(message.content)[:40]!r})")
        except Exception as e:  # keep the row whatever went wrong
            probabilities, error = None, f"{type(e).__name__}: {e}"
        total = tracker.total()
        value = None if probabilities is None else {"p_yes": probabilities["Yes"]}
        return RowResult(value=value, error=error, prompt_tokens=total.prompt_tokens,
                         completion_tokens=total.completion_tokens,
                         calls=total.calls - total.cache_hits,
                         cached=total.calls > 0 and total.cache_hits == total.calls,
                         seconds=time.perf_counter() - start)


def _schema_name(agent: str) -> str:
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in agent)[:64]
    return name or "Answer"


def render_shots(template: jinja2.Template, udp: UDP, schema: Mapping[str, Any],
                 where: str, yes_no: str | None = None) -> list[tuple[str, str]]:
    """The few-shot turns: each example's prompt and its answer as JSON (or, with
    `yes_no` naming the decision field, as "Yes"/"No").

    Raises:
        ConfigurationError: an example misses a variable or its output breaks the
            schema.
    """
    validator = JsonSchema(schema)
    shots = []
    for i, example in enumerate(udp.examples, 1):
        problems = validator.violations(example.output)
        if problems:
            raise ConfigurationError(f"{where}: example {i}'s output breaks the schema: "
                                     + "; ".join(problems))
        try:
            user = template.render(**example.input)
        except jinja2.UndefinedError as e:
            raise ConfigurationError(f"{where}: example {i}: {e.message}") from e
        answer = (("Yes" if example.output.get(yes_no) else "No") if yes_no
                  else json.dumps(example.output, ensure_ascii=False))
        shots.append((user, answer))
    return shots
