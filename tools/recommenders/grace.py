"""GRACE-style generative recommender: the next item is generated as tokens.

After GRACE (Ma et al., RecSys 2025) and TIGER (Rajput et al., NeurIPS 2023):

- **Semantic IDs** (`semantic_ids`): residual k-means codes of an item embedding
  (title embeddings where items have titles; attribute and co-occurrence embeddings
  where they do not), plus a collision-breaking code, so every item has a unique code.
- **Hybrid chain-of-thought tokens**: an item's path is its attribute tokens (coarse to
  fine) then its code, so the model states what kind of item it recommends before which
  one. `GRACEConfig(attribute_tokens=0)` is the ablation without them.
- **Model** (`_grace_net.GraceNet`): decoder-only (one pass over a history trains every
  next item's path, as SASRec trains every next item), with dense or journey-aware
  sparse attention (`GRACEConfig.attention`).
- **Decoding**: beam search constrained by a prefix trie (`PrefixTrie`), so it emits
  only real items; the history's items are pruned from the trie per user, so a beam
  is never spent on an excluded item. `recommend`, `rank_targets` (what the full-
  ranking eval uses) and validation rank the `beam` best paths; an item outside the
  beam is unranked (a miss at every cutoff up to `beam`). `score` is exact: the sum of
  the log-probabilities of each candidate's path tokens, for any candidate.
- **Training**: next-token cross-entropy over the vocabulary at every position,
  length-bucketed batches, early stopping on validation NDCG@10 (beam search on a
  seeded sample of `valid_users`), a wall-clock budget, per-epoch checkpoints that a
  later fit resumes from (the semantic IDs are stored first, so a resumed training uses
  the same codes).
- **Device**: `device` (default the `rec_device` setting, `auto`: cuda when torch sees
  a GPU, else cpu) holds the network and its batches; the trie and beam bookkeeping
  stay in numpy on the CPU. Saved weights are CPU tensors, so a model trained on a GPU
  loads anywhere.

`reasoning(history, item_ids)` gives each item's attribute path with the model's
probability of each step given the history: the recommendation's chain of thought.

Example:
    >>> from aisle.tools.recommenders.config import GRACEConfig
    >>> seqs = [["a", "b", "c"], ["a", "b", "d"], ["b", "c", "a"]] * 4
    >>> cfg = GRACEConfig(hidden=8, inner=8, heads=1, codebook=2, code_levels=1,
    ...                   attribute_tokens=0, max_epochs=1, valid_users=None)
    >>> model = GRACE(cfg, side=ItemSide(titles=None, attributes=None)).fit(seqs, threads=1)
    >>> len(model.recommend(["a", "b"], k=2))
    2
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from aisle.errors import ConfigurationError
from aisle.settings import get_settings
from aisle.tools.recommenders._batching import bucketed_order, token_batches
from aisle.tools.recommenders._epochs import EpochBudget, train_epochs
from aisle.tools.recommenders._files import atomic_target, read_torch, write_torch
from aisle.tools.recommenders._grace_net import GraceNet
from aisle.tools.recommenders.base import (
    CatalogRecommender,
    FitProgress,
    FloatArray,
    IntArray,
    RecommenderInputError,
    ScoredItem,
    TrainingRecord,
    ValidationPair,
    ndcg_recall_at_10,
)
from aisle.tools.recommenders.config import GRACEConfig
from aisle.tools.recommenders.sasrec import torch_threads
from aisle.tools.recommenders.semantic_ids import (
    ATTR_NONE,
    BOS,
    ItemTokens,
    PrefixTrie,
    add_collision_level,
    attribute_cooccurrence_embeddings,
    attribute_paths,
    games_platform,
    residual_kmeans,
    title_embeddings,
)

__all__ = ["GRACE", "ItemSide", "StepProbability", "validation_sample"]

CODES_FILE = "codes.npz"
"""The semantic IDs inside a checkpoint folder (written before the first epoch)."""

SEARCH_USERS = 256
"""Histories beam-searched together."""

SCORE_ROWS = 2048
"""Candidate paths scored in one pass (bounds the `(rows, depth, vocab)` scores)."""


def validation_sample(valid: tuple[list[IntArray], IntArray], config: GRACEConfig
                      ) -> tuple[list[IntArray], IntArray]:
    """The encoded validation pairs training checks after each epoch: `config.valid_users` of
    them, a sample seeded by `config.seed` (all when that is None or not fewer)."""
    histories, targets = valid
    if config.valid_users is None or len(histories) <= config.valid_users:
        return valid
    rows = sorted(random.Random(config.seed).sample(range(len(histories)),
                                                    config.valid_users))
    return [histories[i] for i in rows], targets[rows]


@dataclass(frozen=True)
class ItemSide:
    """What GRACE knows of items besides sequences.

    Attributes:
        titles: item id -> title (LLMRank Games); their embeddings are quantized, and a
            platform parsed from the title is an attribute token.
        attributes: item id -> attribute names (amazon-seq: anonymous ids).
    """

    titles: Mapping[str, str] | None = None
    attributes: Mapping[str, Sequence[str]] | None = None

    def attributes_of(self, item_id: str) -> list[str]:
        out = list(self.attributes.get(item_id, ())) if self.attributes else []
        if self.titles and item_id in self.titles:
            platform = games_platform(self.titles[item_id])
            if platform is not None:
                out.append(f"platform: {platform}")
        return out


@dataclass(frozen=True)
class StepProbability:
    """One attribute token of an item's path and its probability given the history
    and the path's earlier tokens."""

    attribute: str
    probability: float


def resolve_device(device: str | None = None) -> torch.device:
    """The torch device for `device` (default: the `rec_device` setting): `auto` is
    cuda when torch sees a GPU, else cpu.

    Raises:
        ConfigurationError: an unknown device name, or cuda where torch sees no GPU.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    name = (get_settings().rec_device if device is None else device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise ConfigurationError(f"unknown torch device {name!r} (AISLE_REC_DEVICE): use "
                                 "auto, cpu, cuda or cuda:N") from e
    if chosen.type not in ("cpu", "cuda"):
        raise ConfigurationError(f"torch device {name!r} (AISLE_REC_DEVICE) is not "
                                 "supported: use auto, cpu, cuda or cuda:N")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(f"AISLE_REC_DEVICE={name} but torch sees no GPU (this "
                                 f"torch {torch.__version__} is a CPU build or no CUDA "
                                 "device is visible); use auto or cpu")
    return chosen


class GRACE(CatalogRecommender):
    """The generative recommender (see the module docstring)."""

    kind: ClassVar[str] = "grace"

    def __init__(self, config: GRACEConfig | None = None, *, side: ItemSide | None = None,
                 threads: int | None = None, device: str | None = None) -> None:
        super().__init__()
        self.config = config or GRACEConfig()
        self.side = side or ItemSide()
        self.threads = threads
        self.device = resolve_device(device)
        self._net: GraceNet | None = None
        self._tokens: ItemTokens | None = None
        self._trie: PrefixTrie | None = None
        self.code_stats: dict[str, int] = {}

    def config_dict(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def fit(self, sequences: Sequence[Sequence[str]], *, items: Sequence[str] | None = None,
            validation: Sequence[ValidationPair] | None = None,
            checkpoint_dir: Path | None = None, progress: FitProgress | None = None,
            threads: int | None = None) -> Self:
        """`CatalogRecommender.fit`, plus `threads` (this fit only)."""
        if threads is not None:
            self.threads = threads
        return super().fit(sequences, items=items, validation=validation,
                           checkpoint_dir=checkpoint_dir, progress=progress)

    # -- item tokens -----------------------------------------------------------------
    @property
    def tokens(self) -> ItemTokens:
        if self._tokens is None:
            raise ConfigurationError("GRACE is not fitted; fit or load it first")
        return self._tokens

    @property
    def trie(self) -> PrefixTrie:
        if self._trie is None:
            self._trie = PrefixTrie(self.tokens.paths)
        return self._trie

    def _build_tokens(self, train: list[IntArray], folder: Path | None) -> None:
        c = self.config
        path = folder / CODES_FILE if folder is not None else None
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as saved:
                codes = saved["codes"]
                self.code_stats = {k: int(v) for k, v in zip(
                    saved["stat_names"].tolist(), saved["stat_values"].tolist(), strict=True)}
            if len(codes) != self.n_items:
                raise ConfigurationError(f"{path} was made for another catalog; delete "
                                         f"{path.parent} to train from scratch")
        else:
            if self.side.titles:
                titles = [self.side.titles.get(i, i) for i in self._items]
                embedding = title_embeddings(titles)
            else:
                attrs = [self.side.attributes_of(i) for i in self._items]
                embedding = attribute_cooccurrence_embeddings(
                    self.n_items, train, attrs, dim=c.embedding_dim, seed=c.seed)
            base, _ = residual_kmeans(embedding, levels=c.code_levels, codebook=c.codebook,
                                      seed=c.seed)
            codes, self.code_stats = add_collision_level(base)
            if path is not None:
                tmp = atomic_target(path)
                with tmp.open("wb") as f:
                    np.savez(f, codes=codes, stat_names=np.array(list(self.code_stats)),
                             stat_values=np.array(list(self.code_stats.values())))
                os.replace(tmp, path)
        attr = attribute_paths([self.side.attributes_of(i) for i in self._items],
                               c.attribute_tokens) if c.attribute_tokens else \
            [() for _ in self._items]
        self._tokens = ItemTokens.build(attr, codes)
        self._trie = PrefixTrie(self._tokens.paths)

    def _new_net(self) -> GraceNet:
        c, t = self.config, self.tokens
        return GraceNet(t.vocab, depth=t.depth, max_len=c.max_len, hidden=c.hidden,
                        layers=c.layers, heads=c.heads, inner=c.inner, dropout=c.dropout,
                        attention=c.attention, window=c.window)

    def _paths_digest(self) -> str:
        return hashlib.sha256(self.tokens.paths.tobytes()).hexdigest()[:16]

    # -- training --------------------------------------------------------------------
    def _fit(self, train: list[IntArray], valid: tuple[list[IntArray], IntArray] | None,
             checkpoint_dir: Path | None, progress: FitProgress | None) -> TrainingRecord:
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            self._build_tokens(train, checkpoint_dir)
            return self._train(train, valid, checkpoint_dir, progress)

    def _train(self, train: list[IntArray], valid: tuple[list[IntArray], IntArray] | None,
               checkpoint_dir: Path | None, progress: FitProgress | None) -> TrainingRecord:
        c = self.config
        seqs = [s[-(c.max_len + 1):] for s in train if len(s) >= 1]
        if not seqs:
            raise ConfigurationError("GRACE needs training sequences")
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        torch.manual_seed(c.seed)
        net = self._net = self._new_net().to(self.device)
        optimizer = torch.optim.Adam(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        checked = validation_sample(valid, c) if valid is not None else None
        return train_epochs(
            self.kind, net, optimizer, EpochBudget(c.max_epochs, c.patience, c.max_minutes),
            run_epoch=lambda epoch: self._epoch(net, optimizer, seqs, lengths, epoch, progress),
            validate=(lambda: self.validate(*checked)) if checked is not None else None,
            extra_state={"config": self.config_dict(), "items": len(self._items),
                         "paths": self._paths_digest()},
            checkpoint_dir=checkpoint_dir, progress=progress)

    def _epoch(self, net: GraceNet, optimizer: torch.optim.Optimizer, seqs: list[IntArray],
               lengths: IntArray, epoch: int, progress: FitProgress | None) -> float:
        c, depth = self.config, self.tokens.depth
        rng = np.random.default_rng([c.seed, epoch])
        order = bucketed_order(lengths, rng)
        batches = token_batches(order, lengths, max(1, c.batch_tokens // depth))
        batches = [batches[i] for i in rng.permutation(len(batches))]
        net.train()
        total, count = 0.0, 0
        for done, batch in enumerate(batches, 1):
            x = self._token_batch([seqs[i] for i in batch])
            hidden = net(x)
            targets = x[:, 1:]
            real = targets > 0
            logits = net.logits(hidden[:, :-1][real])
            loss = torch.nn.functional.cross_entropy(logits, targets[real])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            n = int(real.sum())
            total += float(loss.detach()) * n
            count += n
            if progress is not None:
                progress.on_batch(epoch, done, len(batches))
        return total / max(count, 1)

    def _token_batch(self, seqs: Sequence[IntArray]) -> torch.Tensor:
        """Start token plus each item's path, right-padded with whole padding segments."""
        depth = self.tokens.depth
        longest = max(len(s) for s in seqs)
        out = np.zeros((len(seqs), 1 + longest * depth), dtype=np.int64)
        out[:, 0] = BOS
        for row, s in enumerate(seqs):
            out[row, 1:1 + len(s) * depth] = self.tokens.paths[s].reshape(-1)
        return torch.from_numpy(out).to(self.device)

    # -- decoding --------------------------------------------------------------------
    @property
    def net(self) -> GraceNet:
        if self._net is None:
            self._check_fitted()
            raise ConfigurationError("GRACE has a catalog but no network; fit or load it")
        return self._net

    def _context(self, histories: Sequence[IntArray]) -> Any:
        seqs = [h[-self.config.max_len:] for h in histories]
        x = self._token_batch(seqs)
        return self.net.context(x, torch.tensor([len(s) for s in seqs], device=self.device))

    def beam_search(self, histories: Sequence[IntArray], beam: int,
                    exclude: Sequence[IntArray] | None = None
                    ) -> list[tuple[IntArray, FloatArray]]:
        """For each encoded history, the `beam` best items (catalog indices, best
        first) and their path log-probabilities, never an item of its `exclude` row."""
        self._check_fitted()
        if any(len(h) == 0 for h in histories):
            raise RecommenderInputError("a history is empty; pass at least one item id")
        out: list[tuple[IntArray, FloatArray]] = [None] * len(histories)  # type: ignore[list-item]
        order = np.argsort([len(h) for h in histories], kind="stable")
        self.net.eval()
        with torch_threads(self.threads), torch.inference_mode():
            for start in range(0, len(order), SEARCH_USERS):
                rows = order[start:start + SEARCH_USERS]
                found = self._search([histories[i] for i in rows], beam,
                                     [exclude[i] for i in rows] if exclude is not None
                                     else None)
                for row, result in zip(rows.tolist(), found, strict=True):
                    out[row] = result
        return out

    def _search(self, histories: list[IntArray], beam: int,
                exclude: list[IntArray] | None) -> list[tuple[IntArray, FloatArray]]:
        trie, depth, net = self.trie, self.tokens.depth, self.net
        b = len(histories)
        ctx = self._context(histories)
        dead: list[set[int]] = [set() for _ in range(depth + 1)]
        if exclude is not None:
            users = np.concatenate([np.full(len(e), u) for u, e in enumerate(exclude)] or
                                   [np.zeros(0, dtype=np.int64)]).astype(np.int64)
            excluded = np.concatenate(list(exclude) or [np.zeros(0, dtype=np.int64)])
            for d in range(1, depth + 1):
                dead[d] = set(trie.dead(d, users, excluded.astype(np.int64)).tolist())
        nodes = np.zeros((b, 1), dtype=np.int64)
        scores = np.zeros((b, 1), dtype=np.float64)
        paths = torch.zeros((b, 1, 0), dtype=torch.int64)
        for d in range(depth):
            if d == 0:
                logp = torch.log_softmax(net.logits(ctx.last_hidden), -1)[:, None]
            else:
                hidden = net.decode(ctx, paths.to(self.device))[:, :, -1]
                logp = torch.log_softmax(net.logits(hidden), -1)
            logp_np = logp.float().cpu().numpy()
            live_u, live_r = np.nonzero(np.isfinite(scores))
            owner, token, child = trie.children(d, nodes[live_u, live_r])
            u, r = live_u[owner], live_r[owner]
            cand = scores[u, r] + logp_np[u, r, token]
            if dead[d + 1]:
                keys = u * trie.n_nodes(d + 1) + child
                cand = np.where(np.isin(keys, np.fromiter(dead[d + 1], np.int64)), -np.inf,
                                cand)
            keep = np.isfinite(cand)
            u, r, token, child, cand = u[keep], r[keep], token[keep], child[keep], cand[keep]
            sort = np.lexsort((-cand, u))
            u, r, token, child, cand = u[sort], r[sort], token[sort], child[sort], cand[sort]
            first = np.searchsorted(u, u, side="left")
            rank = np.arange(len(u)) - first
            top = rank < beam
            u, r, token, child, cand, rank = (a[top] for a in (u, r, token, child, cand, rank))
            width = int(rank.max()) + 1 if len(rank) else 1
            nodes = np.zeros((b, width), dtype=np.int64)
            scores = np.full((b, width), -np.inf)
            nodes[u, rank], scores[u, rank] = child, cand
            new_paths = torch.zeros((b, width, d + 1), dtype=torch.int64)
            new_paths[u, rank, :d] = paths[u, r]
            new_paths[u, rank, d] = torch.from_numpy(token)
            paths = new_paths
        out = []
        for row in range(b):
            ok = np.isfinite(scores[row])
            out.append((trie.items_of(nodes[row][ok]),
                        scores[row][ok].astype(np.float32)))
        return out

    def path_logprobs(self, histories: Sequence[IntArray], candidates: Sequence[IntArray]
                      ) -> list[FloatArray]:
        """Exact log-probability of each token of each candidate's path given the
        history: `(len(candidates[i]), depth)` for history `i` (a path's score is the
        row's sum)."""
        self._check_fitted()
        out: list[FloatArray] = []
        self.net.eval()
        with torch_threads(self.threads), torch.inference_mode():
            start = 0
            while start < len(histories):
                width = max(1, len(candidates[start]))
                users = 1
                while (start + users < len(histories) and users < SEARCH_USERS
                       and (users + 1) * max(width, len(candidates[start + users]))
                       <= SCORE_ROWS):
                    users += 1
                    width = max(width, len(candidates[start + users - 1]))
                out.extend(self._path_logprobs(histories[start:start + users],
                                               candidates[start:start + users]))
                start += users
        return out

    def _path_logprobs(self, hs: Sequence[IntArray], cs: Sequence[IntArray]
                       ) -> list[FloatArray]:
        depth = self.tokens.depth
        ctx = self._context(hs)
        first = torch.log_softmax(self.net.logits(ctx.last_hidden), -1)  # (B, V)
        parts: list[list[FloatArray]] = [[] for _ in hs]
        longest = max(len(c) for c in cs)
        for lo in range(0, longest, SCORE_ROWS):
            idx = np.zeros((len(hs), min(SCORE_ROWS, longest - lo)), dtype=np.int64)
            for row, c in enumerate(cs):
                chunk = c[lo:lo + idx.shape[1]]
                idx[row, :len(chunk)] = chunk
            paths = torch.from_numpy(self.tokens.paths[idx]).to(self.device)  # (B, R, depth)
            steps = [first.gather(1, paths[:, :, 0])[..., None]]
            if depth > 1:
                hidden = self.net.decode(ctx, paths[:, :, :-1])
                logp = torch.log_softmax(self.net.logits(hidden), -1)
                steps.append(logp.gather(-1, paths[:, :, 1:, None])[..., 0])
            per_token = torch.cat(steps, dim=-1).float().cpu().numpy()
            for row, c in enumerate(cs):
                parts[row].append(per_token[row, :max(0, min(len(c) - lo, idx.shape[1]))])
        return [np.concatenate(p) if p else np.zeros((0, depth), np.float32) for p in parts]

    # -- the interface ---------------------------------------------------------------
    def _score_batch(self, histories: Sequence[IntArray]) -> FloatArray:
        """Exact path log-probabilities of every catalog item (slow: one path per item;
        rankings use beam search instead)."""
        catalog = np.arange(1, self.n_items + 1, dtype=np.int64)
        scores = np.full((len(histories), self.n_items + 1), -np.inf, dtype=np.float32)
        for start in range(0, self.n_items, 2048):
            chunk = catalog[start:start + 2048]
            for row, lp in enumerate(self.path_logprobs(histories, [chunk] * len(histories))):
                scores[row, chunk] = lp.sum(axis=1)
        return scores

    def recommend(self, history: Sequence[str], k: int = 10, *,
                  exclude: Iterable[str] | None = None) -> list[ScoredItem]:
        if k < 1:
            raise RecommenderInputError(f"k must be at least 1, got {k}")
        encoded = self.encode(history)
        excluded = encoded if exclude is None else self.encode(list(exclude), "excluded ids")
        items, scores = self.beam_search([encoded], max(k, self.config.beam), [excluded])[0]
        return [ScoredItem(self._items[i - 1], float(s))
                for i, s in zip(items[:k].tolist(), scores[:k].tolist(), strict=True)]

    def score(self, history: Sequence[str], item_ids: Sequence[str]) -> list[float]:
        candidates = self.encode(item_ids, "candidate ids")
        lp = self.path_logprobs([self.encode(history)], [candidates])[0]
        return [float(s) for s in lp.sum(axis=1)]

    def rank_targets(self, histories: Sequence[Sequence[str]], targets: Sequence[str], *,
                     exclude_history: bool = True) -> list[int | None]:
        """Each target's rank among the `beam` items beam search finds (None: outside
        the beam, or excluded)."""
        encoded = [self.encode(h) for h in histories]
        target_idx = self.encode(targets, "target ids")
        found = self.beam_search(encoded, self.config.beam,
                                 encoded if exclude_history else None)
        out: list[int | None] = []
        for (items, _), target in zip(found, target_idx.tolist(), strict=True):
            hit = np.flatnonzero(items == target)
            out.append(int(hit[0]) + 1 if len(hit) else None)
        return out

    def validate(self, histories: Sequence[IntArray], targets: IntArray, *,
                 beam: int | None = None) -> dict[str, float]:
        """NDCG@10 and Recall@10 of beam search (width `beam`, default the config's)
        on encoded validation pairs, histories excluded."""
        found = self.beam_search(histories, beam or self.config.beam, histories)
        ranks = []
        for (items, _), target in zip(found, targets.tolist(), strict=True):
            hit = np.flatnonzero(items == target)
            ranks.append(int(hit[0]) + 1 if len(hit) else 0)
        return ndcg_recall_at_10(ranks)

    def reasoning(self, history: Sequence[str], item_ids: Sequence[str]
                  ) -> list[list[StepProbability]]:
        """Each item's attribute path (its chain of thought) with the model's
        probability of each attribute given the history and the earlier attributes;
        empty without attribute tokens. Empty slots (`<none>`) are left out."""
        slots = self.tokens.attr_slots
        if not slots:
            return [[] for _ in item_ids]
        candidates = self.encode(item_ids, "item ids")
        lp = self.path_logprobs([self.encode(history)], [candidates])[0]
        out = []
        for row, idx in enumerate(candidates.tolist()):
            steps = []
            for slot in range(slots):
                name = self.tokens.describe(int(self.tokens.paths[idx, slot]))
                if name != ATTR_NONE:
                    steps.append(StepProbability(name, float(np.exp(lp[row, slot]))))
            out.append(steps)
        return out

    # -- files -----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        self._check_fitted()
        write_torch(path, self.kind, self._items, self._training, self.config_dict(),
                    {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                    tokens=self.tokens.to_json(),
                    paths=torch.from_numpy(self.tokens.paths),
                    code_stats=dict(self.code_stats))

    @classmethod
    def load(cls, path: Path, *, threads: int | None = None, device: str | None = None
             ) -> Self:
        saved, training = read_torch(
            path, cls.kind, "{path} is not a saved GRACE model ({error}); train it again "
            "with `aisle rec train --model grace`", "{path} does not hold a GRACE model")
        model = cls(GRACEConfig.model_validate(saved["config"]), threads=threads,
                    device=device)
        model._set_items(saved["items"])
        model._training = training
        model._tokens = ItemTokens.from_json(saved["tokens"], saved["paths"].numpy())
        model.code_stats = dict(saved["code_stats"])
        net = model._new_net()
        net.load_state_dict(saved["model"])
        net.eval()
        model._net = net.to(model.device)
        return model
