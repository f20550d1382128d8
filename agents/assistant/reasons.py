"""The item ranker's reasons: one sentence per shown item, after the order is final.

ARAG's item ranker answers with an order only (its eval is kept at that version), so
the assistant asks for reasons in one more structured call over the top k, given what
the ranker saw: the shopper's latest items, the user profile, the context summary, and
each item's evidence (the NLI agent's P(yes), the recommender's rank). The schema
enumerates the shown ids, so under constrained decoding the model cannot explain an
item it was not shown; an id it skips, or a call that stays invalid after the repair
turn, leaves that item with its evidence only (counted in `ReasonsResult`), never with
a made-up reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field, create_model

from aisle.agents._role import Domain, Role
from aisle.agents.arag._common import Item
from aisle.errors import StructuredOutputError

__all__ = ["RANKER_REASONS", "ReasonsResult", "explain_ranking", "reasons_schema"]

MAX_REASON_CHARS = 200


def reasons_schema(item_ids: Sequence[str]) -> type[BaseModel]:
    """A model whose `reasons` hold one `{item_id, reason}` per given id (ids enumerated).

    Example:
        >>> S = reasons_schema(["7", "9"])
        >>> S.model_validate({"reasons": [{"item_id": "9", "reason": "a racer"},
        ...                               {"item_id": "7", "reason": "same series"}]}
        ...                  ).reasons[0].item_id
        '9'
    """
    ids = tuple(dict.fromkeys(item_ids))
    one_of: Any = Literal[ids]  # type: ignore[valid-type]
    item_reason = create_model(
        "ItemReason",
        item_id=(one_of, Field(description="The item's id.")),
        reason=(str, Field(min_length=1, max_length=MAX_REASON_CHARS,
                           description="One sentence: why this item fits the shopper.")),
    )
    return create_model(
        "RankerReasons",
        reasons=(list[item_reason], Field(min_length=len(ids), max_length=len(ids),  # type: ignore[valid-type]
                                          description="One reason per item, in the "
                                                      "order given.")),
    )


def _budget(schema: type[BaseModel]) -> int:
    n = schema.model_json_schema()["properties"]["reasons"]["minItems"]
    return 70 * int(n) + 32


RANKER_REASONS: Role[BaseModel] = Role("ranker_reasons", "assistant/ranker_reasons.j2", None,
                                       max_tokens=_budget)


@dataclass
class ReasonsResult:
    """Reasons by item id, and what the call left out.

    Attributes:
        reasons: item id -> one sentence (only for ids the model explained).
        missing: shown ids without a reason.
        duplicates: ids the model explained twice (the first reason is kept).
        error: why the call gave no valid answer at all, if it did not.
    """

    reasons: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    error: str | None = None

    def validity(self) -> dict[str, Any]:
        return {"missing": len(self.missing), "duplicates": len(self.duplicates),
                "parse_failed": self.error is not None}


async def explain_ranking(
    model: BaseChatModel,
    items: Sequence[Item],
    *,
    evidence: Mapping[str, str] | None = None,
    history: Sequence[str] | None = None,
    profile: str | None = None,
    context: str | None = None,
    domain: Domain | None = None,
    agent: str = "ranker_reasons",
) -> ReasonsResult:
    """One reason per item in `items` (the ranker's final top k, best first).

    Args:
        model: the chat model that writes the reasons.
        items: the shown items, in their final order.
        evidence: per-id evidence shown beside each title ("NLI P(yes) 0.91; recommender
            rank 2 of 20").
        history: the shopper's latest item titles, oldest first.
        profile: the User Understanding Agent's text.
        context: the Context Summary Agent's text.
        domain: what the shop sells.
        agent: name for usage accounting.
    """
    ids = [i["id"] for i in items]
    if not ids:
        return ReasonsResult()
    shown = [{**i, "evidence": (evidence or {}).get(i["id"], "")} for i in items]
    try:
        answer = await RANKER_REASONS.ask(model, domain=domain, schema=reasons_schema(ids),
                                          agent=agent, items=shown, history=list(history or []),
                                          profile=profile or "",
                                          context=context or "")
    except StructuredOutputError as e:
        return ReasonsResult(missing=ids, error=str(e).splitlines()[0][:300])
    result = ReasonsResult()
    for entry in answer.value.reasons:  # type: ignore[attr-defined]
        if entry.item_id in result.reasons:
            result.duplicates.append(entry.item_id)
        else:
            result.reasons[entry.item_id] = " ".join(entry.reason.split())
    result.missing = [i for i in ids if i not in result.reasons]
    return result
