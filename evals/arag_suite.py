"""The ARAG eval: ARAG and its baselines on the LLMRank Amazon Games protocol.

Methods (README, "ARAG baselines", defines each):

- `random`: a seeded shuffle of the candidates.
- `popularity`: candidates ordered by how often they appear in all users' histories.
- `recency`: cosine similarity to the mean embedding of the user's 3 most recent items.
- `embedding`: cosine similarity to the mean embedding of the user's whole history.
- `vanilla_rag`: one LLM call that ranks the candidates given the raw history.
- `arag_no_nli`: ARAG without the NLI and context-summary agents (ablation).
- `arag`: the full graph.
- `recommender`: a trained recommender (`--recommender sasrec|itemknn|pop`) alone,
  candidates by its score.

With a recommender, ARAG runs with it (scores on the blackboard and in the prompts, the
final order a weighted reciprocal-rank fusion of the recommender's, NLI and ranker
orders), and also on `valid_users` validation users that are not test users: their
target is their last history item, which the recommender never trained on (the Games
split holds it out), and their 19 other candidates are drawn at random from the items
they never bought. The fusion weights are fitted on those users' stored orders when the
report is written (`aisle.agents.arag.fusion.fit_weights`), so the test users' scores
never choose them.

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
    FusionWeights,
    agents_version,
    by_score,
    fit_weights,
    fuse,
    rank_items,
)
from aisle.errors import ConfigurationError
from aisle.evals.decoding import decoding_key, load_model
from aisle.evals.llmrank import EvalCase, GamesData
from aisle.evals.metrics import rank_of, summarize
from aisle.evals.runner import Answers, Suite
from aisle.graphs.arag import ARAGConfig, ARAGContext, build_arag_graph
from aisle.llm.usage import sum_usage
from aisle.tools.recommenders import FitProgress, ModelKind, TrainedModel
from aisle.tools.retrieval import CatalogIndex

__all__ = ["LLM_METHODS", "NON_LLM_METHODS", "VALID_PREFIX", "ARAGEvalConfig", "ARAGSuite",
           "Method", "games_recommender", "games_recommender_folder", "nli_order"]

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
    recommender = "recommender"


NON_LLM_METHODS = (Method.random, Method.popularity, Method.recency, Method.embedding,
                   Method.recommender)
LLM_METHODS = (Method.vanilla_rag, Method.arag_no_nli, Method.arag)
DEFAULT_METHODS = tuple(m for m in Method if m != Method.recommender)
"""Every method but `recommender`, which needs a recommender in the config."""


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
        recommender: a trained recommender for ARAG and the `recommender` method,
            trained on the Games split on first use (its checkpoint folder, which names
            its config, is part of the answer key).
        valid_users: with a recommender, the validation users the fusion weights are
            fitted on.
        concurrency: users ranked at once (not part of any key).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Path
    retriever: str = "random"
    n_users: int = Field(200, ge=1)
    methods: tuple[Method, ...] = DEFAULT_METHODS
    model: str = "local:smollm2-135m"
    arag: ARAGConfig = Field(default_factory=ARAGConfig)
    domain: Domain = GAMES
    seed: int = 2023
    agents_version: int = Field(AGENTS_VERSION, ge=1, le=AGENTS_VERSION)
    deterministic: bool = True
    recommender: ModelKind | None = None
    valid_users: int = Field(30, ge=1)
    concurrency: int = Field(2, ge=1)


VALID_PREFIX = "valid:"
"""Validation cases' ids: `valid:<user id>`."""


class ARAGSuite(Suite[EvalCase]):
    """ARAG and its baselines over the first `n_users` LLMRank Games users."""

    name: ClassVar[str] = "arag"

    def __init__(self, config: ARAGEvalConfig, data: GamesData, *,
                 index: CatalogIndex | None = None, model: BaseChatModel | None = None,
                 recommender: TrainedModel | None = None) -> None:
        """`index` is needed only to run `recency`/`embedding`; `model` overrides the
        spec's model (tests pass a fake; the key still names `config.model`);
        `recommender` a fitted recommender instead of training `config.recommender`."""
        if recommender is not None and config.recommender is None:
            raise ConfigurationError("a recommender was given but the config names none")
        if Method.recommender in config.methods and config.recommender is None:
            raise ConfigurationError("the recommender method needs a recommender "
                                     "(--recommender sasrec|itemknn|pop)")
        self.config = config
        self._recommender = recommender
        self.data = data
        self.index = index
        self._model = model
        self.concurrency = config.concurrency
        self._cases: list[EvalCase] | None = None
        self._popularity: Counter[str] | None = None
        self._graph = build_arag_graph()

    # -- what the run is -----------------------------------------------------------
    def cases(self) -> list[EvalCase]:
        """The test users and, with a recommender and ARAG, the validation users."""
        if self._cases is None:
            self._cases = self.test_cases()
            if self.config.recommender is not None and Method.arag in self.config.methods:
                # Validation first: a partial run has its fusion weights early.
                self._cases = self.validation_cases() + self._cases
        return self._cases

    def test_cases(self) -> list[EvalCase]:
        return self.data.cases(self.config.retriever, n_users=self.config.n_users)

    def validation_cases(self) -> list[EvalCase]:
        """The first `valid_users` of the recommender split's validation users that are
        not in the candidate file: history minus its last item, that item the target,
        19 seeded random items the user never bought as the other candidates."""
        from aisle.evals.rec_data import GAMES_VALID_USERS, games_dataset
        from aisle.tools.recommenders import SplitConfig, leave_one_out

        split = leave_one_out(games_dataset(self.data),
                              SplitConfig(valid_users=GAMES_VALID_USERS))
        excluded = set(self.data.retriever_candidates(self.config.retriever))
        items = sorted(self.data.items)
        cases = []
        for user, history, target in split.valid:
            if user in excluded:
                continue
            rng = random.Random(f"{self.config.seed}:valid:{user}")
            bought = {*self.data.histories[user], self.data.targets[user]}
            others: list[str] = []
            while len(others) < self.config.arag.n_candidates - 1:
                item = rng.choice(items)
                if item not in bought and item not in others:
                    others.append(item)
            pool = [*others, target]
            rng.shuffle(pool)
            cases.append(EvalCase(VALID_PREFIX + user, history, target, tuple(pool)))
            if len(cases) == self.config.valid_users:
                break
        return cases

    def applies(self, task: str, case: EvalCase) -> bool:
        """Validation users run ARAG only (their orders fit the fusion weights)."""
        return not case.id.startswith(VALID_PREFIX) or task == Method.arag

    def phases(self) -> list[list[str]]:
        chosen = self.config.methods
        return [p for p in ([str(m) for m in chosen if m in NON_LLM_METHODS],
                            [str(m) for m in chosen if m in LLM_METHODS]) if p]

    def answer_key(self) -> dict[str, Any]:
        c = self.config
        return {"data": "llmrank-games", "retriever": c.retriever, "seed": c.seed,
                "model": c.model, "arag": c.arag.model_dump(exclude=self._arag_unkeyed()),
                "domain": c.domain.model_dump(),
                "agents": {**agents_version(), "version": c.agents_version},
                "prompts": PROMPTS_FINGERPRINT[c.agents_version],
                **decoding_key(c.deterministic), **self._recommender_key()}

    def _arag_unkeyed(self) -> set[str]:
        """ARAG config fields outside the key: `use_nli` (set per method) and the fusion
        weights while they are the defaults (runs from before fusion existed keep their
        keys; the report refits the weights anyway)."""
        from aisle.agents.arag import FusionWeights

        return {"use_nli"} | ({"fusion"} if self.config.arag.fusion == FusionWeights() else set())

    def _recommender_key(self) -> dict[str, Any]:
        if self.config.recommender is None:
            return {}
        # The folder's name (its config hash) without training: a report rebuilt from
        # stored answers needs no checkpoint.
        folder = (self._recommender.folder if self._recommender is not None
                  else games_recommender_folder(self.data, self.config.recommender))
        return {"recommender": {"model": self.config.recommender.value,
                                "checkpoint": folder.name}}

    def coverage(self) -> dict[str, Any]:
        covers: dict[str, Any] = {"users": len(self.test_cases()),
                  "methods": [str(m) for m in self.config.methods]}
        if len(self.cases()) > covers["users"]:
            covers["valid_users"] = len(self.cases()) - covers["users"]
        return covers

    def slug(self) -> str:
        c = self.config
        users = len(self.test_cases())
        rec = f"-{c.recommender.value}" if c.recommender is not None else ""
        if not any(m in LLM_METHODS for m in c.methods):
            return f"games-{c.retriever}-{users}-baselines{rec}"
        model = c.model.partition(":")[2] or c.model
        return (f"games-{c.retriever}-{users}-{Path(model).name}-"
                f"{c.arag.nli_mode}-{c.arag.ranker_order}-v{c.agents_version}{rec}")

    def config_json(self) -> dict[str, Any]:
        out = self.config.model_dump(mode="json", exclude={"data", "concurrency"})
        # Fields that came later are left out at their defaults, so a report written
        # before them is rebuilt byte for byte.
        if self.config.recommender is None:
            del out["recommender"], out["valid_users"]
        if "fusion" in self._arag_unkeyed():
            del out["arag"]["fusion"]
        return out

    def check_runnable(self) -> None:
        if self.config.agents_version != AGENTS_VERSION:
            raise ConfigurationError(
                f"agents version {self.config.agents_version} can be reported from stored "
                f"answers, not run: the code is at version {AGENTS_VERSION} (use "
                "--report-only, or drop --agents-version)")

    # -- running one ---------------------------------------------------------------
    def recommender(self, progress: FitProgress | None = None) -> TrainedModel:
        """The trained recommender (trained on the Games split on first use; the CLI
        calls this first, with a progress display).

        Raises:
            ConfigurationError: the config names no recommender.
        """
        if self._recommender is None:
            if self.config.recommender is None:
                raise ConfigurationError("this eval has no recommender")
            self._recommender = games_recommender(self.data, self.config.recommender,
                                                  progress=progress)
        return self._recommender

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
        if method == Method.recommender:
            scores = self.recommender().model.score(list(case.history), cands)
            order = sorted(range(len(cands)), key=lambda j: -scores[j])  # stable
            return [cands[j] for j in order]
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
        recommender = (self.recommender().model if self.config.recommender is not None
                       else None)
        context = ARAGContext(model=self.model(), domain=self.config.domain,
                              recommender_model=recommender,
                              config=self.config.arag.model_copy(update={"use_nli": use_nli}))
        out = await self._graph.ainvoke(state, context=context)
        validity = dict(out["ranker"])
        validity.pop("proposed", None)
        validity.pop("ranking", None)
        if use_nli:
            validity["nli_failures"] = sum(r["score"] is None for r in out["nli"])
        validity["agent_failures"] = len(out.get("failures", []))
        blackboard = {"user_profile": out.get("user_profile"),
                      "context_summary": out.get("context_summary"),
                      "nli": out.get("nli", []), "failures": out.get("failures", [])}
        if recommender is not None:
            blackboard["recommender"] = out.get("recommender", [])
            blackboard["ranker_ranking"] = out["ranker"]["ranking"]
            blackboard["fusion"] = out.get("fusion")
        return {"ranking": out["ranking"], "validity": validity, "blackboard": blackboard}

    # -- scoring -------------------------------------------------------------------
    def report(self, answers: Answers) -> dict[str, Any]:
        """Metrics with 95% bootstrap intervals, validity, usage and diagnostics.

        Every method is scored on the same users: those all methods have finished (all
        of the cases once a run is complete; fewer for a partial run).
        """
        methods = [str(m) for m in self.config.methods]
        users = {c.id for c in self.test_cases()}
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
        extra: dict[str, Any] = {}
        if Method.arag in self.config.methods and users:
            tested = {u: v for u, v in answers["arag"].items() if u in users}
            if self.config.recommender is not None:
                fit = self.fit_fusion(answers["arag"])
                extra["fusion"] = fit
                if fit["fitted"]:
                    weights = FusionWeights(**fit["weights"])
                    metrics["arag"] = _metrics([
                        rank_of(v["target"], fuse(v["blackboard"]["fusion"]["orders"], weights))
                        for v in tested.values()])
                    metrics["arag_equal_weights"] = _metrics(
                        [rank_of(v["target"], v["ranking"]) for v in tested.values()])
                metrics["arag_ranker_order"] = _metrics(
                    [rank_of(v["target"], v["blackboard"]["ranker_ranking"])
                     for v in tested.values()])
            # Diagnostic, no extra model calls: the same ARAG runs ranked by their NLI
            # scores alone, to separate the NLI signal from what the ranker does with it.
            metrics["arag_nli_order"] = _metrics(
                [rank_of(v["target"], nli_order(v)) for v in tested.values()])
        return {"metrics": metrics, "validity": validity, "usage": usage, "seconds": seconds,
                "diagnostics": diagnostics, "users_scored": len(users),
                "users_asked": len(self.test_cases()), **extra}

    def fit_fusion(self, arag: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """Fusion weights fitted on the stored validation users' orders (never on test
        users); `fitted` is False until at least one validation user is stored. With
        some validation users still missing (a partial run), the weights come from those
        stored and the report says how many."""
        valid = [v for u, v in arag.items() if u.startswith(VALID_PREFIX)
                 and v["blackboard"].get("fusion")]
        asked = sum(c.id.startswith(VALID_PREFIX) for c in self.cases())
        if not valid:
            return {"fitted": False, "valid_users": 0, "valid_users_asked": asked,
                    "note": "no validation user stored yet: `arag` is the fusion with the "
                            "default (equal) weights"}
        fit = fit_weights([(v["blackboard"]["fusion"]["orders"], v["target"]) for v in valid])
        return {"fitted": True, "valid_users": len(valid), "valid_users_asked": asked,
                "valid_seconds": sum(v.get("seconds", 0.0) for v in valid),
                **fit.model_dump(mode="json")}

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
            if order == "recommender":
                seen = v["blackboard"]["fusion"]["orders"]["recommender"]
            else:
                seen = by_score(shown[user], scores) if order == "nli" else shown[user]
            # What the ranker itself wrote (with a recommender, `ranking` is the fusion).
            ranked = v.get("blackboard", {}).get("ranker_ranking") or v["ranking"]
            firsts += ranked[0] == seen[0]
            overlaps += len(set(ranked[:5]) & set(seen[:5]))
            prefix += next((i for i, (a, b) in enumerate(zip(ranked, seen, strict=True))
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
                (v["blackboard"].get("ranker_ranking") or v["ranking"])[0] == nli_order(v)[0]
                for v in stored.values())
        return out


def _games_split(data: GamesData) -> tuple[Any, Any]:
    """The LLMRank Games sequences and the split every Games recommender trains on."""
    from aisle.evals.rec_data import GAMES_VALID_USERS, games_dataset
    from aisle.tools.recommenders import SplitConfig

    return games_dataset(data), SplitConfig(valid_users=GAMES_VALID_USERS)


def games_recommender_folder(data: GamesData, kind: ModelKind) -> Path:
    """Where `games_recommender` keeps the model (under AISLE_HOME/rec/)."""
    from aisle.tools.recommenders import checkpoint_dir

    dataset, split = _games_split(data)
    return checkpoint_dir(dataset, kind, split=split)


def games_recommender(data: GamesData, kind: ModelKind, *,
                      progress: FitProgress | None = None) -> TrainedModel:
    """A recommender trained on the LLMRank Games split (`aisle rec train --dataset
    llmrank-games` trains the same one): loaded when trained, else trained now (a
    SASRec training resumes from its last finished epoch)."""
    from aisle.tools.recommenders import train_model

    dataset, split = _games_split(data)
    return train_model(dataset, kind, split_config=split, progress=progress)


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
