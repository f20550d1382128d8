"""Named product bundles (CARTS carousel titles): the loader, fixed samples, and the
prompt domain of each shop.

Data (see `../shared/data/README.md`, section bundles/; from BundleRec
`bundle_recommendation`, Sun et al., "Revisiting Bundle Recommendation for Intent-aware
Product Bundling", ACM TORS 2024): one folder per domain, `electronic/` (1,750 bundles)
and `clothing/` (1,910), each with

- `bundle_intent.csv` (`bundle ID,intent`): the bundle's name, free text written by a crowd
  worker; it may hold commas, quotes and line breaks, and one clothing bundle has none;
- `bundle_item.csv` (`bundle ID,item ID`): the bundle's items, in file order;
- `item_titles.csv` (`item ID,titles`): each item's product title.

The human names are the references that generated carousel titles are scored against.
Names and titles are whitespace-normalised (runs of spaces and line breaks become one
space); an empty name reads as None.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aisle.agents import Domain
from aisle.datafiles import read_csv_columns
from aisle.errors import ConfigurationError
from aisle.evals._errors import DatasetError

__all__ = [
    "DOMAINS",
    "Bundle",
    "BundleItem",
    "DatasetError",
    "domain_of",
    "load_bundles",
    "sample_bundles",
    "split_for_threshold",
]

_PROMPT_DOMAINS: dict[str, Domain] = {
    "electronic": Domain(store="an online electronics store", item="product", items="products",
                         aspects="brands, device types, compatibility, price range"),
    "clothing": Domain(store="an online clothing, shoes and jewelry store", item="product",
                       items="products",
                       aspects="brands, garment types, styles, sizes, occasions, price range"),
}

DOMAINS: tuple[str, ...] = tuple(_PROMPT_DOMAINS)
"""The bundle domains, as their folders are named: `electronic`, `clothing`."""


@dataclass(frozen=True)
class BundleItem:
    """One item of a bundle.

    Attributes:
        id: the item id, as the data files write it.
        title: its product title, whitespace-normalised.
    """

    id: str
    title: str


@dataclass(frozen=True)
class Bundle:
    """A crowd-named bundle of products.

    Attributes:
        id: the bundle id, as the data files write it (a number, unique per domain).
        domain: the domain it comes from, one of `DOMAINS`.
        name: the crowd worker's name for it, whitespace-normalised; None when empty.
        items: its items, in the order `bundle_item.csv` lists them.

    Example:
        >>> b = Bundle("0", "electronic", "Storage Devices", (BundleItem("7", "USB stick"),))
        >>> b.titles
        ('USB stick',)
    """

    id: str
    domain: str
    name: str | None
    items: tuple[BundleItem, ...]

    @property
    def titles(self) -> tuple[str, ...]:
        """The items' titles, in item order."""
        return tuple(item.title for item in self.items)


def domain_of(name: str) -> Domain:
    """The prompt `Domain` (what the shop sells) of a bundle domain.

    Raises:
        DatasetError: `name` is not one of `DOMAINS`.

    Example:
        >>> domain_of("electronic").store
        'an online electronics store'
    """
    try:
        return _PROMPT_DOMAINS[name]
    except KeyError:
        raise DatasetError(_unknown_domain(name)) from None


def load_bundles(root: Path, domain: str) -> list[Bundle]:
    """Every bundle of one domain, in bundle-id order (numeric).

    Args:
        root: the `bundles/` folder (holding `electronic/` and `clothing/`).
        domain: one of `DOMAINS`.

    Raises:
        DatasetError: unknown domain; missing folder or file; a file without the expected
            columns, with a malformed row, or with a blank or non-numeric id; a bundle id
            or item listed twice, a bundle item of an unknown bundle, a bundle without
            items, or a bundle item without a title. The message names the file.

    Example:
        >>> bundles = load_bundles(root, "electronic")  # doctest: +SKIP
        >>> len(bundles), bundles[0].name  # doctest: +SKIP
        (1750, 'Storage Devices')
    """
    if domain not in _PROMPT_DOMAINS:
        raise DatasetError(_unknown_domain(domain))
    folder = Path(root) / domain
    if not folder.is_dir():
        raise DatasetError(f"no bundle folder {folder}; root should be the bundles/ folder of "
                           f"the shared data (holding {', '.join(DOMAINS)}/)")
    intent_path = folder / "bundle_intent.csv"
    names: dict[str, str | None] = {}
    for line, (raw_id, intent) in read_csv_columns(intent_path, ("bundle ID", "intent")):
        bundle_id = _id(intent_path, line, "bundle ID", raw_id)
        if bundle_id in names:
            raise DatasetError(f"{intent_path}:{line}: bundle {bundle_id} is listed twice")
        names[bundle_id] = _normalise(intent) or None

    titles_path = folder / "item_titles.csv"
    titles: dict[str, str] = {}
    for line, (raw_id, title) in read_csv_columns(titles_path, ("item ID", "titles")):
        item_id = _id(titles_path, line, "item ID", raw_id)
        if item_id in titles:
            raise DatasetError(f"{titles_path}:{line}: item {item_id} is listed twice")
        titles[item_id] = _normalise(title)

    items_path = folder / "bundle_item.csv"
    items: dict[str, list[BundleItem]] = {}
    for line, (raw_bundle, raw_item) in read_csv_columns(items_path, ("bundle ID", "item ID")):
        bundle_id = _id(items_path, line, "bundle ID", raw_bundle)
        item_id = _id(items_path, line, "item ID", raw_item)
        if bundle_id not in names:
            raise DatasetError(f"{items_path}:{line}: bundle {bundle_id} is not in "
                               f"{intent_path.name}")
        item_title = titles.get(item_id)
        if not item_title:
            raise DatasetError(f"{items_path}:{line}: item {item_id} of bundle {bundle_id} "
                               f"has no title in {titles_path}")
        listed = items.setdefault(bundle_id, [])
        if any(item.id == item_id for item in listed):
            raise DatasetError(f"{items_path}:{line}: item {item_id} is listed twice in "
                               f"bundle {bundle_id}")
        listed.append(BundleItem(item_id, item_title))

    empty = [bundle_id for bundle_id in names if bundle_id not in items]
    if empty:
        raise DatasetError(f"{items_path}: bundle(s) {', '.join(sorted(empty, key=int)[:10])} "
                           f"of {intent_path.name} have no items")
    return [Bundle(bundle_id, domain, names[bundle_id], tuple(items[bundle_id]))
            for bundle_id in sorted(names, key=int)]


def sample_bundles(bundles: Sequence[Bundle], n: int, seed: int) -> list[Bundle]:
    """A fixed random sample of `n` bundles that have a human name, in bundle-id order.

    The same bundles and seed always give the same sample, whatever order `bundles` comes
    in; `n` at least the number of named bundles gives all of them.

    Raises:
        ConfigurationError: `n` is negative.

    Example:
        >>> bs = [Bundle(str(i), "clothing", None if i == 2 else f"b{i}", ()) for i in range(6)]
        >>> [b.id for b in sample_bundles(bs, 3, seed=0)] == [
        ...     b.id for b in sample_bundles(list(reversed(bs)), 3, seed=0)]
        True
        >>> [b.id for b in sample_bundles(bs, 10, seed=0)]
        ['0', '1', '3', '4', '5']
    """
    if n < 0:
        raise ConfigurationError(f"sample size must be 0 or more, got {n}")
    return _seeded_subset(_named(bundles), n, seed)


def split_for_threshold(bundles: Sequence[Bundle], sample: Iterable[Bundle], n_fit: int,
                        seed: int) -> list[Bundle]:
    """Named bundles outside `sample`, a fixed random `n_fit` of them, in bundle-id order:
    the cases a similarity threshold is fitted on, so it is never fitted on the bundles
    it then scores. The draw uses a random stream of its own, so it is independent of
    the sample's even under the same seed.

    Raises:
        ConfigurationError: `n_fit` is negative.

    Example:
        >>> bs = [Bundle(str(i), "clothing", f"b{i}", ()) for i in range(6)]
        >>> test = sample_bundles(bs, 2, seed=0)
        >>> fit = split_for_threshold(bs, test, 10, seed=0)
        >>> len(fit), set(b.id for b in fit) & set(b.id for b in test)
        (4, set())
    """
    if n_fit < 0:
        raise ConfigurationError(f"threshold-fit size must be 0 or more, got {n_fit}")
    held_out = {(b.domain, b.id) for b in sample}
    pool = [b for b in _named(bundles) if (b.domain, b.id) not in held_out]
    # Its own random stream: with the sample's, the same seed would pick the neighbours
    # (in id order) of the sampled bundles.
    return _seeded_subset(pool, n_fit, f"threshold:{seed}")


def _named(bundles: Iterable[Bundle]) -> list[Bundle]:
    return sorted((b for b in bundles if b.name), key=_order)


def _seeded_subset(ordered: list[Bundle], n: int, seed: int | str) -> list[Bundle]:
    if n >= len(ordered):
        return list(ordered)
    return sorted(random.Random(seed).sample(ordered, n), key=_order)


def _order(bundle: Bundle) -> tuple[str, int, str]:
    """Domain, then numeric id (ids that are not numbers after those that are)."""
    numeric = bundle.id.isascii() and bundle.id.isdigit()
    return bundle.domain, int(bundle.id) if numeric else -1, "" if numeric else bundle.id


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _unknown_domain(name: str) -> str:
    return f"unknown bundle domain {name!r}; choose from {', '.join(DOMAINS)}"


def _id(path: Path, line: int, column: str, raw: str) -> str:
    """The id, stripped; it must be a number (bundle order is numeric)."""
    value = raw.strip()
    if not (value.isascii() and value.isdigit()):
        raise DatasetError(f"{path}:{line}: {column} should be a number, got {raw!r}")
    return value
