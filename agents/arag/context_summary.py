"""Context Summary Agent: condenses the candidates that passed the NLI check."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from aisle.llm import ainvoke_structured
from aisle.prompts import render

__all__ = ["ContextSummary", "ScoredItem", "summarize_context"]


class ScoredItem(BaseModel):
    id: str
    title: str
    score: float


class ContextSummary(BaseModel):
    """What the accepted candidates offer this shopper."""

    summary: str = Field(max_length=400)


async def summarize_context(model: BaseChatModel, profile: str,
                            items: Sequence[ScoredItem]) -> ContextSummary:
    """Summarise the accepted candidates in light of the user's profile."""
    prompt = render("arag/context_summary.j2", profile=profile,
                    items=[i.model_dump() for i in items])
    answer = await ainvoke_structured(model, [HumanMessage(prompt)], ContextSummary,
                                      agent="context_summary", max_tokens=480)
    return answer.value
