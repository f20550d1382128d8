"""The catalog index on a real chromadb store with the real all-MiniLM-L6-v2 model."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisle.errors import ConfigurationError
from aisle.tools.retrieval import CatalogIndex, Embedder, make_retrieval_tool

pytestmark = pytest.mark.integration

ITEMS = {
    "1": "Mario Kart 8 Deluxe - Nintendo Switch",
    "2": "Super Mario Odyssey - Nintendo Switch",
    "3": "Nintendo Switch Pro Controller",
    "4": "Call of Duty: Modern Warfare - PlayStation 4",
    "5": "Battlefield V - PlayStation 4",
    "6": "PlayStation 4 DualShock Wireless Controller",
    "7": "The Legend of Zelda: Breath of the Wild - Nintendo Switch",
    "8": "Gran Turismo Sport - PlayStation 4",
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def index(tmp_path: Path, embedder: Embedder) -> CatalogIndex:
    idx = CatalogIndex(tmp_path / "index", embedder=embedder)
    assert idx.add(ITEMS) == len(ITEMS)
    return idx


def test_embeddings_are_normalised_and_semantic(embedder: Embedder) -> None:
    vecs = embedder.embed(["Mario Kart for Switch", "Mario Kart 8 Deluxe", "dog leash"])
    assert vecs.shape == (3, 384)
    assert abs(float((vecs[0] ** 2).sum()) - 1.0) < 1e-4
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2])


def test_query_by_history_excludes_history_and_follows_the_platform(
    index: CatalogIndex,
) -> None:
    got = index.query_by_history(["1", "2"], k=3)
    ids = [c["id"] for c in got]
    assert "1" not in ids
    assert "2" not in ids
    assert ids[0] in {"7", "3"}  # the other Switch items
    assert all(-1.0 <= c["score"] <= 1.0 for c in got)
    assert got == sorted(got, key=lambda c: -c["score"])


def test_index_persists_and_add_is_incremental(tmp_path: Path, embedder: Embedder) -> None:
    first = CatalogIndex(tmp_path / "idx", embedder=embedder)
    first.add(dict(list(ITEMS.items())[:4]))
    reopened = CatalogIndex(tmp_path / "idx", embedder=embedder)
    assert reopened.count() == 4
    assert reopened.add(ITEMS) == 4  # only the new ones are embedded
    assert reopened.count() == 8


def test_unknown_ids_are_a_clear_error(index: CatalogIndex) -> None:
    with pytest.raises(ConfigurationError, match="not in the catalog index"):
        index.vectors(["1", "nope"])


def test_as_langchain_tool(index: CatalogIndex) -> None:
    tool = make_retrieval_tool(index)
    assert tool.name == "retrieve_candidates"
    assert "history_item_ids" in tool.args
    out = tool.invoke({"history_item_ids": ["4", "5"], "k": 2})
    assert {c["id"] for c in out} <= {"6", "8", "1", "2", "3", "7"}
    assert len(out) == 2


async def test_async_query_runs_off_the_loop(index: CatalogIndex) -> None:
    got = await index.aquery_by_history(["3"], k=2)
    assert len(got) == 2
