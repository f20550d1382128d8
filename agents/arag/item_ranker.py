"""Item Ranker Agent: orders the candidates using the user and context summaries.

Its output schema enumerates exactly the candidate ids it was given, so under
constrained decoding it cannot invent items. Duplicates and omissions (a JSON schema
cannot forbid them) are repaired: repeated ids are dropped and missing ids are
appended in the order of their NLI scores; the repair is counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field, create_model

from aisle.agents._role import Domain, Role
from aisle.agents.arag._common import Item
from aisle.errors import StructuredOutputError

__all__ = ["ITEM_RANKER", "RankResult", "by_score", "rank_items", "ranking_schema",
           "repair_ranking"]


@dataclass
class RankResult:
    """A full permutation of the candidates and what it took to get one.

    Attributes:
        ranking: every candidate id exactly once, best first.
        proposed: the ids the model wrote, as written.
        invented: ids the model wrote that are not candidates.
        duplicates: repeated ids the model wrote.
        missing: candidate ids the model left out (appended by score).
        repaired: the proposal was not already a valid permutation.
        parse_failed: no valid structured answer at all; the ranking is the fallback order.
    """

    ranking: list[str]
    proposed: list[str] = field(default_factory=list)
    invented: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    repaired: bool = False
    parse_failed: bool = False

    def validity(self) -> dict[str, Any]:
        return {"invented": len(self.invented), "duplicates": len(self.duplicates),
                "missing": len(self.missing), "repaired": self.repaired,
                "parse_failed": self.parse_failed}


def ranking_schema(candidate_ids: Sequence[str]) -> type[BaseModel]:
    """A pydantic model whose `ranking` may only hold these ids, as many as there are."""
    ids = tuple(dict.fromkeys(candidate_ids))
    return create_model(
        "Ranking",
        ranking=(list[Literal[ids]], Field(min_length=len(ids), max_length=len(ids),  # type: ignore[valid-type]
                                           description="Candidate ids, best first.")),
    )


def repair_ranking(proposed: Sequence[str], candidate_ids: Sequence[str],
                   fallback_order: Sequence[str]) -> RankResult:
    """Turn any proposed id list into a full permutation of `candidate_ids`.

    Keeps the first occurrence of each valid id, drops invented and repeated ids,
    then appends the missing ids in `fallback_order` (e.g. by NLI score).

    Example:
        >>> r = repair_ranking(["b", "b", "x"], ["a", "b", "c"], ["c", "a", "b"])
        >>> r.ranking, r.invented, r.duplicates, r.missing
        (['b', 'c', 'a'], ['x'], ['b'], ['c', 'a'])
    """
    valid = set(candidate_ids)
    seen: set[str] = set()
    ranking: list[str] = []
    invented: list[str] = []
    duplicates: list[str] = []
    for item in proposed:
        if item not in valid:
            invented.append(item)
        elif item in seen:
            duplicates.append(item)
        else:
            seen.add(item)
            ranking.append(item)
    order = [i for i in fallback_order if i in valid] + [i for i in candidate_ids]
    missing = [i for i in candidate_ids if i not in seen]
    for item in dict.fromkeys(order):
        if item not in seen:
            seen.add(item)
            ranking.append(item)
    return RankResult(ranking=ranking, proposed=list(proposed), invented=invented,
                      duplicates=duplicates, missing=sorted(missing, key=order.index),
                      repaired=bool(invented or duplicates or missing))


def _ranking_budget(schema: type[BaseModel]) -> int:
    n = schema.model_json_schema()["properties"]["ranking"]["minItems"]  # one per candidate
    return 16 * int(n) + 32


# The schema is built per call (`ranking_schema`): it enumerates that call's ids.
ITEM_RANKER: Role[BaseModel] = Role("item_ranker", "arag/item_ranker.j2", None,
                                    max_tokens=_ranking_budget)


def by_score(ids: Sequence[str], scores: Mapping[str, float]) -> list[str]:
    """`ids` by score, highest first; ties and unscored ids keep their given order.

    The one ordering rule for NLI scores: the ranker's shown order, the repair of a
    ranking and the "ranked by NLI alone" diagnostic all use it.

    Example:
        >>> by_score(["a", "b", "c", "d"], {"b": .2, "c": .9, "d": .2})
        ['c', 'b', 'd', 'a']
    """
    return sorted(ids, key=lambda i: -scores.get(i, float("-inf")))


_ID = re.compile(r"[A-Za-z0-9_\-]+")


async def rank_items(
    model: BaseChatModel,
    candidates: Sequence[Item],
    *,
    fallback_scores: Mapping[str, float] | None = None,
    history: Sequence[str] | None = None,
    profile: str | None = None,
    context: str | None = None,
    agent: str = "item_ranker",
    domain: Domain | None = None,
    recommender_ranks: Mapping[str, int] | None = None,
) -> RankResult:
    """Rank all candidates; always returns a full permutation (see `RankResult`).

    Args:
        model: the ranker's chat model.
        candidates: items to rank.
        fallback_scores: per-id scores used to order missing ids (higher first); ties
            and unscored ids keep the candidate order.
        history: raw history titles (vanilla RAG gives these instead of summaries).
        profile: the User Understanding Agent's text.
        context: the Context Summary Agent's text.
        agent: name for usage accounting.
        domain: what the shop sells (the prompt's wording).
        recommender_ranks: a trained recommender's rank of each candidate (1 = best),
            shown beside each title when given.
    """
    ids = [c["id"] for c in candidates]
    fallback = by_score(ids, fallback_scores or {})
    schema = ranking_schema(ids)
    try:
        answer = await ITEM_RANKER.ask(
            model, domain=domain, schema=schema, agent=agent, history=list(history or []),
            profile=profile or "", context=context or "",
            candidates=[{**c, "rec_rank": recommender_ranks.get(c["id"])} for c in candidates]
            if recommender_ranks else list(candidates),
            recommender=bool(recommender_ranks))
        proposed = list(answer.value.ranking)  # type: ignore[attr-defined]
    except StructuredOutputError as e:
        # Salvage what ids the text holds (an unconstrained backend may write extra or
        # unknown ids); count it as a parse failure.
        proposed = [t for t in _ID.findall(e.raw_outputs[-1]) if t in set(ids)]
        result = repair_ranking(proposed, ids, fallback)
        result.parse_failed = True
        result.repaired = True
        return result
    return repair_ranking(proposed, ids, fallback)
