"""Stylist: fills the garment slots (category, colour, material, style words, and the
character trait each piece expresses), given the profile and, on a revision, the
critic's feedback; in diverse-style mode, a style direction per outfit."""

from __future__ import annotations

from collections import Counter

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from aisle.agents._role import Domain, Role
from aisle.agents.outfits._common import GarmentSlot, Wearer, contradicting_slots

__all__ = ["STYLE_DIRECTIONS", "STYLIST", "Garment", "GarmentSpec", "OutfitPlan",
           "missing_slots", "plan_outfit"]


class GarmentSpec(BaseModel):
    """One planned garment, as the stylist writes it (its slot is the field it is in)."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=40,
                          description="The kind of garment, in two or three words.")
    colour: str = Field(max_length=30)
    material: str = Field(max_length=30)
    style: list[str] = Field(default_factory=list, max_length=4,
                             description="A few style words.")
    trait: str = Field(max_length=60, description="The character trait it expresses.")


class Garment(GarmentSpec):
    """A planned garment with its slot."""

    slot: GarmentSlot

    def describe(self) -> str:
        """`'brown leather ankle boots (rugged)'`."""
        words = " ".join(w for w in (self.colour, self.material, self.category) if w)
        return words + (f" ({', '.join(self.style)})" if self.style else "")


class OutfitPlan(BaseModel):
    """The stylist's plan, one field per slot, so constrained decoding walks through
    the slots in order (as a list of `{slot, ...}` entries, a 0.5B model filled every
    entry with the first slot of the enum). A slot left null is not planned; the
    completeness rule (`missing_slots`) is checked by code, not by the schema."""

    model_config = ConfigDict(extra="forbid")

    top: GarmentSpec | None = Field(description="A shirt, blouse, sweater or t-shirt; "
                                                "null with a one_piece.")
    bottom: GarmentSpec | None = Field(description="Trousers, jeans, a skirt or shorts; "
                                                   "null with a one_piece.")
    one_piece: GarmentSpec | None = Field(description="A dress or jumpsuit instead of top "
                                                      "and bottom; else null.")
    outerwear: GarmentSpec | None = Field(description="A coat, jacket, blazer or vest; "
                                                      "null if none.")
    footwear: GarmentSpec = Field(description="Shoes, boots or sandals.")
    accessories: list[GarmentSpec] = Field(max_length=3, description="One to three: a hat, "
                                           "bag, belt, scarf, watch, glasses or jewelry.")

    @property
    def dropped(self) -> tuple[str, ...]:
        """The body slots left out because they contradict a one-piece
        (`contradicting_slots`)."""
        return contradicting_slots(self.top is not None, self.bottom is not None,
                                   self.one_piece is not None)

    @property
    def garments(self) -> list[Garment]:
        """The planned garments with their slots, in slot order, without the
        `dropped` ones."""
        dropped = self.dropped
        out = [Garment(slot=slot, **spec.model_dump())  # type: ignore[arg-type]
               for slot in ("top", "bottom", "one_piece", "outerwear", "footwear")
               if (spec := getattr(self, slot)) is not None and slot not in dropped]
        out += [Garment(slot="accessory", **a.model_dump()) for a in self.accessories]
        return out


def missing_slots(slots: list[str]) -> list[str]:
    """What a complete outfit lacks: footwear, and a top and a bottom or a one-piece.

    Example:
        >>> missing_slots(["top", "footwear", "accessory"])
        ['bottom']
        >>> missing_slots(["one_piece", "footwear"])
        []
        >>> missing_slots(["accessory"])
        ['top', 'bottom', 'footwear']
    """
    have = Counter(slots)
    out = []
    if not have["one_piece"]:
        out += [s for s in ("top", "bottom") if not have[s]]
    if not have["footwear"]:
        out.append("footwear")
    return out


STYLIST: Role[OutfitPlan] = Role("stylist", "outfits/stylist.j2", OutfitPlan,
                                 max_tokens=600, temperature=0.0)

STYLE_DIRECTIONS: tuple[str, ...] = (
    "classic and faithful to the character's best-known look",
    "modern streetwear that hints at the character",
    "smart and formal, for an evening out",
    "relaxed weekend casual",
    "bold and colourful, the character's palette turned up",
)
"""The directions the diverse-style mode gives its n stylists (n <= len), in order."""


async def plan_outfit(model: BaseChatModel, character: str, profile: str, *, gender: str,
                      age: str, style: str | None = None, feedback: str | None = None,
                      image_notes: str | None = None, domain: Domain | None = None
                      ) -> OutfitPlan:
    """One outfit plan (raises `StructuredOutputError` when it stays invalid)."""
    age_word, gender_word = Wearer.words(gender, age)
    answer = await STYLIST.ask(model, domain=domain, character=character, profile=profile,
                               age=age_word, gender=gender_word, style=style or "",
                               feedback=feedback or "", image_notes=image_notes or "")
    return answer.value
