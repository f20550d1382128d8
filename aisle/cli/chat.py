"""`aisle chat`: one answer from a model, optionally a structured one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from langchain_core.messages import HumanMessage, SystemMessage

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
from aisle.llm import invoke_structured, load_chat_model, parse_spec, track_usage
from aisle.llm.structured import JsonSchema
from aisle.prompts import render
from aisle.settings import get_settings


def chat(
    prompt: str = typer.Argument(..., help="What to ask."),
    model: str | None = MODEL_OPTION,
    json_schema: str | None = typer.Option(
        None, "--json-schema", help="JSON Schema, Draft 2020-12 (inline JSON or a file path), "
        "for the answer; the answer is validated against all of it."
    ),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Cap on generated tokens."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Bypass the response cache."),
    usage: bool = typer.Option(False, "--usage", help="Print tokens and latency (stderr)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Ask a model one question and print its answer."""
    with aisle_errors(), json_stdout(as_json) as emit, track_usage() as tracker:
        schema = _load_schema(json_schema) if json_schema else None
        _check_spec(model or get_settings().model)
        llm = load_chat_model(model, max_tokens=max_tokens, cache=False if no_cache else None)
        messages = [SystemMessage(render("chat/system.j2", json_schema=schema is not None)),
                    HumanMessage(prompt)]
        answer: Any
        attempts = 1
        if schema is None:
            answer = llm.invoke(messages, {"metadata": {"aisle_agent": "chat"}}).text
        else:
            structured = invoke_structured(llm, messages, schema, agent="chat")
            answer, attempts = structured.value, structured.attempts
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


def _check_spec(spec: str) -> None:
    """Refuse a bare `fake` model: it answers only from a script, which the CLI cannot give.

    Raises:
        ConfigurationError: the spec is `fake` with no model name.
    """
    provider, name = parse_spec(spec)
    if provider == "fake" and not name:
        raise ConfigurationError(
            "model 'fake' answers only from a script, which the CLI cannot give it: use "
            "-m fake:schema (a minimal answer valid for any schema) or a real model such as "
            "-m local:smollm2-135m"
        )


def _load_schema(text: str) -> JsonSchema:
    """`--json-schema`: inline JSON or a file, checked as a Draft 2020-12 JSON Schema.

    Raises:
        ConfigurationError: not JSON, not an object, or not a valid JSON Schema.
    """
    candidate = Path(text)
    raw = candidate.read_text() if not text.lstrip().startswith("{") and candidate.is_file() \
        else text
    try:
        schema = json.loads(raw)
    except json.JSONDecodeError as e:
        fail(f"--json-schema is neither a JSON object nor a readable file: {e}")
    if not isinstance(schema, dict):
        fail("--json-schema must be a JSON object")
    try:
        return JsonSchema(schema)
    except ConfigurationError as e:
        raise ConfigurationError(f"--json-schema: {e}") from e
