"""The outfit catalog on a real chromadb store with the real all-MiniLM-L6-v2 model: a
search follows the meaning of the query within the slot and departments asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisle.tools.outfit_catalog import ClothingItem, OutfitCatalog, departments_for

pytestmark = pytest.mark.integration

ROOT = "Clothing, Shoes & Jewelry"
ITEMS = {item.id: item for item in [
    ClothingItem.from_paths(item_id, title, (path,)) for item_id, title, path in [
        ("1", "Women's Black Leather Knee High Riding Boots", (ROOT, "Women", "Shoes", "Boots")),
        ("2", "Women's Pink Canvas Slip-On Sneakers", (ROOT, "Women", "Shoes",
                                                       "Fashion Sneakers")),
        ("3", "Men's Black Leather Chelsea Boots", (ROOT, "Men", "Shoes", "Boots")),
        ("4", "Women's Black Leather Biker Jacket", (ROOT, "Women", "Clothing",
                                                     "Coats & Jackets")),
        ("5", "Women's Floral Chiffon Summer Dress", (ROOT, "Women", "Clothing", "Dresses")),
        ("6", "Men's Navy Wool Peacoat", (ROOT, "Men", "Clothing", "Jackets & Coats")),
    ]
]}


def test_search_follows_the_query_within_slot_and_departments(tmp_path: Path) -> None:
    outfit = OutfitCatalog(tmp_path / "idx", ITEMS)
    assert outfit.sync() == len(ITEMS)
    woman = departments_for("female", "adult")
    shoes = outfit.search("tall black leather boots", slot="footwear", departments=woman)
    assert [h["id"] for h in shoes] == ["1", "2"]
    assert shoes[0]["score"] > shoes[1]["score"]
    coats = outfit.search("warm winter coat", slot="outerwear",
                          departments=departments_for("male", "adult"))
    assert [h["id"] for h in coats] == ["6"]
