"""The shopping assistant: a chat graph that routes each turn to a capability.

```
START -> route --(recommend | extract | title)--> plan_tool -> tools -> respond -> END
               \\--(chat)--> chat -> END
```

- `route`: one structured decision (`Intent`) over the latest messages: which
  capability the shopper's message asks for, and its arguments (a user id, items
  named in the chat, a product title). An answer that stays invalid after the repair
  turn falls back to plain chat (recorded in `intent.error`), never a dead turn.
- Capabilities are LangChain tools (`assistant_tools()`), executed by LangGraph's
  `ToolNode` from the tool call `plan_tool` writes: `recommend_items_for_user` runs
  ARAG (a LLMRank Games user's history and candidate list, or items named in the chat
  with candidates from a trained recommender), `extract_product_attributes` the
  ensemble extractor, `title_product_set` CARTS. Each returns JSON; its errors are
  results the reply explains (an unknown user id, no candidates), not exceptions.
  While ARAG runs, the tool writes progress to LangGraph's `custom` stream
  (`{"agent": "nli", "done": 12, "total": 20}`). After ARAG's order is final, one more
  structured call writes the item ranker's reason for each shown item
  (`aisle.agents.assistant.explain_ranking`, the `reasons` agent); each item also keeps
  its evidence (NLI P(yes), recommender rank), and one the reasons call skips keeps
  only that.
- `respond` turns the tool's JSON into the reply and keeps it whole in `result`
  (a UI renders recommendations from it); `chat` answers in plain text.

Memory is the checkpointer's: compiled with one (the HTTP API uses LangGraph's SQLite
checkpointer), each thread is a chat session whose messages persist.
"""

from __future__ import annotations

import json
import logging
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, ToolRuntime
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from aisle.agents._role import Domain
from aisle.agents.assistant import explain_ranking
from aisle.errors import AisleError, ConfigurationError, StructuredOutputError
from aisle.graphs._context import GraphContext, ModelRef
from aisle.graphs._registry import GraphSpec, register_graph
from aisle.graphs.arag import ARAGConfig, ARAGContext, build_arag_graph
from aisle.llm import ainvoke_structured
from aisle.prompts import render
from aisle.settings import get_settings

__all__ = ["AssistantAgent", "AssistantContext", "AssistantInput", "AssistantState",
           "Capability", "Intent", "assistant_tools", "build_assistant_graph", "graph",
           "route_turn"]

logger = logging.getLogger(__name__)

Capability = Literal["recommend", "extract", "title", "chat"]
AssistantAgent = Literal["router", "chat", "reasons"]
"""The agents a context may give their own model (ARAG's agents follow `model`)."""

TOOL_OF: dict[str, str] = {"recommend": "recommend_items_for_user",
                           "extract": "extract_product_attributes",
                           "title": "title_product_set"}
"""The tool each capability calls."""


class Intent(BaseModel):
    """What the shopper's latest message asks for."""

    capability: Capability = Field(description="recommend, extract, title or chat.")
    user_id: str | None = Field(None, description="recommend: the user id the shopper "
                                                  "gives, if any.")
    items: list[str] = Field(default_factory=list, max_length=30,
                             description="recommend: items the shopper says they liked; "
                                         "title: the products to title.")
    product: str | None = Field(None, description="extract: the product title.")


class AssistantContext(GraphContext):
    """Run-scoped dependencies, as JSON.

    Attributes:
        model: the model every agent uses (router, chat, and the capabilities' agents);
            None uses `AISLE_MODEL`.
        agent_models: per-agent override for the router and the chat agent.
        games: an LLMRank Games folder (`Games.item`, `Games-6k.test.inter`, candidate
            files): user ids, their histories, candidate lists and item titles.
        retriever: which `Games.<retriever>` candidate file gives a user's candidates.
        recommender: a trained recommender's folder: candidates for items named in the
            chat (and its scores on ARAG's blackboard).
        domain: what the shop sells, as the prompts name it.
        arag: ARAG's config.
        attributes: what `extract` reads from a title.
        max_words: CARTS' title limit.
        k: recommendations shown.
        reasons: after ARAG, one more structured call writes the item ranker's reason
            for each shown item (`aisle.agents.assistant.explain_ranking`); off, items
            carry their evidence only.
        context_messages: the most recent messages the router and chat agent read.
    """

    model: ModelRef | None = None
    agent_models: dict[AssistantAgent, ModelRef] = Field(default_factory=dict)
    games: str | None = None
    retriever: str = "random"
    recommender: str | None = None
    domain: Domain = Field(default_factory=Domain)
    arag: ARAGConfig = Field(default_factory=ARAGConfig)
    attributes: list[str] = Field(default_factory=lambda: ["brand", "platform", "edition"],
                                  min_length=1, max_length=20)
    max_words: int = Field(5, ge=1, le=30)
    k: int = Field(5, ge=1, le=20)
    reasons: bool = True
    context_messages: int = Field(8, ge=1, le=50)

    async def amodel_for(self, agent: AssistantAgent) -> BaseChatModel:
        return await self.aload_model(self.agent_models.get(agent, self.model))


class AssistantInput(TypedDict, total=False):
    """A turn: the shopper's new message(s), appended to the thread's history."""

    messages: Annotated[list[AnyMessage], add_messages]


class AssistantState(AssistantInput, total=False):
    """The chat and the latest turn's decision and capability result."""

    intent: dict[str, Any]
    result: dict[str, Any] | None


def _ctx(runtime: Runtime[AssistantContext] | ToolRuntime) -> AssistantContext:
    ctx = runtime.context
    if ctx is None:
        return AssistantContext()
    return ctx if isinstance(ctx, AssistantContext) else AssistantContext.model_validate(ctx)


# -- the tools ---------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _games(folder: str) -> Any:
    from aisle.evals.llmrank import load_games

    return load_games(Path(folder))


@lru_cache(maxsize=1)
def _arag() -> CompiledStateGraph[Any, Any, Any, Any]:
    return build_arag_graph()


class _ToolFailure(AisleError):
    """An input the tool cannot answer; its message is the result the reply shows."""


def _match_items(games: Any, names: list[str]) -> tuple[list[str], list[str]]:
    """Catalog ids for names typed in the chat (an id, a title in any case, or the
    shortest title containing the name); the names that match nothing."""
    by_title: dict[str, str] = {}
    for item_id, title in games.items.items():
        by_title.setdefault(title.casefold(), item_id)
    found, unknown = [], []
    for name in names:
        key = name.strip()
        if key in games.items:
            found.append(key)
        elif key.casefold() in by_title:
            found.append(by_title[key.casefold()])
        else:
            hits = [(len(t), i) for t, i in by_title.items() if key.casefold() in t]
            if hits and len(key) >= 3:
                found.append(min(hits)[1])
            else:
                unknown.append(name)
    return list(dict.fromkeys(found)), unknown


async def _recommend(ctx: AssistantContext, runtime: ToolRuntime, user_id: str | None,
                     items: list[str]) -> dict[str, Any]:
    from aisle.evals._errors import DatasetError

    if ctx.games is None:
        raise _ToolFailure("no shop data is configured (the context's `games` folder), so "
                           "there are no users or items to recommend from")
    games = _games(ctx.games)
    candidates = None
    unknown: list[str] = []
    if user_id:
        user_id = user_id.strip()
        if user_id not in games.histories:
            sample = ", ".join(sorted(games.retriever_candidates(ctx.retriever))[:3])
            raise _ToolFailure(f"user {user_id!r} is not a known shopper; try one of {sample}")
        history = list(games.histories[user_id])
        try:
            (case,) = games.cases(ctx.retriever, users=[user_id])
            candidates = games.as_items(case.candidates)
        except DatasetError:
            candidates = None  # the recommender (if any) proposes them
    else:
        history, unknown = _match_items(games, items)
        if not history:
            raise _ToolFailure("tell me a user id, or items you liked by their titles"
                               + (f" (no item matches {', '.join(unknown)})" if unknown else ""))
    if candidates is None and ctx.recommender is None:
        raise _ToolFailure("there is no candidate list for this shopper and no trained "
                           "recommender is configured (the context's `recommender`)")
    arag_ctx = ARAGContext(model=ctx.model, recommender=ctx.recommender, domain=ctx.domain,
                           config=ctx.arag)
    arag_input: dict[str, Any] = {
        "user_id": user_id or "chat",
        "history": games.as_items(history[-ctx.arag.max_history:])}
    if candidates is not None:
        arag_input["candidates"] = candidates
    total = len(candidates) if candidates is not None else ctx.arag.n_candidates
    writer = runtime.stream_writer
    scored = 0
    final: dict[str, Any] = {}
    part: Any
    async for mode, part in _arag().astream(arag_input, context=arag_ctx,
                                            stream_mode=["updates", "values"]):
        if mode == "values":
            final = part
            continue
        for node, update in part.items():
            if isinstance(update, dict) and update.get("nli"):
                scored += len(update["nli"])
                writer({"agent": "nli", "done": scored, "total": total})
            else:
                writer({"agent": node, "status": "done"})
    nli = {r["item_id"]: r["score"] for r in final.get("nli", [])}
    ranks = {r["item_id"]: r["rank"] for r in final.get("recommender", [])}
    titles = {c["id"]: c["title"] for c in final.get("candidates", [])}
    ranking = list(final.get("ranking", []))[:ctx.k]
    why = {i: _why(nli.get(i), ranks.get(i), len(ranks)) for i in ranking}
    payload: dict[str, Any] = {
        "status": "ok", "user_id": user_id, "history": games.as_items(history[-5:]),
        "profile": final.get("user_profile"), "unknown_items": unknown,
        "items": [{"rank": n, "item_id": i, "title": titles.get(i, i), "reason": None,
                   "why": why[i]} for n, i in enumerate(ranking, 1)],
        "failures": [f.get("agent") for f in final.get("failures", [])]}
    if ctx.reasons and ranking:
        writer({"agent": "ranker_reasons", "status": "working"})
        explained = await explain_ranking(
            await ctx.amodel_for("reasons"), [{"id": i, "title": titles.get(i, i)}
                                              for i in ranking],
            evidence=why, history=[h["title"] for h in arag_input["history"]][-5:],
            profile=final.get("user_profile"),
            context=final.get("context_summary"), domain=ctx.domain)
        for item in payload["items"]:
            item["reason"] = explained.reasons.get(item["item_id"])
        payload["reasons"] = explained.validity()
        if explained.error:
            logger.warning("the ranker's reasons failed; items keep their evidence: %s",
                           explained.error)
    return payload


def _why(p_yes: float | None, rec_rank: int | None, rec_total: int) -> str:
    parts = []
    if p_yes is not None:
        parts.append(f"NLI agent: {p_yes:.0%} sure it fits your history")
    if rec_rank is not None:
        parts.append(f"recommender rank {rec_rank} of {rec_total}")
    return "; ".join(parts) or "ranked by the item ranker"


def _labeler(ctx: AssistantContext) -> tuple[str, dict[str, ModelRef]]:
    if isinstance(ctx.model, BaseChatModel):
        return "assistant", {"assistant": ctx.model}
    return ctx.model or get_settings().model, {}


async def _extract(ctx: AssistantContext, product: str | None) -> dict[str, Any]:
    from aisle.graphs.ensemble import EnsembleContext, build_ensemble_graph

    if not product or not product.strip():
        raise _ToolFailure("give me the product's title to read its attributes from")
    labeler, models = _labeler(ctx)
    out = await build_ensemble_graph().ainvoke(
        {"product": {"title": product.strip(), "category": ""},
         "attributes": list(ctx.attributes)},
        context=EnsembleContext(labelers=[labeler], models=models, domain=ctx.domain))
    return {"status": "ok", "product": product.strip(),
            "attributes": {a: r["value"] for a, r in out.get("result", {}).items()}}


async def _title(ctx: AssistantContext, items: list[str]) -> dict[str, Any]:
    from aisle.graphs.carts import CartsContext, build_carts_graph

    if len(items) < 2:
        raise _ToolFailure("give me at least two products to title as a set")
    out = await build_carts_graph().ainvoke(
        {"items": items, "max_words": ctx.max_words},
        context=CartsContext(model=ctx.model, domain=ctx.domain))
    result = out.get("result") or {}
    return {"status": "ok", "items": items, "title": result.get("title"),
            "satisfied": result.get("satisfied"), "reason": result.get("reason")}


class _RecommendArgs(BaseModel):
    user_id: str | None = Field(None, description="The shopper's user id, if given.")
    items: list[str] = Field(default_factory=list, description="Items the shopper liked "
                                                               "(titles or ids).")


class _ExtractArgs(BaseModel):
    product: str = Field(description="The product title.")


class _TitleArgs(BaseModel):
    items: list[str] = Field(min_length=1, description="The products in the set.")


def _as_result(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


async def _run_tool(kind: str, runtime: ToolRuntime, **args: Any) -> str:
    ctx = _ctx(runtime)
    try:
        if kind == "recommend":
            payload = await _recommend(ctx, runtime, args.get("user_id"), args.get("items", []))
        elif kind == "extract":
            payload = await _extract(ctx, args.get("product"))
        else:
            payload = await _title(ctx, args.get("items", []))
    except (_ToolFailure, ConfigurationError) as e:
        payload = {"status": "error", "message": str(e)}
    return _as_result(payload)


def assistant_tools() -> list[BaseTool]:
    """The capabilities as LangChain tools (they read the run's `AssistantContext`
    through `ToolRuntime`)."""

    async def recommend_items_for_user(runtime: ToolRuntime, user_id: str | None = None,
                                       items: list[str] | None = None) -> str:
        return await _run_tool("recommend", runtime, user_id=user_id, items=items or [])

    async def extract_product_attributes(runtime: ToolRuntime, product: str) -> str:
        return await _run_tool("extract", runtime, product=product)

    async def title_product_set(runtime: ToolRuntime, items: list[str]) -> str:
        return await _run_tool("title", runtime, items=items)

    return [
        StructuredTool.from_function(
            coroutine=recommend_items_for_user, name="recommend_items_for_user",
            description="Recommend items for a shopper (ARAG's agents over a candidate "
                        "list) from a user id or items they liked.",
            args_schema=_RecommendArgs),
        StructuredTool.from_function(
            coroutine=extract_product_attributes, name="extract_product_attributes",
            description="Read a product's attributes from its title.",
            args_schema=_ExtractArgs),
        StructuredTool.from_function(
            coroutine=title_product_set, name="title_product_set",
            description="A short title for a set of products (CARTS).",
            args_schema=_TitleArgs),
    ]


# -- the nodes ---------------------------------------------------------------------------
def _recent(state: AssistantState, ctx: AssistantContext) -> list[BaseMessage]:
    """The latest messages, tool traffic left out (the agents read the conversation)."""
    shown: list[BaseMessage] = [
        m for m in state.get("messages", [])
        if not isinstance(m, ToolMessage) and not (isinstance(m, AIMessage) and m.tool_calls)]
    return shown[-ctx.context_messages:]


async def route(state: AssistantState, runtime: Runtime[AssistantContext]) -> dict[str, Any]:
    """Decide the turn's capability (plain chat when the decision fails)."""
    ctx = _ctx(runtime)
    model = await ctx.amodel_for("router")
    messages = [SystemMessage(render("assistant/intent.j2", domain=ctx.domain.store)),
                *_recent(state, ctx)]
    try:
        answer = await ainvoke_structured(model, messages, Intent, agent="router",
                                          max_tokens=200)
    except StructuredOutputError as e:
        logger.warning("the router's answer was invalid; answering as chat: %s", e)
        return {"intent": {"capability": "chat", "error": str(e)[:300]}, "result": None}
    return {"intent": answer.value.model_dump(), "result": None}


def route_turn(state: AssistantState) -> Literal["plan_tool", "chat"]:
    """A capability with a tool goes through the tool; the rest is chat."""
    return "plan_tool" if state.get("intent", {}).get("capability") in TOOL_OF else "chat"


def plan_tool(state: AssistantState) -> dict[str, Any]:
    """The tool call the decision asks for, as the AI message `ToolNode` executes."""
    intent = state["intent"]
    kind = intent["capability"]
    args: dict[str, Any]
    if kind == "recommend":
        args = {"user_id": intent.get("user_id"), "items": intent.get("items") or []}
    elif kind == "extract":
        args = {"product": intent.get("product") or ""}
    else:
        args = {"items": intent.get("items") or []}
    call = {"name": TOOL_OF[kind], "args": args, "id": f"call_{uuid.uuid4().hex[:12]}",
            "type": "tool_call"}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


def respond(state: AssistantState) -> dict[str, Any]:
    """The tool's result as the reply, and whole in `result`."""
    last = state["messages"][-1]
    try:
        payload = json.loads(str(last.content))
    except ValueError:
        payload = {"status": "error", "message": str(last.content)}
    return {"messages": [AIMessage(content=_reply_text(payload))], "result": payload}


def _reply_text(payload: dict[str, Any]) -> str:
    if payload.get("status") != "ok":
        return f"Sorry, I could not do that: {payload.get('message', 'unknown error')}."
    if "items" in payload and "title" not in payload:
        lines = [f"{i['rank']}. {i['title']}" + (f": {i['reason']}" if i.get("reason") else "")
                 + f" ({i['why']})" for i in payload["items"]]
        who = f"user {payload['user_id']}" if payload.get("user_id") else "you"
        note = (f"\n(I did not find: {', '.join(payload['unknown_items'])}.)"
                if payload.get("unknown_items") else "")
        return f"Recommended for {who}:\n" + "\n".join(lines) + note
    if "attributes" in payload:
        found = [f"{k}: {v}" for k, v in payload["attributes"].items() if v and v != "n/a"]
        return "Attributes: " + ("; ".join(found) if found else "none found") + "."
    if payload.get("title"):
        return f"A title for the set: {payload['title']}"
    return f"No title fits the limit: {payload.get('reason') or 'unknown reason'}."


async def chat(state: AssistantState, runtime: Runtime[AssistantContext]) -> dict[str, Any]:
    """A plain answer."""
    ctx = _ctx(runtime)
    model = await ctx.amodel_for("chat")
    messages = [SystemMessage(render("assistant/chat.j2", domain=ctx.domain.store)),
                *_recent(state, ctx)]
    reply = await model.ainvoke(messages, config={"metadata": {"aisle_agent": "chat"}},
                                max_tokens=256)
    return {"messages": [AIMessage(content=reply.text)]}


def build_assistant_graph(checkpointer: Any = None
                          ) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the assistant (pass a checkpointer for persistent threads)."""
    builder = StateGraph(AssistantState, context_schema=AssistantContext,
                         input_schema=AssistantInput)
    builder.add_node("route", route)
    builder.add_node("plan_tool", plan_tool)
    builder.add_node("tools", ToolNode(assistant_tools()))
    builder.add_node("respond", respond)
    builder.add_node("chat", chat)
    builder.add_edge(START, "route")
    builder.add_conditional_edges("route", route_turn, {"plan_tool": "plan_tool",
                                                        "chat": "chat"})
    builder.add_edge("plan_tool", "tools")
    builder.add_edge("tools", "respond")
    builder.add_edge("respond", END)
    builder.add_edge("chat", END)
    return builder.compile(checkpointer=checkpointer)


graph = build_assistant_graph()

register_graph(GraphSpec(
    name="assistant",
    description="Shopping assistant chat: each turn is routed to recommend (ARAG), "
                "extract attributes (ensemble), title a set (CARTS) or plain chat.",
    build=build_assistant_graph, input_schema=AssistantInput,
    context_schema=AssistantContext, agents=AssistantAgent, module="assistant"))
