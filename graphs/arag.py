"""ARAG (Maragheh et al., arXiv 2506.21931) as a LangGraph state machine.

    candidates (given, or from a recommender or retriever) -> recommender scores
        -> user understanding  --+
        -> NLI per candidate -----+-> context summary -> item ranker -> fusion -> END
           (one Send each)

User understanding and the NLI fan-out run concurrently in one superstep. With
`ARAGConfig.use_nli=False` (the ablation) the same graph sends no NLI tasks and routes
user understanding straight to the ranker: the context is the one source of that
switch. With a trained recommender in the context (`aisle rec train`), each candidate's
recommender score and rank go on the blackboard and into the NLI and ranker prompts, and
the final order fuses the recommender's, the NLI agent's and the ranker's orders
(weighted reciprocal-rank fusion, `aisle.agents.arag.fusion`); without one, the ranking
is the ranker's. The state keeps every agent's output (the blackboard), so a caller can
show why an item ranks where it does. Run-scoped dependencies (models as spec strings, the
catalog index, the shop's domain, the config) come in the `ARAGContext`, which is
plain JSON, never in state.

Example:
    >>> from aisle.graphs.arag import ARAGContext, build_arag_graph
    >>> graph = build_arag_graph()
    >>> sorted(graph.get_graph().nodes)[:4]
    ['__end__', '__start__', 'context_summary', 'fusion']
    >>> ARAGContext(model="fake", agent_models={"nli": "local:qwen2.5-coder-0.5b"}).config.nli_mode
    'auto'
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict

from aisle.agents import Domain
from aisle.agents.arag import (
    FusionWeights,
    Item,
    NLIJudgement,
    NLIMode,
    ScoredItem,
    by_score,
    judge_item,
    rank_items,
    resolve_mode,
    summarize_context,
    understand_user,
)
from aisle.agents.arag.fusion import fuse
from aisle.errors import AisleError, ConfigurationError, StructuredOutputError
from aisle.graphs._context import GraphContext, ModelRef
from aisle.graphs._registry import GraphSpec, register_graph
from aisle.tools.recommenders.base import Recommender

__all__ = ["ARAGAgent", "ARAGConfig", "ARAGContext", "ARAGInput", "ARAGState", "RecRecord",
           "build_arag_graph", "graph", "load_trained_recommender", "nli_scores",
           "order_for_ranker", "recommender_order", "select_accepted", "source_orders"]

logger = logging.getLogger(__name__)

ARAGAgent = Literal["user_understanding", "nli", "context_summary", "item_ranker"]
"""The agents a context may give their own model."""


class ARAGConfig(BaseModel):
    """Knobs of one ARAG run.

    Attributes:
        threshold: NLI score at or above which a candidate passes to the summary.
        min_accepted: backfill the accepted set to at least this many, by score.
        n_candidates: how many candidates the retriever supplies when none are given.
        max_history: most recent history items shown to the agents.
        nli_mode: `logprob`, `generate`, or `auto` (logprob where the backend has logprobs).
        use_nli: False gives the ablation: user understanding + ranker only (the same
            graph, routed around the NLI and context-summary agents).
        ranker_order: the order the Item Ranker Agent sees the candidates in. `nli`
            (default): by NLI score, best first, failed items last in their given
            order; `given`: as supplied; `recommender`: by the recommender's score
            (needs one in the context). Small models largely copy the order they are
            shown (see the README's 50-user comparison), so this decides how much of
            the NLI agent's (or the recommender's) signal reaches the ranker's order.
        fusion: with a recommender, the weights of the recommender's, the NLI agent's
            and the ranker's orders in the final reciprocal-rank fusion.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(0.5, ge=0.0, le=1.0)
    min_accepted: int = Field(5, ge=0)
    n_candidates: int = Field(20, ge=1)
    max_history: int = Field(20, ge=1)
    nli_mode: NLIMode | Literal["auto"] = "auto"
    use_nli: bool = True
    ranker_order: Literal["nli", "given", "recommender"] = "nli"
    fusion: FusionWeights = Field(default_factory=FusionWeights)


Retriever = Callable[[Sequence[str], int], list[Item]]


class ARAGContext(GraphContext):
    """Run-scoped dependencies, as JSON: a model per agent, the candidate source, the
    shop's domain and the config.

    Attributes:
        model: default model for every agent, a spec string (`"local:smollm2-135m"`)
            or, from Python, a chat model; None uses `AISLE_MODEL`.
        agent_models: per-agent override; keys are `ARAGAgent` names (a typo is an
            error, not a silent fallback to the default model).
        index: a catalog index folder (`aisle index build`) to retrieve candidates
            from when the input has none.
        retriever: from Python only, instead of `index`: `(history_ids, k) -> Items`.
        recommender: a trained recommender's folder (`aisle rec train` prints it, under
            `AISLE_HOME/rec/`): its scores go on the blackboard and into the prompts,
            its order into the final fusion, and it supplies the candidates when the
            input has none (titles from `index`).
        recommender_model: from Python only, instead of `recommender`: a fitted model.
        domain: what the shop sells, as the prompts name it.
        config: thresholds, modes and the ablation switch.
    """

    model: ModelRef | None = None
    agent_models: dict[ARAGAgent, ModelRef] = Field(default_factory=dict)
    index: str | None = None
    retriever: SkipJsonSchema[Retriever | None] = Field(None, exclude=True)
    recommender: str | None = None
    recommender_model: SkipJsonSchema[Recommender | None] = Field(None, exclude=True)

    _recommender: Recommender | None = PrivateAttr(None)
    domain: Domain = Field(default_factory=Domain)
    config: ARAGConfig = Field(default_factory=ARAGConfig)

    def model_for(self, agent: ARAGAgent) -> BaseChatModel:
        return self.load_model(self.agent_models.get(agent, self.model))

    async def amodel_for(self, agent: ARAGAgent) -> BaseChatModel:
        return await self.aload_model(self.agent_models.get(agent, self.model))

    def recommender_of(self) -> Recommender | None:
        """The recommender, loaded once from `recommender` when given as a folder.

        Raises:
            ConfigurationError: the folder holds no finished model.
        """
        if self.recommender_model is not None:
            return self.recommender_model
        if self.recommender is None:
            return None
        with self._lock:
            if self._recommender is None:
                self._recommender = load_trained_recommender(Path(self.recommender))
            return self._recommender

    def candidate_source(self) -> Retriever:
        """The retriever, or one over `index`.

        Raises:
            ConfigurationError: neither is set, or the index folder is missing.
        """
        if self.retriever is not None:
            return self.retriever
        recommender = self.recommender_of()
        if recommender is not None:
            return self._recommender_candidates(recommender)
        if self.index is None:
            raise ConfigurationError("ARAG got no candidates and no retriever to find some: "
                                     "pass candidates, or set the context's index")
        from aisle.tools.retrieval import CatalogIndex

        if not Path(self.index).is_dir():
            raise ConfigurationError(f"catalog index {self.index!r} not found; build it with "
                                     "`aisle index build --items FILE`")
        return CatalogIndex(Path(self.index)).as_retriever()

    def _recommender_candidates(self, recommender: Recommender) -> Retriever:
        if self.index is None or not Path(self.index).is_dir():
            raise ConfigurationError("candidates from the recommender need titles: set the "
                                     "context's index to the catalog index (`aisle index "
                                     "build --items FILE`)")
        from aisle.tools.retrieval import CatalogIndex

        index = CatalogIndex(Path(self.index))

        def retrieve(history_ids: Sequence[str], k: int) -> list[Item]:
            known = set(recommender.items)
            history = [i for i in history_ids if i in known]
            top = recommender.recommend(history, k, exclude=history)
            titles = index.titles([r.item_id for r in top])
            return [Item(id=r.item_id, title=titles.get(r.item_id, r.item_id)) for r in top]

        return retrieve


def load_trained_recommender(folder: Path) -> Recommender:
    """The fitted model in a folder `aisle rec train` wrote.

    Raises:
        ConfigurationError: no such folder, or its training has not finished.
    """
    import json

    from aisle.tools.recommenders import ModelKind, load_model

    config = folder / "config.json"
    if not config.is_file():
        raise ConfigurationError(f"{folder} is not a trained recommender's folder (no "
                                 "config.json); train one with `aisle rec train`")
    kind = ModelKind(json.loads(config.read_text())["model"])
    model = load_model(folder, kind)
    if model is None:
        raise ConfigurationError(f"the {kind.value} model in {folder} has not finished "
                                 "training; run `aisle rec train` again to resume it")
    return model


class RecRecord(TypedDict):
    """A trained recommender's view of one candidate. `rank` is among the candidates
    (1 = best); both are None when the recommender does not know the item."""

    item_id: str
    score: float | None
    rank: int | None


class NLIRecord(TypedDict):
    """One NLI verdict on the blackboard; `score` is None when the agent failed."""

    item_id: str
    score: float | None
    rationale: str | None
    mode: str
    error: str | None


class AgentFailure(TypedDict):
    """An agent that gave no valid answer; the graph went on without its output."""

    agent: str
    error: str


class ARAGInput(TypedDict, total=False):
    """What a caller passes: the shopper and, optionally, the candidates to rank."""

    user_id: str
    history: list[Item]
    candidates: list[Item]


class ARAGState(ARAGInput, total=False):
    """The blackboard: inputs and every agent's output."""

    user_profile: str
    recommender: list[RecRecord]
    nli: Annotated[list[NLIRecord], operator.add]
    accepted: list[ScoredItem]
    context_summary: str
    ranking: list[str]
    ranker: dict[str, Any]
    fusion: dict[str, Any]
    failures: Annotated[list[AgentFailure], operator.add]


class _NLITask(TypedDict):
    history: list[str]
    item: Item
    rec_rank: int | None
    rec_total: int | None


def _ctx(runtime: Runtime[ARAGContext]) -> ARAGContext:
    # The LangGraph server passes no context when the caller gives none.
    return runtime.context if runtime.context is not None else ARAGContext()


def _titles(state: ARAGState, ctx: ARAGContext) -> list[str]:
    return [h["title"] for h in state.get("history", [])][-ctx.config.max_history:]


def retrieve(state: ARAGState, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    """Use the given candidates, or ask the retriever for some."""
    if state.get("candidates"):
        return {}
    ctx = _ctx(runtime)
    history_ids = [h["id"] for h in state.get("history", [])]
    return {"candidates": ctx.candidate_source()(history_ids, ctx.config.n_candidates)}


def recommender_scores(state: ARAGState, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    """The recommender's score and rank of each candidate, on the blackboard (nothing
    without a recommender). History items and candidates it does not know are left out
    of its input; such candidates get no score and rank after the known ones. If it
    cannot score at all, the failure is recorded and the agents go on without it."""
    recommender = _ctx(runtime).recommender_of()
    if recommender is None:
        return {}
    try:
        known = set(recommender.items)
        history = [h["id"] for h in state.get("history", []) if h["id"] in known]
        ids = [c["id"] for c in state["candidates"] if c["id"] in known]
        scores = dict(zip(ids, recommender.score(history, ids), strict=True)) if ids else {}
    except AisleError as e:
        logger.warning("the recommender could not score the candidates: %s", e)
        return {"recommender": [], "failures": [_failure("recommender", e)]}
    ranks = {i: r for r, i in enumerate(by_score(ids, scores), 1)}
    return {"recommender": [RecRecord(item_id=c["id"], score=scores.get(c["id"]),
                                      rank=ranks.get(c["id"]))
                            for c in state["candidates"]]}


def recommender_order(candidates: Sequence[Item], records: Sequence[RecRecord]) -> list[str]:
    """Candidate ids by the recommender's rank; unknown items last, in their order.

    Example:
        >>> c = [{"id": i, "title": i} for i in "abc"]
        >>> recommender_order(c, [{"item_id": "a", "score": .1, "rank": 2},
        ...                       {"item_id": "b", "score": None, "rank": None},
        ...                       {"item_id": "c", "score": .9, "rank": 1}])
        ['c', 'a', 'b']
    """
    ranks = {r["item_id"]: r["rank"] for r in records if r["rank"] is not None}
    return sorted((c["id"] for c in candidates), key=lambda i: ranks.get(i, len(ranks) + 1))


def _rec_ranks(state: ARAGState) -> dict[str, int]:
    return {r["item_id"]: r["rank"] for r in state.get("recommender", [])
            if r["rank"] is not None}


def fan_out(state: ARAGState, runtime: Runtime[ARAGContext]) -> list[Send]:
    """User understanding plus, unless the ablation is asked for, one NLI task per
    candidate, all in one superstep."""
    ctx = _ctx(runtime)
    sends = [Send("user_understanding", state)]
    if ctx.config.use_nli:
        titles = _titles(state, ctx)
        ranks = _rec_ranks(state)
        total = len(state["candidates"]) if ranks else None
        sends += [Send("nli", _NLITask(history=titles, item=c, rec_rank=ranks.get(c["id"]),
                                       rec_total=total))
                  for c in state["candidates"]]
    return sends


def after_understanding(state: ARAGState, runtime: Runtime[ARAGContext]
                        ) -> Literal["context_summary", "item_ranker"]:
    """With NLI, the summary waits for every verdict; without it, straight to the ranker.

    NLI tasks and user understanding run in the same superstep, so the summary starts
    once, after all of them.
    """
    return "context_summary" if _ctx(runtime).config.use_nli else "item_ranker"


async def user_understanding(state: ARAGState, runtime: Runtime[ARAGContext]
                             ) -> dict[str, Any]:
    ctx = _ctx(runtime)
    try:
        profile = await understand_user(await ctx.amodel_for("user_understanding"),
                                        _titles(state, ctx), domain=ctx.domain)
    except StructuredOutputError as e:
        # Documented recovery: the ranker works without a profile; the failure stays
        # on the blackboard and in the eval's validity counts.
        logger.warning("user understanding failed: %s", e)
        return {"user_profile": "", "failures": [_failure("user_understanding", e)]}
    return {"user_profile": profile.text()}


async def nli(state: _NLITask, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    """Judge one candidate. A failure is recorded on the blackboard, not raised, so one
    bad item never loses the others."""
    ctx = _ctx(runtime)
    model = await ctx.amodel_for("nli")
    item = state["item"]
    try:
        mode = resolve_mode(model, ctx.config.nli_mode)
        verdict: NLIJudgement = await judge_item(
            model, state["history"], item["id"], item["title"], mode=mode, domain=ctx.domain,
            rec_rank=state.get("rec_rank"), rec_total=state.get("rec_total"))
    except (AisleError, ValueError) as e:
        logger.warning("NLI failed for item %s: %s", item["id"], e)
        return {"nli": [NLIRecord(item_id=item["id"], score=None, rationale=None,
                                  mode=str(ctx.config.nli_mode), error=str(e)[:300])]}
    return {"nli": [NLIRecord(item_id=item["id"], score=verdict.score,
                              rationale=verdict.rationale, mode=verdict.mode, error=None)]}


def _failure(agent: str, error: Exception) -> AgentFailure:
    return AgentFailure(agent=agent, error=str(error)[:300])


def nli_scores(records: Sequence[NLIRecord]) -> dict[str, float]:
    """The NLI verdicts that have a score, by item id (failed items are left out)."""
    return {r["item_id"]: r["score"] for r in records if r["score"] is not None}


def select_accepted(candidates: Sequence[Item], scores: dict[str, float], threshold: float,
                    min_accepted: int) -> list[ScoredItem]:
    """Candidates scoring at least `threshold`, backfilled by score to `min_accepted`.

    Items whose NLI failed have no score and are never accepted.

    Example:
        >>> c = [{"id": i, "title": i} for i in "abcd"]
        >>> [s.id for s in select_accepted(c, {"a": .9, "b": .2, "c": .4}, .5, 2)]
        ['a', 'c']
    """
    titles = {c["id"]: c["title"] for c in candidates}
    scored = by_score([c["id"] for c in candidates if c["id"] in scores], scores)
    passed = [i for i in scored if scores[i] >= threshold]
    if len(passed) < min_accepted:
        passed = scored[:min_accepted] if len(scored) > len(passed) else passed
    return [ScoredItem(id=i, title=titles[i], score=scores[i]) for i in passed]


async def context_summary(state: ARAGState, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    accepted = select_accepted(state["candidates"], nli_scores(state.get("nli", [])),
                               ctx.config.threshold, ctx.config.min_accepted)
    if not accepted:
        return {"accepted": [], "context_summary": ""}
    try:
        summary = await summarize_context(await ctx.amodel_for("context_summary"),
                                          state.get("user_profile", ""), accepted,
                                          domain=ctx.domain)
    except StructuredOutputError as e:
        logger.warning("context summary failed: %s", e)
        return {"accepted": accepted, "context_summary": "",
                "failures": [_failure("context_summary", e)]}
    return {"accepted": accepted, "context_summary": summary.summary}


def order_for_ranker(candidates: Sequence[Item], scores: dict[str, float],
                     order: Literal["nli", "given", "recommender"],
                     recommender: Sequence[RecRecord] = ()) -> list[Item]:
    """The candidates in the order the ranker is shown them.

    Example:
        >>> c = [{"id": i, "title": i} for i in "abcd"]
        >>> [x["id"] for x in order_for_ranker(c, {"b": .2, "c": .9, "d": .2}, "nli")]
        ['c', 'b', 'd', 'a']
    """
    if order == "given":
        return list(candidates)
    by_id = {c["id"]: c for c in candidates}
    if order == "recommender":
        if not recommender:
            raise ConfigurationError("ranker_order 'recommender' needs a recommender in the "
                                     "context (and one that could score the candidates)")
        return [by_id[i] for i in recommender_order(candidates, recommender)]
    if order != "nli":
        raise ConfigurationError("ranker_order must be 'nli', 'given' or 'recommender', "
                                 f"not {order!r}")
    return [by_id[i] for i in by_score([c["id"] for c in candidates], scores)]


async def item_ranker(state: ARAGState, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    ctx = _ctx(runtime)
    scores = nli_scores(state.get("nli", []))
    records = state.get("recommender", [])
    shown = order_for_ranker(state["candidates"], scores, ctx.config.ranker_order, records)
    result = await rank_items(
        await ctx.amodel_for("item_ranker"), shown, fallback_scores=scores,
        profile=state.get("user_profile"), context=state.get("context_summary") or None,
        domain=ctx.domain, recommender_ranks=_rec_ranks(state) or None)
    return {"ranking": result.ranking,
            "ranker": {"proposed": result.proposed, "ranking": result.ranking,
                       **result.validity()}}


def source_orders(state: ARAGState) -> dict[str, list[str]]:
    """The orders the fusion combines: the recommender's, the NLI agent's (when it ran)
    and the ranker's. Without recommender records, none (the ranking is the ranker's)."""
    records = state.get("recommender", [])
    if not records:
        return {}
    orders: dict[str, list[str]] = {
        "recommender": recommender_order(state["candidates"], records)}
    if state.get("nli"):
        orders["nli"] = by_score([c["id"] for c in state["candidates"]],
                                 nli_scores(state["nli"]))
    orders["ranker"] = list(state["ranker"]["ranking"])
    return orders


def fusion(state: ARAGState, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    """With a recommender, the final ranking fuses the sources' orders (weighted RRF);
    the ranker's own order stays in `ranker.ranking`."""
    orders = source_orders(state)
    if not orders:
        return {}
    weights = _ctx(runtime).config.fusion
    return {"ranking": fuse(orders, weights),
            "fusion": {"weights": weights.model_dump(), "orders": orders}}


def build_arag_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the ARAG graph (the ablation is `ARAGConfig(use_nli=False)` in the context).

    Invoke with `await graph.ainvoke({"history": [...], "candidates": [...]},
    context=ARAGContext(model="local:qwen2.5-coder-0.5b"))`, or with the context as a
    dict.
    """
    builder = StateGraph(ARAGState, context_schema=ARAGContext, input_schema=ARAGInput)
    builder.add_node("retrieve", retrieve)
    builder.add_node("recommender", recommender_scores)
    builder.add_node("user_understanding", user_understanding)
    builder.add_node("nli", nli, input_schema=_NLITask)
    builder.add_node("context_summary", context_summary)
    builder.add_node("item_ranker", item_ranker)
    builder.add_node("fusion", fusion)
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "recommender")
    builder.add_conditional_edges("recommender", fan_out, ["user_understanding", "nli"])
    builder.add_conditional_edges("user_understanding", after_understanding,
                                  {"context_summary": "context_summary",
                                   "item_ranker": "item_ranker"})
    builder.add_edge("nli", "context_summary")
    builder.add_edge("context_summary", "item_ranker")
    builder.add_edge("item_ranker", "fusion")
    builder.add_edge("fusion", END)
    return builder.compile(name="arag")


graph = build_arag_graph()

register_graph(GraphSpec(
    name="arag",
    description="ARAG agentic RAG recommendation: user understanding, NLI, context "
                "summary and item ranker agents rank candidate items for a shopper.",
    build=build_arag_graph, input_schema=ARAGInput, context_schema=ARAGContext,
    agents=ARAGAgent, module="arag"))
