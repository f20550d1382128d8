"""The shopping assistant's own agents (the router and chat agent are plain prompts in
`graphs/assistant.py`): the item ranker's reasons for the items it shows."""

from aisle.agents.assistant.reasons import (
    RANKER_REASONS,
    ReasonsResult,
    explain_ranking,
    reasons_schema,
)

__all__ = ["RANKER_REASONS", "ReasonsResult", "explain_ranking", "reasons_schema"]
