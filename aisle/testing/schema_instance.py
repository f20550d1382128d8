"""Build a minimal valid instance of a JSON schema, for stub and fake answers."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

__all__ = ["PLAIN_FAKE_ANSWER", "hashed_reply", "schema_instance", "schema_reply"]


def schema_instance(schema: dict[str, Any], root: dict[str, Any] | None = None,
                    pick: Callable[[int], int] | None = None) -> Any:
    """A small value that validates against `schema` (objects, arrays, enums, refs).

    With `pick` (called with a number of options n, returning one in range(n)), the
    choices that have alternatives are made by it: which enum value, true or false,
    which small integer; without it, always the first.

    Example:
        >>> schema_instance({"type": "object", "properties": {"n": {"type": "integer"}},
        ...                  "required": ["n"]})
        {'n': 1}
    """
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return schema_instance(root.get("$defs", {})[name], root, pick)
    if "const" in schema:
        return schema["const"]
    choose = pick or (lambda n: 0)
    if "enum" in schema:
        return schema["enum"][choose(len(schema["enum"]))]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            option = options[choose(len(options))] if pick else options[0]
            return schema_instance(option, root, pick)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: schema_instance(v, root, pick) for k, v in props.items()}
    if kind == "array":
        n = max(1, int(schema.get("minItems", 1)))
        items = schema.get("items", {"type": "string"})
        return [schema_instance(items, root, pick) for _ in range(n)]
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 4))) + ("" if pick is None else
                                                                 "x" * choose(4))
    if kind == "integer":
        return int(schema.get("minimum", 1)) + choose(3)
    if kind == "number":
        lo = float(schema.get("minimum", 0.0))
        hi = float(schema.get("maximum", lo + 1.0))
        return (lo + hi) / 2
    if kind == "boolean":
        return pick is None or choose(2) == 1
    return None


_SCHEMA_IN_TEXT = re.compile(r"JSON schema:\s*(\{.*\})\s*$", re.DOTALL)


PLAIN_FAKE_ANSWER = "fake answer"
"""What the schema fakes answer a request that asks for no schema."""


def schema_reply(messages: Sequence[BaseMessage], kwargs: dict[str, Any]) -> str:
    """A `FakeChatModel` reply that answers any structured request validly.

    Reads the schema from `response_format` or from aisle's prompted-JSON
    instruction; otherwise answers plain text.
    """
    return _reply(messages, kwargs, None)


def hashed_reply(messages: Sequence[BaseMessage], kwargs: dict[str, Any]) -> str:
    """Like `schema_reply`, but the answer's choices (booleans, enum values, small
    integers) follow a hash of the messages: the same prompt always gets the same
    answer, different prompts get different ones, in any process (`fake:hash`, for
    checking that two engines give the same output row by row)."""
    text = "\n".join(str(m.content) for m in messages)
    digest = hashlib.sha256(text.encode()).digest()
    state = [0]

    def pick(n: int) -> int:
        byte = digest[state[0] % len(digest)]
        state[0] += 1
        return byte % n

    return _reply(messages, kwargs, pick)


def _reply(messages: Sequence[BaseMessage], kwargs: dict[str, Any],
           pick: Callable[[int], int] | None) -> str:
    fmt = kwargs.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return json.dumps(schema_instance(fmt["json_schema"]["schema"], pick=pick))
    match = _SCHEMA_IN_TEXT.search(str(messages[-1].content)) if messages else None
    if match:
        return json.dumps(schema_instance(json.loads(match.group(1)), pick=pick))
    return PLAIN_FAKE_ANSWER
