"""The ARAG eval: ARAG and its baselines on the LLMRank Amazon Games protocol.

Methods (README, "ARAG baselines", defines each):

- `random`: a seeded shuffle of the candidates.
- `popularity`: candidates ordered by how often they appear in all users' histories.
- `recency`: cosine similarity to the mean embedding of the user's 3 most recent items.
- `embedding`: cosine similarity to the mean embedding of the user's whole history.
- `vanilla_rag`: one LLM call that ranks the candidates given the raw history.
- `arag_no_nli`: ARAG without the NLI and context-summary agents (ablation).
- `arag`: the full graph.

Per-user results go to a SQLite file beside the output, so an interrupted run
continues where it stopped (the response cache makes repeated model calls free).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel

from aisle.agents.arag import Item, rank_items
from aisle.errors import AisleError
from aisle.evals.llmrank import EvalCase, GamesData
from aisle.evals.metrics import rank_of, summarize
from aisle.evals.store import ResultStore
from aisle.graphs.arag import ARAGConfig, ARAGContext, build_arag_graph
from aisle.llm import track_usage
from aisle.tools.retrieval import CatalogIndex

__all__ = ["LLM_METHODS", "METHODS", "ARAGEval", "EvalSettings", "ResultStore"]

logger = logging.getLogger(__name__)

NON_LLM_METHODS = ("random", "popularity", "recency", "embedding")
LLM_METHODS = ("vanilla_rag", "arag_no_nli", "arag")
METHODS = NON_LLM_METHODS + LLM_METHODS
RECENT_ITEMS = 3


@dataclass
class EvalSettings:
    """What one eval run covers."""

    retriever: str = "random"
    n_users: int = 200
    methods: tuple[str, ...] = METHODS
    max_history: int = 20
    user_concurrency: int = 2
    seed: int = 2023
    arag: ARAGConfig = field(default_factory=ARAGConfig)


class ARAGEval:
    """Runs the methods over the cases and aggregates metrics, validity and usage."""

    def __init__(self, data: GamesData, index: CatalogIndex, model: BaseChatModel | None,
                 settings: EvalSettings, store: ResultStore, run_key: str) -> None:
        self.data = data
        self.index = index
        self.model = model
        self.settings = settings
        self.store = store
        self.run_key = run_key
        self._popularity: Counter[str] | None = None
        self.failures: list[tuple[str, str, str]] = []
        self._graphs = {use_nli: build_arag_graph(use_nli=use_nli) for use_nli in (True, False)}

    # -- baselines without a model -------------------------------------------------
    def _popularity_counts(self) -> Counter[str]:
        if self._popularity is None:
            self._popularity = Counter(i for h in self.data.histories.values() for i in h)
        return self._popularity

    def rank_without_llm(self, method: str, case: EvalCase) -> list[str]:
        cands = list(case.candidates)
        if method == "random":
            rng = random.Random(f"{self.settings.seed}:random:{case.user_id}")
            rng.shuffle(cands)
            return cands
        if method == "popularity":
            pop = self._popularity_counts()
            return sorted(cands, key=lambda c: -pop[c])  # stable: ties keep list order
        last = RECENT_ITEMS if method == "recency" else None
        user = self.index.user_vector(case.history[-50:], last=last)
        vecs = self.index.vectors(cands)
        sims = {c: float(np.dot(vecs[c], user)) for c in cands}
        return sorted(cands, key=lambda c: -sims[c])

    # -- methods with a model ------------------------------------------------------
    def _items(self, ids: Sequence[str]) -> list[Item]:
        return [Item(id=i, title=self.data.title(i)) for i in ids]

    async def rank_with_llm(self, method: str, case: EvalCase) -> dict[str, Any]:
        assert self.model is not None
        candidates = self._items(case.candidates)
        history = self._items(case.history[-self.settings.max_history:])
        if method == "vanilla_rag":
            result = await rank_items(self.model, candidates,
                                      history=[h["title"] for h in history], agent="vanilla_rag")
            return {"ranking": result.ranking, "validity": result.validity()}
        use_nli = method == "arag"
        config = ARAGConfig(**{**asdict(self.settings.arag), "use_nli": use_nli,
                               "max_history": self.settings.max_history})
        out = await self._graphs[use_nli].ainvoke({"user_id": case.user_id, "history": history,
                                   "candidates": candidates},
                                  context=ARAGContext(model=self.model, config=config))
        blackboard = {"user_profile": out.get("user_profile"),
                      "context_summary": out.get("context_summary"),
                      "nli": out.get("nli", [])}
        validity = dict(out["ranker"])
        validity.pop("proposed", None)
        if use_nli:
            validity["nli_failures"] = sum(r["score"] is None for r in out["nli"])
        validity["agent_failures"] = len(out.get("failures", []))
        blackboard["failures"] = out.get("failures", [])
        return {"ranking": out["ranking"], "validity": validity, "blackboard": blackboard}

    async def run(self, cases: Sequence[EvalCase],
                  progress: Callable[[str, int, int], None] | None = None) -> None:
        """Rank every case with every method, skipping (method, user) pairs already stored.

        Baselines without a model run first. Then each user goes through every LLM
        method in turn, users `user_concurrency` at a time, so an interrupted run
        leaves complete results for the users it finished.
        """
        for method in [m for m in self.settings.methods if m in NON_LLM_METHODS]:
            done = self.store.done(method, self.run_key)
            for n, case in enumerate(cases, 1):
                if case.user_id not in done:
                    ranking = self.rank_without_llm(method, case)
                    self.store.put(method, case.user_id, self.run_key,
                                   {"ranking": ranking, "target": case.target})
                if progress:
                    progress(method, n, len(cases))
        llm_methods = [m for m in self.settings.methods if m in LLM_METHODS]
        if not llm_methods:
            return
        if self.model is None:
            raise ValueError(f"methods {llm_methods} need a model")
        finished: dict[str, set[str]] = {
            m: set(self.store.done(m, self.run_key)) for m in llm_methods}
        counts = {m: len(finished[m] & {c.user_id for c in cases}) for m in llm_methods}
        if progress:
            for m in llm_methods:
                progress(m, counts[m], len(cases))
        sem = asyncio.Semaphore(self.settings.user_concurrency)

        async def one(case: EvalCase) -> None:
            async with sem:
                for method in llm_methods:
                    if case.user_id in finished[method]:
                        continue
                    started = time.perf_counter()
                    try:
                        with track_usage() as tracker:
                            value = await self.rank_with_llm(method, case)
                    except AisleError as e:
                        # One user's failure (a timeout, a server hiccup) must not end a
                        # multi-hour run: it is logged, not stored, and retried on resume.
                        logger.warning("%s failed for user %s: %s", method, case.user_id, e)
                        self.failures.append((method, case.user_id, str(e)[:300]))
                        return
                    value.update(target=case.target, usage=tracker.to_dict(),
                                 seconds=time.perf_counter() - started)
                    self.store.put(method, case.user_id, self.run_key, value)
                    counts[method] += 1
                    if progress:
                        progress(method, counts[method], len(cases))

        await asyncio.gather(*(one(c) for c in cases))

    def report(self, cases: Sequence[EvalCase]) -> dict[str, Any]:
        """Metrics with 95% bootstrap intervals, validity indicators and usage, per method.

        Every method is scored on the same users: those that all methods have finished
        (all of `cases` once a run is complete; fewer for a partial run).
        """
        metrics: dict[str, Any] = {}
        validity: dict[str, Any] = {}
        usage: dict[str, Any] = {}
        seconds: dict[str, float] = {}
        users = {c.user_id for c in cases}
        by_method = {m: self.store.done(m, self.run_key) for m in self.settings.methods}
        for stored_users in by_method.values():
            users &= set(stored_users)
        for method in self.settings.methods:
            stored = {u: v for u, v in by_method[method].items() if u in users}
            ranks = [rank_of(v["target"], v["ranking"]) for v in stored.values()]
            metrics[method] = {"n_users": len(stored), **{
                name: ci["mean"] for name, ci in summarize(ranks).items()}}
            metrics[method]["ci95"] = {name: [ci["ci_low"], ci["ci_high"]]
                                       for name, ci in summarize(ranks).items()}
            if method in LLM_METHODS and stored:
                usage[method] = _sum_usage([v.get("usage", {}) for v in stored.values()])
                seconds[method] = sum(v.get("seconds", 0.0) for v in stored.values())
                vals = [v["validity"] for v in stored.values()]
                validity[method] = {
                    "users": len(vals),
                    "invented_ids": sum(v["invented"] for v in vals),
                    "duplicate_ids": sum(v["duplicates"] for v in vals),
                    "missing_ids": sum(v["missing"] for v in vals),
                    "repaired_rankings": sum(bool(v["repaired"]) for v in vals),
                    "unparseable_rankings": sum(bool(v["parse_failed"]) for v in vals),
                    **({"nli_failures": sum(v.get("nli_failures", 0) for v in vals)}
                       if method == "arag" else {}),
                    "agent_failures": sum(v.get("agent_failures", 0) for v in vals),
                }
        if "arag" in self.settings.methods and users:
            # Diagnostic, no extra model calls: the same ARAG runs ranked by their NLI
            # scores alone, to separate the NLI signal from what the ranker does with it.
            ranks = [rank_of(v["target"], nli_order(v)) for u, v in by_method["arag"].items()
                     if u in users]
            summary = summarize(ranks)
            metrics["arag_nli_order"] = {"n_users": len(ranks),
                                         **{k: ci["mean"] for k, ci in summary.items()},
                                         "ci95": {k: [ci["ci_low"], ci["ci_high"]]
                                                  for k, ci in summary.items()}}
        return {"metrics": metrics, "validity": validity, "usage": usage, "seconds": seconds}


_SUMMED = ("calls", "cache_hits", "errors", "prompt_tokens", "completion_tokens",
           "cached_prompt_tokens", "latency_s")


def _sum_usage(per_user: Sequence[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Add up per-user usage tables (agent -> counters)."""
    out: dict[str, dict[str, Any]] = {}
    for table in per_user:
        for agent, row in table.items():
            agg = out.setdefault(agent, dict.fromkeys(_SUMMED, 0))
            for key in _SUMMED:
                agg[key] += row.get(key, 0)
    for agg in out.values():
        model_calls = agg["calls"] - agg["cache_hits"]
        agg["mean_latency_s"] = agg["latency_s"] / model_calls if model_calls else 0.0
    return out


def nli_order(stored: dict[str, Any]) -> list[str]:
    """A stored ARAG result's candidates by NLI score (failed items last), ties in the
    ranker's order."""
    scores: dict[str, float] = {r["item_id"]: -1.0 if r["score"] is None else float(r["score"])
                                for r in stored["blackboard"]["nli"]}
    return sorted(stored["ranking"], key=lambda i: -scores.get(i, -1.0))
