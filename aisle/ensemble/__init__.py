"""Aggregate several labelers' answers with learned per-labeler weights (LLM-ensemble).

See `aisle.ensemble.aggregate` for the methods; `aisle.graphs.ensemble` runs LLM
labelers and aggregates them.
"""

from aisle.ensemble._encode import AnswersError, as_answers
from aisle.ensemble.aggregate import (
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
