"""`aisle info`: the registered providers and their capabilities, settings, the cache."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import SecretStr
from rich.markup import escape
from rich.table import Table

from aisle import __version__
from aisle.cli._common import JSON_OPTION, console, json_stdout
from aisle.llm import get_cache, providers
from aisle.settings import Settings, get_settings

_SECRET_WORDS = ("key", "token", "secret", "password")
_HOME_SOURCES = {
    "AISLE_HOME": "from AISLE_HOME",
    "source checkout": "default for a source checkout: <checkout>/.aisle",
    "user cache": "default for an installed package: the user cache",
}


def info(as_json: bool = JSON_OPTION) -> None:
    """Show the model providers and their capabilities, where aisle keeps its state
    (AISLE_HOME) and why, settings and the response cache."""
    with json_stdout(as_json) as emit:
        report = _report(get_settings())
        if as_json:
            emit(report)
            return
    console.print(f"aisle {report['version']}; default model [bold]{report['default_model']}[/]")
    home = report["home"]
    console.print(f"home: {escape(home['path'])} ({_HOME_SOURCES[home['source']]})",
                  soft_wrap=True)
    table = Table(title="Providers (spec 'provider:model')")
    for col in ("provider", "json-schema output", "logprobs", "tool calls", "top logprobs",
                "what it is"):
        table.add_column(col)
    for p in report["providers"]:
        c = p["capabilities"]
        flags = [("yes" if c[f] else "no") for f in ("json_schema", "logprobs", "tool_calls")]
        table.add_row(p["name"], *flags, str(c["max_top_logprobs"]), p["description"])
    console.print(table)
    s = Table(title="Settings (AISLE_* env vars)")
    s.add_column("setting")
    s.add_column("value")
    for key, value in report["settings"].items():
        s.add_row(key, escape(str(value)))
    console.print(s)
    cache = report["cache"]
    if cache["enabled"]:
        console.print(f"response cache: {cache['path']} ({cache['entries']} entries)")
    else:
        console.print("response cache: off (AISLE_CACHE_ENABLED=false)")


def _report(settings: Settings) -> dict[str, Any]:
    """Everything `aisle info` shows, as JSON-ready values (secrets masked)."""
    cache: dict[str, Any] = {"enabled": settings.cache_enabled,
                             "path": str(settings.resolved_cache_path), "entries": None}
    if settings.cache_enabled:
        cache["entries"] = get_cache(settings).stats()["entries"]
    return {
        "version": __version__,
        "default_model": settings.model,
        "home": {"path": str(settings.home), "source": settings.home_source},
        "providers": [
            {"name": p.name, "description": p.description, "requires_model": p.requires_model,
             "capabilities": asdict(p.capabilities)}
            for p in providers()
        ],
        "settings": _masked_settings(settings),
        "cache": cache,
    }


def _masked_settings(settings: Settings) -> dict[str, Any]:
    values = settings.model_dump(mode="json")
    out: dict[str, Any] = {}
    for key, value in values.items():
        secret = isinstance(getattr(settings, key), SecretStr) \
            or any(word in key for word in _SECRET_WORDS)
        out[key] = "***" if secret and value else value
    return out
