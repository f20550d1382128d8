"""Types the outfit agents share, and the shop's prompt domain."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, Literal

from aisle.agents._role import Domain

__all__ = ["CLOTHING", "GarmentSlot", "Wearer", "contradicting_slots"]

GarmentSlot = Literal["top", "bottom", "one_piece", "outerwear", "footwear", "accessory"]
"""The slots a stylist fills (the catalog's `Slot`)."""

# The shop the outfit items come from (bundles/clothing: Amazon clothing, shoes, jewelry).
CLOTHING = Domain(store="an online clothing, shoes and jewelry store", item="product",
                  items="products", aspects="garment types, colours, materials, styles")


class Wearer:
    """How prompts name the wearer: `age`/`gender` words as the documented values."""

    AGE_WORDS: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"child": "a young", "teen": "a teenage", "adult": "an adult", "senior": "an older"})
    GENDER_WORDS: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"female": "woman", "male": "man"})
    CHILD_GENDER_WORDS: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"female": "girl", "male": "boy"})

    @classmethod
    def words(cls, gender: str, age: str) -> tuple[str, str]:
        """`(age words, gender word)` for the prompts: ('a teenage', 'girl').

        Example:
            >>> Wearer.words("female", "teen")
            ('a teenage', 'girl')
            >>> Wearer.words("male", "adult")
            ('an adult', 'man')
        """
        young = age in ("child", "teen")
        noun = (cls.CHILD_GENDER_WORDS if young else cls.GENDER_WORDS)[gender]
        return cls.AGE_WORDS[age], noun


def contradicting_slots(top: bool, bottom: bool, one_piece: bool) -> tuple[str, ...]:
    """The body slots a plan drops when it has a one-piece and separates too (the
    prompts ask for top and bottom null with a one-piece, and a small model fills
    all three): with both separates the one-piece goes (the separates are a full
    outfit on their own), with only one of them that one goes (the one-piece covers
    it). Nothing is dropped from a plan without the contradiction.

    Example:
        >>> contradicting_slots(True, True, True)
        ('one_piece',)
        >>> contradicting_slots(True, False, True)
        ('top',)
        >>> contradicting_slots(True, True, False)
        ()
    """
    if not one_piece or not (top or bottom):
        return ()
    if top and bottom:
        return ("one_piece",)
    return ("top",) if top else ("bottom",)
