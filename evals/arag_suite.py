"""The ARAG eval: ARAG and its baselines on the LLMRank Amazon Games protocol.

Methods (README, "ARAG baselines", defines each):

- `random`: a seeded shuffle of the candidates.
- `popularity`: candidates ordered by how often they appear in all users' histories.
- `recency`: cosine similarity to the mean embedding of the user's 3 most recent items.
- `embedding`: cosine similarity to the mean embedding of the user's whole history.
- `vanilla_rag`: one LLM call that ranks the candidates given the raw history.
- `arag_no_nli`: ARAG without the NLI and context-summary agents (ablation).
- `arag`: the full graph.

It runs on the shared `EvalRunner`: per-user answers are stored under the answer key
(model, modes, agents version, prompts, domain), so an interrupted run continues where
it stopped, and the report goes to a folder named by the run key.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from statistics import mean, median
from typing import Any, ClassVar

import numpy as np
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from aisle.agents import Domain
from aisle.agents.arag import (
    AGENTS_VERSION,
    GAMES,
    PROMPTS_FINGERPRINT,
    agents_version,
    by_score,
    rank_items,
)
from aisle.errors import ConfigurationError
from aisle.evals.decoding import decoding_key, load_model
from aisle.evals.llmrank import EvalCase, GamesData
from aisle.evals.metrics import rank_of, summarize
from aisle.evals.runner import Answers, Suite
from aisle.graphs.arag import ARAGConfig, ARAGContext, build_arag_graph
from aisle.llm.usage import sum_usage
from aisle.tools.retrieval import CatalogIndex

__all__ = ["LLM_METHODS", "NON_LLM_METHODS", "ARAGEvalConfig", "ARAGSuite", "Method",
           "nli_order"]

RECENT_ITEMS = 3


class Method(StrEnum):
    """The methods the ARAG eval compares."""

    random = "random"
    popularity = "popularity"
    recency = "recency"
    embedding = "embedding"
    vanilla_rag = "vanilla_rag"
    arag_no_nli = "arag_no_nli"
    arag = "arag"


NON_LLM_METHODS = (Method.random, Method.popularity, Method.recency, Method.embedding)
LLM_METHODS = (Method.vanilla_rag, Method.arag_no_nli, Method.arag)


class ARAGEvalConfig(BaseModel):
    """What one ARAG eval run covers.

    Attributes:
        data: the LLMRank Games folder.
        retriever: the candidate file suffix (`Games.<retriever>`).
        n_users: the first N users of the candidate file.
        methods: the methods to run and score.
        model: the model spec every agent uses.
        arag: ARAG's config (`use_nli` is set per method).
        domain: the shop the prompts name.
        seed: the random baseline's seed.
        agents_version: the agents version whose stored answers to use; an earlier
            version than the code's can be reported, not run.
        deterministic: decode one request at a time (`aisle.evals.decoding`): the same
            users give the same answers run after run, at a cost in throughput. False
            lets a local server batch concurrent requests, whose results then vary with
            how they happened to be batched (the kept runs before this mode existed).
        concurrency: users ranked at once (not part of any key).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Path
    retriever: str = "random"
    n_users: int = Field(200, ge=1)
    methods: tuple[Method, ...] = tuple(Method)
    model: str = "local:smollm2-135m"
    arag: ARAGConfig = Field(default_factory=ARAGConfig)
    domain: Domain = GAMES
    seed: int = 2023
    agents_version: int = Field(AGENTS_VERSION, ge=1, le=AGENTS_VERSION)
    deterministic: bool = True
    concurrency: int = Field(2, ge=1)


class ARAGSuite(Suite[EvalCase]):
    """ARAG and its baselines over the first `n_users` LLMRank Games users."""

    name: ClassVar[str] = "arag"

    def __init__(self, config: ARAGEvalConfig, data: GamesData, *,
                 index: CatalogIndex | None = None, model: BaseChatModel | None = None) -> None:
        """`index` is needed only to run `recency`/`embedding`; `model` overrides the
        spec's model (tests pass a fake; the key still names `config.model`)."""
        self.config = config
        self.data = data
        self.index = index
        self._model = model
        self.concurrency = config.concurrency
        self._cases: list[EvalCase] | None = None
        self._popularity: Counter[str] | None = None
        self._graph = build_arag_graph()

    # -- what the run is -----------------------------------------------------------
    def cases(self) -> list[EvalCase]:
        if self._cases is None:
            self._cases = self.data.cases(self.config.retriever, n_users=self.config.n_users)
        return self._cases

    def phases(self) -> list[list[str]]:
        chosen = self.config.methods
        return [p for p in ([str(m) for m in chosen if m in NON_LLM_METHODS],
                            [str(m) for m in chosen if m in LLM_METHODS]) if p]

    def answer_key(self) -> dict[str, Any]:
        c = self.config
        return {"data": "llmrank-games", "retriever": c.retriever, "seed": c.seed,
                "model": c.model, "arag": c.arag.model_dump(exclude={"use_nli"}),
                "domain": c.domain.model_dump(),
                "agents": {**agents_version(), "version": c.agents_version},
                "prompts": PROMPTS_FINGERPRINT[c.agents_version],
                **decoding_key(c.deterministic)}

    def coverage(self) -> dict[str, Any]:
        return {"users": len(self.cases()), "methods": [str(m) for m in self.config.methods]}

    def slug(self) -> str:
        c = self.config
        if not any(m in LLM_METHODS for m in c.methods):
            return f"games-{c.retriever}-{len(self.cases())}-baselines"
        model = c.model.partition(":")[2] or c.model
        return (f"games-{c.retriever}-{len(self.cases())}-{Path(model).name}-"
                f"{c.arag.nli_mode}-{c.arag.ranker_order}-v{c.agents_version}")

    def config_json(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json", exclude={"data", "concurrency"})

    def check_runnable(self) -> None:
        if self.config.agents_version != AGENTS_VERSION:
            raise ConfigurationError(
                f"agents version {self.config.agents_version} can be reported from stored "
                f"answers, not run: the code is at version {AGENTS_VERSION} (use "
                "--report-only, or drop --agents-version)")

    # -- running one ---------------------------------------------------------------
    def model(self) -> BaseChatModel:
        if self._model is None:
            self._model = load_model(self.config.model, deterministic=self.config.deterministic)
        return self._model

    async def run_one(self, task: str, case: EvalCase) -> dict[str, Any]:
        method = Method(task)
        if method in NON_LLM_METHODS:
            return {"ranking": self.rank_without_llm(method, case), "target": case.target}
        value = await self.rank_with_llm(method, case)
        value["target"] = case.target
        return value

    def _popularity_counts(self) -> Counter[str]:
        if self._popularity is None:
            self._popularity = Counter(i for h in self.data.histories.values() for i in h)
        return self._popularity

    def rank_without_llm(self, method: Method, case: EvalCase) -> list[str]:
        cands = list(case.candidates)
        if method == Method.random:
            rng = random.Random(f"{self.config.seed}:random:{case.user_id}")
            rng.shuffle(cands)
            return cands
        if method == Method.popularity:
            pop = self._popularity_counts()
            return sorted(cands, key=lambda c: -pop[c])  # stable: ties keep list order
        if self.index is None:
            raise ValueError(f"method {method} needs the catalog index")
        last = RECENT_ITEMS if method == Method.recency else None
        user = self.index.user_vector(case.history[-50:], last=last)
        vecs = self.index.vectors(cands)
        sims = {c: float(np.dot(vecs[c], user)) for c in cands}
        return sorted(cands, key=lambda c: -sims[c])

    async def rank_with_llm(self, method: Method, case: EvalCase) -> dict[str, Any]:
        state = self.data.arag_input(case, self.config.arag.max_history)
        if method == Method.vanilla_rag:
            result = await rank_items(self.model(), state["candidates"],
                                      history=[h["title"] for h in state["history"]],
                                      agent="vanilla_rag", domain=self.config.domain)
            return {"ranking": result.ranking, "validity": result.validity()}
        use_nli = method == Method.arag
        context = ARAGContext(model=self.model(), domain=self.config.domain,
                              config=self.config.arag.model_copy(update={"use_nli": use_nli}))
        out = await self._graph.ainvoke(state, context=context)
        validity = dict(out["ranker"])
        validity.pop("proposed", None)
        if use_nli:
            validity["nli_failures"] = sum(r["score"] is None for r in out["nli"])
        validity["agent_failures"] = len(out.get("failures", []))
        blackboard = {"user_profile": out.get("user_profile"),
                      "context_summary": out.get("context_summary"),
                      "nli": out.get("nli", []), "failures": out.get("failures", [])}
        return {"ranking": out["ranking"], "validity": validity, "blackboard": blackboard}

    # -- scoring -------------------------------------------------------------------
    def report(self, answers: Answers) -> dict[str, Any]:
        """Metrics with 95% bootstrap intervals, validity, usage and diagnostics.

        Every method is scored on the same users: those all methods have finished (all
        of the cases once a run is complete; fewer for a partial run).
        """
        methods = [str(m) for m in self.config.methods]
        users = {c.id for c in self.cases()}
        for task in methods:
            users &= set(answers.get(task, {}))
        shown = {c.id: list(c.candidates) for c in self.cases()}
        metrics: dict[str, Any] = {}
        validity: dict[str, Any] = {}
        usage: dict[str, Any] = {}
        seconds: dict[str, float] = {}
        diagnostics: dict[str, Any] = {}
        for method in methods:
            stored = {u: v for u, v in answers.get(method, {}).items() if u in users}
            metrics[method] = _metrics([rank_of(v["target"], v["ranking"])
                                        for v in stored.values()])
            if Method(method) in LLM_METHODS and stored:
                usage[method] = sum_usage([v.get("usage", {}) for v in stored.values()])
                seconds[method] = sum(v.get("seconds", 0.0) for v in stored.values())
                validity[method] = _validity(method, [v["validity"] for v in stored.values()])
                diagnostics[method] = self._diagnostics(method, stored, shown)
        if Method.arag in self.config.methods and users:
            # Diagnostic, no extra model calls: the same ARAG runs ranked by their NLI
            # scores alone, to separate the NLI signal from what the ranker does with it.
            metrics["arag_nli_order"] = _metrics(
                [rank_of(v["target"], nli_order(v)) for u, v in answers["arag"].items()
                 if u in users])
        return {"metrics": metrics, "validity": validity, "usage": usage, "seconds": seconds,
                "diagnostics": diagnostics, "users_scored": len(users),
                "users_asked": len(self.cases())}

    def title(self, report: Mapping[str, Any]) -> str:
        c = self.config
        return (f"ARAG on LLMRank Games ({c.retriever} candidates, {report['users_scored']} "
                f"users, {c.model})")

    def markdown(self, report: dict[str, Any]) -> str:
        from aisle.evals.report import ranking_markdown

        return ranking_markdown(report, self.title(report))

    def write_extras(self, report: dict[str, Any], folder: Path) -> list[Path]:
        from aisle.evals.report import ranking_chart

        path = folder / "report.png"
        ranking_chart(report, path, self.title(report))
        return [path]

    def _diagnostics(self, method: str, stored: Mapping[str, dict[str, Any]],
                     shown: Mapping[str, list[str]]) -> dict[str, Any]:
        """How the ranker used what it was shown; the NLI scores' spread; time per user.
        The README's prose figures come from here."""
        n = len(stored)
        seconds = [v.get("seconds", 0.0) for v in stored.values()]
        out: dict[str, Any] = {"users": n, "seconds_per_user": sum(seconds) / n,
                               "median_seconds_per_user": median(seconds)}
        order = self.config.arag.ranker_order if method != "vanilla_rag" else "given"
        firsts = overlaps = prefix = 0
        for user, v in stored.items():
            scores = ({r["item_id"]: r["score"] for r in v["blackboard"]["nli"]
                       if r["score"] is not None} if method == "arag" else {})
            seen = by_score(shown[user], scores) if order == "nli" else shown[user]
            firsts += v["ranking"][0] == seen[0]
            overlaps += len(set(v["ranking"][:5]) & set(seen[:5]))
            prefix += next((i for i, (a, b) in enumerate(zip(v["ranking"], seen, strict=True))
                            if a != b), len(seen))
        out["first_pick_is_first_shown"] = firsts
        out["mean_top5_shared_with_shown"] = overlaps / n
        out["mean_prefix_shared_with_shown"] = prefix / n
        if method == "arag":
            records = [r for v in stored.values() for r in v["blackboard"]["nli"]]
            values = [r["score"] for r in records if r["score"] is not None]
            counts = Counter(round(s, 4) for s in values)
            out["nli_scores"] = len(values)
            out["nli_distinct_per_user"] = mean(
                len({r["score"] for r in v["blackboard"]["nli"] if r["score"] is not None})
                for v in stored.values())
            out["nli_most_common"] = [[s, c] for s, c in counts.most_common(3)]
            out["first_pick_is_nli_leader"] = sum(
                v["ranking"][0] == nli_order(v)[0] for v in stored.values())
        return out


def _metrics(ranks: Sequence[int | None]) -> dict[str, Any]:
    summary = summarize(ranks)
    return {"n_users": len(ranks), **{name: ci["mean"] for name, ci in summary.items()},
            "ci95": {name: [ci["ci_low"], ci["ci_high"]] for name, ci in summary.items()}}


def _validity(method: str, vals: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
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


def nli_order(stored: Mapping[str, Any]) -> list[str]:
    """A stored ARAG result's candidates by NLI score (failed items last), ties in the
    ranker's order."""
    scores = {r["item_id"]: float(r["score"]) for r in stored["blackboard"]["nli"]
              if r["score"] is not None}
    return by_score(stored["ranking"], scores)
