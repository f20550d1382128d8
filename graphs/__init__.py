"""One `build_<name>_graph()` factory per pipeline, wiring agents and tools into a
LangGraph `StateGraph`, and the registry that lists them (`graph_specs()`), which
`langgraph.json`, the CLI and the HTTP API read.

Example:
    >>> from aisle.graphs import get_graph_spec
    >>> get_graph_spec("arag").agent_names
    ('user_understanding', 'nli', 'context_summary', 'item_ranker')
"""

from aisle.graphs._context import GraphContext, ModelRef
from aisle.graphs._registry import (
    BUILTIN_GRAPHS,
    GraphSpec,
    get_graph_spec,
    graph_specs,
    register_graph,
)

__all__ = [
    "BUILTIN_GRAPHS",
    "GraphContext",
    "GraphSpec",
    "ModelRef",
    "get_graph_spec",
    "graph_specs",
    "register_graph",
]
