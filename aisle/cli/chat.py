"""`aisle chat`: one answer from a model, optionally a structured one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, create_model

from aisle.cli._common import (
    JSON_OPTION,
    MODEL_OPTION,
    aisle_errors,
    console,
    err_console,
    fail,
    json_stdout,
)
from aisle.errors import ConfigurationError
from aisle.llm import invoke_structured, load_chat_model, track_usage
from aisle.prompts import render
from aisle.settings import get_settings

_JSON_TYPES: dict[str, Any] = {
    "string": str, "integer": int, "number": float, "boolean": bool,
    "array": list, "object": dict,
}


def schema_model(schema: dict[str, Any], name: str = "Answer") -> type[BaseModel]:
    """A pydantic model for a flat JSON object schema (the `--json-schema` case).

    Nested objects and arrays are accepted as plain dict/list fields; `enum`
    becomes a `Literal`.

    Raises:
        ConfigurationError: not an object schema with properties.
    """
    from typing import Literal

    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ConfigurationError("--json-schema must be an object schema with 'properties'")
    required = set(schema.get("required", []))
    fields: dict[str, Any] = {}
    for key, prop in schema["properties"].items():
        if "enum" in prop:
            typ: Any = Literal[tuple(prop["enum"])]
        else:
            typ = _JSON_TYPES.get(prop.get("type", "string"), Any)
        fields[key] = (typ, ...) if key in required else (typ | None, None)
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def chat(
    prompt: str = typer.Argument(..., help="What to ask."),
    model: str | None = MODEL_OPTION,
    json_schema: str | None = typer.Option(
        None, "--json-schema", help="JSON schema (inline JSON or a file path) for the answer."
    ),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Cap on generated tokens."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Bypass the response cache."),
    usage: bool = typer.Option(False, "--usage", help="Print tokens and latency (stderr)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Ask a model one question and print its answer."""
    with aisle_errors(), json_stdout(as_json) as emit, track_usage() as tracker:
        schema = _load_schema(json_schema) if json_schema else None
        llm = load_chat_model(model, max_tokens=max_tokens, cache=False if no_cache else None)
        messages = [SystemMessage(render("chat/system.j2", json_schema=schema is not None)),
                    HumanMessage(prompt)]
        answer: Any
        attempts = 1
        if schema is None:
            answer = llm.invoke(messages, {"metadata": {"aisle_agent": "chat"}}).text
        else:
            structured = invoke_structured(llm, messages, schema_model(schema), agent="chat")
            answer, attempts = structured.value.model_dump(mode="json"), structured.attempts
            if attempts > 1:
                err_console.print("(needed a repair turn)")
        if usage:
            err_console.print(tracker.table())
        if as_json:
            emit({"model": model or get_settings().model, "answer": answer,
                  "attempts": attempts, "usage": tracker.to_dict()})
            return
    if isinstance(answer, str):
        console.print(answer, markup=False, highlight=False)
    else:
        console.print_json(data=answer)


def _load_schema(text: str) -> dict[str, Any]:
    candidate = Path(text)
    raw = candidate.read_text() if not text.lstrip().startswith("{") and candidate.is_file() \
        else text
    try:
        schema = json.loads(raw)
    except json.JSONDecodeError as e:
        fail(f"--json-schema is neither a JSON object nor a readable file: {e}")
    if not isinstance(schema, dict):
        fail("--json-schema must be a JSON object")
    return schema
