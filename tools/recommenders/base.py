"""The one interface every recommender implements, and what the models share.

A recommender knows a catalog of item ids (strings) and, once fitted on users' item
sequences (oldest first), answers two questions about a user's history:

- `recommend(history, k, exclude=...)`: the top `k` items of the whole catalog, best
  first; by default the history's own items are left out of the ranking.
- `score(history, item_ids)`: a score for each given candidate (higher is better), so a
  caller can rank any candidate list (the LLMRank 20-candidate protocol, ARAG's
  candidates).

`save(path)` / `load(path)` round-trip a fitted model through one file. Ids the model
does not know raise `UnknownItemError` (an `AisleError` naming them), never a bare
`KeyError`, so a tool layer can turn it into a message an agent can act on.

Ties in a ranking are broken by catalog order (the item's index), the same way in
`recommend`, in `rank_targets` (what the evals use) and in every model.

Example:
    >>> from aisle.tools.recommenders import Popularity
    >>> model = Popularity().fit([["a", "b"], ["b", "c"], ["b", "a"]])
    >>> [r.item_id for r in model.recommend(["c"], k=2)]
    ['b', 'a']
    >>> model.score(["c"], ["a", "b"])
    [2.0, 3.0]
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from aisle.errors import AisleError

__all__ = [
    "CatalogRecommender",
    "EpochLog",
    "ExplainingRecommender",
    "FitProgress",
    "Recommender",
    "RecommenderInputError",
    "ScoredItem",
    "TrainingRecord",
    "UnknownItemError",
    "ValidationPair",
]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

ValidationPair = tuple[Sequence[str], str]
"""`(history, next item)`: one held-out next item to predict from a history."""

# Users ranked at once when scoring many histories (bounds the score matrix in memory).
SCORE_BATCH = 512
NEG_INF = np.float32(-np.inf)


class RecommenderInputError(AisleError, ValueError):
    """A history or candidate list a recommender cannot use (empty, or unknown ids)."""


class UnknownItemError(RecommenderInputError):
    """Item ids that are not in the model's catalog.

    Attributes:
        unknown: the unknown ids, in the order given (at most 20 are kept).
    """

    def __init__(self, unknown: Sequence[str], what: str = "item ids") -> None:
        self.unknown = list(dict.fromkeys(unknown))[:20]
        shown = ", ".join(repr(i) for i in self.unknown[:5])
        more = f" and {len(self.unknown) - 5} more" if len(self.unknown) > 5 else ""
        super().__init__(f"{what} not in the recommender's catalog: {shown}{more}; pass ids "
                         "from the dataset the model was trained on")


class ScoredItem(NamedTuple):
    """One recommended item and the model's score for it (higher is better)."""

    item_id: str
    score: float


class EpochLog(BaseModel):
    """What one training epoch did (one line of the training curve)."""

    model_config = ConfigDict(frozen=True)

    epoch: int = Field(ge=1)
    loss: float | None = Field(None, description="Mean training loss over the epoch's tokens.")
    valid_ndcg10: float | None = Field(None, description="Validation NDCG@10 (full ranking, "
                                                         "history items excluded).")
    valid_recall10: float | None = None
    seconds: float = Field(ge=0, description="Training and validation time of the epoch.")
    best: bool = Field(False, description="The best validation NDCG@10 so far.")


class TrainingRecord(BaseModel):
    """How a model was fitted: JSON, kept beside its checkpoint and in eval reports."""

    model: str
    epochs: int = Field(0, ge=0, description="Epochs run (0 for models fitted in one pass).")
    best_epoch: int | None = None
    stopped_early: bool = False
    stopped_by_time: bool = Field(False, description="Training stopped at the config's "
                                                     "`max_minutes` budget.")
    seconds: float = 0.0
    resumed_at: int | None = Field(None, description="The epoch a resumed run started at.")
    valid_ndcg10: float | None = Field(None, description="Validation NDCG@10 of the model "
                                                         "kept (the best epoch's).")
    valid_recall10: float | None = None
    history: list[EpochLog] = Field(default_factory=list)


class FitProgress(Protocol):
    """Callbacks a long fit reports to (the CLI draws bars and prints epoch lines)."""

    def on_batch(self, epoch: int, done: int, total: int) -> None:
        """`done` of `total` batches of `epoch` are finished."""

    def on_epoch(self, log: EpochLog, max_epochs: int) -> None:
        """An epoch is finished and checkpointed (an interrupt from here loses nothing)."""


@runtime_checkable
class Recommender(Protocol):
    """What every recommender implements (popularity, item-kNN, SASRec, ...)."""

    kind: ClassVar[str]

    @property
    def items(self) -> tuple[str, ...]:
        """The catalog: every item id the model can recommend or score."""

    @property
    def training(self) -> TrainingRecord | None:
        """How the model was fitted (None before `fit` or `load`)."""

    def fit(self, sequences: Sequence[Sequence[str]], *, items: Sequence[str] | None = None,
            validation: Sequence[ValidationPair] | None = None,
            checkpoint_dir: Path | None = None, progress: FitProgress | None = None) -> Self:
        """Fit on users' item sequences (oldest first).

        Args:
            sequences: one item sequence per user, oldest first.
            items: the catalog (default: every item in `sequences`); items never seen in
                training can still be recommended and scored.
            validation: held-out `(history, next item)` pairs: models that train in
                epochs stop early on their NDCG@10; every model records it.
            checkpoint_dir: where a model that trains in epochs keeps its state after
                each epoch, and resumes from after an interruption.
            progress: callbacks for progress bars.
        """

    def recommend(self, history: Sequence[str], k: int = 10, *,
                  exclude: Iterable[str] | None = None) -> list[ScoredItem]:
        """The top `k` items of the whole catalog for `history`, best first.

        `exclude=None` leaves out the history's own items; pass ids to leave out those
        instead (`exclude=()` keeps every item).
        """

    def score(self, history: Sequence[str], item_ids: Sequence[str]) -> list[float]:
        """The model's score for each of `item_ids` (higher is better), no exclusion."""

    def save(self, path: Path) -> None:
        """Write the fitted model to one file."""

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a model `save` wrote."""


class StepLike(Protocol):
    """One step of a recommendation's reasoning path (GRACE's `StepProbability`)."""

    @property
    def attribute(self) -> str: ...

    @property
    def probability(self) -> float: ...


@runtime_checkable
class ExplainingRecommender(Recommender, Protocol):
    """A recommender that can say why: each item's attribute path (a generative
    recommender's chain of thought) with the probability of each step."""

    def reasoning(self, history: Sequence[str], item_ids: Sequence[str]
                  ) -> Sequence[Sequence[StepLike]]:
        """Per item, its reasoning steps given the history."""


class CatalogRecommender(ABC):
    """The shared half of every model: the catalog, id <-> index mapping, top-k and
    ranking with exclusion and tie rules. A model supplies `_fit` and `_score_batch`
    (scores over the whole catalog for encoded histories) and its file format.

    Index 0 is padding; catalog item `i` has index `i + 1`.
    """

    kind: ClassVar[str]

    def __init__(self) -> None:
        self._items: tuple[str, ...] = ()
        self._index: dict[str, int] = {}
        self._training: TrainingRecord | None = None

    # -- catalog ---------------------------------------------------------------------
    @property
    def items(self) -> tuple[str, ...]:
        return self._items

    @property
    def n_items(self) -> int:
        return len(self._items)

    @property
    def training(self) -> TrainingRecord | None:
        return self._training

    def _set_items(self, items: Sequence[str]) -> None:
        self._items = tuple(items)
        self._index = {item: i + 1 for i, item in enumerate(self._items)}
        if len(self._index) != len(self._items):
            raise RecommenderInputError("the catalog lists an item id twice; pass unique ids")

    def _check_fitted(self) -> None:
        if not self._items:
            raise RecommenderInputError(f"the {self.kind} model is not fitted; call fit() "
                                        "or load() first")

    def encode(self, ids: Sequence[str], what: str = "history item ids") -> IntArray:
        """Catalog indices of `ids`.

        Raises:
            UnknownItemError: some ids are not in the catalog.
        """
        self._check_fitted()
        out = [self._index.get(i, 0) for i in ids]
        if 0 in out:
            raise UnknownItemError([i for i, x in zip(ids, out, strict=True) if x == 0], what)
        return np.asarray(out, dtype=np.int64)

    # -- fitting ---------------------------------------------------------------------
    def fit(self, sequences: Sequence[Sequence[str]], *, items: Sequence[str] | None = None,
            validation: Sequence[ValidationPair] | None = None,
            checkpoint_dir: Path | None = None, progress: FitProgress | None = None) -> Self:
        if items is None:
            items = list(dict.fromkeys(i for seq in sequences for i in seq))
        self._set_items(items)
        if not self._items:
            raise RecommenderInputError("no items to fit on; pass non-empty sequences")
        train = [self.encode(seq, "training item ids") for seq in sequences if len(seq)]
        valid = None
        if validation:
            valid = ([self.encode(h, "validation item ids") for h, _ in validation],
                     self.encode([t for _, t in validation], "validation targets"))
        self._training = self._fit(train, valid, checkpoint_dir, progress)
        return self

    @abstractmethod
    def _fit(self, train: list[IntArray], valid: tuple[list[IntArray], IntArray] | None,
             checkpoint_dir: Path | None, progress: FitProgress | None) -> TrainingRecord:
        """Fit on encoded sequences; the training record."""

    # -- scoring ---------------------------------------------------------------------
    @abstractmethod
    def _score_batch(self, histories: Sequence[IntArray]) -> FloatArray:
        """Scores `(len(histories), n_items + 1)` over the whole catalog; column 0
        (padding) is ignored."""

    def catalog_scores(self, histories: Sequence[IntArray]) -> FloatArray:
        """`_score_batch` with padding at -inf, in batches of `SCORE_BATCH` histories."""
        self._check_fitted()
        if any(len(h) == 0 for h in histories):
            raise RecommenderInputError("a history is empty; pass at least one item id")
        parts = []
        for start in range(0, len(histories), SCORE_BATCH):
            scores = np.asarray(self._score_batch(histories[start:start + SCORE_BATCH]),
                                dtype=np.float32)
            scores[:, 0] = NEG_INF
            parts.append(scores)
        return np.concatenate(parts) if parts else np.zeros((0, self.n_items + 1), np.float32)

    def recommend(self, history: Sequence[str], k: int = 10, *,
                  exclude: Iterable[str] | None = None) -> list[ScoredItem]:
        if k < 1:
            raise RecommenderInputError(f"k must be at least 1, got {k}")
        encoded = self.encode(history)
        scores = self.catalog_scores([encoded])[0]
        excluded = encoded if exclude is None else self.encode(list(exclude), "excluded ids")
        scores[excluded] = NEG_INF
        return [ScoredItem(self._items[i - 1], float(scores[i]))
                for i in top_k(scores, k)]

    def score(self, history: Sequence[str], item_ids: Sequence[str]) -> list[float]:
        candidates = self.encode(item_ids, "candidate ids")
        scores = self.catalog_scores([self.encode(history)])[0]
        return [float(s) for s in scores[candidates]]

    def rank_targets(self, histories: Sequence[Sequence[str]], targets: Sequence[str], *,
                     exclude_history: bool = True) -> list[int | None]:
        """Each target's 1-based rank over the whole catalog (None: excluded, so it
        cannot be ranked), with each history's items left out when `exclude_history`.
        Ranks agree with `recommend`'s order (ties by catalog index)."""
        encoded = [self.encode(h) for h in histories]
        target_idx = self.encode(targets, "target ids")
        out: list[int | None] = []
        for start in range(0, len(encoded), SCORE_BATCH):
            batch = encoded[start:start + SCORE_BATCH]
            scores = self.catalog_scores(batch)
            ranks = ranks_of_targets(scores, batch, target_idx[start:start + SCORE_BATCH],
                                     exclude_history=exclude_history)
            out.extend(None if r == 0 else int(r) for r in ranks)
        return out

    def validate(self, histories: Sequence[IntArray], targets: IntArray) -> dict[str, float]:
        """Mean NDCG@10 and Recall@10 of held-out next items (full ranking, history
        items excluded). Histories are scored shortest first, so a batch pads little."""
        order = np.argsort([len(h) for h in histories], kind="stable")
        ranks: list[int] = []
        for start in range(0, len(order), SCORE_BATCH):
            rows = order[start:start + SCORE_BATCH]
            batch = [histories[i] for i in rows]
            ranks.extend(ranks_of_targets(self.catalog_scores(batch), batch,
                                          targets[rows]).tolist())
        return ndcg_recall_at_10(ranks)

    # -- files -----------------------------------------------------------------------
    @abstractmethod
    def save(self, path: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Self: ...

    def config_dict(self) -> dict[str, Any]:
        """The model's config as JSON (keys its checkpoints and eval answers)."""
        return {}


def top_k(scores: FloatArray, k: int) -> list[int]:
    """Indices of the `k` highest finite scores, best first, ties by lower index.

    Example:
        >>> top_k(np.array([-np.inf, 1.0, 3.0, 1.0, 2.0], dtype=np.float32), 3)
        [2, 4, 1]
    """
    finite = np.isfinite(scores)
    k = min(k, int(finite.sum()))
    if k == 0:
        return []
    masked = np.where(finite, scores, NEG_INF)
    part = np.argpartition(-masked, k - 1)[:k]
    threshold = masked[part].min()
    # Everything at or above the k-th score, then an exact sort: ties by index.
    pool = np.flatnonzero(masked >= threshold)
    order = np.lexsort((pool, -masked[pool]))
    return [int(i) for i in pool[order][:k]]


def ranks_of_targets(scores: FloatArray, histories: Sequence[IntArray], targets: IntArray, *,
                     exclude_history: bool = True) -> IntArray:
    """1-based ranks of `targets` in each row of `scores` (0: the target is excluded).

    A row's history items are set to -inf first when `exclude_history`; ties count the
    items of lower index as ahead, as `top_k` does.

    Example:
        >>> s = np.array([[-np.inf, 0.5, 0.9, 0.5, 0.1]], dtype=np.float32)
        >>> ranks_of_targets(s, [np.array([2])], np.array([3])).tolist()
        [2]
        >>> ranks_of_targets(s, [np.array([2])], np.array([3]), exclude_history=False).tolist()
        [3]
    """
    scores = scores.copy()
    if exclude_history:
        for row, history in enumerate(histories):
            scores[row, history] = NEG_INF
    rows = np.arange(len(targets))
    own = scores[rows, targets][:, None]
    ahead = (scores > own).sum(axis=1)
    cols = np.arange(scores.shape[1])[None, :]
    ahead += ((scores == own) & (cols < targets[:, None])).sum(axis=1)
    ranks: IntArray = (ahead + 1).astype(np.int64)
    ranks[~np.isfinite(own[:, 0])] = 0
    return ranks


def ndcg_recall_at_10(ranks: Sequence[int]) -> dict[str, float]:
    """Mean NDCG@10 and Recall@10 of 1-based ranks (0 or None: a miss).

    Example:
        >>> ndcg_recall_at_10([1, 3, 11, 0])
        {'ndcg@10': 0.375, 'recall@10': 0.5}
    """
    if not ranks:
        return {"ndcg@10": 0.0, "recall@10": 0.0}
    hits = [r for r in ranks if r and r <= 10]
    return {"ndcg@10": sum(1.0 / math.log2(r + 1) for r in hits) / len(ranks),
            "recall@10": len(hits) / len(ranks)}
