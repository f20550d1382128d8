"""Aggregate several labelers' answers with learned per-labeler weights (LLM-ensemble).

See `aisle.tools.aggregation.aggregate` for the methods; `aisle.graphs.ensemble` runs LLM
labelers and aggregates them.
"""

from aisle.tools.aggregation._encode import AnswersError, as_answers
from aisle.tools.aggregation.aggregate import (
    Aggregation,
    FittedWeights,
    LabelerWeight,
    Method,
    aggregate,
    load_weights,
    weights_table,
)

__all__ = [
    "Aggregation",
    "AnswersError",
    "FittedWeights",
    "LabelerWeight",
    "Method",
    "aggregate",
    "as_answers",
    "load_weights",
    "weights_table",
]
