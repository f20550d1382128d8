"""Relevance critic: for one title, item by item, whether it describes the item and why.

The eval's LLM coverage judge (`COVERAGE_JUDGE`) asks the same question in its own
words and without reasons; it is a separate role so that a judge model set apart from
the model under test never shares a prompt with the agents it scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, create_model

from aisle.agents._role import Domain, Role

__all__ = [
    "COVERAGE_JUDGE",
    "RELEVANCE_CRITIC",
    "Critique",
    "Verdict",
    "critique_schema",
    "critique_title",
    "judge_coverage",
    "judge_schema",
]


class Verdict(BaseModel):
    """Whether the title describes one item, with the critic's reason first."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=100, description="A few words on why or why not.")
    fits: bool = Field(description="True if the title describes this item.")


class Critique(BaseModel):
    """A critic's verdict on every item, in item order."""

    fits: list[bool]
    reasons: list[str]

    @property
    def covered(self) -> list[int]:
        """1-based numbers of the items the title describes."""
        return [i for i, ok in enumerate(self.fits, 1) if ok]

    @property
    def coverage(self) -> float:
        return sum(self.fits) / len(self.fits) if self.fits else 0.0


@lru_cache(maxsize=32)
def critique_schema(n_items: int) -> type[BaseModel]:
    """`{"item_1": Verdict, ..., "item_n": Verdict}`, one field per item.

    Example:
        >>> list(critique_schema(2).model_fields)
        ['item_1', 'item_2']
    """
    fields = {f"item_{i}": (Verdict, Field(description=f"Item {i}."))
              for i in range(1, n_items + 1)}
    return create_model(f"Critique{n_items}", __config__=ConfigDict(extra="forbid"),  # type: ignore[call-overload,no-any-return]
                        **fields)


@lru_cache(maxsize=32)
def judge_schema(n_items: int) -> type[BaseModel]:
    """`{"item_1": bool, ..., "item_n": bool}`."""
    fields = {f"item_{i}": (bool, Field(description=f"Item {i}."))
              for i in range(1, n_items + 1)}
    return create_model(f"Coverage{n_items}", __config__=ConfigDict(extra="forbid"),  # type: ignore[call-overload,no-any-return]
                        **fields)


RELEVANCE_CRITIC: Role[BaseModel] = Role(
    "relevance_critic", "carts/relevance_critic.j2", None,
    max_tokens=lambda schema: 16 + 48 * len(schema.model_fields), temperature=0.0)

COVERAGE_JUDGE: Role[BaseModel] = Role(
    "coverage_judge", "carts/coverage_judge.j2", None,
    max_tokens=lambda schema: 8 + 10 * len(schema.model_fields), temperature=0.0)


async def critique_title(model: BaseChatModel, title: str, items: Sequence[str], *,
                         domain: Domain | None = None) -> Critique:
    """The critic's verdict on each item for `title`.

    Raises:
        StructuredOutputError: no valid verdict after the repair turn.
    """
    answer = await RELEVANCE_CRITIC.ask(model, domain=domain, schema=critique_schema(len(items)),
                                        title=title, items=list(items))
    verdicts = [getattr(answer.value, f"item_{i}") for i in range(1, len(items) + 1)]
    return Critique(fits=[v.fits for v in verdicts], reasons=[v.reason.strip() for v in verdicts])


async def judge_coverage(model: BaseChatModel, title: str, items: Sequence[str], *,
                         domain: Domain | None = None) -> list[bool]:
    """The coverage judge's yes/no per item for `title` (the eval's LLM judge).

    Raises:
        StructuredOutputError: no valid answer after the repair turn.
    """
    answer = await COVERAGE_JUDGE.ask(model, domain=domain, schema=judge_schema(len(items)),
                                      title=title, items=list(items))
    return [bool(getattr(answer.value, f"item_{i}")) for i in range(1, len(items) + 1)]
