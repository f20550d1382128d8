"""The text-only baseline of the eval (LVA-COG's baseline): one call names the outfit,
slot by slot, and each description goes to the catalog as it is (no profile, no query
writer, no critic)."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from aisle.agents._role import Domain, Role
from aisle.agents.outfits._common import GarmentSlot, Wearer, contradicting_slots

__all__ = ["BASELINE_STYLIST", "BaselineOutfit", "NamedGarment", "name_outfit"]


class NamedGarment(BaseModel):
    """A garment the baseline named, with its slot."""

    model_config = ConfigDict(extra="forbid")

    slot: GarmentSlot
    description: str = Field(min_length=1, max_length=100)


class BaselineOutfit(BaseModel):
    """One short description per slot (null: not part of the outfit); the same
    slot-per-field shape as the stylist's `OutfitPlan`."""

    model_config = ConfigDict(extra="forbid")

    top: str | None = Field(max_length=100, description="null with a one_piece.")
    bottom: str | None = Field(max_length=100, description="null with a one_piece.")
    one_piece: str | None = Field(max_length=100, description="A dress or jumpsuit, or null.")
    outerwear: str | None = Field(max_length=100, description="A layer, or null.")
    footwear: str = Field(min_length=1, max_length=100)
    accessories: list[str] = Field(max_length=3)

    @property
    def dropped(self) -> tuple[str, ...]:
        """The body slots left out because they contradict a one-piece (the stylist's
        rule, `contradicting_slots`)."""
        def named(text: str | None) -> bool:
            return bool(text and text.strip())

        return contradicting_slots(named(self.top), named(self.bottom),
                                   named(self.one_piece))

    @property
    def garments(self) -> list[NamedGarment]:
        """The named garments with their slots, in slot order (blank and `dropped` ones
        left out)."""
        dropped = self.dropped
        pairs: list[tuple[str, str | None]] = [
            (s, getattr(self, s)) for s in ("top", "bottom", "one_piece", "outerwear",
                                            "footwear") if s not in dropped]
        pairs += [("accessory", a) for a in self.accessories]
        return [NamedGarment(slot=s, description=d.strip())  # type: ignore[arg-type]
                for s, d in pairs if d and d.strip()]


BASELINE_STYLIST: Role[BaselineOutfit] = Role("baseline", "outfits/baseline.j2",
                                              BaselineOutfit, max_tokens=300, temperature=0.0)


async def name_outfit(model: BaseChatModel, character: str, *, gender: str, age: str,
                      note: str | None = None, domain: Domain | None = None
                      ) -> BaselineOutfit:
    """One call: the outfit's garments (raises `StructuredOutputError`)."""
    age_word, gender_word = Wearer.words(gender, age)
    answer = await BASELINE_STYLIST.ask(model, domain=domain, character=character,
                                        note=note or "", age=age_word, gender=gender_word)
    return answer.value
