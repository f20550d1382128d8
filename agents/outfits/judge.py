"""The eval's pairwise judge: which of two outfits better evokes the character, asked in
both orders so the judge's position bias cancels (a win in one order and a loss in the
other is a tie)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from aisle.agents._role import Domain, Role
from aisle.agents.outfits._common import Wearer

__all__ = ["OUTFIT_JUDGE", "PairVerdict", "Preference", "combine_orders", "judge_pair"]


class Preference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=200, description="One sentence.")
    better: Literal["A", "B", "tie"]


OUTFIT_JUDGE: Role[Preference] = Role("judge", "outfits/judge.j2", Preference,
                                      max_tokens=120, temperature=0.0)


@dataclass(frozen=True)
class PairVerdict:
    """The two orders' answers about (first, second) and what they add up to.

    Attributes:
        first_shown_first: the answer with `first` shown as A ("A", "B" or "tie").
        first_shown_second: the answer with `first` shown as B.
        score: +1 `first` wins, -1 `second` wins, 0 a tie (the orders disagree, or both
            said tie), 0.5/-0.5 one order a win and the other a tie.
        position_consistent: both orders picked the same outfit (or both said tie).
    """

    first_shown_first: str
    first_shown_second: str
    score: float
    position_consistent: bool


def combine_orders(first_as_a: str, first_as_b: str) -> PairVerdict:
    """Combine the two orders' answers into `first`'s score against `second`.

    Example:
        >>> combine_orders("A", "B").score      # first won both times
        1.0
        >>> combine_orders("A", "A").score      # the judge picked position A both times
        0.0
        >>> combine_orders("A", "A").position_consistent
        False
        >>> combine_orders("tie", "A").score
        -0.5
    """
    one = {"A": 1.0, "B": -1.0, "tie": 0.0}[first_as_a]
    two = {"B": 1.0, "A": -1.0, "tie": 0.0}[first_as_b]
    return PairVerdict(first_as_a, first_as_b, (one + two) / 2, one == two)


async def judge_pair(model: BaseChatModel, character: str, first: Sequence[str],
                     second: Sequence[str], *, gender: str, age: str,
                     domain: Domain | None = None) -> PairVerdict:
    """Ask in both orders (raises `StructuredOutputError` if either answer stays
    invalid)."""
    age_word, gender_word = Wearer.words(gender, age)
    answers = []
    for a, b in ((first, second), (second, first)):
        answer = await OUTFIT_JUDGE.ask(model, domain=domain, character=character,
                                        a=list(a), b=list(b), age=age_word,
                                        gender=gender_word)
        answers.append(answer.value.better)
    return combine_orders(answers[0], answers[1])
