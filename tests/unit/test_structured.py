"""Structured output: constrained vs prompted JSON, the repair turn, the typed failure."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel, Field, create_model

from aisle.errors import ConfigurationError, StructuredOutputError
from aisle.llm import (
    Capabilities,
    FakeChatModel,
    ainvoke_structured,
    invoke_structured,
    parse_structured,
)
from aisle.llm.structured import JsonSchema


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


# --- A raw JSON Schema: checked as Draft 2020-12, answers validated against all of it ---

LISTING = {
    "title": "Listing",
    "type": "object",
    "properties": {
        "product": {"type": "string", "maxLength": 20},
        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        "stock": {"type": "integer", "minimum": 0},
    },
    "required": ["product", "sku", "stock"],
    "additionalProperties": False,
}
VALID = {"product": "Pegasus 40", "sku": "NIK-0040", "stock": 3}


@pytest.mark.parametrize(("bad", "message"), [
    ({**VALID, "product": "Nike Air Zoom Pegasus 40 running shoes"},
     "$.product: 'Nike Air Zoom Pegasus 40 running shoes' is too long (maxLength: 20)"),
    ({**VALID, "sku": "nik-40"}, "$.sku: 'nik-40' does not match '^[A-Z]{3}-[0-9]{4}$'"),
    ({**VALID, "stock": -2}, "$.stock: -2 is less than the minimum of 0 (minimum: 0)"),
    ({**VALID, "stock": 2.5}, "$.stock: 2.5 is not of type 'integer' (type: \"integer\")"),
    ({**VALID, "colour": "black"}, "$: Additional properties are not allowed ('colour' was"),
    ({"product": "x", "sku": "NIK-0040"}, "$: 'stock' is a required property"),
])
def test_json_schema_violation_gets_a_repair_turn_then_passes(bad: dict[str, object],
                                                               message: str) -> None:
    model = FakeChatModel(responses=[bad, VALID])
    answer = invoke_structured(model, "a listing", LISTING)
    assert answer.value == VALID
    assert answer.attempts == 2
    repair = model.calls[1].messages
    assert repair[-2].content == json.dumps(bad)
    assert message in str(repair[-1].content)


@pytest.mark.parametrize(("schema", "bad", "good", "message"), [
    ({"type": "number", "exclusiveMaximum": 1}, 1, 0.5, "greater than or equal to the maximum"),
    ({"type": "integer", "multipleOf": 5}, 12, 15, "12 is not a multiple of 5"),
    ({"type": "string", "minLength": 3}, "ab", "abc", "'ab' is too short (minLength: 3)"),
    ({"enum": ["shoes", "toys"]}, "boots", "toys", "'boots' is not one of ['shoes', 'toys']"),
    ({"const": "EUR"}, "USD", "EUR", "'EUR' was expected"),
    ({"type": "array", "maxItems": 2}, [1, 2, 3], [1], "is too long (maxItems: 2)"),
    ({"type": "array", "minItems": 2}, [1], [1, 2], "is too short (minItems: 2)"),
    ({"type": "array", "uniqueItems": True}, [1, 1], [1, 2], "has non-unique elements"),
    ({"type": "string", "format": "date"}, "26/11/2026", "2026-11-26", "is not a 'date'"),
    ({"type": "string", "format": "email"}, "nobody", "a@b.co", "is not a 'email'"),
    ({"$defs": {"Id": {"type": "string", "pattern": "^B0"}},
      "type": "array", "items": {"$ref": "#/$defs/Id"}}, ["B01", "X9"], ["B01"],
     "$[1]: 'X9' does not match '^B0'"),
])
def test_every_keyword_is_validated(schema: dict[str, object], bad: object, good: object,
                                    message: str) -> None:
    model = FakeChatModel(responses=[json.dumps(bad), json.dumps(good)])
    answer = invoke_structured(model, "?", schema)
    assert answer.value == good
    assert answer.attempts == 2
    assert message in str(model.calls[1].messages[-1].content)


def test_json_schema_invalid_twice_raises_with_raw_outputs() -> None:
    long = {**VALID, "product": "x" * 21}
    model = FakeChatModel(responses=[long, {**VALID, "stock": -1}])
    with pytest.raises(StructuredOutputError) as info:
        invoke_structured(model, "a listing", JsonSchema(LISTING))
    err = info.value
    assert err.schema_name == "Listing"
    assert err.raw_outputs == [json.dumps(long), json.dumps({**VALID, "stock": -1})]
    assert "(maxLength: 20)" in err.errors[0]
    assert "(minimum: 0)" in err.errors[1]
    assert "\n" not in str(err).replace("\\n", "")


def test_json_schema_request_carries_the_whole_schema() -> None:
    model = FakeChatModel(responses=[VALID], capabilities=Capabilities(json_schema=True))
    invoke_structured(model, "a listing", LISTING, agent="chat")
    call = model.calls[0]
    assert call.kwargs["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "Listing", "schema": LISTING}}
    assert call.schema == "Listing"
    assert call.agent == "chat"
    assert len(call.messages) == 1


def test_json_schema_prompted_when_not_constrained() -> None:
    model = FakeChatModel(responses=[VALID])
    invoke_structured(model, "a listing", LISTING)
    call = model.calls[0]
    assert "response_format" not in call.kwargs
    assert call.messages[-1].content == (
        "Respond with only a JSON object, no other text, that matches this JSON schema:\n"
        + json.dumps(LISTING))


def test_json_schema_answer_with_fence_and_async() -> None:
    import asyncio

    model = FakeChatModel(responses=["```json\n" + json.dumps(VALID) + "\n```"])
    answer = asyncio.run(ainvoke_structured(model, "a listing", LISTING, max_tokens=9))
    assert answer.value == VALID
    assert model.calls[0].kwargs["max_tokens"] == 9


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "object", "properties": {"a": 1}},
     "invalid JSON Schema at $.properties.a: 1 is not of type 'object', 'boolean'"),
    ({"type": "object", "properties": {"c": {"enum": []}}},
     "invalid JSON Schema at $.properties.c.enum: an empty enum allows no value"),
    ({"type": "strin"}, "invalid JSON Schema at $.type: 'strin' is not valid under any"),
    ({"type": "string", "maxLength": -1},
     "invalid JSON Schema at $.maxLength: -1 is less than the minimum of 0"),
    ({"type": "string", "pattern": "(["},
     "invalid JSON Schema at $.pattern: '([' is not a 'regex'"),
    ({"required": "a"}, "invalid JSON Schema at $.required: 'a' is not of type 'array'"),
    ({"items": {"$ref": "#/$defs/Missing"}},
     "invalid JSON Schema at $.items.$ref: '#/$defs/Missing' does not resolve"),
    ({"$ref": "https://example.com/remote.json"},
     "invalid JSON Schema at $.$ref: 'https://example.com/remote.json' does not resolve"),
])
def test_malformed_schema_is_refused_before_any_call(schema: dict[str, object],
                                                     message: str) -> None:
    model = FakeChatModel(responses=["{}"])
    with pytest.raises(ConfigurationError) as info:
        invoke_structured(model, "?", schema)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert model.calls == []


def test_data_values_are_not_read_as_schemas() -> None:
    # An empty enum or dangling $ref inside const/default/examples is data, not a schema.
    schema = {"const": {"enum": [], "$ref": "#/nowhere"},
              "examples": [{"enum": []}], "properties": {"enum": {"type": "array"}}}
    assert JsonSchema(schema).violations({"enum": [], "$ref": "#/nowhere"}) == []


def test_json_schema_names() -> None:
    assert JsonSchema({"title": "Listing-v2"}).name == "Listing-v2"
    assert JsonSchema({"title": "A product listing"}).name == "Answer"  # not a request name
    assert JsonSchema({}, name="Offer").name == "Offer"
    with pytest.raises(ConfigurationError, match="not usable in a request"):
        JsonSchema({}, name="no spaces")
    with pytest.raises(ConfigurationError, match="must be a JSON object"):
        JsonSchema([{"type": "string"}])  # type: ignore[arg-type]


def test_many_violations_are_capped() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    lines = JsonSchema(schema).violations(["x"] * 12)
    assert len(lines) == 11
    assert lines[-1] == "... and 2 more"
    with pytest.raises(ValueError, match=r"\$\[0\]: 'x' is not of type 'integer'"):
        parse_structured(json.dumps(["x"]), JsonSchema(schema))


def test_json_schema_by_schema_fake_answers_by_title() -> None:
    model = FakeChatModel(by_schema={"Listing": VALID})
    assert invoke_structured(model, "a listing", LISTING).value == VALID


def test_pydantic_requests_are_unchanged() -> None:
    # ARAG and the ensemble depend on these bytes (prompt goldens, cached answers).
    prompted = FakeChatModel(responses=['{"name": "mug", "price": -1}',
                                        '{"name": "mug", "price": 1}'])
    answer = invoke_structured(prompted, "a mug", Product)
    assert isinstance(answer.value, Product)
    first, second = prompted.calls
    assert first.messages[-1].content == (
        "Respond with only a JSON object, no other text, that matches this JSON schema:\n"
        + json.dumps(Product.model_json_schema()))
    assert first.schema == "Product"
    assert second.messages[-1].content.startswith(  # type: ignore[union-attr]
        "Your answer is not valid: 1 validation error for Product\nprice\n"
        "  Input should be greater than or equal to 0")
    assert str(second.messages[-1].content).endswith(
        "\nReply again with only the corrected JSON object.")


TAGS = {"type": "object", "title": "Tags", "required": ["tags"],
        "properties": {"tags": {"type": "array", "items": {"type": "string"},
                                "uniqueItems": True},
                       "uniqueItems": {"type": "boolean"}}}


def test_keywords_a_backend_refuses_are_not_sent_but_still_checked() -> None:
    caps = Capabilities(json_schema=True, refused_schema_keywords=("uniqueItems",))
    model = FakeChatModel(responses=['{"tags": ["a", "a"], "uniqueItems": true}',
                                     '{"tags": ["a", "b"], "uniqueItems": true}'],
                          capabilities=caps)
    answer = invoke_structured(model, "tags", TAGS)
    sent = model.calls[0].kwargs["response_format"]["json_schema"]["schema"]
    assert "uniqueItems" not in sent["properties"]["tags"]
    assert sent["properties"]["uniqueItems"] == {"type": "boolean"}  # a name, kept
    assert TAGS["properties"]["tags"]["uniqueItems"] is True  # the caller's schema untouched
    assert answer.attempts == 2  # the repeated tag failed validation against the whole schema
    assert "non-unique" in str(model.calls[1].messages[-1].content)
    assert answer.value == {"tags": ["a", "b"], "uniqueItems": True}


def test_the_vllm_backend_declares_uniqueitems_refused() -> None:
    from aisle.llm import get_provider
    assert "uniqueItems" in get_provider("vllm").capabilities.refused_schema_keywords
    assert get_provider("local").capabilities.refused_schema_keywords == ()
