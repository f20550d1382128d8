"""The catalog index's fingerprint: `sync` brings an index in line with its item file
(retitled items re-embedded and their old titles gone, removed items deleted, the rest
not embedded again). A counting fake embedder stands in for all-MiniLM-L6-v2."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from aisle.tools.retrieval import CatalogIndex, Embedder, SyncResult, catalog_fingerprint

ITEMS = {str(i): f"Game {i}" for i in range(10)}


class CountingEmbedder(Embedder):
    """Deterministic 8-d unit vectors from a title's hash; records every title embedded."""

    def __init__(self) -> None:
        super().__init__(model_dir=Path("unused"))
        self.embedded: list[str] = []

    @property
    def dim(self) -> int:
        return 8

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8)
                .astype(np.float32) + 1.0 for t in texts]
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


def _all_titles(index: CatalogIndex) -> dict[str, str]:
    got = index._collection.get(include=["documents"])
    assert got["documents"] is not None
    return dict(zip(got["ids"], got["documents"], strict=True))


def test_a_fresh_sync_embeds_everything_and_records_the_fingerprint(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    index = CatalogIndex(tmp_path / "idx", embedder=embedder)
    assert index.fingerprint is None
    assert index.sync(ITEMS) == SyncResult(10, 0, 0, 0, catalog_fingerprint(ITEMS))
    assert index.fingerprint == catalog_fingerprint(ITEMS)
    assert index.in_sync(ITEMS)
    # Reopened (as the next command would): nothing to do, nothing read or embedded.
    embedder.embedded.clear()
    reopened = CatalogIndex(tmp_path / "idx", embedder=embedder)
    assert reopened.fingerprint == catalog_fingerprint(ITEMS)
    assert reopened.sync(ITEMS).embedded == 0
    assert embedder.embedded == []


def test_same_ids_with_new_titles_are_re_embedded_and_old_titles_are_gone(
    tmp_path: Path, embedder: CountingEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    CatalogIndex(tmp_path / "idx", embedder=embedder).sync(ITEMS)
    retitled = {**ITEMS, "3": "Game 3: Remastered", "7": "Game 7 (Deluxe)"}
    embedder.embedded.clear()
    index = CatalogIndex(tmp_path / "idx", embedder=embedder)
    assert not index.in_sync(retitled)  # same ids, same count: only the fingerprint differs
    with caplog.at_level(logging.WARNING, logger="aisle.tools.retrieval"):
        result = index.sync(retitled)
    assert (result.added, result.changed, result.removed, result.unchanged) == (0, 2, 0, 8)
    assert sorted(embedder.embedded) == ["Game 3: Remastered", "Game 7 (Deluxe)"]
    assert "2 retitled" in caplog.text
    assert str(index.path) in caplog.text
    assert _all_titles(index) == retitled
    assert index.titles(["3", "7"]) == {"3": "Game 3: Remastered", "7": "Game 7 (Deluxe)"}
    assert not {"Game 3", "Game 7"} & set(_all_titles(index).values())
    # Queries answer with the new titles, and the stored vectors are the new ones.
    vector = embedder.embed(["Game 3: Remastered"])[0]
    assert index.query(vector, k=1)[0] == {"id": "3", "title": "Game 3: Remastered",
                                           "score": pytest.approx(1.0, abs=1e-5)}
    assert index.in_sync(retitled)
    assert index.fingerprint == catalog_fingerprint(retitled)


def test_removed_ids_are_deleted_and_new_ones_added(
    tmp_path: Path, embedder: CountingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CatalogIndex, "_BATCH", 3)  # several pages of reads and writes
    index = CatalogIndex(tmp_path / "idx", embedder=embedder)
    index.sync(ITEMS)
    catalog = {k: v for k, v in ITEMS.items() if k not in {"0", "5", "9"}}
    catalog |= {"10": "Game 10", "11": "Game 11"}
    embedder.embedded.clear()
    result = index.sync(catalog)
    assert (result.added, result.changed, result.removed, result.unchanged) == (2, 0, 3, 7)
    assert sorted(embedder.embedded) == ["Game 10", "Game 11"]
    assert _all_titles(index) == catalog
    assert index.count() == len(catalog)
    assert index.in_sync(catalog)


def test_unchanged_items_are_not_re_embedded(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    index = CatalogIndex(tmp_path / "idx", embedder=embedder)
    index.sync(ITEMS)
    assert len(embedder.embedded) == len(ITEMS)
    index.sync({**ITEMS, "4": "Game Four"})
    assert len(embedder.embedded) == len(ITEMS) + 1
    assert embedder.embedded[-1] == "Game Four"


def test_an_index_without_a_fingerprint_is_adopted_without_embedding(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    """An index built before fingerprints (or by an interrupted sync) is compared item by
    item once; if it already matches, only the fingerprint is written."""
    index = CatalogIndex(tmp_path / "idx", embedder=embedder)
    index.sync(ITEMS)
    index._set_fingerprint("")
    assert index.fingerprint is None
    assert not index.in_sync(ITEMS)
    embedder.embedded.clear()
    assert index.sync(ITEMS) == SyncResult(0, 0, 0, 10, catalog_fingerprint(ITEMS))
    assert embedder.embedded == []
    assert index.fingerprint == catalog_fingerprint(ITEMS)


def test_an_interrupted_sync_is_finished_by_the_next(
    tmp_path: Path, embedder: CountingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CatalogIndex, "_BATCH", 4)
    index = CatalogIndex(tmp_path / "idx", embedder=embedder)
    index.sync(ITEMS)
    retitled = {k: f"{v} (new)" for k, v in ITEMS.items()}

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index.sync(retitled, progress=stop)  # the first batch of 4 is stored
    assert index.fingerprint is None
    assert not index.in_sync(ITEMS)  # the old catalog no longer matches either
    embedder.embedded.clear()
    assert index.sync(retitled).changed == 6
    assert len(embedder.embedded) == 6
    assert _all_titles(index) == retitled


def test_add_updates_retitled_items_and_keeps_the_rest(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    index = CatalogIndex(tmp_path / "idx", embedder=embedder)
    assert index.add(dict(list(ITEMS.items())[:4])) == 4
    assert index.fingerprint is not None  # the index is exactly what was added
    assert index.add(ITEMS) == 6
    assert index.in_sync(ITEMS)
    assert index.add({"1": "Game One"}) == 1
    assert index.titles(["1"]) == {"1": "Game One"}
    assert index.count() == 10  # add never removes
    assert index.fingerprint is None  # the index now holds more than that call's items
    assert index.sync({**ITEMS, "1": "Game One"}).embedded == 0


def test_fingerprint_covers_titles_and_ids_not_order() -> None:
    assert catalog_fingerprint(ITEMS) == catalog_fingerprint(dict(reversed(ITEMS.items())))
    assert catalog_fingerprint(ITEMS) != catalog_fingerprint({**ITEMS, "1": "Game 1 "})
    assert catalog_fingerprint({"a": "b\tc"}) != catalog_fingerprint({"a\tb": "c"})
    assert catalog_fingerprint({"1": ""}) == catalog_fingerprint({"1": "(untitled)"})
