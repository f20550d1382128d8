"""The baselines CARTS is compared with: one call with the limit in the prompt
(single pass), and one call that reasons first (chain of thought). The eval holds both
to the same deterministic length check as CARTS."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from aisle.agents._role import Domain, Role
from aisle.agents.carts._common import TITLE_MAX_CHARS
from aisle.agents.carts.length import LengthLimit, clean_title

__all__ = ["CHAIN_OF_THOUGHT", "SINGLE_PASS", "OneTitle", "ReasonedTitle", "cot_title",
           "single_pass_title"]


class OneTitle(BaseModel):
    title: str = Field(max_length=TITLE_MAX_CHARS, description="The carousel title.")


class ReasonedTitle(BaseModel):
    reasoning: str = Field(max_length=600, description="Step-by-step reasoning first.")
    title: str = Field(max_length=TITLE_MAX_CHARS, description="The carousel title.")


SINGLE_PASS: Role[OneTitle] = Role("single_pass", "carts/single_pass.j2", OneTitle,
                                   max_tokens=64, temperature=0.0)
CHAIN_OF_THOUGHT: Role[ReasonedTitle] = Role(
    "chain_of_thought", "carts/chain_of_thought.j2", ReasonedTitle, max_tokens=260,
    temperature=0.0)


async def single_pass_title(model: BaseChatModel, items: Sequence[str], limit: LengthLimit,
                            *, domain: Domain | None = None) -> str:
    """One title in one call (cleaned; not length-checked)."""
    answer = await SINGLE_PASS.ask(model, domain=domain, items=list(items),
                                   limit=limit.describe())
    return clean_title(answer.value.title)


async def cot_title(model: BaseChatModel, items: Sequence[str], limit: LengthLimit, *,
                    domain: Domain | None = None) -> tuple[str, str]:
    """The reasoning and the title of one chain-of-thought call (cleaned; not
    length-checked)."""
    answer = await CHAIN_OF_THOUGHT.ask(model, domain=domain, items=list(items),
                                        limit=limit.describe())
    return answer.value.reasoning, clean_title(answer.value.title)
