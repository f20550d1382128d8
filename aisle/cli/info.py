"""`aisle info`: backends, capabilities, cache location."""

from __future__ import annotations

from rich.table import Table

from aisle import __version__
from aisle.cli._common import console
from aisle.llm._loader import BACKENDS, OPENAI_CAPABILITIES, get_cache
from aisle.llm.local import LOCAL_CAPABILITIES
from aisle.llm.vllm import VLLM_CAPABILITIES
from aisle.settings import get_settings


def info() -> None:
    """Show backends and their capabilities, settings and the response cache."""
    settings = get_settings()
    console.print(f"aisle {__version__}; default model [bold]{settings.model}[/]")
    caps = {"local": LOCAL_CAPABILITIES, "vllm": VLLM_CAPABILITIES, "openai": OPENAI_CAPABILITIES}
    table = Table(title="Backends")
    for col in ("backend", "json-schema output", "logprobs", "tool calls", "what it is"):
        table.add_column(col)
    for name, about in BACKENDS.items():
        c = caps.get(name)
        flags = [("yes" if f else "no") for f in (c.json_schema, c.logprobs, c.tool_calls)] \
            if c else ["scripted"] * 3
        table.add_row(name, *flags, about)
    console.print(table)
    s = Table(title="Settings (AISLE_* env vars)")
    s.add_column("setting")
    s.add_column("value")
    for key, value in settings.model_dump().items():
        s.add_row(key, "***" if "key" in key and value else str(value))
    console.print(s)
    if settings.cache_enabled:
        stats = get_cache(settings).stats()
        console.print(f"response cache: {stats['path']} ({stats['entries']} entries)")
    else:
        console.print("response cache: off (AISLE_CACHE_ENABLED=false)")
