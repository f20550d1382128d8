"""Candidate pairs for entity matching without the n x m cross product, and entities
from matched pairs.

Blocking turns each record (its fields as `attr: value; ...`) into a vector and keeps,
for every record, its `k` nearest records on the other side (and, in the other direction,
every right record's `k` nearest left records), so a match missed from one side can still
be found from the other. The LLM then sees only these pairs, so cost grows with n * k,
not n * m. Three methods:

- `embedding`: a sentence-embedding model (MiniLM): meaning, synonyms, word order;
- `tfidf`: TF-IDF of character 2-4-grams fitted on both tables' records: model numbers
  and spelling variants (`dscw120p` / `dsc-w120p`), which embeddings blur;
- `hybrid` (the default of the match operator): the union of both methods' pairs.

A pair's `score` is its embedding cosine (tf-idf cosine for `tfidf`), which a cascade can
use. `benchmarks/bench_gdo.py` measures the recall of true matches and the reduction
against the cross product on Abt-Buy for each method and k.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["METHODS", "BlockingResult", "block", "connected_components", "cosine_pairs",
           "record_text", "tfidf_vectors"]

METHODS = ("embedding", "tfidf", "hybrid")

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]
"""Texts -> L2-normalised vectors, one row per text (`aisle.tools.retrieval.Embedder.embed`)."""

_CHUNK = 2048


def record_text(record: Mapping[str, Any], columns: Sequence[str] | None = None) -> str:
    """A record as one line for embedding: `attr: value; attr: value` (empty cells left
    out).

    Example:
        >>> record_text({"name": "sony cyber-shot", "price": None, "brand": "sony"})
        'name: sony cyber-shot; brand: sony'
    """
    keys = columns if columns is not None else list(record)
    parts = []
    for key in keys:
        value = record.get(key)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        text = str(value).strip()
        if text:
            parts.append(f"{key}: {text}")
    return "; ".join(parts)


@dataclass(frozen=True)
class BlockingResult:
    """Candidate pairs `(i, j)` (row positions in the left and right tables; within one
    table, i < j) with their scores, and the size of the full cross product they
    replace."""

    pairs: list[tuple[int, int]]
    scores: list[float]
    cross_product: int

    @property
    def reduction(self) -> float:
        """How many times fewer pairs than the cross product."""
        return self.cross_product / max(1, len(self.pairs))


def _normalise(x: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def tfidf_vectors(texts: Sequence[str]) -> Any:
    """L2-normalised TF-IDF vectors (a sparse matrix) of character 2-4-grams within word
    boundaries, fitted on `texts` (both tables' records together, so they share one
    vocabulary).

    Raises:
        MissingDependencyError: scikit-learn is not installed.
    """
    try:
        from sklearn.feature_extraction.text import (  # type: ignore[import-untyped]
            TfidfVectorizer,
        )
    except ImportError as e:
        from aisle.errors import MissingDependencyError

        raise MissingDependencyError("scikit-learn", "TF-IDF blocking",
                                     install="pip install 'aisle[retrieval]'") from e
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=True,
                                 sublinear_tf=True)
    return vectorizer.fit_transform(list(texts)).astype(np.float32)


def _top_k(a: Any, b: Any, k: int, same: bool) -> Iterable[tuple[int, int, float]]:
    k = min(k, b.shape[0] - (1 if same else 0))
    if k <= 0:
        return
    for start in range(0, a.shape[0], _CHUNK):
        product = a[start:start + _CHUNK] @ b.T
        sims = np.asarray(product.toarray() if hasattr(product, "toarray") else product,
                          dtype=np.float32)
        if same:  # a record is not its own candidate
            rows = np.arange(sims.shape[0])
            sims[rows, rows + start] = -np.inf
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r in range(idx.shape[0]):
            for j in idx[r]:
                yield start + r, int(j), float(sims[r, j])


def _knn(a: Any, b: Any, k: int, same: bool) -> dict[tuple[int, int], float]:
    best: dict[tuple[int, int], float] = {}
    if a.shape[0] == 0 or b.shape[0] == 0:
        return best
    for i, j, s in _top_k(a, b, k, same):
        best[(min(i, j), max(i, j)) if same else (i, j)] = s
    if not same:
        for j, i, s in _top_k(b, a, k, False):
            best[(i, j)] = s
    return best


def block(left: Sequence[str], right: Sequence[str] | None, embed: Embed | None = None, *,
          k: int = 10, method: str = "embedding", min_score: float | None = None,
          ) -> BlockingResult:
    """Candidate pairs by k nearest neighbours, both directions.

    Args:
        left: the left table's records as text (`record_text`).
        right: the right table's, or None to match `left` within itself (pairs i < j).
        embed: texts -> vectors (`embedding` and `hybrid`).
        k: neighbours kept per record, direction and method.
        method: `embedding`, `tfidf` or `hybrid` (the union of both).
        min_score: also drop pairs whose score is below this.

    Raises:
        ValueError: an unknown method, or no `embed` for a method that needs one.

    Example:
        >>> def embed(texts):  # a toy embedding: a character histogram
        ...     return np.array([[t.count(c) for c in "abcxyz"] for t in texts], dtype=np.float32)
        >>> r = block(["aab", "xyz"], ["xxyz", "abb", "ccc"], embed, k=1, min_score=0.5)
        >>> r.pairs, r.cross_product
        ([(0, 1), (1, 0)], 6)
    """
    if method not in METHODS:
        raise ValueError(f"unknown blocking method {method!r}: use {', '.join(METHODS)}")
    if method != "tfidf" and embed is None:
        raise ValueError(f"{method} blocking needs an embedding function")
    same = right is None
    n, m = len(left), (len(left) if right is None else len(right))
    best: dict[tuple[int, int], float] = {}
    if n and m:
        if method != "embedding":
            vectors = tfidf_vectors(list(left) + ([] if right is None else list(right)))
            ta, tb = vectors[:n], (vectors[:n] if same else vectors[n:])
            best = _knn(ta, tb, k, same)
        if method != "tfidf":
            assert embed is not None
            a = _normalise(embed(list(left)))
            b = a if same else _normalise(embed(list(right or [])))
            found = _knn(a, b, k, same)
            if method == "hybrid":  # every pair scored by its embedding cosine
                extra = [p for p in best if p not in found]
                found.update(zip(extra, (float(a[i] @ b[j]) for i, j in extra), strict=True))
            best = found
    if min_score is not None:
        best = {p: s for p, s in best.items() if s >= min_score}
    pairs = sorted(best)
    cross = n * (n - 1) // 2 if same else n * m
    return BlockingResult(pairs=pairs, scores=[best[p] for p in pairs], cross_product=cross)


def cosine_pairs(left: Sequence[str], right: Sequence[str], embed: Embed) -> list[float]:
    """The cosine similarity of each pair (`left[i]`, `right[i]`).

    Example:
        >>> def embed(texts):
        ...     return np.array([[t.count(c) for c in "ab"] for t in texts], dtype=np.float32)
        >>> [round(s, 3) for s in cosine_pairs(["a", "a"], ["a", "b"], embed)]
        [1.0, 0.0]
    """
    if len(left) != len(right):
        raise ValueError(f"{len(left)} left texts but {len(right)} right texts")
    if not left:
        return []
    a = _normalise(embed(list(left)))
    b = _normalise(embed(list(right)))
    return [float(x) for x in np.sum(a * b, axis=1)]


def connected_components(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    """An entity id per record: records joined by a matched pair, directly or through
    others, share one (the smallest record index in the group).

    Example:
        >>> connected_components(5, [(0, 2), (2, 4)])
        [0, 1, 0, 3, 0]
    """
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in edges:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(n)]
