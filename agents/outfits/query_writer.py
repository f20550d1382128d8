"""Catalog query writer: one search query per planned garment, in the words product
titles use (no character names)."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from aisle.agents._role import Domain, Role
from aisle.agents.outfits._common import Wearer
from aisle.agents.outfits.stylist import Garment

__all__ = ["QUERY_WRITER", "SlotQuery", "write_query"]


class SlotQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=100, description="4 to 10 words.")


QUERY_WRITER: Role[SlotQuery] = Role("query_writer", "outfits/query_writer.j2", SlotQuery,
                                     max_tokens=60, temperature=0.0)


async def write_query(model: BaseChatModel, garment: Garment, *, gender: str, age: str,
                      image_notes: str | None = None, domain: Domain | None = None) -> str:
    """The catalog query for one garment (raises `StructuredOutputError`)."""
    age_word, gender_word = Wearer.words(gender, age)
    answer = await QUERY_WRITER.ask(
        model, domain=domain, slot=garment.slot, category=garment.category,
        colour=garment.colour, material=garment.material, style=", ".join(garment.style),
        age=age_word, gender=gender_word, image_notes=image_notes or "")
    return " ".join(answer.value.query.split())
