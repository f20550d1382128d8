"""Structured output: constrained vs prompted JSON, the repair turn, the typed failure."""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel, Field, create_model

from aisle.errors import StructuredOutputError
from aisle.llm import (
    Capabilities,
    FakeChatModel,
    ainvoke_structured,
    invoke_structured,
    parse_structured,
)


class Product(BaseModel):
    name: str
    price: float = Field(ge=0)


def test_valid_first_answer() -> None:
    model = FakeChatModel(responses=['{"name": "mug", "price": 4.5}'])
    answer = invoke_structured(model, "a mug", Product)
    assert answer.value == Product(name="mug", price=4.5)
    assert answer.attempts == 1


def test_repair_turn_shows_the_error_and_recovers() -> None:
    model = FakeChatModel(responses=['{"name": "mug", "price": -1}',
                                     '{"name": "mug", "price": 1}'])
    answer = invoke_structured(model, "a mug", Product)
    assert answer.value.price == 1
    assert answer.attempts == 2
    repair = model.calls[1].messages
    # The repair turn replays the bad answer and names the failing constraint.
    assert isinstance(repair[-2], AIMessage)
    assert repair[-2].content == '{"name": "mug", "price": -1}'
    assert isinstance(repair[-1], HumanMessage)
    assert "price" in str(repair[-1].content)
    assert "greater than or equal to 0" in str(repair[-1].content)


def test_invalid_twice_raises_with_raw_outputs() -> None:
    model = FakeChatModel(responses=["not json", '{"name": "mug"}'])
    with pytest.raises(StructuredOutputError) as info:
        invoke_structured(model, "a mug", Product)
    err = info.value
    assert err.schema_name == "Product"
    assert err.raw_outputs == ["not json", '{"name": "mug"}']
    assert len(err.errors) == 2
    assert "price" in err.errors[1]


def test_no_repair_fails_after_one_attempt() -> None:
    model = FakeChatModel(responses=["nope", '{"name": "mug", "price": 1}'])
    with pytest.raises(StructuredOutputError):
        invoke_structured(model, "a mug", Product, repair=False)
    assert len(model.calls) == 1


def test_constrained_backend_gets_response_format_and_no_schema_prompt() -> None:
    model = FakeChatModel(responses=['{"name": "a", "price": 2}'],
                          capabilities=Capabilities(json_schema=True))
    invoke_structured(model, "a mug", Product)
    call = model.calls[0]
    fmt = call.kwargs["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"] == Product.model_json_schema()
    assert len(call.messages) == 1


def test_unconstrained_backend_gets_schema_in_prompt() -> None:
    model = FakeChatModel(responses=['{"name": "a", "price": 2}'])
    invoke_structured(model, "a mug", Product)
    call = model.calls[0]
    assert "response_format" not in call.kwargs
    assert '"price"' in str(call.messages[-1].content)


def test_runtime_enum_schema_rejects_unknown_ids() -> None:
    ids = ("B001", "B002", "B003")
    Ranking = create_model("Ranking", order=(list[Literal[ids]], ...))  # type: ignore[valid-type]
    model = FakeChatModel(responses=['{"order": ["B001", "B999"]}',
                                     '{"order": ["B002", "B001"]}'])
    answer = invoke_structured(model, "rank", Ranking)
    assert answer.value.order == ["B002", "B001"]  # type: ignore[attr-defined]
    assert "B001" in str(model.calls[1].messages[-1].content)  # allowed values were shown


@pytest.mark.parametrize(
    "text",
    ['{"name": "x", "price": 1}', '```json\n{"name": "x", "price": 1}\n```',
     '  ```\n{"name": "x", "price": 1}```  '],
)
def test_parse_tolerates_code_fences(text: str) -> None:
    assert parse_structured(text, Product) == Product(name="x", price=1)


async def test_async_and_agent_name_reaches_metadata() -> None:
    from aisle.llm import track_usage

    model = FakeChatModel(responses=['{"name": "a", "price": 2}'])
    with track_usage() as usage:
        answer = await ainvoke_structured(model, "a mug", Product, agent="extractor")
    assert answer.value.name == "a"
    assert list(usage.by_agent()) == ["extractor"]


def test_bind_kwargs_reach_the_model() -> None:
    model = FakeChatModel(responses=['{"name": "a", "price": 2}'])
    invoke_structured(model, "a mug", Product, max_tokens=17)
    assert model.calls[0].kwargs["max_tokens"] == 17
