"""Character profiler: what the character looks like, as a schema (era, setting,
palette, materials, signature pieces, traits)."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from aisle.agents._role import Domain, Role
from aisle.agents.outfits._common import Wearer

__all__ = ["CHARACTER_PROFILER", "CharacterProfile", "profile_character"]


class CharacterProfile(BaseModel):
    """How a character looks."""

    model_config = ConfigDict(extra="forbid")

    era: str = Field(max_length=60, description="When they live.")
    setting: str = Field(max_length=80, description="Where they live.")
    palette: list[str] = Field(min_length=1, max_length=5, description="Their colours.")
    materials: list[str] = Field(min_length=1, max_length=5,
                                 description="What their clothes are made of.")
    signature_pieces: list[str] = Field(min_length=1, max_length=6,
                                        description="Garments and accessories people "
                                                    "recognise them by.")
    traits: list[str] = Field(min_length=1, max_length=5,
                              description="Personality traits their clothes express.")

    def describe(self) -> str:
        """The profile as the later agents read it.

        Example:
            >>> CharacterProfile(era="1930s", setting="jungle digs", palette=["khaki"],
            ...                  materials=["leather"], signature_pieces=["fedora"],
            ...                  traits=["adventurous"]).describe().splitlines()[0]
            'Era: 1930s; setting: jungle digs.'
        """
        return (f"Era: {self.era}; setting: {self.setting}.\n"
                f"Palette: {', '.join(self.palette)}.\n"
                f"Materials: {', '.join(self.materials)}.\n"
                f"Signature pieces: {', '.join(self.signature_pieces)}.\n"
                f"Traits: {', '.join(self.traits)}.")


CHARACTER_PROFILER: Role[CharacterProfile] = Role(
    "profiler", "outfits/profiler.j2", CharacterProfile, max_tokens=300, temperature=0.0)


async def profile_character(model: BaseChatModel, character: str, *, gender: str, age: str,
                            note: str | None = None, domain: Domain | None = None
                            ) -> CharacterProfile:
    """The character's look (raises `StructuredOutputError` when it stays invalid)."""
    age_word, gender_word = Wearer.words(gender, age)
    answer = await CHARACTER_PROFILER.ask(model, domain=domain, character=character,
                                          note=note or "", age=age_word, gender=gender_word)
    return answer.value
