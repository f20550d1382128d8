"""Refiner: rewrites a title from the critic's relevance feedback and the length check's."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from aisle.agents._role import Domain, Role
from aisle.agents.carts._common import TITLE_MAX_CHARS
from aisle.agents.carts.length import LengthLimit, clean_title

__all__ = ["REFINER", "Miss", "RefinedTitle", "refine_title"]


class RefinedTitle(BaseModel):
    title: str = Field(max_length=TITLE_MAX_CHARS, description="The rewritten title.")


class Miss(BaseModel):
    """An item the title does not describe, by its 1-based number, and the critic's reason."""

    index: int
    reason: str


REFINER: Role[RefinedTitle] = Role("refiner", "carts/refiner.j2", RefinedTitle,
                                   max_tokens=64, temperature=0.0)


async def refine_title(model: BaseChatModel, title: str, items: Sequence[str], *,
                       missed: Sequence[Miss], length_feedback: str, limit: LengthLimit,
                       domain: Domain | None = None) -> str:
    """The rewritten title, cleaned (possibly empty: the caller checks it).

    Raises:
        StructuredOutputError: no valid answer after the repair turn.
    """
    answer = await REFINER.ask(model, domain=domain, title=title, items=list(items),
                               missed=[m.model_dump() for m in missed],
                               length_feedback=length_feedback, limit=limit.describe())
    return clean_title(answer.value.title)
