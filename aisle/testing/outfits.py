"""A small hand-made clothing catalog for outfit tests: a dozen men's and women's items
over every slot, indexed in chromadb with trigram embeddings (no MiniLM)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aisle.testing.embeddings import trigram_embed
from aisle.tools.outfit_catalog import ClothingItem, OutfitCatalog, parse_category_paths

__all__ = ["SMALL_CATALOG", "TrigramEmbedder", "small_outfit_catalog",
           "write_small_catalog_files"]

_ROOT = "Clothing, Shoes & Jewelry"
SMALL_CATALOG: dict[str, tuple[str, str]] = {
    "m-shirt": ("Men's white cotton oxford shirt", "Men,Clothing,Shirts"),
    "m-tee": ("Men's grey crew neck tee", "Men,Clothing,Shirts"),
    "w-blouse": ("Women's silk blouse, ivory", "Women,Clothing,Tops & Tees"),
    "m-chino": ("Men's khaki chino pants", "Men,Clothing,Pants"),
    "m-jeans": ("Men's dark blue denim jeans", "Men,Clothing,Jeans"),
    "w-skirt": ("Women's tweed pencil skirt", "Women,Clothing,Skirts"),
    "m-boot": ("Men's brown leather ankle boots", "Men,Shoes,Boots"),
    "m-sneaker": ("Men's white canvas sneakers", "Men,Shoes,Fashion Sneakers"),
    "w-heel": ("Women's black leather pumps", "Women,Shoes,Pumps"),
    "m-jacket": ("Men's leather bomber jacket", "Men,Clothing,Jackets & Coats"),
    "m-hat": ("Men's felt fedora hat", "Men,Accessories,Hats & Caps"),
    "m-watch": ("Men's steel watch", "Men,Watches"),
}
"""id -> (title, category path under "Clothing, Shoes & Jewelry")."""


class TrigramEmbedder:
    """`Embedder`'s interface over `trigram_embed`."""

    dim = 256

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return trigram_embed(list(texts), self.dim)


def small_outfit_catalog(folder: Path, drop: Sequence[str] = ()) -> OutfitCatalog:
    """`SMALL_CATALOG` (less `drop`) as a synced `OutfitCatalog` in `folder`."""
    items = {i: ClothingItem.from_paths(i, title, parse_category_paths(f"[[{_ROOT},{path}]]"))
             for i, (title, path) in SMALL_CATALOG.items() if i not in drop}
    catalog = OutfitCatalog(folder, items, embedder=TrigramEmbedder())  # type: ignore[arg-type]
    catalog.sync()
    return catalog


def write_small_catalog_files(folder: Path) -> Path:
    """`SMALL_CATALOG` as the files of `bundles/clothing` (`item_titles.csv`,
    `item_categories.csv`) in `folder`, for code that takes the catalog's folder."""
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "item_titles.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item ID", "titles"])
        writer.writerows((i, title) for i, (title, _) in SMALL_CATALOG.items())
    with (folder / "item_categories.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item ID", "categories"])
        writer.writerows((i, f"[[{_ROOT},{path}]]") for i, (_, path) in SMALL_CATALOG.items())
    return folder
