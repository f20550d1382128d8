"""Outfit critic: faithfulness to the character, coherence, wearability for the wearer
(1 to 5 each), accept or revise, and what to change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from aisle.agents._role import Domain, Role
from aisle.agents.outfits._common import Wearer

__all__ = ["OUTFIT_CRITIC", "CriticSlot", "OutfitCritique", "critique_outfit"]


class OutfitCritique(BaseModel):
    model_config = ConfigDict(extra="forbid")

    faithfulness: int = Field(ge=1, le=5, description="Does it evoke the character?")
    coherence: int = Field(ge=1, le=5, description="Do the pieces go together?")
    wearability: int = Field(ge=1, le=5, description="Wearable for this wearer?")
    verdict: Literal["accept", "revise"]
    feedback: str = Field(max_length=300, description="What to change, 1-2 sentences.")


class CriticSlot(TypedDict):
    slot: str
    planned: str
    found: str


OUTFIT_CRITIC: Role[OutfitCritique] = Role("critic", "outfits/critic.j2", OutfitCritique,
                                           max_tokens=200, temperature=0.0)


async def critique_outfit(model: BaseChatModel, character: str, profile: str,
                          slots: Sequence[CriticSlot], *, gender: str, age: str,
                          missing: Sequence[str] = (), domain: Domain | None = None
                          ) -> OutfitCritique:
    """The critic's review (raises `StructuredOutputError` when it stays invalid)."""
    age_word, gender_word = Wearer.words(gender, age)
    answer = await OUTFIT_CRITIC.ask(model, domain=domain, character=character,
                                     profile=profile, slots=list(slots),
                                     missing=list(missing), age=age_word, gender=gender_word)
    return answer.value
