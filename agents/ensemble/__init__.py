"""LLM-ensemble labelers: one structured attribute-extraction call per (model, prompt
variant) pair."""

from aisle.agents.ensemble.labeler import (
    NA,
    Example,
    LabelerSpec,
    answer_schema,
    extract_attributes,
    normalise_value,
    prompt_variants,
)

__all__ = ["NA", "Example", "LabelerSpec", "answer_schema", "extract_attributes",
           "normalise_value", "prompt_variants"]
