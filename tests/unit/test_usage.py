"""Usage accounting per call and per agent, including calls inside a LangGraph graph."""

from __future__ import annotations

import contextlib
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from rich.console import Console

from aisle.llm import FakeChatModel, track_usage


class _State(TypedDict):
    text: str


def test_records_tokens_latency_backend_and_agent() -> None:
    model = FakeChatModel(responses=["one two three"])
    with track_usage() as usage:
        model.invoke("a b", config={"metadata": {"aisle_agent": "ranker",
                                                 "aisle_backend": "fake"}})
    (record,) = usage.records
    assert record.agent == "ranker"
    assert record.backend == "fake"
    assert (record.prompt_tokens, record.completion_tokens) == (2, 3)
    assert record.latency_s >= 0
    assert record.cache_hit is False


def test_agent_defaults_to_the_langgraph_node() -> None:
    model = FakeChatModel(responses=["x y", "z"])

    def summarise(state: _State) -> _State:
        return {"text": str(model.invoke(state["text"]).content)}

    def rank(state: _State) -> _State:
        return {"text": str(model.invoke(state["text"]).content)}

    graph = StateGraph(_State)
    graph.add_node("summarise", summarise)
    graph.add_node("rank", rank)
    graph.add_edge(START, "summarise")
    graph.add_edge("summarise", "rank")
    graph.add_edge("rank", END)
    with track_usage() as usage:
        graph.compile().invoke({"text": "go"})
    per_agent = usage.by_agent()
    assert list(per_agent) == ["summarise", "rank"]
    assert per_agent["summarise"].completion_tokens == 2
    assert per_agent["rank"].completion_tokens == 1
    assert usage.total().calls == 2


def test_errors_are_counted() -> None:
    model = FakeChatModel(responses=[RuntimeError("down")])
    with track_usage() as usage, contextlib.suppress(RuntimeError):
        model.invoke("q")
    assert usage.total().errors == 1
    assert usage.records[0].error == "RuntimeError"


def test_nothing_is_recorded_outside_the_block() -> None:
    model = FakeChatModel(responses=["a", "b"])
    with track_usage() as usage:
        model.invoke("1")
    model.invoke("2")
    assert usage.total().calls == 1


def test_table_and_dict() -> None:
    model = FakeChatModel(responses=["a"])
    with track_usage() as usage:
        model.invoke("q", config={"metadata": {"aisle_agent": "nli"}})
    summary = usage.to_dict()
    assert summary["nli"]["calls"] == 1
    assert summary["total"]["calls"] == 1
    console = Console(record=True, width=160)
    console.print(usage.table())
    text = console.export_text()
    assert "nli" in text
    assert "total" in text
