"""The shopping assistant on a scripted fake model: routing by the structured intent,
each capability through its tool (ARAG with a user's candidates and progress on the
custom stream; the ensemble extractor; CARTS), tool errors as replies, the router's
invalid answer falling back to chat, and memory per thread through a checkpointer."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from aisle.graphs.assistant import AssistantContext, build_assistant_graph
from aisle.llm import Capabilities, FakeChatModel


def _games(tmp_path: Path) -> Path:
    titles = {str(i): f"Game {i}" for i in range(30)}
    titles["5"] = "Mario Kart 8 - Nintendo Switch"
    (tmp_path / "Games.item").write_text(
        "item_id:token\ttitle:token_seq\n" + "".join(f"{k}\t{v}\n" for k, v in titles.items()))
    (tmp_path / "Games-6k.test.inter").write_text("u\th\tt\n" "a\t0 1 2\t3\n" "b\t4 5 6\t7\n")
    (tmp_path / "Games.random").write_text(
        "a\t" + " ".join(str(i) for i in range(8, 27)) + " 3\n")
    return tmp_path


def _intent(**fields: Any) -> dict[str, Any]:
    return {"capability": "chat", "user_id": None, "items": [], "product": None, **fields}


def _model(intent: Any, **extra: Any) -> FakeChatModel:
    def judge(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        found = re.search(r"<item>Game (\d+)</item>", str(messages[0].content))
        p = 0.9 if found and int(found.group(1)) % 2 else 0.2
        top = [{"token": "Yes", "logprob": math.log(p)},
               {"token": "No", "logprob": math.log(1 - p)}]
        return AIMessage(content="Yes", response_metadata={"logprobs": {"content": [
            {"token": "Yes", "logprob": top[0]["logprob"], "top_logprobs": top}]}})

    def rank(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        allowed = kwargs["response_format"]["json_schema"]["schema"]["properties"][
            "ranking"]["items"]["enum"]
        return {"ranking": sorted(allowed, key=int, reverse=True)}

    def reasons(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        ids = kwargs["response_format"]["json_schema"]["schema"]["$defs"]["ItemReason"][
            "properties"]["item_id"]["enum"]
        return {"reasons": [{"item_id": i, "reason": f"Because of game {i}."} for i in ids]}

    return FakeChatModel(
        by_schema={"RankerReasons": reasons, "Intent": intent,
                   "UserProfile": {"long_term": "racing games",
                                                     "session": "Nintendo"},
                   "ContextSummary": {"summary": "likes racing"}, "Ranking": rank,
                   "YesNo": judge, **extra},
        responses=["Hello! Ask me for recommendations."], cycle=True,
        capabilities=Capabilities(json_schema=True, logprobs=True, max_top_logprobs=20))


async def _turn(graph: Any, ctx: AssistantContext, text: str, thread: str = "t1",
                **kwargs: Any) -> dict[str, Any]:
    return await graph.ainvoke({"messages": [HumanMessage(text)]},
                               {"configurable": {"thread_id": thread}}, context=ctx, **kwargs)


async def test_a_user_id_gets_arag_recommendations_with_reasons(tmp_path: Path) -> None:
    ctx = AssistantContext(model=_model(_intent(capability="recommend", user_id="a")),
                           games=str(_games(tmp_path)), k=3)
    graph = build_assistant_graph(InMemorySaver())
    chunks = [c async for c in graph.astream(
        {"messages": [HumanMessage("what should user a play next?")]},
        {"configurable": {"thread_id": "t1"}}, context=ctx,
        stream_mode=["custom", "values"])]
    progress = [c for mode, c in chunks if mode == "custom"]
    nli = [p for p in progress if p.get("agent") == "nli"]
    assert nli[-1] == {"agent": "nli", "done": 20, "total": 20}
    assert [p["done"] for p in nli] == sorted(p["done"] for p in nli)
    final = [c for mode, c in chunks if mode == "values"][-1]
    result = final["result"]
    assert result["status"] == "ok"
    assert [i["rank"] for i in result["items"]] == [1, 2, 3]
    assert all("NLI agent" in i["why"] for i in result["items"])
    # The tool call and its result are in the thread; the reply lists the titles.
    kinds = [type(m).__name__ for m in final["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    tool_call = final["messages"][1].tool_calls[0]
    assert tool_call["name"] == "recommend_items_for_user"
    assert tool_call["args"] == {"user_id": "a", "items": []}
    reply = final["messages"][-1].content
    assert reply.startswith("Recommended for user a:")
    assert result["items"][0]["title"] in reply
    # The item ranker's reason for each shown item, from one call that saw the profile,
    # the context summary and each item's evidence; the reply shows them.
    assert [i["reason"] for i in result["items"]] == [
        f"Because of game {i['item_id']}." for i in result["items"]]
    assert result["reasons"] == {"missing": 0, "duplicates": 0, "parse_failed": False}
    assert {"agent": "ranker_reasons", "status": "working"} in progress
    (call,) = [c for c in ctx.model.calls  # type: ignore[union-attr]
               if c.schema == "RankerReasons"]
    assert call.agent == "ranker_reasons"
    prompt = str(call.messages[0].content)
    assert "racing games" in prompt
    assert "likes racing" in prompt
    for item in result["items"]:
        assert f"[{item['item_id']}] {item['title']} ({item['why']})" in prompt
    assert f"1. {result['items'][0]['title']}: Because of game" in reply


async def test_reasons_the_model_skips_leave_the_evidence_alone(tmp_path: Path) -> None:
    def twice(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        ids = kwargs["response_format"]["json_schema"]["schema"]["$defs"]["ItemReason"][
            "properties"]["item_id"]["enum"]
        return {"reasons": [{"item_id": ids[0], "reason": "first"},
                            {"item_id": ids[0], "reason": "again"},
                            {"item_id": ids[2], "reason": "third"}]}

    model = _model(_intent(capability="recommend", user_id="a"), RankerReasons=twice)
    out = await _turn(build_assistant_graph(InMemorySaver()),
                      AssistantContext(model=model, games=str(_games(tmp_path)), k=3), "a?")
    items = out["result"]["items"]
    assert [i["reason"] for i in items] == ["first", None, "third"]
    assert all("NLI agent" in i["why"] for i in items)
    assert out["result"]["reasons"] == {"missing": 1, "duplicates": 1, "parse_failed": False}


async def test_invalid_reasons_keep_the_recommendations(tmp_path: Path) -> None:
    model = _model(_intent(capability="recommend", user_id="a"),
                   RankerReasons="no json here")
    out = await _turn(build_assistant_graph(InMemorySaver()),
                      AssistantContext(model=model, games=str(_games(tmp_path)), k=3), "a?")
    result = out["result"]
    assert result["status"] == "ok"
    assert len(result["items"]) == 3
    assert [i["reason"] for i in result["items"]] == [None, None, None]
    assert result["reasons"] == {"missing": 3, "duplicates": 0, "parse_failed": True}
    assert out["messages"][-1].content.startswith("Recommended for user a:\n1. Game")


async def test_reasons_can_be_turned_off(tmp_path: Path) -> None:
    model = _model(_intent(capability="recommend", user_id="a"))
    out = await _turn(build_assistant_graph(InMemorySaver()),
                      AssistantContext(model=model, games=str(_games(tmp_path)), k=3,
                                       reasons=False), "a?")
    assert "reasons" not in out["result"]
    assert all(i["reason"] is None for i in out["result"]["items"])
    assert [c.schema for c in model.calls if c.schema == "RankerReasons"] == []
    assert "UserProfile" in [c.schema for c in model.calls]


async def test_items_named_in_the_chat_need_a_recommender(tmp_path: Path) -> None:
    ctx = AssistantContext(model=_model(_intent(capability="recommend",
                                                items=["mario kart", "Zork"])),
                           games=str(_games(tmp_path)))
    out = await _turn(build_assistant_graph(InMemorySaver()), ctx, "I liked Mario Kart")
    assert out["result"]["status"] == "error"
    assert "no trained recommender" in out["result"]["message"]
    assert out["messages"][-1].content.startswith("Sorry, I could not do that")


async def test_an_unknown_user_is_a_reply_not_a_crash(tmp_path: Path) -> None:
    ctx = AssistantContext(model=_model(_intent(capability="recommend", user_id="zz")),
                           games=str(_games(tmp_path)))
    out = await _turn(build_assistant_graph(InMemorySaver()), ctx, "user zz please")
    assert "'zz' is not a known shopper; try one of a" in out["result"]["message"]
    assert isinstance(out["messages"][-2], ToolMessage)


async def test_without_shop_data_recommend_says_what_is_missing() -> None:
    ctx = AssistantContext(model=_model(_intent(capability="recommend", user_id="a")))
    out = await _turn(build_assistant_graph(InMemorySaver()), ctx, "recommend for a")
    assert "no shop data is configured" in out["result"]["message"]


async def test_extract_runs_the_ensemble_on_the_title() -> None:
    seen: list[str] = []

    def labels(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        seen.append(str(messages[-1].content))
        return {"brand": "Microsoft", "platform": "Xbox 360", "edition": "n/a"}

    ctx = AssistantContext(model=FakeChatModel(
        by_schema={"Intent": _intent(capability="extract", product="Halo 3 - Xbox 360")},
        responses=[labels], cycle=True, capabilities=Capabilities(json_schema=True)))
    out = await _turn(build_assistant_graph(InMemorySaver()), ctx, "attributes of Halo 3?")
    assert out["result"]["attributes"] == {"brand": "Microsoft", "platform": "Xbox 360",
                                           "edition": "n/a"}
    assert any("Halo 3 - Xbox 360" in s for s in seen)
    assert out["messages"][-1].content == "Attributes: brand: Microsoft; platform: Xbox 360."


async def test_title_needs_two_products() -> None:
    ctx = AssistantContext(model=_model(_intent(capability="title", items=["only one"])))
    out = await _turn(build_assistant_graph(InMemorySaver()), ctx, "title this")
    assert "at least two products" in out["result"]["message"]


async def test_chat_turns_share_the_threads_memory() -> None:
    model = _model(_intent())
    ctx = AssistantContext(model=model)
    graph = build_assistant_graph(InMemorySaver())
    await _turn(graph, ctx, "hi there", thread="x")
    out = await _turn(graph, ctx, "and again", thread="x")
    texts = [m.content for m in out["messages"]]
    assert texts == ["hi there", "Hello! Ask me for recommendations.", "and again",
                     "Hello! Ask me for recommendations."]
    other = await _turn(graph, ctx, "new session", thread="y")
    assert other["messages"][0].content == "new session"
    assert len(other["messages"]) == 2
    # The chat agent saw the earlier turns of its own thread only.
    last_chat = [c for c in model.calls if "shopping assistant" in str(c.messages[0].content)]
    assert [m.content for m in last_chat[-1].messages[1:]] == ["new session"]


async def test_an_invalid_routing_answer_falls_back_to_chat() -> None:
    ctx = AssistantContext(model=_model("this is not json"))
    out = await _turn(build_assistant_graph(InMemorySaver()), ctx, "hello")
    assert out["intent"]["capability"] == "chat"
    assert "error" in out["intent"]
    assert out["messages"][-1].content == "Hello! Ask me for recommendations."


def test_the_graph_topology() -> None:
    mermaid = build_assistant_graph().get_graph().draw_mermaid()
    for edge in ("__start__ --> route;", "route -.-> chat;", "route -.-> plan_tool;",
                 "plan_tool --> tools;", "tools --> respond;", "respond --> __end__;",
                 "chat --> __end__;"):
        assert edge in mermaid


@pytest.mark.parametrize("bad", [{"k": 0}, {"context_messages": 0}, {"agent_models":
                                                                       {"ranker": "x"}}])
def test_context_rejects_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError
        AssistantContext.model_validate(bad)
