"""The graph registry: name -> builder, input schema, context schema, description.

`langgraph.json`, the CLI (`aisle graphs list`) and the HTTP API read it; a test keeps
`langgraph.json` and the package list in `pyproject.toml` in step with it. A pipeline
registers its graph once, at the bottom of its `graphs/<name>.py`.
"""

from __future__ import annotations

import importlib
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

from aisle.errors import ConfigurationError

__all__ = ["BUILTIN_GRAPHS", "GraphSpec", "get_graph_spec", "graph_specs", "register_graph"]

# The graphs shipped with aisle, by module under `graphs/`; imported on first lookup.
BUILTIN_GRAPHS: tuple[str, ...] = ("arag", "ensemble", "carts", "gdo", "assistant", "outfits")


@dataclass(frozen=True)
class GraphSpec:
    """A registered graph.

    Attributes:
        name: the graph's id (`aisle graphs list`, `langgraph.json`, the HTTP API).
        description: one line.
        build: compiles the graph; takes no arguments (every switch is in the context).
        input_schema: the TypedDict a caller passes as input.
        context_schema: the pydantic context (JSON-serialisable: models as spec strings).
        agents: the `Literal` of agent names a context's per-agent overrides take.
        module: the file under `graphs/` that defines module-level `graph`.
    """

    name: str
    description: str
    build: Callable[[], CompiledStateGraph[Any, Any, Any, Any]]
    input_schema: type[Any]
    context_schema: type[BaseModel]
    agents: Any
    module: str

    @property
    def agent_names(self) -> tuple[str, ...]:
        return tuple(typing.get_args(self.agents))

    @property
    def langgraph_path(self) -> str:
        """The entry `langgraph.json` lists for this graph: the installed module, so the
        LangGraph server imports the same module the registry does (a file path would
        load it a second time under another name)."""
        return f"aisle.graphs.{self.module}:graph"


_lock = threading.Lock()
_registry: dict[str, GraphSpec] = {}


def register_graph(spec: GraphSpec, *, replace: bool = False) -> GraphSpec:
    """Add a graph to the registry.

    Raises:
        ConfigurationError: the name is taken (pass `replace=True` to override).
    """
    with _lock:
        if spec.name in _registry and not replace and _registry[spec.name] != spec:
            raise ConfigurationError(f"a graph named {spec.name!r} is already registered")
        _registry[spec.name] = spec
    return spec


def _load_builtins() -> None:
    for module in BUILTIN_GRAPHS:
        importlib.import_module(f"aisle.graphs.{module}")


def graph_specs() -> list[GraphSpec]:
    """Every registered graph, built-ins first in their listed order."""
    _load_builtins()
    with _lock:
        order = {name: i for i, name in enumerate(BUILTIN_GRAPHS)}
        return sorted(_registry.values(), key=lambda g: order.get(g.name, len(order)))


def get_graph_spec(name: str) -> GraphSpec:
    """The registered graph `name`.

    Raises:
        ConfigurationError: no such graph; the message lists the registered ones.
    """
    _load_builtins()
    with _lock:
        spec = _registry.get(name)
    if spec is None:
        names = [g.name for g in graph_specs()]
        raise ConfigurationError(f"no graph named {name!r}; registered: "
                                 f"{', '.join(names) or 'none'}")
    return spec
