"""Feature extractor: the salient features a carousel's items share, and the ones that
split them (CARTS's Generation-Augmented Generation: titles come from these)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from aisle.agents._role import Domain, Role

__all__ = ["FEATURE_EXTRACTOR", "ItemFeatures", "extract_features"]


Feature = Annotated[str, Field(max_length=40, description="One to three words.")]


class ItemFeatures(BaseModel):
    """Features of an item set, each a few words, most important first."""

    shared: list[Feature] = Field(max_length=5, description="Features the items share.")
    distinguishing: list[Feature] = Field(max_length=5,
                                          description="Features that set some items apart.")


FEATURE_EXTRACTOR: Role[ItemFeatures] = Role(
    "feature_extractor", "carts/feature_extractor.j2", ItemFeatures, max_tokens=200,
    temperature=0.0)


async def extract_features(model: BaseChatModel, items: Sequence[str], *,
                           domain: Domain | None = None) -> ItemFeatures:
    """The items' shared and distinguishing features (blank ones dropped)."""
    answer = await FEATURE_EXTRACTOR.ask(model, domain=domain, items=list(items))
    value = answer.value
    return ItemFeatures(shared=[f.strip() for f in value.shared if f.strip()],
                        distinguishing=[f.strip() for f in value.distinguishing if f.strip()])
