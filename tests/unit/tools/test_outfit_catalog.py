"""The outfit planner's clothing catalog: category paths parsed from the real file's tricky
strings, the slot and department rules, the loader's errors, and search on a real
chromadb store that keeps to one slot and a wearer's departments. A deterministic
bag-of-words fake embedder stands in for all-MiniLM-L6-v2 (the real one is in
`tests/integration/test_outfit_catalog.py`)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from aisle.errors import ConfigurationError
from aisle.evals._errors import DatasetError
from aisle.tools.outfit_catalog import (
    DEPARTMENT_OF_LEVEL,
    DEPARTMENTS,
    NO_SLOT_LEVELS,
    SLOT_OF_LEVEL,
    SLOTS,
    AgeGroup,
    ClothingItem,
    Department,
    Gender,
    OutfitCatalog,
    Slot,
    catalog_stats,
    departments_for,
    departments_of,
    load_clothing,
    parse_category_paths,
    slots_of,
)
from aisle.tools.retrieval import Embedder

ROOT = "Clothing, Shoes & Jewelry"
NOVELTY = "Novelty, Costumes & More"


class BagOfWordsEmbedder(Embedder):
    """Deterministic 64-d unit vectors: one hashed dimension per lower-cased word, so
    titles sharing words with a query score higher. Records every text embedded."""

    def __init__(self) -> None:
        super().__init__(model_dir=Path("unused"))
        self.embedded: list[str] = []

    @property
    def dim(self) -> int:
        return 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        vectors = np.full((len(texts), self.dim), 0.01, dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, hashlib.sha256(word.encode()).digest()[0] % self.dim] += 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _item(item_id: str, title: str, *paths: tuple[str, ...]) -> ClothingItem:
    return ClothingItem.from_paths(item_id, title, tuple(paths))


# A small hand-made catalog: the query words ("red", "shirt", "boots") appear in items of
# several slots and departments, so only the filters keep a search to its slot.
CATALOG = {item.id: item for item in [
    _item("m-shirt", "Red cotton shirt for men", (ROOT, "Men", "Clothing", "Shirts",
                                                   "Casual Button-Down Shirts")),
    _item("w-blouse", "Red silk shirt blouse", (ROOT, "Women", "Clothing", "Tops & Tees",
                                                "Blouses & Button-Down Shirts")),
    _item("u-tee", "Red band shirt tee", (ROOT, NOVELTY, "Band & Music Fan", "T-Shirts")),
    _item("m-boots", "Red shirt leather boots", (ROOT, "Men", "Shoes", "Boots")),
    _item("w-boots", "Black leather boots", (ROOT, "Women", "Shoes", "Boots")),
    _item("w-sandals", "Red strappy sandals", (ROOT, "Women", "Shoes", "Sandals")),
    _item("w-jeans", "Blue skinny jeans", (ROOT, "Women", "Clothing", "Jeans")),
    _item("w-dress", "Red cocktail dress", (ROOT, "Women", "Clothing", "Dresses",
                                            "Night Out & Cocktail")),
    _item("g-dress", "Red party dress for girls", (ROOT, "Girls", "Clothing", "Dresses",
                                                   "Special Occasion")),
    _item("u-ring", "Red garnet ring", (ROOT, "Jewelry Outlet")),
    _item("w-bra", "Red lace bra", (ROOT, "Women", "Clothing", "Lingerie, Sleep & Lounge",
                                    "Intimates", "Bras", "Everyday Bras")),
]}


@pytest.fixture
def embedder() -> BagOfWordsEmbedder:
    return BagOfWordsEmbedder()


@pytest.fixture
def catalog(tmp_path: Path, embedder: BagOfWordsEmbedder) -> OutfitCatalog:
    outfit = OutfitCatalog(tmp_path / "idx", CATALOG, embedder=embedder)
    assert outfit.sync() == len(CATALOG)
    return outfit


# --- category paths -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # Real rows (items 168313, 156291, 179737): level names with ", " inside them.
    ("[[Clothing, Shoes & Jewelry,Novelty, Costumes & More,Costumes & Accessories],"
     "[Clothing, Shoes & Jewelry,Novelty, Costumes & More,Exotic Apparel]]",
     ((ROOT, NOVELTY, "Costumes & Accessories"), (ROOT, NOVELTY, "Exotic Apparel"))),
    ("[[Clothing, Shoes & Jewelry,Women,Clothing,Lingerie, Sleep & Lounge,Intimates,Lingerie,"
     "Bustiers & Corsets]]",
     ((ROOT, "Women", "Clothing", "Lingerie, Sleep & Lounge", "Intimates", "Lingerie",
       "Bustiers & Corsets"),)),
    ("[[Clothing, Shoes & Jewelry,Jewelry Outlet],[Clothing, Shoes & Jewelry,Women],"
     "[Clothing, Shoes & Jewelry,Novelty, Costumes & More,Novelty,Jewelry,Earrings]]",
     ((ROOT, "Jewelry Outlet"), (ROOT, "Women"),
      (ROOT, NOVELTY, "Novelty", "Jewelry", "Earrings"))),
    # Three commas-with-space in one level; a one-level path.
    ("[[Clothing, Shoes & Jewelry,Three, Five & Seven Stone Jewelry,Five-Stone Jewelry]]",
     ((ROOT, "Three, Five & Seven Stone Jewelry", "Five-Stone Jewelry"),)),
    ("[[Clothing, Shoes & Jewelry]]", ((ROOT,),)),
    # Spaces around the path separator and the whole cell; a repeated path kept once.
    ("  [[Women,Shoes] , [Men,Shoes],[Women,Shoes]] ", (("Women", "Shoes"), ("Men", "Shoes"))),
    ("[]", ()),
])
def test_category_paths_split_levels_on_commas_without_a_space(
    text: str, expected: tuple[tuple[str, ...], ...]
) -> None:
    assert parse_category_paths(text) == expected


@pytest.mark.parametrize("text", [
    "", "Clothing, Shoes & Jewelry,Women", "[Women,Shoes]", "[[Women,Shoes]",
    "[[Women,,Shoes]]", "[[,Women]]", "[[Women],[]]", "[[Women,[Shoes]]]",
])
def test_malformed_category_paths_raise_dataset_error(text: str) -> None:
    with pytest.raises(DatasetError, match="category path"):
        parse_category_paths(text)


# --- slots ------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "expected"), [
    ((ROOT, "Women", "Clothing", "Tops & Tees", "Tanks & Camis"), {"top"}),
    ((ROOT, NOVELTY, "Novelty", "Clothing", "Men", "Shirts", "T-Shirts"), {"top"}),
    ((ROOT, "Men", "Clothing", "Sweaters", "Cardigans"), {"top"}),
    # "Dress" under Pants and Shorts is a style, not a garment.
    ((ROOT, "Men", "Big & Tall", "Pants", "Dress"), {"bottom"}),
    ((ROOT, "Women", "Clothing", "Shorts", "Dress"), {"bottom"}),
    ((ROOT, "Girls", "Clothing", "Skirts, Scooters & Skorts"), {"bottom"}),
    ((ROOT, "Women", "Clothing", "Dresses", "Wedding", "Bridesmaid Dresses"), {"one_piece"}),
    ((ROOT, "Baby", "Baby Girls", "Clothing", "Bodysuits"), {"one_piece"}),
    ((ROOT, "Girls", "Clothing", "Clothing Sets", "Pant Sets"), {"one_piece"}),
    ((ROOT, "Boys", "Clothing", "Suits & Sport Coats", "Suits"), {"one_piece"}),
    ((ROOT, NOVELTY, "Costumes & Accessories", "Costumes", "Women"), {"one_piece"}),
    ((ROOT, "Women", "Clothing", "Coats & Jackets", "Wool & Blends"), {"outerwear"}),
    ((ROOT, "Men", "Clothing", "Suits & Sport Coats", "Sport Coats & Blazers"), {"outerwear"}),
    ((ROOT, "Women", "Clothing", "Suits & Blazers", "Blazers", "Casual"), {"outerwear"}),
    ((ROOT, "Boot Shop", "Women", "Fashion", "Combat"), {"footwear"}),
    ((ROOT, "Women", "Shoes", "Pumps"), {"footwear"}),
    (("Sports & Outdoors", "Equestrian Sports", "Riding Boots"), {"footwear"}),
    ((ROOT, NOVELTY, "Costumes & Accessories", "Hats & Caps", "Men"), {"accessory"}),
    ((ROOT, "Women", "Jewelry", "Fine", "Earrings", "Stud"), {"accessory"}),
    ((ROOT, "Luggage & Travel Gear", "Backpacks", "Casual Daypacks"), {"accessory"}),
    ((ROOT, "Jewelry: International Shipping Available"), {"accessory"}),
    # Deliberately no slot: underwear and lingerie (a shapewear bodysuit too), socks,
    # sleepwear, swimwear, spare parts and luggage, and bare store sections.
    ((ROOT, "Women", "Clothing", "Lingerie, Sleep & Lounge", "Intimates", "Shapewear",
      "Bodysuits"), set()),
    ((ROOT, "Men", "Clothing", "Underwear", "Boxer Briefs"), set()),
    ((ROOT, NOVELTY, "Exotic Apparel", "Women", "Dresses"), set()),
    ((ROOT, "Women", "Clothing", "Socks & Hosiery", "Slipper Socks"), set()),
    ((ROOT, "Baby", "Baby Boys", "Accessories", "Socks"), set()),
    ((ROOT, "Boys", "Clothing", "Sleepwear & Robes", "Pajama Sets"), set()),
    ((ROOT, "Men", "Clothing", "Swim", "Board Shorts"), set()),
    ((ROOT, "Women", "Petite", "Swim", "Bikinis", "Tops"), set()),
    ((ROOT, "Women", "Watches", "Watch Bands"), set()),
    ((ROOT, "Luggage & Travel Gear", "Luggage", "Carry-Ons"), set()),
    ((ROOT, NOVELTY, "Novelty"), set()),
    ((ROOT, "Women"), set()),
    ((ROOT, "Shoes & Accessories: International Shipping Available"), set()),
])
def test_slot_of_one_path(path: tuple[str, ...], expected: set[Slot]) -> None:
    assert slots_of([path]) == expected


def test_an_item_fills_every_slot_its_paths_give_and_a_vetoed_path_takes_none_away() -> None:
    paths = [(ROOT, "Women", "Clothing", "Lingerie, Sleep & Lounge", "Sleep & Lounge", "Tops"),
             (ROOT, "Women", "Clothing", "Tops & Tees", "Knits & Tees"),
             (ROOT, "Girls", "Shoes", "Sneakers")]
    assert slots_of(paths) == {"top", "footwear"}
    assert slots_of(paths[:1]) == set()
    assert slots_of([]) == set()


def test_the_rule_tables_agree() -> None:
    assert set(SLOT_OF_LEVEL.values()) == set(SLOTS)
    assert not set(SLOT_OF_LEVEL) & NO_SLOT_LEVELS  # a level either gives a slot or vetoes


# --- departments ------------------------------------------------------------------------

@pytest.mark.parametrize(("paths", "expected"), [
    ([(ROOT, "Women", "Shoes", "Boots")], {"women"}),
    ([(ROOT, "Boot Shop", "Men", "Fashion", "Chukka")], {"men"}),
    ([(ROOT, NOVELTY, "Novelty", "Clothing", "Girls", "Hoodies")], {"girls"}),
    ([("Sports & Outdoors", "Clothing", "Boys", "Shirts")], {"boys"}),
    ([(ROOT, "Baby", "Baby Girls", "Clothing", "Bodysuits")], {"baby"}),
    ([(ROOT, NOVELTY, "Costumes & Accessories", "Costumes", "Kids & Baby", "Infants & Toddlers",
       "Baby Boys")], {"baby"}),
    ([(ROOT, NOVELTY, "Costumes & Accessories", "Masks", "Kids & Baby")],
     {"girls", "boys", "baby"}),
    ([(ROOT, "Men"), (ROOT, "Women"), (ROOT, "Jewelry Outlet")], {"men", "women"}),
    ([(ROOT, "Women's Luxury Brands")], {"women"}),
    # No path names a department: unisex. A store name holding "Women" does not count.
    ([(ROOT, "Jewelry Outlet"), (ROOT, NOVELTY, "Novelty", "Jewelry", "Earrings")], {"unisex"}),
    ([(ROOT, "Test Women AAQ")], {"unisex"}),
    ([], {"unisex"}),
])
def test_departments_of(paths: list[tuple[str, ...]], expected: set[Department]) -> None:
    assert departments_of(paths) == expected


@pytest.mark.parametrize(("gender", "age", "expected"), [
    ("female", "child", {"girls", "unisex"}),
    ("female", "teen", {"girls", "women", "unisex"}),
    ("female", "adult", {"women", "unisex"}),
    ("female", "senior", {"women", "unisex"}),
    ("male", "child", {"boys", "unisex"}),
    ("male", "teen", {"boys", "men", "unisex"}),
    ("male", "adult", {"men", "unisex"}),
    ("male", "senior", {"men", "unisex"}),
])
def test_departments_for_a_wearer(gender: Gender, age: AgeGroup,
                                  expected: set[Department]) -> None:
    assert departments_for(gender, age) == expected


@pytest.mark.parametrize(("gender", "age", "match"), [
    ("woman", "adult", "unknown gender 'woman'"), ("male", "infant", "unknown age group"),
])
def test_departments_for_an_unknown_wearer_is_a_configuration_error(
    gender: str, age: str, match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        departments_for(gender, age)  # type: ignore[arg-type]


# --- loading ----------------------------------------------------------------------------

def _write(folder: Path, titles: str, categories: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "item_titles.csv").write_text(titles)
    if categories is not None:
        (folder / "item_categories.csv").write_text(categories)
    return folder


TITLES = ('item ID,titles\n1,"Levi\'s 501 jeans, blue"\n2,"  Nike   running\nshoe "\n'
          '3,Mystery item\n')
CATEGORIES = ('item ID,categories\n'
              '1,"[[Clothing, Shoes & Jewelry,Men,Clothing,Jeans]]"\n'
              '2,"[[Clothing, Shoes & Jewelry,Women,Shoes,Athletic,Running],'
              '[Clothing, Shoes & Jewelry,Men,Shoes]]"\n')


def test_load_clothing_reads_titles_and_categories(tmp_path: Path) -> None:
    items = load_clothing(_write(tmp_path / "clothing", TITLES, CATEGORIES))
    assert list(items) == ["1", "2", "3"]
    assert items["1"] == ClothingItem("1", "Levi's 501 jeans, blue",
                                      ((ROOT, "Men", "Clothing", "Jeans"),),
                                      frozenset({"bottom"}), frozenset({"men"}))
    assert items["2"].title == "Nike running shoe"  # whitespace-normalised
    assert items["2"].slots == {"footwear"}
    assert items["2"].departments == {"women", "men"}
    # A title without a categories row: kept, with no paths, so no slot finds it.
    assert items["3"].paths == ()
    assert items["3"].slots == set()
    assert items["3"].departments == {"unisex"}


@pytest.mark.parametrize(("titles", "categories", "match"), [
    (TITLES, None, r"missing data file .*item_categories\.csv"),
    ("", CATEGORIES, r"item_titles\.csv is empty"),
    ("id,title\n1,x\n", CATEGORIES, r"item_titles\.csv: no column 'item ID', 'titles'"),
    ("item ID,titles\n1,a,b\n", CATEGORIES, r"item_titles\.csv:2: expected 2 fields"),
    ('item ID,titles\n1,"unclosed\n', CATEGORIES, r"item_titles\.csv: malformed CSV"),
    ("item ID,titles\n ,x\n", "item ID,categories\n", r"item_titles\.csv:2: blank item ID"),
    ("item ID,titles\n1,x\n1,y\n", CATEGORIES, r"item_titles\.csv:3: item 1 is listed twice"),
    ("item ID,titles\n1,  \n", CATEGORIES, r"item_titles\.csv:2: item 1 has a blank title"),
    (TITLES, CATEGORIES + '1,"[[Women,Shoes]]"\n',
     r"item_categories\.csv:4: item 1 is listed twice"),
    (TITLES, CATEGORIES + '9,"[[Women,Shoes]]"\n',
     r"item_categories\.csv:4: item 9 has no title in .*item_titles\.csv"),
    (TITLES, 'item ID,categories\n1,"Clothing, Shoes & Jewelry,Men"\n',
     r"item_categories\.csv:2: item 1: category paths should read"),
    (TITLES, 'item ID,categories\n1,"[[Men,,Jeans]]"\n',
     r"item_categories\.csv:2: item 1: category path 'Men,,Jeans' has an empty level"),
])
def test_bad_data_files_raise_one_line_dataset_errors(
    tmp_path: Path, titles: str, categories: str | None, match: str
) -> None:
    folder = _write(tmp_path / "clothing", titles, categories)
    with pytest.raises(DatasetError, match=match) as caught:
        load_clothing(folder)
    assert "\n" not in str(caught.value)


def test_a_missing_folder_or_titles_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no clothing folder .*bundles/clothing/"):
        load_clothing(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"missing data file .*item_titles\.csv"):
        load_clothing(tmp_path / "empty")


def test_catalog_stats_counts_slots_and_departments() -> None:
    stats = catalog_stats(CATALOG)
    assert stats == catalog_stats(CATALOG.values())
    assert stats["items"] == 11
    assert stats["slots"] == {"top": 3, "bottom": 1, "one_piece": 2, "outerwear": 0,
                              "footwear": 3, "accessory": 1}
    assert stats["departments"] == {"women": 6, "men": 2, "girls": 1, "boys": 0, "baby": 0,
                                    "unisex": 2}
    assert (stats["no_slot"], stats["several_slots"], stats["no_paths"]) == (1, 0, 0)


# --- the chromadb catalog ---------------------------------------------------------------

def test_a_footwear_search_never_returns_a_shirt(catalog: OutfitCatalog) -> None:
    hits = catalog.search("red shirt", slot="footwear", k=10)
    assert {h["id"] for h in hits} == {"m-boots", "w-boots", "w-sandals"}
    assert hits[0]["id"] == "m-boots"  # the words "red shirt" are in its title
    assert all(h["slot"] == "footwear" for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    # And a shirt search never returns the boots, though they share the query's words.
    tops = catalog.search("red shirt leather boots", slot="top", k=10)
    assert {h["id"] for h in tops} == {"m-shirt", "w-blouse", "u-tee"}


def test_a_womens_search_never_returns_a_mens_item(catalog: OutfitCatalog) -> None:
    woman = departments_for("female", "adult")
    tops = catalog.search("red cotton shirt for men", slot="top", departments=woman, k=10)
    assert {h["id"] for h in tops} == {"w-blouse", "u-tee"}  # unisex dresses her too
    shoes = catalog.search("red shirt leather boots", slot="footwear", departments=woman)
    assert [h["id"] for h in shoes][:1] == ["w-boots"]
    assert "m-boots" not in {h["id"] for h in shoes}
    girl = catalog.search("red cocktail dress", slot="one_piece",
                          departments=departments_for("female", "child"))
    assert [h["id"] for h in girl] == ["g-dress"]


@pytest.mark.parametrize(("slot", "departments"), [
    ("top", None), ("bottom", ["women"]), ("one_piece", ["women", "girls"]),
    ("footwear", ["men", "unisex"]), ("accessory", None),
])
def test_every_hit_is_a_catalog_item_of_the_slot_and_departments(
    catalog: OutfitCatalog, slot: Slot, departments: list[Department] | None
) -> None:
    hits = catalog.search("red", slot=slot, departments=departments, k=20)
    assert hits
    for hit in hits:
        item = catalog.item(hit["id"])
        assert hit["title"] == item.title
        assert slot in item.slots
        assert departments is None or item.departments & set(departments)


def test_k_and_exclude(catalog: OutfitCatalog) -> None:
    assert len(catalog.search("boots", slot="footwear", k=2)) == 2
    hits = catalog.search("red shirt boots", slot="footwear", exclude=["m-boots", "w-bra"])
    assert {h["id"] for h in hits} == {"w-boots", "w-sandals"}


@pytest.mark.parametrize(("slot", "departments"), [
    ("outerwear", None),              # no coat in the catalog
    ("footwear", ["baby"]),           # no baby shoes
    ("bottom", ["men", "boys"]),      # the only jeans are women's
    ("top", []),                      # no department at all
])
def test_no_fitting_item_gives_an_empty_list(
    catalog: OutfitCatalog, slot: Slot, departments: list[Department] | None
) -> None:
    assert catalog.search("red shirt", slot=slot, departments=departments) == []


def test_excluding_every_fitting_item_gives_an_empty_list(catalog: OutfitCatalog) -> None:
    assert catalog.search("jeans", slot="bottom", exclude=["w-jeans"]) == []


async def test_asearch_answers_as_search_does(catalog: OutfitCatalog) -> None:
    woman = departments_for("female", "adult")
    assert await catalog.asearch("red shirt", slot="top", departments=woman) == \
        catalog.search("red shirt", slot="top", departments=woman)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"slot": "hat"}, "unknown slot 'hat'; choose from top, bottom"),
    ({"slot": "top", "departments": ["women", "ladies"]}, "unknown department.*'ladies'"),
    ({"slot": "top", "k": 0}, "k must be 1 or more, got 0"),
    ({"slot": "top", "query": "  "}, "query is blank"),
])
def test_bad_search_arguments_are_configuration_errors(
    catalog: OutfitCatalog, kwargs: dict[str, object], match: str
) -> None:
    query = kwargs.pop("query", "red shirt")
    with pytest.raises(ConfigurationError, match=match):
        catalog.search(query, **kwargs)  # type: ignore[arg-type]


def test_item_names_an_unknown_id(catalog: OutfitCatalog) -> None:
    assert catalog.item("w-dress") is CATALOG["w-dress"]
    with pytest.raises(DatasetError, match="no item 'nope' in the outfit catalog"):
        catalog.item("nope")


def test_sync_is_idempotent(tmp_path: Path, embedder: BagOfWordsEmbedder) -> None:
    first = OutfitCatalog(tmp_path / "idx", CATALOG, embedder=embedder)
    progress: list[tuple[int, int]] = []
    assert first.sync(progress=lambda done, total: progress.append((done, total))) == 11
    assert sorted(embedder.embedded) == sorted(item.title for item in CATALOG.values())
    assert progress == [(11, 11)]
    assert first.in_sync()
    embedder.embedded.clear()
    assert first.sync() == 0
    # Reopened, as the next run would: nothing read again, nothing embedded.
    reopened = OutfitCatalog(tmp_path / "idx", CATALOG, embedder=embedder)
    assert reopened.sync() == 0
    assert embedder.embedded == []
    assert reopened.count() == len(CATALOG)


def test_sync_follows_a_changed_catalog(
    tmp_path: Path, embedder: BagOfWordsEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    OutfitCatalog(tmp_path / "idx", CATALOG, embedder=embedder).sync()
    changed = {k: v for k, v in CATALOG.items() if k != "u-ring"}
    # Retitled: embedded again. Relabelled only (now a men's item too): new metadata, no
    # embedding. Added: embedded.
    changed["w-jeans"] = _item("w-jeans", "Blue bootcut jeans", *CATALOG["w-jeans"].paths)
    changed["w-boots"] = _item("w-boots", "Black leather boots", *CATALOG["w-boots"].paths,
                               (ROOT, "Men", "Shoes"))
    changed["w-coat"] = _item("w-coat", "Red wool coat", (ROOT, "Women", "Clothing",
                                                          "Coats & Jackets"))
    embedder.embedded.clear()
    outfit = OutfitCatalog(tmp_path / "idx", changed, embedder=embedder)
    with caplog.at_level(logging.WARNING, logger="aisle.tools.outfit_catalog"):
        assert outfit.sync() == 2
    assert sorted(embedder.embedded) == ["Blue bootcut jeans", "Red wool coat"]
    assert "embedding 2, relabelling 1, deleting 1" in caplog.text
    assert outfit.count() == len(changed)
    men_shoes = outfit.search("black boots", slot="footwear", departments=["men"])
    assert {h["id"] for h in men_shoes} == {"m-boots", "w-boots"}
    assert [h["id"] for h in outfit.search("coat", slot="outerwear")] == ["w-coat"]
    assert "u-ring" not in {h["id"] for h in outfit.search("ring", slot="accessory")}


def test_searching_an_index_that_does_not_hold_the_items_is_refused(
    tmp_path: Path, embedder: BagOfWordsEmbedder
) -> None:
    OutfitCatalog(tmp_path / "idx", CATALOG, embedder=embedder).sync()
    fewer = {k: v for k, v in CATALOG.items() if k != "m-boots"}
    stale = OutfitCatalog(tmp_path / "idx", fewer, embedder=embedder)
    with pytest.raises(ConfigurationError, match=r"does not hold its 10 items; call sync\(\)"):
        stale.search("boots", slot="footwear")


# --- the real file ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_items(shared_data_dir: Callable[..., Path]) -> dict[str, ClothingItem]:
    return load_clothing(shared_data_dir("bundles", "clothing"))


def test_the_real_catalog_loads_and_dresses_every_slot(
    real_items: dict[str, ClothingItem]
) -> None:
    stats = catalog_stats(real_items)
    print(stats)
    assert stats["items"] == 4487
    assert stats["no_paths"] == 0  # every item has a categories row
    for slot in SLOTS:
        assert stats["slots"][slot] >= 90, slot
    for department in DEPARTMENTS:
        assert stats["departments"][department] >= 100, department
    # The counts the module docstring quotes. No slot: underwear, socks, sleepwear,
    # swimwear, care and luggage (639), and items under bare store sections (189).
    assert stats == {
        "items": 4487,
        "slots": {"top": 685, "bottom": 319, "one_piece": 423, "outerwear": 92,
                  "footwear": 771, "accessory": 1387},
        "departments": {"women": 2837, "men": 943, "girls": 292, "boys": 223, "baby": 197,
                        "unisex": 228},
        "no_slot": 828, "several_slots": 18, "several_departments": 210, "no_paths": 0,
    }
    # Rows the parsing must get right (the file's first lines).
    assert real_items["156291"].paths[0][3] == "Lingerie, Sleep & Lounge"
    assert real_items["156291"].slots == set()  # a bustier
    assert real_items["3272"].slots == {"accessory"}  # stud earrings
    assert real_items["3272"].departments == {"women"}


def test_every_rule_names_a_level_of_the_real_file(
    real_items: dict[str, ClothingItem]
) -> None:
    levels = {level for item in real_items.values() for path in item.paths for level in path}
    rules = set(SLOT_OF_LEVEL) | NO_SLOT_LEVELS | set(DEPARTMENT_OF_LEVEL) | {"Kids & Baby"}
    assert sorted(rules - levels) == []  # no misspelt rule


def test_searching_the_real_catalog_keeps_to_each_slot(
    tmp_path: Path, real_items: dict[str, ClothingItem], embedder: BagOfWordsEmbedder
) -> None:
    outfit = OutfitCatalog(tmp_path / "idx", real_items, embedder=embedder)
    assert outfit.sync() == len(real_items)
    woman = departments_for("female", "adult")
    for slot in SLOTS:
        hits = outfit.search("black leather women's", slot=slot, departments=woman, k=10)
        assert len(hits) == 10, slot
        for hit in hits:
            assert slot in real_items[hit["id"]].slots
            assert real_items[hit["id"]].departments & woman
