"""Prompt concretiser (POAC, arXiv 2404.11589): an outfit, or an abstract theme, turned
into a text-to-image prompt of concrete, drawable elements."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from aisle.agents._role import Domain, Role
from aisle.agents.outfits._common import Wearer
from aisle.errors import ConfigurationError

__all__ = ["CONCRETISER", "ImagePrompt", "concretise"]


class ImagePrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    elements: list[str] = Field(min_length=2, max_length=10,
                                description="Concrete things the picture shows.")
    prompt: str = Field(min_length=1, max_length=600, description="The image prompt.")


CONCRETISER: Role[ImagePrompt] = Role("concretiser", "outfits/concretiser.j2", ImagePrompt,
                                      max_tokens=350, temperature=0.0)


async def concretise(model: BaseChatModel, *, garments: Sequence[str] = (),
                     character: str | None = None, setting: str | None = None,
                     theme: str | None = None, gender: str = "female", age: str = "adult",
                     domain: Domain | None = None) -> ImagePrompt:
    """A concrete text-to-image prompt for an outfit (`garments`: item titles or planned
    garments) or an abstract `theme` ("elegance", "peace").

    Raises:
        ConfigurationError: neither garments nor a theme.
        StructuredOutputError: the answer stays invalid.
    """
    if not garments and not (theme and theme.strip()):
        raise ConfigurationError("the concretiser needs an outfit's garments or a theme")
    age_word, gender_word = Wearer.words(gender, age)
    answer = await CONCRETISER.ask(model, domain=domain, garments=list(garments),
                                   character=character or "", setting=setting or "",
                                   theme=theme or "", age=age_word, gender=gender_word)
    return answer.value
