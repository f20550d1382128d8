"""Build a minimal valid instance of a JSON schema, for stub and fake answers."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

__all__ = ["schema_instance", "schema_reply"]


def schema_instance(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """A small value that validates against `schema` (objects, arrays, enums, refs).

    Example:
        >>> schema_instance({"type": "object", "properties": {"n": {"type": "integer"}},
        ...                  "required": ["n"]})
        {'n': 1}
    """
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return schema_instance(root.get("$defs", {})[name], root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return schema_instance(options[0], root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: schema_instance(v, root) for k, v in props.items()}
    if kind == "array":
        n = max(1, int(schema.get("minItems", 1)))
        return [schema_instance(schema.get("items", {"type": "string"}), root) for _ in range(n)]
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 4)))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        lo = float(schema.get("minimum", 0.0))
        hi = float(schema.get("maximum", lo + 1.0))
        return (lo + hi) / 2
    if kind == "boolean":
        return True
    return None


_SCHEMA_IN_TEXT = re.compile(r"JSON schema:\s*(\{.*\})\s*$", re.DOTALL)


def schema_reply(messages: Sequence[BaseMessage], kwargs: dict[str, Any]) -> str:
    """A `FakeChatModel` reply that answers any structured request validly.

    Reads the schema from `response_format` or from aisle's prompted-JSON
    instruction; otherwise answers plain text.
    """
    fmt = kwargs.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return json.dumps(schema_instance(fmt["json_schema"]["schema"]))
    match = _SCHEMA_IN_TEXT.search(str(messages[-1].content)) if messages else None
    if match:
        return json.dumps(schema_instance(json.loads(match.group(1))))
    return "fake answer"
