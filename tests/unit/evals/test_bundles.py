"""The bundles loader on the real files, its errors on small hand-written ones, and the
fixed samples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aisle.agents import Domain
from aisle.errors import ConfigurationError
from aisle.evals.bundles import (
    DOMAINS,
    Bundle,
    BundleItem,
    DatasetError,
    domain_of,
    load_bundles,
    sample_bundles,
    split_for_threshold,
)


@pytest.fixture(scope="module")
def root(shared_data_dir: Callable[..., Path]) -> Path:
    return shared_data_dir("bundles")


@pytest.fixture(scope="module")
def electronic(root: Path) -> list[Bundle]:
    return load_bundles(root, "electronic")


@pytest.fixture(scope="module")
def clothing(root: Path) -> list[Bundle]:
    return load_bundles(root, "clothing")


def test_electronic_matches_the_readme(electronic: list[Bundle]) -> None:
    assert len(electronic) == 1750
    assert [b.id for b in electronic] == [str(i) for i in range(1750)]
    assert {b.domain for b in electronic} == {"electronic"}
    assert all(b.name for b in electronic)
    assert sum(len(b.items) for b in electronic) == 6165  # "about 3.5 items each"
    first = electronic[0]
    assert first.name == "Storage Devices"
    assert [i.id for i in first.items][:3] == ["111245", "133970", "53071"]
    assert first.items[0] == BundleItem(
        "111245", "Transcend 400X - 64 GB Compact Flash Memory Card TS64GCF400 (Blue)")


def test_clothing_matches_the_readme(clothing: list[Bundle]) -> None:
    assert len(clothing) == 1910
    assert [b.id for b in clothing] == [str(i) for i in range(1910)]
    assert [b.id for b in clothing if b.name is None] == ["1860"]
    assert clothing[0].name == "different style of Top"
    assert [i.id for i in clothing[0].items] == ["209740", "226500"]


def test_names_and_titles_are_whitespace_normalised(electronic: list[Bundle],
                                                     clothing: list[Bundle]) -> None:
    # Raw: "upgrading personal computer desktop\n", "car upgrade \nradio and reverse camera".
    assert electronic[6].name == "upgrading personal computer desktop"
    assert electronic[117].name == "car upgrade radio and reverse camera"
    # A name spanning eight lines of the file, with commas and colons.
    assert clothing[418].name is not None
    assert clothing[418].name.startswith("Items 2 and 10 are complementary products "
                                         "(trainning clothes) Items 5 and 7")
    texts = [b.name or "" for b in electronic + clothing] + [
        i.title for b in electronic + clothing for i in b.items]
    assert all(t == " ".join(t.split()) for t in texts)


def test_a_title_with_quoted_commas_is_one_field(electronic: list[Bundle]) -> None:
    titles = {i.id: i.title for b in electronic for i in b.items}
    assert titles["49"].startswith("ASUS GTX760-DC2OC-2GD5 GeForce GTX760 2GB GDDR5 256-bit, "
                                   "DVI-I/DVI-D/ HDMI/DP")


def _write(folder: Path, intent: str, items: str, titles: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "bundle_intent.csv").write_text(intent, encoding="utf-8")
    (folder / "bundle_item.csv").write_text(items, encoding="utf-8")
    (folder / "item_titles.csv").write_text(titles, encoding="utf-8")
    return folder.parent


GOOD = ('bundle ID,intent\n10,"Cables, adapters"\n2,"  Say ""hi""\n  there "\n9,\n',
        "bundle ID,item ID\n2,7\n10,5\n2,5\n9,7\n",
        'item ID,titles\n5,"HDMI cable,  2m"\n7,Phone\n')


def test_a_small_folder(tmp_path: Path) -> None:
    root = _write(tmp_path / "bundles" / "clothing", *GOOD)
    bundles = load_bundles(root, "clothing")
    assert bundles == [
        Bundle("2", "clothing", 'Say "hi" there', (BundleItem("7", "Phone"),
                                                   BundleItem("5", "HDMI cable, 2m"))),
        Bundle("9", "clothing", None, (BundleItem("7", "Phone"),)),
        Bundle("10", "clothing", "Cables, adapters", (BundleItem("5", "HDMI cable, 2m"),)),
    ]


@pytest.mark.parametrize(("intent", "items", "titles", "match"), [
    ("bundle ID,name\n1,x\n", GOOD[1], GOOD[2], r"bundle_intent\.csv: no column 'intent'"),
    (GOOD[0], "bundle,item ID\n1,5\n", GOOD[2], r"bundle_item\.csv: no column 'bundle ID'"),
    (GOOD[0], GOOD[1], "item ID,title\n5,x\n", r"item_titles\.csv: no column 'titles'"),
    (GOOD[0], GOOD[1] + "10,8\n", GOOD[2],
     r"bundle_item\.csv:6: item 8 of bundle 10 has no title in .*item_titles\.csv"),
    (GOOD[0], GOOD[1], 'item ID,titles\n5,"  "\n7,Phone\n',
     r"bundle_item\.csv:3: item 5 of bundle 10 has no title"),
    (GOOD[0], GOOD[1] + "11,5\n", GOOD[2],
     r"bundle_item\.csv:6: bundle 11 is not in bundle_intent\.csv"),
    (GOOD[0] + "12,lonely\n", GOOD[1], GOOD[2], r"bundle_item\.csv: bundle\(s\) 12 .*no items"),
    (GOOD[0] + "2,again\n", GOOD[1], GOOD[2], r"bundle_intent\.csv:6: bundle 2 is listed twice"),
    (GOOD[0], GOOD[1] + "2,7\n", GOOD[2], r"item 7 is listed twice in bundle 2"),
    (GOOD[0] + "x1,name\n", GOOD[1], GOOD[2],
     r"bundle_intent\.csv:6: bundle ID should be a number, got 'x1'"),
    (GOOD[0], GOOD[1] + "2\n", GOOD[2], r"bundle_item\.csv:6: expected 2 fields"),
    ("", GOOD[1], GOOD[2], r"bundle_intent\.csv is empty"),
], ids=["intent-column", "bundle-column", "titles-column", "item-without-title",
        "blank-title", "unknown-bundle", "bundle-without-items", "bundle-twice",
        "item-twice-in-bundle", "non-numeric-id", "short-row", "empty-file"])
def test_malformed_files(tmp_path: Path, intent: str, items: str, titles: str,
                         match: str) -> None:
    root = _write(tmp_path / "bundles" / "electronic", intent, items, titles)
    with pytest.raises(DatasetError, match=match) as info:
        load_bundles(root, "electronic")
    assert "\n" not in str(info.value)


def test_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no bundle folder .*electronic; root should be"):
        load_bundles(tmp_path, "electronic")
    root = _write(tmp_path / "b" / "electronic", *GOOD)
    (root / "electronic" / "item_titles.csv").unlink()
    with pytest.raises(DatasetError, match=r"missing data file .*item_titles\.csv"):
        load_bundles(root, "electronic")


def test_unknown_domain(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown bundle domain 'games'; choose from "
                                           "electronic, clothing"):
        load_bundles(tmp_path, "games")
    with pytest.raises(DatasetError, match="choose from electronic, clothing"):
        domain_of("games")


def test_prompt_domains() -> None:
    assert DOMAINS == ("electronic", "clothing")
    electronic = domain_of("electronic")
    assert isinstance(electronic, Domain)
    assert (electronic.store, electronic.item, electronic.items) == (
        "an online electronics store", "product", "products")
    assert "clothing" in domain_of("clothing").store


def _toy(n: int, unnamed: tuple[int, ...] = ()) -> list[Bundle]:
    return [Bundle(str(i), "clothing", None if i in unnamed else f"b{i}", ())
            for i in range(n)]


def test_sample_is_fixed_named_and_in_id_order() -> None:
    bundles = _toy(100, unnamed=(3, 50, 51))
    sample = sample_bundles(bundles, 20, seed=7)
    assert len(sample) == 20
    assert all(b.name for b in sample)
    assert [int(b.id) for b in sample] == sorted(int(b.id) for b in sample)
    assert sample == sample_bundles(list(reversed(bundles)), 20, seed=7)
    assert sample != sample_bundles(bundles, 20, seed=8)
    # Numeric order, not text order: "10" after "9".
    assert [b.id for b in sample_bundles(_toy(11), 11, seed=0)][-2:] == ["9", "10"]


def test_sample_larger_than_available_is_every_named_bundle() -> None:
    bundles = _toy(10, unnamed=(4,))
    assert sample_bundles(bundles, 50, seed=0) == [b for b in bundles if b.name]
    assert sample_bundles(bundles, 0, seed=0) == []
    with pytest.raises(ConfigurationError, match="got -1"):
        sample_bundles(bundles, -1, seed=0)


def test_threshold_split_is_disjoint_from_the_sample() -> None:
    bundles = _toy(200, unnamed=(0, 1, 2))
    sample = sample_bundles(bundles, 50, seed=0)
    fit = split_for_threshold(bundles, sample, 30, seed=0)
    assert len(fit) == 30
    assert not {b.id for b in fit} & {b.id for b in sample}
    assert all(b.name for b in fit)
    assert [int(b.id) for b in fit] == sorted(int(b.id) for b in fit)
    assert fit == split_for_threshold(bundles, sample, 30, seed=0)
    everything = split_for_threshold(bundles, sample, 1000, seed=0)
    assert len(everything) == 200 - 3 - 50
    with pytest.raises(ConfigurationError, match="got -2"):
        split_for_threshold(bundles, sample, -2, seed=0)


def test_real_sample_and_split(clothing: list[Bundle]) -> None:
    sample = sample_bundles(clothing, 100, seed=0)
    fit = split_for_threshold(clothing, sample, 200, seed=0)
    assert (len(sample), len(fit)) == (100, 200)
    assert "1860" not in {b.id for b in sample + fit}
    assert not {b.id for b in fit} & {b.id for b in sample}
