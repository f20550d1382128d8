"""Arbiters: several judges score the feasible candidates; a Borda count picks the title.

Each arbiter is a prompt (`relevance`: does it describe every item; `shopper`: is it
clear and would I click; `editor`: is it a good shop heading) on a model; a context may
give each its own model. The voting rule (`vote`) is a Borda count over the judges that
answered: a judge gives a candidate one point for every other candidate it scored lower
and half a point for every one it scored the same, and the points are summed over
judges. Ties go to the candidate the relevance critic found to fit more items, then to
the shorter title, then to the earlier candidate. With no judge answering, the same
tie-break alone decides (the graph records that it did).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from functools import lru_cache

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, create_model

from aisle.agents._role import Domain, Role

__all__ = ["ARBITER_ROLES", "ArbiterPrompt", "Tally", "arbiter_role", "score_titles",
           "scores_schema", "vote"]


class ArbiterPrompt(StrEnum):
    """The arbiters' prompts (`prompts/carts/arbiter_<name>.j2`)."""

    relevance = "relevance"
    shopper = "shopper"
    editor = "editor"


@lru_cache(maxsize=16)
def scores_schema(n: int) -> type[BaseModel]:
    """`{"title_1": 1..10, ..., "title_n": 1..10}`."""
    fields = {f"title_{i}": (int, Field(ge=1, le=10, description=f"Score of title {i}."))
              for i in range(1, n + 1)}
    return create_model(f"Scores{n}", __config__=ConfigDict(extra="forbid"),  # type: ignore[call-overload,no-any-return]
                        **fields)


ARBITER_ROLES: dict[ArbiterPrompt, Role[BaseModel]] = {
    p: Role("arbiter", f"carts/arbiter_{p.value}.j2", None,
            max_tokens=lambda schema: 8 + 10 * len(schema.model_fields), temperature=0.0)
    for p in ArbiterPrompt}


def arbiter_role(prompt: ArbiterPrompt | str) -> Role[BaseModel]:
    return ARBITER_ROLES[ArbiterPrompt(prompt)]


async def score_titles(model: BaseChatModel, prompt: ArbiterPrompt | str,
                       titles: Sequence[str], items: Sequence[str], *,
                       domain: Domain | None = None) -> list[int]:
    """One arbiter's score (1-10) for each title, in order.

    Raises:
        StructuredOutputError: no valid answer after the repair turn.
    """
    answer = await arbiter_role(prompt).ask(model, domain=domain,
                                            schema=scores_schema(len(titles)),
                                            titles=list(titles), items=list(items))
    return [int(getattr(answer.value, f"title_{i}")) for i in range(1, len(titles) + 1)]


class Tally(BaseModel):
    """The vote: Borda points per candidate, the winner's index, and what decided."""

    points: list[float]
    winner: int
    decided_by: str


def vote(scores: Mapping[str, Sequence[int] | None], coverage: Sequence[float | None],
         chars: Sequence[int]) -> Tally:
    """The Borda count of the judges' scores (a judge that failed is None and is left
    out), ties broken by coverage, then fewer characters, then the earlier candidate.

    Example:
        >>> t = vote({"a": [9, 5, 5], "b": [4, 8, 2]}, [1.0, 1.0, 0.5], [20, 18, 10])
        >>> t.points, t.winner, t.decided_by
        ([3.0, 2.5, 0.5], 0, 'borda')
        >>> vote({"a": [5, 5], "b": None}, [0.5, 1.0], [9, 12]).winner
        1
        >>> vote({"a": None}, [0.5, 0.5], [9, 7]).decided_by
        'tie-break (no arbiter answered)'
    """
    n = len(chars)
    points = [0.0] * n
    answered = [s for s in scores.values() if s is not None]
    for judge in answered:
        if len(judge) != n:
            raise ValueError(f"a judge scored {len(judge)} titles, expected {n}")
        for i in range(n):
            points[i] += sum(1.0 if judge[i] > judge[j] else 0.5 if judge[i] == judge[j]
                             else 0.0 for j in range(n) if j != i)

    def key(i: int) -> tuple[float, float, int, int]:
        known = coverage[i]
        cov = known if known is not None else -1.0
        return (points[i], cov, -chars[i], -i)

    winner = max(range(n), key=key)
    if not answered:
        decided = "tie-break (no arbiter answered)"
    elif sum(p == points[winner] for p in points) > 1:
        decided = "borda, tie-break"
    else:
        decided = "borda"
    return Tally(points=points, winner=winner, decided_by=decided)
