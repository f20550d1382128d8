"""The text-only baseline of the eval (LVA-COG's baseline): one call names the outfit,
slot by slot, and each description goes to the catalog as it is (no profile, no query
writer, no critic)."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from aisle.agents._role import Domain, Role
from aisle.agents.outfits._common import GarmentSlot, Wearer

__all__ = ["BASELINE_STYLIST", "BaselineOutfit", "NamedGarment", "name_outfit"]


class NamedGarment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot: GarmentSlot
    description: str = Field(min_length=1, max_length=100)


class BaselineOutfit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    garments: list[NamedGarment] = Field(min_length=3, max_length=7)


BASELINE_STYLIST: Role[BaselineOutfit] = Role("baseline", "outfits/baseline.j2",
                                              BaselineOutfit, max_tokens=300, temperature=0.0)


async def name_outfit(model: BaseChatModel, character: str, *, gender: str, age: str,
                      domain: Domain | None = None) -> BaselineOutfit:
    """One call: the outfit's garments (raises `StructuredOutputError`)."""
    age_word, gender_word = Wearer.words(gender, age)
    answer = await BASELINE_STYLIST.ask(model, domain=domain, character=character,
                                        age=age_word, gender=gender_word)
    return answer.value
