"""ARAG (Maragheh et al., arXiv 2506.21931) as a LangGraph state machine.

    candidates (given, or from a retriever) -> user understanding  --+
                                            -> NLI per candidate -----+-> context summary
                                               (one Send each)            -> item ranker -> END

User understanding and the NLI fan-out run concurrently in one superstep. The state
keeps every agent's output (the blackboard), so a caller can show why an item ranks
where it does. Run-scoped dependencies (models, retriever, settings) come in the
`ARAGContext`, never in state.

Example:
    >>> from aisle.graphs.arag import ARAGContext, build_arag_graph
    >>> graph = build_arag_graph()
    >>> sorted(graph.get_graph().nodes)[:3]
    ['__end__', '__start__', 'context_summary']
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from typing_extensions import TypedDict

from aisle.agents.arag import (
    Item,
    NLIJudgement,
    NLIMode,
    ScoredItem,
    judge_item,
    rank_items,
    resolve_mode,
    summarize_context,
    understand_user,
)
from aisle.errors import AisleError, ConfigurationError, StructuredOutputError

__all__ = ["ARAGConfig", "ARAGContext", "ARAGState", "build_arag_graph", "graph",
           "order_for_ranker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ARAGConfig:
    """Knobs of one ARAG run.

    Attributes:
        threshold: NLI score at or above which a candidate passes to the summary.
        min_accepted: backfill the accepted set to at least this many, by score.
        n_candidates: how many candidates the retriever supplies when none are given.
        max_history: most recent history items shown to the agents.
        nli_mode: `logprob`, `generate`, or `auto` (logprob where the backend has logprobs).
        use_nli: False gives the ablation: user understanding + ranker only.
        ranker_order: the order the Item Ranker Agent sees the candidates in. `nli`
            (default): by NLI score, best first, failed items last in their given
            order; `given`: as supplied. Small models largely copy the order they are
            shown (see the README's 50-user comparison), so this decides how much of
            the NLI agent's signal reaches the final ranking.
    """

    threshold: float = 0.5
    min_accepted: int = 5
    n_candidates: int = 20
    max_history: int = 20
    nli_mode: NLIMode | Literal["auto"] = "auto"
    use_nli: bool = True
    ranker_order: Literal["nli", "given"] = "nli"


@dataclass
class ARAGContext:
    """Run-scoped dependencies: a model per agent, the candidate source, the config.

    Attributes:
        model: default model for every agent.
        agent_models: per-agent override, keyed by `user_understanding`, `nli`,
            `context_summary` or `item_ranker`.
        retriever: `(history_ids, k) -> candidate Items`, used when the input has no
            candidates.
        config: thresholds and modes.
    """

    model: BaseChatModel
    agent_models: dict[str, BaseChatModel] = field(default_factory=dict)
    retriever: Callable[[Sequence[str], int], list[Item]] | None = None
    config: ARAGConfig = field(default_factory=ARAGConfig)

    def model_for(self, agent: str) -> BaseChatModel:
        return self.agent_models.get(agent, self.model)


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


class ARAGState(TypedDict, total=False):
    """The blackboard: inputs and every agent's output."""

    user_id: str
    history: list[Item]
    candidates: list[Item]
    user_profile: str
    nli: Annotated[list[NLIRecord], operator.add]
    accepted: list[ScoredItem]
    context_summary: str
    ranking: list[str]
    ranker: dict[str, Any]
    failures: Annotated[list[AgentFailure], operator.add]


class _NLITask(TypedDict):
    history: list[str]
    item: Item


def _titles(state: ARAGState, ctx: ARAGContext) -> list[str]:
    return [h["title"] for h in state.get("history", [])][-ctx.config.max_history:]


def retrieve(state: ARAGState, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    """Use the given candidates, or ask the retriever for some."""
    if state.get("candidates"):
        return {}
    ctx = runtime.context
    if ctx.retriever is None:
        raise ConfigurationError("ARAG got no candidates and no retriever to find some")
    history_ids = [h["id"] for h in state.get("history", [])]
    return {"candidates": ctx.retriever(history_ids, ctx.config.n_candidates)}


def fan_out(state: ARAGState, runtime: Runtime[ARAGContext]) -> list[Send]:
    """User understanding plus one NLI task per candidate, all in one superstep."""
    ctx = runtime.context
    sends = [Send("user_understanding", state)]
    if ctx.config.use_nli:
        titles = _titles(state, ctx)
        sends += [Send("nli", _NLITask(history=titles, item=c)) for c in state["candidates"]]
    return sends


async def user_understanding(state: ARAGState, runtime: Runtime[ARAGContext]
                             ) -> dict[str, Any]:
    ctx = runtime.context
    try:
        profile = await understand_user(ctx.model_for("user_understanding"),
                                        _titles(state, ctx))
    except StructuredOutputError as e:
        # Documented recovery: the ranker works without a profile; the failure stays
        # on the blackboard and in the eval's validity counts.
        logger.warning("user understanding failed: %s", e)
        return {"user_profile": "", "failures": [_failure("user_understanding", e)]}
    return {"user_profile": profile.text()}


async def nli(state: _NLITask, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    """Judge one candidate. A failure is recorded on the blackboard, not raised, so one
    bad item never loses the others."""
    ctx = runtime.context
    model = ctx.model_for("nli")
    item = state["item"]
    try:
        mode = resolve_mode(model, ctx.config.nli_mode)
        verdict: NLIJudgement = await judge_item(model, state["history"], item["id"],
                                                 item["title"], mode=mode)
    except (AisleError, ValueError) as e:
        logger.warning("NLI failed for item %s: %s", item["id"], e)
        return {"nli": [NLIRecord(item_id=item["id"], score=None, rationale=None,
                                  mode=str(ctx.config.nli_mode), error=str(e)[:300])]}
    return {"nli": [NLIRecord(item_id=item["id"], score=verdict.score,
                              rationale=verdict.rationale, mode=verdict.mode, error=None)]}


def _failure(agent: str, error: Exception) -> AgentFailure:
    return AgentFailure(agent=agent, error=str(error)[:300])


def _scores(state: ARAGState) -> dict[str, float]:
    return {r["item_id"]: r["score"] for r in state.get("nli", []) if r["score"] is not None}


def select_accepted(candidates: Sequence[Item], scores: dict[str, float], threshold: float,
                    min_accepted: int) -> list[ScoredItem]:
    """Candidates scoring at least `threshold`, backfilled by score to `min_accepted`.

    Items whose NLI failed have no score and are never accepted.

    Example:
        >>> c = [{"id": i, "title": i} for i in "abcd"]
        >>> [s.id for s in select_accepted(c, {"a": .9, "b": .2, "c": .4}, .5, 2)]
        ['a', 'c']
    """
    scored = sorted((c for c in candidates if c["id"] in scores),
                    key=lambda c: -scores[c["id"]])
    passed = [c for c in scored if scores[c["id"]] >= threshold]
    if len(passed) < min_accepted:
        passed = scored[:min_accepted] if len(scored) > len(passed) else passed
    return [ScoredItem(id=c["id"], title=c["title"], score=scores[c["id"]]) for c in passed]


async def context_summary(state: ARAGState, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    ctx = runtime.context
    accepted = select_accepted(state["candidates"], _scores(state), ctx.config.threshold,
                               ctx.config.min_accepted)
    if not accepted:
        return {"accepted": [], "context_summary": ""}
    try:
        summary = await summarize_context(ctx.model_for("context_summary"),
                                          state.get("user_profile", ""), accepted)
    except StructuredOutputError as e:
        logger.warning("context summary failed: %s", e)
        return {"accepted": accepted, "context_summary": "",
                "failures": [_failure("context_summary", e)]}
    return {"accepted": accepted, "context_summary": summary.summary}


def order_for_ranker(candidates: Sequence[Item], scores: dict[str, float],
                     order: Literal["nli", "given"]) -> list[Item]:
    """The candidates in the order the ranker is shown them.

    Example:
        >>> c = [{"id": i, "title": i} for i in "abcd"]
        >>> [x["id"] for x in order_for_ranker(c, {"b": .2, "c": .9, "d": .2}, "nli")]
        ['c', 'b', 'd', 'a']
    """
    if order == "given":
        return list(candidates)
    if order != "nli":
        raise ConfigurationError(f"ranker_order must be 'nli' or 'given', not {order!r}")
    return sorted(candidates, key=lambda c: -scores.get(c["id"], float("-inf")))


async def item_ranker(state: ARAGState, runtime: Runtime[ARAGContext]) -> dict[str, Any]:
    ctx = runtime.context
    scores = _scores(state)
    shown = order_for_ranker(state["candidates"], scores, ctx.config.ranker_order)
    result = await rank_items(
        ctx.model_for("item_ranker"), shown, fallback_scores=scores,
        profile=state.get("user_profile"), context=state.get("context_summary") or None)
    return {"ranking": result.ranking,
            "ranker": {"proposed": result.proposed, **result.validity()}}


def build_arag_graph(*, use_nli: bool = True) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the ARAG graph.

    Args:
        use_nli: False builds the ablation without the NLI and context-summary agents
            (it must match `ARAGConfig.use_nli` in the context).

    Invoke with `await graph.ainvoke({"history": [...], "candidates": [...]},
    context=ARAGContext(model=...))`.
    """
    builder = StateGraph(ARAGState, context_schema=ARAGContext)
    builder.add_node("retrieve", retrieve)
    builder.add_node("user_understanding", user_understanding)
    builder.add_node("item_ranker", item_ranker)
    builder.add_edge(START, "retrieve")
    if use_nli:
        builder.add_node("nli", nli, input_schema=_NLITask)
        builder.add_node("context_summary", context_summary)
        builder.add_conditional_edges("retrieve", fan_out, ["user_understanding", "nli"])
        builder.add_edge(["user_understanding", "nli"], "context_summary")
        builder.add_edge("context_summary", "item_ranker")
    else:
        builder.add_edge("retrieve", "user_understanding")
        builder.add_edge("user_understanding", "item_ranker")
    builder.add_edge("item_ranker", END)
    return builder.compile(name="arag" if use_nli else "arag-no-nli")


graph = build_arag_graph()
