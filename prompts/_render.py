"""Load prompt templates shipped as package data and render them strictly."""

from __future__ import annotations

import importlib.resources
from functools import lru_cache
from typing import Any

from jinja2 import Environment, StrictUndefined, Template

__all__ = ["fingerprint", "load_template", "render"]

_env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


@lru_cache(maxsize=256)
def load_template(name: str) -> Template:
    """The template `prompts/<name>` (e.g. `"chat/system.j2"`).

    Raises:
        FileNotFoundError: no such template in the installed package.
    """
    resource = importlib.resources.files("aisle.prompts").joinpath(name)
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt template {name!r} in aisle.prompts")
    return _env.from_string(resource.read_text(encoding="utf-8"))


def render(name: str, **variables: Any) -> str:
    """Render a template; a missing variable raises `jinja2.UndefinedError`.

    Example:
        >>> render("chat/system.j2", json_schema=False)[:9]
        'You are a'
    """
    return load_template(name).render(**variables)


def fingerprint(folder: str) -> str:
    """A short hash of every template in `prompts/<folder>`: changes when any prompt does,
    so stored eval results are never mixed across prompt versions."""
    import hashlib

    root = importlib.resources.files("aisle.prompts").joinpath(folder)
    digest = hashlib.sha256()
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".j2"):
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()[:12]
