"""The shopping assistant end to end on the real embedded model (Qwen2.5-Coder-0.5B,
the `make run` model): a recommendation turn for a real LLMRank Games user runs ARAG
through the tool and the item ranker's reasons for the shown items, then a chat turn
on the same thread sees the conversation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from aisle.evals.llmrank import load_games
from aisle.graphs.assistant import AssistantContext, build_assistant_graph
from aisle.llm import load_chat_model, track_usage
from aisle.settings import Settings

pytestmark = pytest.mark.integration

MODEL = "local:qwen2.5-coder-0.5b"
USER = "40610"


async def test_the_assistant_recommends_for_a_real_user(
        shared_data_dir: Callable[..., Path]) -> None:
    games_dir = shared_data_dir("llmrank-games")
    games = load_games(games_dir)
    (case,) = games.cases("random", users=[USER])
    model = load_chat_model(MODEL, settings=Settings(cache_enabled=False))
    ctx = AssistantContext(model=model, games=str(games_dir), k=5)
    graph = build_assistant_graph(InMemorySaver())
    config: Any = {"configurable": {"thread_id": "it"}}
    progress: list[dict[str, Any]] = []
    with track_usage() as usage:
        async for mode, chunk in graph.astream(
                {"messages": [HumanMessage(f"Please recommend games for user {USER}.")]},
                config, context=ctx, stream_mode=["custom", "values"]):
            if mode == "custom":
                progress.append(chunk)
            else:
                out = chunk
    # The obvious request is routed to the recommender with the user's id.
    assert out["intent"]["capability"] == "recommend", out["intent"]
    assert out["intent"]["user_id"] == USER
    result = out["result"]
    assert result["status"] == "ok", result
    ids = [i["item_id"] for i in result["items"]]
    assert len(ids) == 5
    assert set(ids) <= set(case.candidates)  # only the user's real candidates
    assert [p["done"] for p in progress if p.get("agent") == "nli"][-1] == 20
    reply = out["messages"][-1]
    assert isinstance(reply, AIMessage)
    assert games.items[ids[0]] in str(reply.content)
    assert usage.by_agent()["router"].calls >= 1
    # The item ranker's reasons: one constrained call over the five shown items, whose
    # answer parses (the grammar enumerates their ids); each reason it gives is text.
    assert usage.by_agent()["ranker_reasons"].calls >= 1
    assert result["reasons"]["parse_failed"] is False, result["reasons"]
    given = [i["reason"] for i in result["items"] if i["reason"] is not None]
    assert len(given) == 5 - result["reasons"]["missing"] >= 1
    assert all(r.strip() for r in given)

    # A follow-up on the same thread: the chat agent answers with the history in view.
    again = await graph.ainvoke({"messages": [HumanMessage("Thanks! Which one is first?")]},
                                config, context=ctx)
    assert len(again["messages"]) > len(out["messages"])
    assert isinstance(again["messages"][-1], AIMessage)
    assert str(again["messages"][-1].content).strip()
