"""The scripted fake chat model used by graph unit tests."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage
from pydantic import BaseModel

from aisle.llm import FakeChatModel
from aisle.testing import schema_reply


class Item(BaseModel):
    id: str


def test_replies_in_order_of_every_kind() -> None:
    model = FakeChatModel(responses=["text", AIMessage(content="msg"), Item(id="a"),
                                     {"k": 1}, lambda msgs, kw: f"saw {msgs[-1].content}"])
    got = [model.invoke(f"q{i}").content for i in range(5)]
    assert got == ["text", "msg", '{"id":"a"}', '{"k": 1}', "saw q4"]


def test_exception_reply_is_raised() -> None:
    model = FakeChatModel(responses=[RuntimeError("boom")])
    with pytest.raises(RuntimeError, match="boom"):
        model.invoke("q")


def test_exhausted_script_is_an_error_unless_cycling() -> None:
    model = FakeChatModel(responses=["a"])
    model.invoke("1")
    with pytest.raises(IndexError, match="exhausted"):
        model.invoke("2")
    cycling = FakeChatModel(responses=["a", "b"], cycle=True)
    assert [cycling.invoke(str(i)).content for i in range(3)] == ["a", "b", "a"]


async def test_concurrent_calls_each_get_one_reply() -> None:
    model = FakeChatModel(responses=[lambda m, k: str(m[-1].content).upper()], cycle=True)
    out = await asyncio.gather(*(model.ainvoke(f"x{i}") for i in range(20)))
    assert sorted(str(o.content) for o in out) == sorted(f"X{i}" for i in range(20))
    assert len(model.calls) == 20


def test_usage_metadata_is_filled() -> None:
    message = FakeChatModel(responses=["two words"]).invoke("three word prompt")
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == 2
    assert message.usage_metadata["input_tokens"] == 3


def test_schema_reply_answers_response_format() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "Item",
                                                  "schema": Item.model_json_schema()}}
    model = FakeChatModel(responses=[schema_reply])
    assert Item.model_validate_json(str(model.invoke("q", response_format=fmt).content))


def test_bind_tools_offers_the_schemas_and_replies_with_tool_calls() -> None:
    def lookup(item_id: str) -> str:
        """Look an item up."""
        return item_id

    call = AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"item_id": "a"},
                                               "id": "c1"}])
    model = FakeChatModel(responses=[call])
    reply = model.bind_tools([lookup], tool_choice="any").invoke("q")
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls[0]["args"] == {"item_id": "a"}
    kwargs = model.calls[0].kwargs
    assert kwargs["tool_choice"] == "any"
    assert [t["function"]["name"] for t in kwargs["tools"]] == ["lookup"]
