"""LLM-GDO: user-defined prompts (UDPs) as data operators over tables.

A `UDP` (prompt template + output contract + examples + model) replaces a user-defined
function; an operator (`map`, `filter`, `extract`, `classify`, `impute`,
`detect_errors`, `match`, `resolve`, `aggregate`) applies it over a table; a `Pipeline`
of operators (Python or YAML) compiles to a LangGraph graph (`aisle.graphs.gdo`) and
runs on the local or the Ray engine (`aisle.engines`).
"""

from aisle.agents.gdo.cascade import Thresholds, decide, fit_thresholds
from aisle.agents.gdo.operators import (
    OPERATORS,
    AggregateOp,
    CascadeSpec,
    ClassifyOp,
    DetectErrorsOp,
    EnsembleSpec,
    ExtractOp,
    FilterOp,
    ImputeOp,
    MapOp,
    MatchOp,
    Operator,
    ResolveOp,
    Variant,
)
from aisle.agents.gdo.pipeline import BudgetSpec, Pipeline, read_table, write_table
from aisle.agents.gdo.runner import OperatorResult, Runtime, dry_run, estimate, run_operator
from aisle.agents.gdo.udp import UDP, Example, UDPCall

AGENTS_VERSION = 1
"""Bumped whenever the operators' behaviour changes (eval answers are keyed on it)."""

__all__ = [
    "AGENTS_VERSION",
    "OPERATORS",
    "UDP",
    "AggregateOp",
    "BudgetSpec",
    "CascadeSpec",
    "ClassifyOp",
    "DetectErrorsOp",
    "EnsembleSpec",
    "Example",
    "ExtractOp",
    "FilterOp",
    "ImputeOp",
    "MapOp",
    "MatchOp",
    "Operator",
    "OperatorResult",
    "Pipeline",
    "ResolveOp",
    "Runtime",
    "Thresholds",
    "UDPCall",
    "Variant",
    "decide",
    "dry_run",
    "estimate",
    "fit_thresholds",
    "read_table",
    "run_operator",
    "write_table",
]
