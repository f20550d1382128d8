"""The clothing catalog of the outfit planner (LVA-COG, character-based outfit generation):
the bundles data's clothing items, each with the garment slots it can fill and the
departments that dress it, in a persistent chromadb index that a query searches within
one slot and a set of departments.

Data (see `../shared/data/README.md`, section bundles/; from BundleRec
`bundle_recommendation`): the `clothing/` folder's

- `item_titles.csv` (`item ID,titles`): each item's product title;
- `item_categories.csv` (`item ID,categories`): its Amazon category paths, written as
  `[[Clothing, Shoes & Jewelry,Women,Shoes,Sandals],[...]]`. Levels are separated by a
  comma with no space after it, while a level's own name may hold a comma followed by a
  space ("Clothing, Shoes & Jewelry", "Lingerie, Sleep & Lounge"), which is how
  `parse_category_paths` tells them apart.

Slots come from the paths' levels through two tables, `SLOT_OF_LEVEL` and
`NO_SLOT_LEVELS` (`slots_of` says how), and departments from the levels "Women", "Men",
"Girls", "Boys", "Baby" and their kin (`DEPARTMENT_OF_LEVEL`); a wearer's gender and age
group name the departments that dress them (`departments_for`).

On the real file (4,487 items, every one with a categories row; `catalog_stats`):

- per slot: top 685, bottom 319, one_piece 423, outerwear 92, footwear 771,
  accessory 1,387 (an item may fill several: 18 do, such as costumes also listed as
  costume accessories and leotards also listed as tops);
- per department: women 2,837, men 943, girls 292, boys 223, baby 197, unisex 228 (an
  item may be in several: 210 are);
- no slot: 828 items. 639 by design: they are listed under underwear or lingerie, socks
  or hosiery, sleepwear, swimwear, exotic apparel, spare parts, care or storage, or
  luggage (`NO_SLOT_LEVELS`), and under nothing that gives a slot. The other 189 are
  listed only under store sections that name no garment ("Women", "Novelty",
  "Costumes & Accessories", "Work Wear & Uniforms > Clothing > Medical", a brand).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

from typing_extensions import TypedDict

from aisle.datafiles import read_csv_columns
from aisle.errors import ConfigurationError, DatasetError
from aisle.tools.retrieval import Embedder, catalog_fingerprint, open_collection

__all__ = [
    "AGE_GROUPS",
    "DEPARTMENTS",
    "DEPARTMENT_OF_LEVEL",
    "GENDERS",
    "NO_SLOT_LEVELS",
    "SLOTS",
    "SLOT_OF_LEVEL",
    "AgeGroup",
    "CatalogHit",
    "ClothingItem",
    "DatasetError",
    "Department",
    "Gender",
    "OutfitCatalog",
    "Slot",
    "catalog_stats",
    "departments_for",
    "departments_of",
    "load_clothing",
    "parse_category_paths",
    "slots_of",
]

logger = logging.getLogger(__name__)

Slot = Literal["top", "bottom", "one_piece", "outerwear", "footwear", "accessory"]
Gender = Literal["female", "male"]
AgeGroup = Literal["child", "teen", "adult", "senior"]
Department = Literal["women", "men", "girls", "boys", "baby", "unisex"]

SLOTS: tuple[Slot, ...] = get_args(Slot)
"""The garment slots, in dressing order: top, bottom, one_piece, outerwear, footwear,
accessory. A `one_piece` dresses torso and legs at once, in place of a top and a bottom:
dresses, jumpsuits and rompers, baby bodysuits, costumes, and the matching sets sold as
one item (clothing sets, suits, tracksuits)."""
GENDERS: tuple[Gender, ...] = get_args(Gender)
AGE_GROUPS: tuple[AgeGroup, ...] = get_args(AgeGroup)
DEPARTMENTS: tuple[Department, ...] = get_args(Department)

TITLES_FILE = "item_titles.csv"
CATEGORIES_FILE = "item_categories.csv"

# Which slot a category level puts an item in. A path's slot is that of its deepest level
# listed here (so "Pants > Casual" is a bottom and "Costumes & Accessories > Hats & Caps"
# an accessory); levels not listed (brands, styles such as "Casual" or "Dress", store
# sections such as "Novelty") say nothing. Every name is as the real file spells it.
_TOP = ("Tops & Tees", "Tops", "Tees", "T-Shirts", "Shirts", "Blouses",
        "Blouses & Button-Down Shirts", "Button-Down Shirts", "Casual Button-Down Shirts",
        "Button-Down & Dress Shirts", "Dress Shirts", "Henleys", "Polos", "Polo Shirts",
        "Tank Tops", "Tanks Tops", "Tanks & Camis", "Tunics", "Knits & Tees",
        "Active Shirts & Tees", "Sweaters", "Pullovers", "Pullover", "Cardigans", "Cardigan",
        "Hoodies", "Hoodies & Active", "Active Hoodies", "Fashion Hoodies & Sweatshirts",
        "Fashion Hoodies", "Fashion Sweatshirts", "Sweatshirts", "Active Sweatshirts",
        "Scrub Tops")
_BOTTOM = ("Bottoms", "Pants", "Pants & Capris", "Capri Pants", "Active Pants", "Sweatpants",
           "Jeans", "Shorts", "Active Shorts", "Workout Shorts", "Skirts", "Active Skirts",
           "Skirts, Scooters & Skorts", "Leggings", "Active Leggings", "Tights & Leggings",
           "Scrub Bottoms")
_ONE_PIECE = ("Dresses", "Dresses & Jumpers", "Jumpsuits, Rompers & Overalls",
              "Jumpsuits & Rompers", "Rompers", "Footies & Rompers", "Footies", "Bodysuits",
              "Overalls & Coveralls", "Leotards", "Christening", "Costumes",
              "Clothing Sets", "Pant Sets", "Short Sets", "Skirt Sets", "Layette Sets",
              "Suits", "Tuxedos", "Tracksuits & Sweatsuits", "Tracksuits",
              "Active Tracksuits", "Scrub Sets")
_OUTERWEAR = ("Coats & Jackets", "Jackets & Coats", "Outerwear & Coats", "Outerwear",
              "Jackets", "Lightweight Jackets", "Denim Jackets", "Windbreakers", "Dress Coats",
              "Track Jackets", "Track & Active Jackets", "Blazers", "Blazers & Jackets",
              "Suits & Blazers", "Sport Coats & Blazers", "Vests", "Lab Coats")
_FOOTWEAR = ("Shoes", "Boot Shop", "Comfort Shoes", "Boots", "Riding Boots", "Sandals",
             "Sneakers")
_ACCESSORY = ("Accessories", "More Accessories", "Jewelry", "Body Jewelry",
              "Jewelry & Watches", "Jewelry Outlet", "Jewelry: International Shipping Available",
              "New Jewelry", "Pearl Jewelry", "Plain Gold Jewelry", "Plain Silver Jewelry",
              "Heart-Shaped Jewelry", "Gemstones", "Diamonds", "Antique & Estate Jewelry",
              "Contemporary Designer Jewelry", "Boutique Designer Jewelry",
              "Timeless Designer Jewelry", "Watches", "Wrist Watches", "Fashion Watches",
              "Sport Watches", "Luxury Watches", "Collectible Watches",
              "Men's Athletic Watches", "Women's Athletic Watches", "Handbags & Wallets",
              "Wallets, Card Cases & Money Organizers", "Hats & Caps", "Hats", "Belts",
              "Belt Buckles", "Sunglasses", "Sunglasses & Eyewear",
              "Sunglasses & Eyewear Accessories", "Sports Sunglasses",
              "Prescription Eyewear Frames", "Scarves", "Scarves & Wraps", "Gloves & Mittens",
              "Gloves", "Mittens", "Gloves, Mittens & Liners", "Neckties", "Bow Ties",
              "Bow Ties & Cummerbunds", "Cuff Links", "Earmuffs", "Hair Accessories", "Masks",
              "Wigs", "Backpacks", "Messenger Bags", "Briefcases", "Fashion Waist Packs",
              "Gym Bags", "Umbrellas")

SLOT_OF_LEVEL: Final[Mapping[str, Slot]] = {
    **dict.fromkeys(_TOP, "top"),
    **dict.fromkeys(_BOTTOM, "bottom"),
    **dict.fromkeys(_ONE_PIECE, "one_piece"),
    **dict.fromkeys(_OUTERWEAR, "outerwear"),
    **dict.fromkeys(_FOOTWEAR, "footwear"),
    **dict.fromkeys(_ACCESSORY, "accessory"),
}
"""Category level name -> the slot it puts an item in (the deepest listed level of a path
decides; see `slots_of`)."""

NO_SLOT_LEVELS: Final[frozenset[str]] = frozenset({
    # Worn under or instead of an outfit, not as part of it.
    "Intimates", "Lingerie", "Lingerie Sets", "Lingerie, Sleep & Lounge", "Underwear",
    "Thermal Underwear", "Active Underwear", "Active Base Layers",
    "Bloomers, Diaper Covers & Underwear", "Shapewear", "Exotic Apparel",
    "Socks", "Socks & Hosiery", "Socks & Tights", "Athletic Socks", "Hosiery", "Tights",
    "Tights & Hosiery", "Leg Warmers",
    "Sleep & Lounge", "Sleepwear & Robes", "Pajama Sets", "Blanket Sleepers",
    "Sleep Bottoms", "Robes", "Nightgowns & Sleepshirts",
    "Swim", "Swimsuits & Cover Ups", "Swimwear", "Swimwear Sets",
    # Not worn at all: spare parts, care, storage, luggage, baby linen.
    "Watch Accessories", "Watch Bands", "Jewelry Accessories", "Shoe Care & Accessories",
    "Handbag Accessories", "Replacement Sunglass Lenses", "Keychains", "Luggage",
    "Travel Accessories", "Receiving Blankets", "Bibs & Burp Cloths",
    # Other shops' trees.
    "Baby Products", "Beauty", "Books", "Health & Personal Care", "Pet Supplies",
    "Tools & Home Improvement", "Toys & Games",
})
"""Category levels whose paths fill no slot, wherever in the path they stand: underwear,
lingerie, socks and hosiery, sleepwear, swimwear, exotic apparel; spare parts, care and
storage (watch bands, jewelry boxes, shoelaces), luggage; other shops' trees. An item with
another path can still fill a slot through it."""

DEPARTMENT_OF_LEVEL: Final[Mapping[str, tuple[Department, ...]]] = {
    "Women": ("women",), "Women's Luxury Brands": ("women",),
    "Women's Athletic Watches": ("women",),
    "Men": ("men",), "Men's Athletic Watches": ("men",),
    "Girls": ("girls",), "Boys": ("boys",),
    "Baby": ("baby",), "Baby Girls": ("baby",), "Baby Boys": ("baby",),
    "Infants & Toddlers": ("baby",), "Baby Products": ("baby",),
}
"""Category level name -> the departments it names. "Kids & Baby" (costumes) names girls,
boys and baby, but only in a path that names none of them more precisely."""
_ANY_CHILD: Final[tuple[Department, ...]] = ("girls", "boys", "baby")
_KIDS_LEVEL = "Kids & Baby"

_DRESSED_BY: Final[Mapping[tuple[Gender, AgeGroup], frozenset[Department]]] = {
    ("female", "child"): frozenset({"girls", "unisex"}),
    ("female", "teen"): frozenset({"girls", "women", "unisex"}),
    ("female", "adult"): frozenset({"women", "unisex"}),
    ("female", "senior"): frozenset({"women", "unisex"}),
    ("male", "child"): frozenset({"boys", "unisex"}),
    ("male", "teen"): frozenset({"boys", "men", "unisex"}),
    ("male", "adult"): frozenset({"men", "unisex"}),
    ("male", "senior"): frozenset({"men", "unisex"}),
}

# A path separator "],[" (spaces around its comma tolerated) and a level separator: a comma
# not followed by a space.
_PATH_SEPARATOR = re.compile(r"\]\s*,\s*\[")
_LEVEL_SEPARATOR = re.compile(r",(?! )")


@dataclass(frozen=True)
class ClothingItem:
    """One catalog item.

    Attributes:
        id: the item id, as the data files write it.
        title: its product title, whitespace-normalised.
        paths: its category paths, root level first (`parse_category_paths`); empty for an
            item with no categories row.
        slots: the garment slots it can fill (`slots_of`); empty for what no outfit slot
            takes (underwear, socks, sleepwear, swimwear, ...; see `NO_SLOT_LEVELS`).
        departments: the departments it is sold in (`departments_of`); {"unisex"} when no
            path names one.

    Example:
        >>> paths = parse_category_paths("[[Clothing, Shoes & Jewelry,Men,Shoes,Boots]]")
        >>> item = ClothingItem.from_paths("7", "Chukka boot", paths)
        >>> sorted(item.slots), sorted(item.departments)
        (['footwear'], ['men'])
    """

    id: str
    title: str
    paths: tuple[tuple[str, ...], ...]
    slots: frozenset[Slot]
    departments: frozenset[Department]

    @classmethod
    def from_paths(cls, item_id: str, title: str,
                   paths: tuple[tuple[str, ...], ...]) -> ClothingItem:
        """The item with its slots and departments read from its paths."""
        return cls(item_id, title, paths, slots_of(paths), departments_of(paths))


class CatalogHit(TypedDict):
    """A found item: id, title, the slot searched, and cosine similarity to the query."""

    id: str
    title: str
    slot: str
    score: float


def parse_category_paths(text: str) -> tuple[tuple[str, ...], ...]:
    """The category paths of one `item_categories.csv` cell, root level first.

    Paths are `[...]` lists inside one outer `[...]`; a path's levels are separated by a
    comma with no space after it, since a comma followed by a space belongs to a level's
    name. Repeated paths are kept once, in first-seen order.

    Args:
        text: the cell, e.g. `[[Clothing, Shoes & Jewelry,Women],[...]]`; `[]` for none.

    Returns:
        The paths, each a tuple of level names.

    Raises:
        DatasetError: `text` is not a bracketed list of paths, or a path has an empty level
            or a stray bracket. The message quotes the text.

    Example:
        >>> paths = parse_category_paths("[[Clothing, Shoes & Jewelry,Women,Clothing,"
        ...                              "Lingerie, Sleep & Lounge,Intimates],"
        ...                              "[Clothing, Shoes & Jewelry,Jewelry Outlet]]")
        >>> paths[0]
        ('Clothing, Shoes & Jewelry', 'Women', 'Clothing', 'Lingerie, Sleep & Lounge',
         'Intimates')
        >>> paths[1]
        ('Clothing, Shoes & Jewelry', 'Jewelry Outlet')
        >>> parse_category_paths("[]")
        ()
    """
    body = text.strip()
    if body == "[]":
        return ()
    if not (body.startswith("[[") and body.endswith("]]")):
        raise DatasetError(f"category paths should read [[level,level,...],[...]], got "
                           f"{_excerpt(text)}")
    paths: dict[tuple[str, ...], None] = {}
    for raw in _PATH_SEPARATOR.split(body[2:-2]):
        levels = tuple(_LEVEL_SEPARATOR.split(raw))
        if any(not level.strip() or "[" in level or "]" in level for level in levels):
            raise DatasetError(f"category path {raw!r} has an empty level or a stray bracket "
                               f"in {_excerpt(text)}")
        paths[tuple(level.strip() for level in levels)] = None
    return tuple(paths)


def slots_of(paths: Iterable[Sequence[str]]) -> frozenset[Slot]:
    """The garment slots that items with these category paths can fill.

    Each path gives at most one slot: none if any of its levels is in `NO_SLOT_LEVELS`,
    else that of its deepest level in `SLOT_OF_LEVEL`, else none. The item fills every
    slot its paths give.

    Example:
        >>> sorted(slots_of([("Clothing, Shoes & Jewelry", "Women", "Clothing", "Pants",
        ...                   "Casual")]))
        ['bottom']
        >>> sorted(slots_of([("Women", "Clothing", "Lingerie, Sleep & Lounge", "Intimates",
        ...                   "Shapewear", "Bodysuits")]))
        []
        >>> sorted(slots_of([("Men", "Shoes", "Boots"), ("Men", "Accessories", "Belts")]))
        ['accessory', 'footwear']
    """
    found: set[Slot] = set()
    for path in paths:
        if any(level in NO_SLOT_LEVELS for level in path):
            continue
        for level in reversed(path):
            slot = SLOT_OF_LEVEL.get(level)
            if slot is not None:
                found.add(slot)
                break
    return frozenset(found)


def departments_of(paths: Iterable[Sequence[str]]) -> frozenset[Department]:
    """The departments that items with these category paths are sold in.

    A path names the departments of its levels in `DEPARTMENT_OF_LEVEL` ("Women", "Men",
    "Girls", "Boys", "Baby", ...), or girls, boys and baby for a "Kids & Baby" path that
    names none of them; an item is in every department its paths name, and {"unisex"}
    when they name none.

    Example:
        >>> sorted(departments_of([("Clothing, Shoes & Jewelry", "Boot Shop", "Girls"),
        ...                        ("Clothing, Shoes & Jewelry", "Jewelry Outlet")]))
        ['girls']
        >>> sorted(departments_of([("Clothing, Shoes & Jewelry", "Jewelry Outlet")]))
        ['unisex']
        >>> sorted(departments_of([("Costumes & Accessories", "Masks", "Kids & Baby")]))
        ['baby', 'boys', 'girls']
    """
    found: set[Department] = set()
    for path in paths:
        named = {d for level in path for d in DEPARTMENT_OF_LEVEL.get(level, ())}
        if not named and _KIDS_LEVEL in path:
            named.update(_ANY_CHILD)
        found |= named
    return frozenset(found) if found else frozenset({"unisex"})


def departments_for(gender: Gender, age: AgeGroup) -> frozenset[Department]:
    """The departments that dress a wearer of this gender and age group.

    Adults and seniors: their gender's adult department (women, men) and unisex; teens:
    the children's (girls, boys) and adult departments and unisex; children: the
    children's department and unisex. "baby" dresses none of them (baby sizes fit no
    child old enough to be a character); name it in `OutfitCatalog.search` to reach it.

    Raises:
        ConfigurationError: an unknown gender or age group.

    Example:
        >>> sorted(departments_for("female", "teen"))
        ['girls', 'unisex', 'women']
        >>> sorted(departments_for("male", "senior"))
        ['men', 'unisex']
    """
    if gender not in GENDERS:
        raise ConfigurationError(f"unknown gender {gender!r}; choose from {', '.join(GENDERS)}")
    if age not in AGE_GROUPS:
        raise ConfigurationError(f"unknown age group {age!r}; choose from "
                                 f"{', '.join(AGE_GROUPS)}")
    return _DRESSED_BY[gender, age]


def load_clothing(folder: Path) -> dict[str, ClothingItem]:
    """Every item of a clothing folder, in `item_titles.csv` order.

    An item with a title but no categories row is kept with no paths, so no slot: it is
    in the catalog but no slot search finds it (`catalog_stats` counts them).

    Args:
        folder: the `bundles/clothing/` folder of the shared data.

    Returns:
        Item id -> item.

    Raises:
        DatasetError: a missing folder or file; a file without the expected columns or
            with a malformed row; a blank id or title; an id listed twice; unparseable
            categories; a categories row for an item with no title. The message names the
            file and line.

    Example:
        >>> items = load_clothing(data / "bundles" / "clothing")  # doctest: +SKIP
        >>> len(items), sorted(items["3272"].slots)  # doctest: +SKIP
        (4487, ['accessory'])
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"no clothing folder {folder}; pass the bundles/clothing/ folder "
                           f"of the shared data (holding {TITLES_FILE}, {CATEGORIES_FILE})")
    titles_path = folder / TITLES_FILE
    titles: dict[str, str] = {}
    for line, (raw_id, raw_title) in read_csv_columns(titles_path, ("item ID", "titles")):
        item_id = _id(titles_path, line, raw_id)
        if item_id in titles:
            raise DatasetError(f"{titles_path}:{line}: item {item_id} is listed twice")
        title = " ".join(raw_title.split())
        if not title:
            raise DatasetError(f"{titles_path}:{line}: item {item_id} has a blank title")
        titles[item_id] = title

    categories_path = folder / CATEGORIES_FILE
    paths: dict[str, tuple[tuple[str, ...], ...]] = {}
    for line, (raw_id, text) in read_csv_columns(categories_path, ("item ID", "categories")):
        item_id = _id(categories_path, line, raw_id)
        if item_id in paths:
            raise DatasetError(f"{categories_path}:{line}: item {item_id} is listed twice")
        if item_id not in titles:
            raise DatasetError(f"{categories_path}:{line}: item {item_id} has no title in "
                               f"{titles_path}")
        try:
            paths[item_id] = parse_category_paths(text)
        except DatasetError as e:
            raise DatasetError(f"{categories_path}:{line}: item {item_id}: {e}") from e

    uncategorised = len(titles) - len(paths)
    if uncategorised:
        logger.info("%s: %d items have no categories row and fill no slot", folder,
                    uncategorised)
    return {item_id: ClothingItem.from_paths(item_id, title, paths.get(item_id, ()))
            for item_id, title in titles.items()}


def catalog_stats(items: Mapping[str, ClothingItem] | Iterable[ClothingItem]
                  ) -> dict[str, Any]:
    """Counts that say what a catalog can dress: items per slot and per department (an
    item counts once in each of its own), items with no slot, with several slots, with
    several departments, and with no category paths.

    Example:
        >>> shoe = ClothingItem("1", "Boot", (("Men", "Shoes"),), frozenset({"footwear"}),
        ...                     frozenset({"men"}))
        >>> sock = ClothingItem("2", "Sock", (("Men", "Socks"),), frozenset(),
        ...                     frozenset({"men"}))
        >>> stats = catalog_stats([shoe, sock])
        >>> stats["items"], stats["slots"]["footwear"], stats["slots"]["top"], stats["no_slot"]
        (2, 1, 0, 1)
    """
    values = list(items.values()) if isinstance(items, Mapping) else list(items)
    slots = Counter(slot for item in values for slot in item.slots)
    departments = Counter(d for item in values for d in item.departments)
    return {
        "items": len(values),
        "slots": {slot: slots[slot] for slot in SLOTS},
        "departments": {d: departments[d] for d in DEPARTMENTS},
        "no_slot": sum(1 for item in values if not item.slots),
        "several_slots": sum(1 for item in values if len(item.slots) > 1),
        "several_departments": sum(1 for item in values if len(item.departments) > 1),
        "no_paths": sum(1 for item in values if not item.paths),
    }


# The collection-metadata key holding the fingerprint of the items the index holds; ""
# while a change is under way.
FINGERPRINT_KEY = "aisle:outfit-fingerprint"


def _record(item: ClothingItem) -> str:
    """What the fingerprint covers of an item: title, slots and departments."""
    return json.dumps([item.title, sorted(item.slots), sorted(item.departments)])


def _metadata(item: ClothingItem) -> dict[str, str | int | float | bool | None]:
    """One boolean per slot and per department (chromadb metadata values are scalars)."""
    return {**{f"slot_{s}": s in item.slots for s in SLOTS},
            **{f"dept_{d}": d in item.departments for d in DEPARTMENTS}}


class OutfitCatalog:
    """Clothing items' titles, embedded, in a persistent chromadb collection whose
    per-item metadata (`slot_<slot>`, `dept_<department>` booleans) lets a search keep to
    one slot and a set of departments.

    The collection records a fingerprint of what it holds (titles, slots and departments,
    through `catalog_fingerprint`), so `sync` is one comparison when nothing changed.
    Search keeps to `items` as well: an id the index holds but `items` lacks, or whose
    item does not fit the slot and departments, is never returned.

    Args:
        path: folder of the chromadb store (created if missing).
        items: the catalog (`load_clothing`).
        embedder: embeds titles and queries; all-MiniLM-L6-v2 by default.
        name: collection name.

    Example:
        >>> catalog = OutfitCatalog("idx", load_clothing(folder))  # doctest: +SKIP
        >>> catalog.sync()  # doctest: +SKIP
        4487
        >>> catalog.search("black leather boots", slot="footwear",  # doctest: +SKIP
        ...                departments=departments_for("female", "adult"), k=1)
        [{'id': '...', 'title': '...', 'slot': 'footwear', 'score': 0.71}]
    """

    _BATCH = 2048

    def __init__(self, path: str | Path, items: Mapping[str, ClothingItem],
                 embedder: Embedder | None = None, name: str = "outfit_catalog") -> None:
        self.path = Path(path)
        self.name = name
        self.items: Mapping[str, ClothingItem] = dict(items)
        self.embedder = embedder or Embedder()
        self.fingerprint = catalog_fingerprint({i: _record(item)
                                                for i, item in self.items.items()})
        self._client, self._collection = open_collection(self.path, name, "the outfit catalog")
        self._lock = threading.Lock()
        self._checked = False

    def count(self) -> int:
        """Items the index holds."""
        return int(self._collection.count())

    def _stored_fingerprint(self) -> str | None:
        # Read afresh: another process may have synced the index since it was opened.
        collection = self._client.get_collection(self.name, embedding_function=None)
        value = (collection.metadata or {}).get(FINGERPRINT_KEY)
        return value if isinstance(value, str) and value else None

    def _set_fingerprint(self, value: str) -> None:
        collection = self._client.get_collection(self.name, embedding_function=None)
        # chromadb refuses `hnsw:*` keys in a modify and replaces the whole mapping.
        kept = {k: v for k, v in (collection.metadata or {}).items()
                if not k.startswith("hnsw:")}
        self._collection.modify(metadata={**kept, FINGERPRINT_KEY: value})

    def in_sync(self) -> bool:
        """Whether the index holds exactly `items`: titles, slots and departments."""
        return self._stored_fingerprint() == self.fingerprint and self.count() == len(self.items)

    def _stored(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Every stored item: id -> (title, metadata)."""
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        offset = 0
        while True:
            got = self._collection.get(include=["documents", "metadatas"], limit=self._BATCH,
                                       offset=offset)
            documents, metadatas = got["documents"], got["metadatas"]
            assert documents is not None  # asked for with include=
            assert metadatas is not None
            for item_id, doc, meta in zip(got["ids"], documents, metadatas, strict=True):
                out[item_id] = (doc, dict(meta or {}))
            if len(got["ids"]) < self._BATCH:
                return out
            offset += self._BATCH

    def sync(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Make the index hold exactly `items`.

        New items and retitled ones are embedded; items whose slots or departments alone
        changed get new metadata without being embedded again; items no longer in `items`
        are deleted. When the recorded fingerprint already matches, nothing is read or
        embedded.

        Args:
            progress: called as `progress(done, total)` after each embedded batch, where
                `total` is the number of items to embed.

        Returns:
            How many items were embedded (0 when the index was already in sync).
        """
        if self.in_sync():
            self._checked = True
            return 0
        stored = self._stored()
        embed = [i for i in self.items
                 if i not in stored or stored[i][0] != self.items[i].title]
        relabel = [i for i in self.items if i in stored and stored[i][0] == self.items[i].title
                   and stored[i][1] != _metadata(self.items[i])]
        removed = [i for i in stored if i not in self.items]
        if stored and (embed or relabel or removed):
            logger.warning("outfit catalog %s no longer matches its items: embedding %d, "
                           "relabelling %d, deleting %d", self.path, len(embed), len(relabel),
                           len(removed))
        # No fingerprint while the change is under way: an interrupted sync is redone.
        self._set_fingerprint("")
        for start in range(0, len(embed), self._BATCH):
            batch = embed[start:start + self._BATCH]
            titles = [self.items[i].title for i in batch]
            vectors = self.embedder.embed(titles)
            with self._lock:
                self._collection.upsert(ids=batch, embeddings=vectors.tolist(),
                                        documents=titles,
                                        metadatas=[_metadata(self.items[i]) for i in batch])
            if progress:
                progress(start + len(batch), len(embed))
        for start in range(0, len(relabel), self._BATCH):
            batch = relabel[start:start + self._BATCH]
            with self._lock:
                self._collection.update(ids=batch,
                                        metadatas=[_metadata(self.items[i]) for i in batch])
        for start in range(0, len(removed), self._BATCH):
            with self._lock:
                self._collection.delete(ids=removed[start:start + self._BATCH])
        self._set_fingerprint(self.fingerprint)
        self._checked = True
        return len(embed)

    def item(self, item_id: str) -> ClothingItem:
        """The catalog item with this id.

        Raises:
            DatasetError: no item has this id.
        """
        try:
            return self.items[item_id]
        except KeyError:
            raise DatasetError(f"no item {item_id!r} in the outfit catalog "
                               f"({len(self.items)} items); use an id a search returned"
                               ) from None

    def search(self, query: str, *, slot: Slot,
               departments: Iterable[Department] | None = None, k: int = 5,
               exclude: Iterable[str] = ()) -> list[CatalogHit]:
        """The k items of one slot whose titles are nearest to `query` (cosine), best
        first.

        Args:
            query: what to look for, e.g. "red wool winter coat".
            slot: only items that can fill this slot.
            departments: only items in at least one of these departments
                (`departments_for` gives a wearer's); None for any department.
            k: how many hits at most.
            exclude: item ids never to return (those already chosen).

        Returns:
            Up to k hits, every one an item of `items` that fills `slot` (and is in one of
            `departments`); empty when none fits.

        Raises:
            ConfigurationError: an unknown slot or department, k below 1, a blank query,
                or an index that does not hold `items` (run `sync()` first).
        """
        if slot not in SLOTS:
            raise ConfigurationError(f"unknown slot {slot!r}; choose from {', '.join(SLOTS)}")
        wanted = None if departments is None else frozenset(departments)
        unknown = sorted(wanted - set(DEPARTMENTS)) if wanted is not None else []
        if unknown:
            raise ConfigurationError(f"unknown department(s) {', '.join(map(repr, unknown))}; "
                                     f"choose from {', '.join(DEPARTMENTS)}")
        if k < 1:
            raise ConfigurationError(f"k must be 1 or more, got {k}")
        if not query.strip():
            raise ConfigurationError("the outfit catalog query is blank; describe the item "
                                     "to look for")
        if not self._checked:
            if not self.in_sync():
                raise ConfigurationError(f"the outfit catalog at {self.path} does not hold "
                                         f"its {len(self.items)} items; call sync() first")
            self._checked = True
        skip = set(exclude)
        fits = [i for i, item in self.items.items() if i not in skip and slot in item.slots
                and (wanted is None or item.departments & wanted)]
        if not fits:
            return []
        vector = self.embedder.embed([query])[0]
        got = self._collection.query(query_embeddings=[vector.tolist()],
                                     n_results=min(k + len(skip), len(fits) + len(skip)),
                                     where=_where(slot, wanted),
                                     include=["documents", "distances"])
        documents, distances = got["documents"], got["distances"]
        assert documents is not None  # asked for with include=
        assert distances is not None
        hits: list[CatalogHit] = []
        for item_id, doc, dist in zip(got["ids"][0], documents[0], distances[0], strict=True):
            item = self.items.get(item_id)
            # The filter already did this; checked again against `items`, so a stale index
            # cannot hand back an item of another slot or department.
            if (item is None or item_id in skip or slot not in item.slots
                    or (wanted is not None and not item.departments & wanted)):
                continue
            hits.append(CatalogHit(id=item_id, title=doc, slot=slot, score=1.0 - float(dist)))
        return hits[:k]

    async def asearch(self, query: str, *, slot: Slot,
                      departments: Iterable[Department] | None = None, k: int = 5,
                      exclude: Iterable[str] = ()) -> list[CatalogHit]:
        """`search` off the event loop (chromadb's client and the embedder are
        synchronous)."""
        return await asyncio.to_thread(self.search, query, slot=slot,
                                       departments=departments, k=k, exclude=exclude)


def _where(slot: Slot, departments: frozenset[Department] | None) -> dict[str, Any]:
    """The chromadb filter: the slot's flag set and, if given, any department's flag set.

    Example:
        >>> _where("top", frozenset({"men"}))
        {'$and': [{'slot_top': {'$eq': True}}, {'dept_men': {'$eq': True}}]}
        >>> _where("footwear", None)
        {'slot_footwear': {'$eq': True}}
    """
    slot_clause: dict[str, Any] = {f"slot_{slot}": {"$eq": True}}
    if not departments:
        return slot_clause
    clauses = [{f"dept_{d}": {"$eq": True}} for d in sorted(departments)]
    dept_clause = clauses[0] if len(clauses) == 1 else {"$or": clauses}
    return {"$and": [slot_clause, dept_clause]}


def _excerpt(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _id(path: Path, line: int, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise DatasetError(f"{path}:{line}: blank item ID")
    return value
