"""Types the outfit agents share, and the shop's prompt domain."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, Literal

from aisle.agents._role import Domain

__all__ = ["CLOTHING", "GarmentSlot", "Wearer"]

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
