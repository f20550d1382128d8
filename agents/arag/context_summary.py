"""Context Summary Agent: condenses the candidates that passed the NLI check."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from aisle.agents._role import Domain, Role

__all__ = ["CONTEXT_SUMMARY", "ContextSummary", "ScoredItem", "summarize_context"]


class ScoredItem(BaseModel):
    id: str
    title: str
    score: float


class ContextSummary(BaseModel):
    """What the accepted candidates offer this shopper."""

    summary: str = Field(max_length=400)


CONTEXT_SUMMARY: Role[ContextSummary] = Role(
    "context_summary", "arag/context_summary.j2", ContextSummary, max_tokens=480)


async def summarize_context(model: BaseChatModel, profile: str, items: Sequence[ScoredItem],
                            *, domain: Domain | None = None) -> ContextSummary:
    """Summarise the accepted candidates in light of the user's profile."""
    answer = await CONTEXT_SUMMARY.ask(model, domain=domain, profile=profile,
                                       items=[i.model_dump() for i in items])
    return answer.value
