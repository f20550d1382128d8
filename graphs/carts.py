"""CARTS (Chen et al., arXiv 2506.17765) as a LangGraph state machine with a bounded loop.

    START -> extract_features -> generate -> critique --(refine?)--> refine -> critique ...
                                                      \\-----------> arbitrate -> END

Generation-Augmented Generation: the feature extractor names what the carousel's items
share and what splits them, and the generator writes `n_candidates` titles from those
features. The refinement circle: every new version of a candidate is checked for length
by code (`check_length`, a hard limit in words and/or characters) and for relevance by
the critic (item by item: does the title describe it, and why not); the router
`next_step` sends the candidates that still need it to the refiner, which rewrites each
from the two kinds of feedback, and the new versions go back to the critic. A candidate
needs refining while it is over the limit, or while it misses an item and its coverage
improved in the round just finished (every candidate gets one relevance round); the
loop ends when none does or after `max_rounds` refinement rounds (the bound is in the
config, the count in the state). Arbitration: each candidate's best version within the
limit (most items covered, then shortest) goes before the arbiters, and a Borda count
of their scores picks the title (`aisle.agents.carts.vote`).

A title over the limit is never returned: when no version of any candidate meets it,
`result.title` is None, `result.satisfied` is False and `result.reason` says so; the
caller decides (the blackboard keeps every version, the closest one included). An agent
whose answer stays invalid is recorded under `failures` and the graph goes on without
its output: a failed critic leaves that version's coverage unknown (it can still win),
a failed refiner leaves the candidate as it was, a failed arbiter's vote is left out. A
backend fault (server down, timeouts after retries) ends the run with its error.

Example:
    >>> from aisle.graphs.carts import CartsContext, build_carts_graph
    >>> sorted(build_carts_graph().get_graph().nodes)
    ['__end__', '__start__', 'arbitrate', 'critique', 'extract_features', 'generate', 'refine']
    >>> CartsContext(model="fake").config.max_rounds
    2
"""

from __future__ import annotations

import asyncio
import logging
import operator
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypedDict

from aisle.agents import Domain
from aisle.agents.carts import (
    ArbiterPrompt,
    CriticError,
    CriticMode,
    ItemFeatures,
    LengthLimit,
    Miss,
    check_length,
    critique_title,
    extract_features,
    generate_titles,
    refine_title,
    resolve_critic_mode,
    score_titles,
    shown_items,
    vote,
)
from aisle.errors import ConfigurationError, StructuredOutputError
from aisle.graphs._context import GraphContext, ModelRef
from aisle.graphs._registry import GraphSpec, register_graph

__all__ = ["ArbiterSpec", "CartsAgent", "CartsConfig", "CartsContext", "CartsInput",
           "CartsResult", "CartsState", "Version", "best_version", "build_carts_graph",
           "graph", "needs_refining", "next_step", "validate_input"]

logger = logging.getLogger(__name__)

CartsAgent = Literal["feature_extractor", "title_generator", "relevance_critic", "refiner",
                     "arbiter"]
"""The agents a context may give their own model."""

MAX_ITEMS = 30
"""The most items one carousel title is written for (the bundles hold 2 to 10)."""


class ArbiterSpec(BaseModel):
    """One arbiter: a prompt, on a model of its own or (None) the arbiter's model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: ArbiterPrompt
    model: ModelRef | None = None


class CartsConfig(BaseModel):
    """Knobs of one CARTS run.

    Attributes:
        n_candidates: titles the generator writes.
        max_rounds: the most refinement rounds (0: generate, critique, arbitrate).
        arbiters: the judges of the final vote (prompt and, optionally, model each).
        critic_mode: `logprob` (a Yes/No probability per item), `generate` (a written
            reason and verdict per item), or `auto` (logprob where the backend has
            logprobs).
        max_item_chars: the most characters of an item title the prompts show (the
            type of product is nearly always in its first words; long titles invite a
            small model to copy them).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_candidates: int = Field(3, ge=1, le=8)
    max_rounds: int = Field(2, ge=0, le=10)
    arbiters: tuple[ArbiterSpec, ...] = Field(
        default=tuple(ArbiterSpec(prompt=p) for p in ArbiterPrompt), min_length=1)
    critic_mode: CriticMode | Literal["auto"] = "auto"
    max_item_chars: int = Field(100, ge=20, le=1000)


class CartsContext(GraphContext):
    """Run-scoped dependencies, as JSON: a model per agent, the shop's domain, the config.

    Attributes:
        model: default model for every agent, a spec string or, from Python, a chat
            model; None uses `AISLE_MODEL`.
        agent_models: per-agent override; keys are `CartsAgent` names.
        domain: what the shop sells, as the prompts name it.
        config: candidates, rounds, arbiters.
    """

    model: ModelRef | None = None
    agent_models: dict[CartsAgent, ModelRef] = Field(default_factory=dict)
    domain: Domain = Field(default_factory=Domain)
    config: CartsConfig = Field(default_factory=CartsConfig)

    async def amodel_for(self, agent: CartsAgent) -> BaseChatModel:
        return await self.aload_model(self.agent_models.get(agent, self.model))

    async def amodel_of_arbiter(self, spec: ArbiterSpec) -> BaseChatModel:
        return await self.aload_model(spec.model if spec.model is not None
                                      else self.agent_models.get("arbiter", self.model))


class CartsInput(TypedDict, total=False):
    """What a caller passes: the carousel's item titles and the length limit (at least
    one of `max_words` and `max_chars`)."""

    items: list[str]
    max_words: int | None
    max_chars: int | None


class Version(TypedDict):
    """One version of a candidate title, with both checks.

    `fits`/`reasons` are the critic's per-item verdicts (None when the critic failed);
    `coverage` the share of items it fits (None when unknown); in the critic's logprob
    mode `probabilities` holds P(Yes) per item."""

    title: str
    round: int
    words: int
    chars: int
    within_limit: bool
    length_feedback: str
    fits: list[bool] | None
    reasons: list[str] | None
    coverage: float | None
    critic_error: str | None
    probabilities: NotRequired[list[float]]


class Candidate(TypedDict):
    """A candidate's versions, oldest first; `stalled` once its refiner failed."""

    id: int
    versions: list[Version]
    stalled: bool


class AgentFailure(TypedDict):
    agent: str
    round: int
    error: str


class CartsResult(TypedDict):
    """The outcome. `title` is None (and `satisfied` False) when no version of any
    candidate met the limit; `coverage` is the critic's share of items the title fits
    and `covered` their 1-based numbers (None/[] when the critic failed on it)."""

    title: str | None
    satisfied: bool
    words: int | None
    chars: int | None
    coverage: float | None
    covered: list[int]
    rounds: int
    candidate: int | None
    limit: dict[str, int | None]
    reason: str | None


class CartsState(CartsInput, total=False):
    """The blackboard: the input, every agent's output and every version of every
    candidate, the round count, the vote and the result."""

    shown: list[str]
    features: ItemFeatures | None
    candidates: list[Candidate]
    round: int
    arbitration: dict[str, Any]
    failures: Annotated[list[AgentFailure], operator.add]
    result: CartsResult


def _ctx(runtime: Runtime[CartsContext]) -> CartsContext:
    return runtime.context if runtime.context is not None else CartsContext()


def _failure(agent: str, round_: int, error: Exception) -> AgentFailure:
    return AgentFailure(agent=agent, round=round_, error=str(error)[:300])


def validate_input(state: CartsInput) -> tuple[list[str], LengthLimit]:
    """The item titles and the limit, or a one-line error.

    Raises:
        ConfigurationError: no items, too many, an empty item title, or no valid limit.

    Example:
        >>> validate_input({"items": ["Wool socks"], "max_words": 3})[1].max_words
        3
        >>> validate_input({"items": [], "max_words": 3})
        Traceback (most recent call last):
        ...
        aisle.errors.ConfigurationError: no items: a carousel title needs at least one item title
    """
    items = state.get("items") or []
    if not items:
        raise ConfigurationError("no items: a carousel title needs at least one item title")
    if len(items) > MAX_ITEMS:
        raise ConfigurationError(f"{len(items)} items: at most {MAX_ITEMS} per carousel")
    for i, title in enumerate(items, 1):
        if not isinstance(title, str) or not title.strip():
            raise ConfigurationError(f"item {i} has an empty title")
    try:
        limit = LengthLimit(max_words=state.get("max_words"), max_chars=state.get("max_chars"))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(f"invalid length limit{' ' + where if where else ''}: "
                                 f"{first['msg']}") from None
    return list(items), limit


def _limit(state: CartsState) -> LengthLimit:
    return LengthLimit(max_words=state.get("max_words"), max_chars=state.get("max_chars"))


def _version(title: str, round_: int, limit: LengthLimit) -> Version:
    check = check_length(title, limit)
    return Version(title=title, round=round_, words=check.words, chars=check.chars,
                   within_limit=check.ok, length_feedback=check.feedback, fits=None,
                   reasons=None, coverage=None, critic_error=None)


async def extract_features_node(state: CartsState,
                                runtime: Runtime[CartsContext]) -> dict[str, Any]:
    """Check the input, then the features the items share and those that split them."""
    items, _ = validate_input(state)
    ctx = _ctx(runtime)
    shown = shown_items(items, ctx.config.max_item_chars)
    try:
        features = await extract_features(await ctx.amodel_for("feature_extractor"), shown,
                                          domain=ctx.domain)
    except StructuredOutputError as e:
        # Documented recovery: the generator works from the items alone.
        logger.warning("feature extraction failed: %s", e)
        return {"shown": shown, "features": None, "round": 0,
                "failures": [_failure("feature_extractor", 0, e)]}
    return {"shown": shown, "features": features, "round": 0}


async def generate(state: CartsState, runtime: Runtime[CartsContext]) -> dict[str, Any]:
    """The candidate titles, each length-checked."""
    ctx = _ctx(runtime)
    limit = _limit(state)
    features = state.get("features") or ItemFeatures(shared=[], distinguishing=[])
    try:
        titles = await generate_titles(await ctx.amodel_for("title_generator"), state["shown"],
                                       features, limit, ctx.config.n_candidates,
                                       domain=ctx.domain)
    except StructuredOutputError as e:
        logger.warning("title generation failed: %s", e)
        return {"candidates": [], "failures": [_failure("title_generator", 0, e)]}
    return {"candidates": [Candidate(id=i, versions=[_version(t, 0, limit)], stalled=False)
                           for i, t in enumerate(titles)]}


async def critique(state: CartsState, runtime: Runtime[CartsContext]) -> dict[str, Any]:
    """The critic's item-by-item verdict on every version not yet critiqued."""
    ctx = _ctx(runtime)
    model = await ctx.amodel_for("relevance_critic")
    mode = resolve_critic_mode(model, ctx.config.critic_mode)
    round_ = state.get("round", 0)
    candidates = [Candidate(id=c["id"], versions=list(c["versions"]), stalled=c["stalled"])
                  for c in state.get("candidates", [])]
    pending = [c for c in candidates if c["versions"][-1]["round"] == round_
               and c["versions"][-1]["fits"] is None and c["versions"][-1]["critic_error"] is None]

    async def one(c: Candidate) -> AgentFailure | None:
        latest = c["versions"][-1]
        try:
            verdict = await critique_title(model, latest["title"], state["shown"], mode=mode,
                                           domain=ctx.domain)
        except (StructuredOutputError, CriticError) as e:
            logger.warning("critic failed on candidate %d: %s", c["id"], e)
            c["versions"][-1] = {**latest, "critic_error": str(e)[:300]}
            return _failure("relevance_critic", round_, e)
        c["versions"][-1] = {**latest, "fits": verdict.fits, "reasons": verdict.reasons,
                             "coverage": verdict.coverage}
        if verdict.probabilities is not None:
            c["versions"][-1]["probabilities"] = verdict.probabilities
        return None

    failed = [f for f in await asyncio.gather(*(one(c) for c in pending)) if f is not None]
    return {"candidates": candidates, "failures": failed}


def needs_refining(candidate: Candidate) -> bool:
    """Whether a candidate goes round the circle again: it is over the limit, or it
    misses an item and its coverage improved in the round just finished (the first
    version always counts as improved); never once its refiner failed.

    Example:
        >>> v = dict(title="t", round=0, words=1, chars=1, within_limit=True,
        ...          length_feedback="", fits=[True, False], reasons=["", ""],
        ...          coverage=0.5, critic_error=None)
        >>> needs_refining({"id": 0, "versions": [v], "stalled": False})
        True
        >>> needs_refining({"id": 0, "versions": [v, {**v, "round": 1}], "stalled": False})
        False
    """
    if candidate["stalled"]:
        return False
    versions = candidate["versions"]
    latest = versions[-1]
    if not latest["within_limit"]:
        return True
    if latest["coverage"] is None or latest["coverage"] >= 1.0:
        return False
    if len(versions) == 1:
        return True
    before = max((v["coverage"] for v in versions[:-1] if v["coverage"] is not None),
                 default=-1.0)
    return latest["coverage"] > before


def next_step(state: CartsState, runtime: Runtime[CartsContext]) -> Literal["refine",
                                                                             "arbitrate"]:
    """Refine again, or arbitrate: when the round bound is reached or no candidate
    needs refining."""
    if state.get("round", 0) >= _ctx(runtime).config.max_rounds:
        return "arbitrate"
    return "refine" if any(needs_refining(c) for c in state.get("candidates", [])) \
        else "arbitrate"


async def refine(state: CartsState, runtime: Runtime[CartsContext]) -> dict[str, Any]:
    """Rewrite every candidate that needs it from the critic's and the length check's
    feedback; the new versions belong to the next round."""
    ctx = _ctx(runtime)
    limit = _limit(state)
    model = await ctx.amodel_for("refiner")
    round_ = state.get("round", 0) + 1
    candidates = [Candidate(id=c["id"], versions=list(c["versions"]), stalled=c["stalled"])
                  for c in state.get("candidates", [])]

    async def one(c: Candidate) -> AgentFailure | None:
        latest = c["versions"][-1]
        fits, reasons = latest["fits"] or [], latest["reasons"] or []
        missed = [Miss(index=i, reason=r or "no reason given")
                  for i, (ok, r) in enumerate(zip(fits, reasons, strict=True), 1) if not ok]
        try:
            title = await refine_title(model, latest["title"], state["shown"], missed=missed,
                                       length_feedback=latest["length_feedback"], limit=limit,
                                       domain=ctx.domain)
        except StructuredOutputError as e:
            logger.warning("refiner failed on candidate %d: %s", c["id"], e)
            c["stalled"] = True
            return _failure("refiner", round_, e)
        c["versions"].append(_version(title, round_, limit))
        return None

    todo = [c for c in candidates if needs_refining(c)]
    failed = [f for f in await asyncio.gather(*(one(c) for c in todo)) if f is not None]
    return {"candidates": candidates, "round": round_, "failures": failed}


def best_version(candidate: Candidate) -> Version | None:
    """The candidate's best version within the limit: most items covered (unknown
    counts below any known), then fewest characters, then the latest; None when no
    version is within the limit."""
    feasible = [v for v in candidate["versions"] if v["within_limit"] and v["title"]]
    if not feasible:
        return None
    return max(feasible, key=lambda v: (v["coverage"] if v["coverage"] is not None else -1.0,
                                        -v["chars"], v["round"]))


def _unsatisfied(state: CartsState, limit: LengthLimit, reason: str) -> dict[str, Any]:
    return {"arbitration": {"finalists": [], "scores": {}, "errors": {}},
            "result": CartsResult(title=None, satisfied=False, words=None, chars=None,
                                  coverage=None, covered=[], rounds=state.get("round", 0),
                                  candidate=None, limit=limit.model_dump(), reason=reason)}


async def arbitrate(state: CartsState, runtime: Runtime[CartsContext]) -> dict[str, Any]:
    """The arbiters' Borda vote over each candidate's best version within the limit."""
    ctx = _ctx(runtime)
    limit = _limit(state)
    finalists: list[tuple[int, Version]] = []
    seen: set[str] = set()
    for c in state.get("candidates", []):
        best = best_version(c)
        if best is not None and best["title"].lower() not in seen:
            seen.add(best["title"].lower())
            finalists.append((c["id"], best))
    if not finalists:
        n = len(state.get("candidates", []))
        return _unsatisfied(state, limit, (
            f"no title met the limit ({limit.describe()}) after {state.get('round', 0)} "
            f"refinement round(s) of {n} candidate(s)" if n else
            "the generator gave no candidate title"))
    titles = [v["title"] for _, v in finalists]
    scores: dict[str, list[int] | None] = {}
    errors: dict[str, str] = {}
    failures: list[AgentFailure] = []
    if len(finalists) > 1:
        names = [f"{s.prompt.value}#{i}" for i, s in enumerate(ctx.config.arbiters)]

        async def one(spec: ArbiterSpec) -> list[int] | StructuredOutputError:
            try:
                return await score_titles(await ctx.amodel_of_arbiter(spec), spec.prompt,
                                          titles, state["shown"], domain=ctx.domain)
            except StructuredOutputError as e:
                return e

        for name, got in zip(names, await asyncio.gather(
                *(one(s) for s in ctx.config.arbiters)), strict=True):
            if isinstance(got, StructuredOutputError):
                logger.warning("arbiter %s failed: %s", name, got)
                scores[name] = None
                errors[name] = str(got)[:300]
                failures.append(_failure("arbiter", state.get("round", 0), got))
            else:
                scores[name] = got
    tally = vote(scores, [v["coverage"] for _, v in finalists], [v["chars"] for _, v in finalists])
    cid, win = finalists[tally.winner]
    covered = [i for i, ok in enumerate(win["fits"] or [], 1) if ok]
    return {"arbitration": {"finalists": [{"candidate": i, "title": v["title"],
                                           "round": v["round"], "coverage": v["coverage"]}
                                          for i, v in finalists],
                            "scores": scores, "errors": errors, "points": tally.points,
                            "decided_by": tally.decided_by if len(finalists) > 1
                            else "only one candidate within the limit"},
            "failures": failures,
            "result": CartsResult(title=win["title"], satisfied=True, words=win["words"],
                                  chars=win["chars"], coverage=win["coverage"],
                                  covered=covered, rounds=state.get("round", 0),
                                  candidate=cid, limit=limit.model_dump(), reason=None)}


def after_generate(state: CartsState) -> Literal["critique", "arbitrate"]:
    """Straight to arbitration (which reports it) when there is no candidate."""
    return "critique" if state.get("candidates") else "arbitrate"


def build_carts_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the CARTS graph.

    Invoke with `await graph.ainvoke({"items": [...], "max_words": 5},
    context=CartsContext(model=...))`; the answer is under `"result"`.
    """
    builder = StateGraph(CartsState, context_schema=CartsContext, input_schema=CartsInput)
    builder.add_node("extract_features", extract_features_node)
    builder.add_node("generate", generate)
    builder.add_node("critique", critique)
    builder.add_node("refine", refine)
    builder.add_node("arbitrate", arbitrate)
    builder.add_edge(START, "extract_features")
    builder.add_edge("extract_features", "generate")
    builder.add_conditional_edges("generate", after_generate, ["critique", "arbitrate"])
    builder.add_conditional_edges("critique", next_step, ["refine", "arbitrate"])
    builder.add_edge("refine", "critique")
    builder.add_edge("arbitrate", END)
    return builder.compile(name="carts")


graph = build_carts_graph()


register_graph(GraphSpec(
    name="carts",
    description="CARTS carousel titles: features -> candidates -> a bounded refinement "
                "circle (relevance critic + hard length check) -> arbiters' Borda vote.",
    build=build_carts_graph, input_schema=CartsInput, context_schema=CartsContext,
    agents=CartsAgent, module="carts"))
