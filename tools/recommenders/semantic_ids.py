"""Semantic IDs and item token paths for the generative recommender (GRACE).

An item's **semantic ID** is a short code from residual quantization of an item
embedding: k-means on the embeddings gives the first code, k-means on what the first
centroid leaves unexplained gives the second, and so on (`residual_kmeans`). Items that
share every code get a last, collision-breaking code (0, 1, 2, ... in catalog order),
so every item's code is unique (`add_collision_level`).

Residual k-means rather than an RQ-VAE (TIGER's choice): it has no encoder to train,
no codebook collapse to guard against, is deterministic given a seed, and takes
seconds on a CPU; an RQ-VAE's learned encoder mainly helps when the embedding is
high-dimensional and the codebook must be balanced, which the collision level
handles here.

The embedding quantized:

- items with titles (LLMRank Games): sentence-transformers (MiniLM) embeddings of the
  title (`title_embeddings`);
- items without (amazon-seq Beauty, Sports, whose attributes are anonymous ids):
  `attribute_cooccurrence_embeddings`, a TF-IDF of the item's attribute ids and a
  positive-PMI matrix of item co-occurrence within training sequences (only the
  training split, so no test target leaks into a code), each reduced by truncated SVD
  and L2-normalised, side by side.

An item's **token path** (`ItemTokens`) is its attribute tokens (the hybrid chain of
thought: up to `attribute_tokens` of them, the most widely shared attribute first, so
the path runs from coarse to fine; a "none" token fills a missing slot) followed by its
semantic-ID codes. `PrefixTrie` holds every item's path, so decoding can only follow
paths that end at a real item.

Example:
    >>> x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]], dtype=np.float32)
    >>> codes, _ = residual_kmeans(x, levels=1, codebook=2, seed=0)
    >>> bool(codes[0, 0] == codes[1, 0] != codes[2, 0] == codes[3, 0])
    True
    >>> full, stats = add_collision_level(codes)
    >>> sorted(map(tuple, full.tolist())) == sorted({tuple(r) for r in full.tolist()})
    True
    >>> stats["max_group"]
    2
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aisle.errors import MissingDependencyError

__all__ = ["ATTR_NONE", "ItemTokens", "PrefixTrie", "add_collision_level",
           "attribute_cooccurrence_embeddings", "attribute_paths", "games_platform",
           "residual_kmeans", "title_embeddings"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

PAD, BOS = 0, 1
ATTR_NONE = "<none>"
"""The attribute token of an empty slot (an item with fewer attributes than slots)."""


def _sklearn() -> Any:
    try:
        import sklearn.cluster  # type: ignore[import-untyped]
        import sklearn.decomposition  # type: ignore[import-untyped]
    except ImportError as e:
        raise MissingDependencyError("scikit-learn", "GRACE's semantic IDs",
                                     install="pip install 'aisle[rec]'") from e
    return sklearn


def residual_kmeans(x: FloatArray, *, levels: int, codebook: int, seed: int
                    ) -> tuple[IntArray, list[FloatArray]]:
    """Codes `(n, levels)` and each level's centroids `(k, dim)` by residual k-means.

    A level uses `min(codebook, distinct residuals)` centroids, so a small catalog
    still quantizes."""
    cluster = _sklearn().cluster
    residual = np.asarray(x, dtype=np.float64)
    codes = np.zeros((len(x), levels), dtype=np.int64)
    books: list[FloatArray] = []
    for level in range(levels):
        distinct = len(np.unique(residual.round(8), axis=0))
        k = max(1, min(codebook, distinct))
        km = cluster.KMeans(n_clusters=k, n_init=1, random_state=seed + level, max_iter=100)
        labels = km.fit_predict(residual)
        centers = km.cluster_centers_
        codes[:, level] = labels
        books.append(centers.astype(np.float32))
        residual = residual - centers[labels]
    return codes, books


def add_collision_level(codes: IntArray) -> tuple[IntArray, dict[str, int]]:
    """`codes` plus a last column that numbers the items sharing a code (catalog order),
    and the collision statistics: items, distinct codes before the extra level, items
    in a shared code, the largest group (the extra level's vocabulary)."""
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    extra = np.zeros(len(codes), dtype=np.int64)
    seen: Counter[int] = Counter()
    for row, group in enumerate(inverse.tolist()):
        extra[row] = seen[group]
        seen[group] += 1
    stats = {"items": len(codes), "distinct_codes": len(counts),
             "colliding_items": int(counts[counts > 1].sum()),
             "max_group": int(counts.max()) if len(counts) else 0}
    return np.concatenate([codes, extra[:, None]], axis=1), stats


def attribute_cooccurrence_embeddings(
        n_items: int, train: Sequence[IntArray], attributes: Sequence[Sequence[str]], *,
        dim: int, seed: int, window: int = 3) -> FloatArray:
    """Item vectors `(n_items, 2 * dim)` from attributes and training co-occurrence.

    Args:
        n_items: catalog size; `train` holds 1-based catalog indices.
        train: training sequences (only these: held-out items must not shape codes).
        attributes: per catalog item (0-based), its attribute names.
        dim: SVD components per part (capped by what the data supports).
        seed: the SVD's seed.
        window: items within this distance in a sequence co-occur.
    """
    from scipy import sparse  # type: ignore[import-untyped]

    decomposition = _sklearn().decomposition
    parts = []
    # Attributes: TF-IDF rows.
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, attrs in enumerate(attributes):
        for a in dict.fromkeys(attrs):
            rows.append(i)
            cols.append(vocab.setdefault(a, len(vocab)))
    if vocab:
        m = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_items, len(vocab)))
        df = np.asarray((m > 0).sum(axis=0)).ravel()
        m = m.multiply(np.log((1 + n_items) / (1 + df)) + 1).tocsr()
        parts.append(_svd(m, dim, seed, decomposition))
    # Co-occurrence within `window` positions, as positive PMI.
    pairs_r, pairs_c = [], []
    for seq in train:
        s = np.asarray(seq) - 1
        for gap in range(1, window + 1):
            if len(s) > gap:
                pairs_r.append(s[:-gap])
                pairs_c.append(s[gap:])
    if pairs_r:
        r, c = np.concatenate(pairs_r), np.concatenate(pairs_c)
        co = sparse.csr_matrix((np.ones(2 * len(r)), (np.concatenate([r, c]),
                                                      np.concatenate([c, r]))),
                               shape=(n_items, n_items))
        co.sum_duplicates()
        total = co.sum()
        row = np.asarray(co.sum(axis=1)).ravel()
        coo = co.tocoo()
        pmi = np.log(coo.data * total / (row[coo.row] * row[coo.col]))
        keep = pmi > 0
        ppmi = sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])),
                                 shape=(n_items, n_items))
        parts.append(_svd(ppmi, dim, seed, decomposition))
    if not parts:
        raise ValueError("items have neither attributes nor co-occurrence to embed")
    return np.concatenate(parts, axis=1).astype(np.float32)


def _svd(m: Any, dim: int, seed: int, decomposition: Any) -> FloatArray:
    k = max(1, min(dim, min(m.shape) - 1))
    if k < 1 or m.nnz == 0:
        return np.zeros((m.shape[0], dim), dtype=np.float32)
    z = decomposition.TruncatedSVD(n_components=k, random_state=seed).fit_transform(m)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    z = z / np.where(norms > 0, norms, 1.0)
    out = np.zeros((m.shape[0], dim), dtype=np.float32)
    out[:, :k] = z
    return out


def title_embeddings(titles: Sequence[str]) -> FloatArray:
    """MiniLM sentence embeddings of item titles (the project's offline embedder)."""
    from aisle.tools.retrieval import Embedder

    return Embedder().embed(list(titles))


_PLATFORMS = [
    ("PlayStation 4", r"playstation ?4|\bps4\b"), ("PlayStation 3", r"playstation ?3|\bps3\b"),
    ("PlayStation 2", r"playstation ?2|\bps2\b"), ("PlayStation Vita", r"\bvita\b"),
    ("PSP", r"\bpsp\b"), ("PlayStation", r"playstation|\bps1\b"),
    ("Xbox One", r"xbox one"), ("Xbox 360", r"xbox 360"), ("Xbox", r"\bxbox\b"),
    ("Nintendo Switch", r"nintendo switch"), ("Wii U", r"wii ?u\b"), ("Wii", r"\bwii\b"),
    ("Nintendo 3DS", r"\b3ds\b"), ("Nintendo DS", r"nintendo ds|\bnds\b"),
    ("GameCube", r"gamecube"), ("Nintendo 64", r"nintendo 64|\bn64\b"),
    ("Game Boy", r"game ?boy"), ("Sega", r"\bsega\b|dreamcast|genesis"),
    ("Mac", r"\bmac\b"), ("PC", r"\bpc\b|windows"),
]


def games_platform(title: str) -> str | None:
    """The platform a Games title names (`"Halo 3 - Xbox 360"` -> `"Xbox 360"`), else
    None. The first match in `_PLATFORMS`' order wins (specific before generic).

    Example:
        >>> games_platform("Halo 3 - Xbox 360"), games_platform("Tetris")
        ('Xbox 360', None)
    """
    lowered = title.lower()
    for name, pattern in _PLATFORMS:
        if re.search(pattern, lowered):
            return name
    return None


def attribute_paths(attributes: Sequence[Sequence[str]], slots: int) -> list[tuple[str, ...]]:
    """Each item's first `slots` attributes, the most widely shared first (coarse to
    fine), `ATTR_NONE` filling missing slots. Attributes on every item say nothing and
    are dropped.

    Example:
        >>> attribute_paths([["b", "a"], ["a"], ["c", "a"]], 2)
        [('b', '<none>'), ('<none>', '<none>'), ('c', '<none>')]
    """
    counts = Counter(a for attrs in attributes for a in set(attrs))
    n = len(attributes)
    out = []
    for attrs in attributes:
        kept = sorted((a for a in dict.fromkeys(attrs) if counts[a] < n),
                      key=lambda a: (-counts[a], a))[:slots]
        out.append(tuple(kept) + (ATTR_NONE,) * (slots - len(kept)))
    return out


@dataclass(frozen=True)
class ItemTokens:
    """The token vocabulary and every item's token path.

    Token ids: 0 padding, 1 the start token, then the attribute tokens (`attr_names`),
    then each code level's codes (level `l` code `c` is `code_offsets[l] + c`).

    Attributes:
        attr_names: attribute token names (`ATTR_NONE` first when there are slots).
        attr_slots: attribute tokens per path (0: the ablation without them).
        code_sizes: codes per level, the collision level last.
        paths: `(n_items + 1, depth)` token ids; row 0 (padding) is all 0.
    """

    attr_names: tuple[str, ...]
    attr_slots: int
    code_sizes: tuple[int, ...]
    paths: IntArray

    @property
    def depth(self) -> int:
        return self.attr_slots + len(self.code_sizes)

    @property
    def attr_offset(self) -> int:
        return 2

    @property
    def code_offsets(self) -> tuple[int, ...]:
        out, at = [], self.attr_offset + len(self.attr_names)
        for size in self.code_sizes:
            out.append(at)
            at += size
        return tuple(out)

    @property
    def vocab(self) -> int:
        return self.attr_offset + len(self.attr_names) + sum(self.code_sizes)

    @classmethod
    def build(cls, attr_paths: Sequence[tuple[str, ...]], codes: IntArray) -> ItemTokens:
        """Paths from each item's attribute path and full code (collision level
        included), both in catalog order."""
        slots = len(attr_paths[0]) if attr_paths else 0
        names = (ATTR_NONE, *sorted({a for p in attr_paths for a in p} - {ATTR_NONE})) \
            if slots else ()
        index = {a: i for i, a in enumerate(names)}
        sizes = tuple(int(codes[:, level].max()) + 1 for level in range(codes.shape[1]))
        tokens = cls(names, slots, sizes, np.zeros((0, 0), dtype=np.int64))
        paths = np.zeros((len(codes) + 1, tokens.depth), dtype=np.int64)
        for i, p in enumerate(attr_paths):
            paths[i + 1, :slots] = [tokens.attr_offset + index[a] for a in p]
        for level, offset in enumerate(tokens.code_offsets):
            paths[1:, slots + level] = offset + codes[:, level]
        return cls(names, slots, sizes, paths)

    def describe(self, token: int) -> str:
        """A token's name: an attribute's, or `code<level>:<value>`."""
        if token == PAD:
            return "<pad>"
        if token == BOS:
            return "<bos>"
        at = token - self.attr_offset
        if 0 <= at < len(self.attr_names):
            return self.attr_names[at]
        for level, offset in reversed(list(enumerate(self.code_offsets))):
            if token >= offset:
                return f"code{level}:{token - offset}"
        raise ValueError(f"token {token} is not in the vocabulary")

    def to_json(self) -> dict[str, Any]:
        return {"attr_names": list(self.attr_names), "attr_slots": self.attr_slots,
                "code_sizes": list(self.code_sizes)}

    @classmethod
    def from_json(cls, meta: Mapping[str, Any], paths: IntArray) -> ItemTokens:
        return cls(tuple(meta["attr_names"]), int(meta["attr_slots"]),
                   tuple(int(s) for s in meta["code_sizes"]), paths)


class PrefixTrie:
    """Every item's token path as a trie, for decoding that can only produce real items.

    Nodes are numbered per depth (`node_at[d][i]`: the node item `i` passes at depth
    `d`; depth 0 is the root). `children(d, nodes)` lists each node's (token, child)
    pairs; `dead(d, users, excluded)` marks nodes at depth `d` whose every item is
    excluded for a user, so decoding never spends a beam on them.

    Example:
        >>> paths = np.array([[0, 0], [5, 7], [5, 8], [6, 7]])
        >>> trie = PrefixTrie(paths)
        >>> owner, tokens, child = trie.children(0, np.array([0]))
        >>> tokens.tolist()
        [5, 6]
        >>> owner, tokens, child = trie.children(1, child[:1])
        >>> tokens.tolist(), [trie.item_of(2, c) for c in child.tolist()]
        ([7, 8], [1, 2])
    """

    def __init__(self, paths: IntArray) -> None:
        items = paths[1:]
        self.depth = paths.shape[1]
        self.n_items = len(items)
        node_at = [np.zeros(self.n_items, dtype=np.int64)]
        self._indptr: list[IntArray] = []
        self._tokens: list[IntArray] = []
        self._child: list[IntArray] = []
        self.counts: list[IntArray] = [np.array([self.n_items], dtype=np.int64)]
        for d in range(self.depth):
            parent = node_at[-1]
            token = items[:, d]
            key = parent * (int(token.max()) + 1) + token
            uniq, child, counts = np.unique(key, return_inverse=True, return_counts=True)
            child = child.reshape(-1)
            node_at.append(child.astype(np.int64))
            u_parent = uniq // (int(token.max()) + 1)
            u_token = uniq % (int(token.max()) + 1)
            # `uniq` is sorted by (parent, token): CSR by parent directly.
            n_parents = len(self.counts[-1])
            self._indptr.append(np.searchsorted(u_parent, np.arange(n_parents + 1)))
            self._tokens.append(u_token.astype(np.int64))
            self._child.append(np.arange(len(uniq), dtype=np.int64))
            self.counts.append(counts.astype(np.int64))
        self.node_at = node_at
        leaf = node_at[-1]
        if len(np.unique(leaf)) != self.n_items:
            raise ValueError("two items share a token path; add a collision level")
        self._item_of_leaf = np.zeros(self.n_items, dtype=np.int64)
        self._item_of_leaf[leaf] = np.arange(1, self.n_items + 1)

    def children(self, depth: int, nodes: IntArray) -> tuple[IntArray, IntArray, IntArray]:
        """For nodes at `depth`: `(owner, token, child)` arrays, `owner` indexing
        `nodes`, children in token order."""
        indptr = self._indptr[depth]
        starts, ends = indptr[nodes], indptr[nodes + 1]
        lens = ends - starts
        owner = np.repeat(np.arange(len(nodes)), lens)
        offsets = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        idx = np.repeat(starts, lens) + offsets
        return owner, self._tokens[depth][idx], self._child[depth][idx]

    def item_of(self, depth: int, node: int) -> int:
        """The catalog index (1-based) of a leaf node (`depth` must be the full depth)."""
        if depth != self.depth:
            raise ValueError(f"items are leaves at depth {self.depth}, not {depth}")
        return int(self._item_of_leaf[node])

    def items_of(self, leaves: IntArray) -> IntArray:
        return self._item_of_leaf[leaves]

    def dead(self, depth: int, users: IntArray, excluded: IntArray) -> IntArray:
        """Keys `user * n_nodes + node` of depth-`depth` nodes with every item excluded.

        `users[j]` excludes catalog index `excluded[j]` (1-based; repeats are fine)."""
        if len(excluded) == 0:
            return np.zeros(0, dtype=np.int64)
        pairs = np.unique(np.stack([users, excluded], axis=1), axis=0)
        nodes = self.node_at[depth][pairs[:, 1] - 1]
        n_nodes = len(self.counts[depth])
        keys, hits = np.unique(pairs[:, 0] * n_nodes + nodes, return_counts=True)
        full = hits >= self.counts[depth][keys % n_nodes]
        out: IntArray = keys[full]
        return out

    def n_nodes(self, depth: int) -> int:
        return len(self.counts[depth])
