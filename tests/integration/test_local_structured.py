"""The real embedded model (SmolLM2-135M on llama.cpp): 20 varied structured requests
all validate, concurrent requests all complete, and the server behaves as documented."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from aisle.llm import AisleChatModel, ainvoke_structured, load_chat_model, track_usage
from aisle.llm.local import LocalServerConfig, get_local_server
from aisle.llm.registry import resolve_gguf
from aisle.settings import Settings

pytestmark = pytest.mark.integration

SETTINGS = Settings(cache_enabled=False, local_parallel=4, local_ctx=8192, request_timeout=300)

Short = Field(max_length=40)


class Listing(BaseModel):
    brand: str = Short
    category: Literal["shoes", "electronics", "kitchen", "toys", "garden"]
    on_sale: bool


class Price(BaseModel):
    amount: float = Field(ge=0, le=100000)
    currency: Literal["USD", "EUR", "GBP"]


class Sentiment(BaseModel):
    label: Literal["positive", "negative", "neutral"]


class Rating(BaseModel):
    stars: int = Field(ge=1, le=5)


class Tags(BaseModel):
    tags: list[Annotated[str, Field(max_length=24)]] = Field(min_length=1, max_length=3)


class YesNo(BaseModel):
    answer: Literal["Yes", "No"]


class Size(BaseModel):
    size: Literal["XS", "S", "M", "L", "XL"]


class Colour(BaseModel):
    colour: str = Field(min_length=1, max_length=20)


class Bundle(BaseModel):
    name: str = Short
    items: list[Annotated[str, Field(max_length=30)]] = Field(min_length=2, max_length=3)


class Dimensions(BaseModel):
    width_cm: float = Field(ge=0, le=1000)
    height_cm: float = Field(ge=0, le=1000)


class Offer(BaseModel):
    listing: Listing
    price: Price


class Review(BaseModel):
    title: str = Short
    verified: bool
    helpful_votes: int | None = Field(default=None, ge=0, le=10000)


class CategoryPath(BaseModel):
    path: list[Literal["Home", "Kitchen", "Cookware", "Pans", "Sports", "Running"]] = Field(
        min_length=1, max_length=4)


class Match(BaseModel):
    same_product: bool
    # An integer percentage: llama.cpp's grammar enforces integer bounds but not
    # float bounds (see README, "Structured output").
    confidence_pct: int = Field(ge=0, le=100)


class Attribute(BaseModel):
    name: str = Field(max_length=20)
    value: str = Field(max_length=30)


class Query(BaseModel):
    keywords: list[Annotated[str, Field(max_length=24)]] = Field(min_length=1, max_length=4)
    max_price: float | None = Field(default=None, ge=0, le=100000)


class Intent(BaseModel):
    intent: Literal["buy", "browse", "return", "support"]


class Title(BaseModel):
    title: str = Field(min_length=3, max_length=60)


class Quantity(BaseModel):
    quantity: int = Field(ge=1, le=100)


class Carousel(BaseModel):
    title: str = Field(max_length=50)
    theme: Literal["seasonal", "trending", "bundle", "clearance"]


CASES: list[tuple[type[BaseModel], str]] = [
    (Listing, "Title: 'Nike Air Zoom Pegasus 40 running shoes, 20% off'."),
    (Price, "The kettle costs 39.99 euros."),
    (Sentiment, "Review: 'Broke after two days, very disappointed.' Classify the sentiment."),
    (Rating, "Review: 'Absolutely perfect blender, best purchase this year.' Stars?"),
    (Tags, "Give tags for: 'Stainless steel insulated water bottle, 1 litre'."),
    (YesNo, "Is a trail running shoe a kind of footwear?"),
    (Size, "Chest 96 cm, the size chart says M is 94-98 cm. Which size?"),
    (Colour, "Product: 'Apple iPhone 15 case, midnight blue'. What colour?"),
    (Bundle, "Name a bundle for a beginner runner and list its items."),
    (Dimensions, "The shelf is 80 cm wide and 180 cm tall."),
    (Offer, "Sony WH-1000XM5 headphones, electronics, on sale for 299 USD."),
    (Review, "Write a short review title for a verified purchase of a frying pan."),
    (CategoryPath, "Place 'non-stick frying pan 28 cm' in the category tree."),
    (Match, "Are 'Logitech MX Master 3S mouse' and 'MX Master 3S Wireless Mouse by Logitech' "
            "the same product?"),
    (Attribute, "From 'Levi's 501 jeans, waist 32', extract one attribute."),
    (Query, "Turn into a search query: 'cheap waterproof hiking boots under 100 dollars'."),
    (Intent, "Customer message: 'I want to send back the shoes I ordered.' Intent?"),
    (Title, "Write a product title for a wooden toy train set."),
    (Quantity, "The customer wants a dozen eggs. How many?"),
    (Carousel, "Write a carousel title for summer garden furniture."),
]


@pytest.fixture(scope="module")
def model() -> AisleChatModel:
    m = load_chat_model("local", settings=SETTINGS, max_tokens=160)
    assert isinstance(m, AisleChatModel)
    return m


async def test_twenty_varied_structured_requests_all_validate(model: AisleChatModel) -> None:
    assert len(CASES) == 20
    with track_usage() as usage:
        answers = await asyncio.gather(*(
            ainvoke_structured(model, prompt, schema, agent=schema.__name__)
            for schema, prompt in CASES
        ))
    for (schema, _), answer in zip(CASES, answers, strict=True):
        assert isinstance(answer.value, schema)
        schema.model_validate_json(answer.raw)
    assert usage.total().calls >= 20
    assert usage.total().errors == 0


async def test_concurrent_requests_beyond_the_slot_count_complete(model: AisleChatModel) -> None:
    prompts = [f"Suggest a name for product number {i}." for i in range(12)]
    answers = await asyncio.gather(*(model.ainvoke(p, max_tokens=16) for p in prompts))
    assert len(answers) == 12
    # Completed: the server finished each one (the text itself may be empty for a
    # 135M model, which is not what this test is about).
    assert all(a.response_metadata["finish_reason"] in {"stop", "length"} for a in answers)
    assert all(a.usage_metadata and a.usage_metadata["input_tokens"] > 0 for a in answers)


def test_server_is_shared_health_checked_and_reports_prefix_cache(model: AisleChatModel) -> None:
    _, path = resolve_gguf("smollm2-135m")
    server = get_local_server(LocalServerConfig(model_path=path, ctx=SETTINGS.local_ctx,
                                                parallel=SETTINGS.local_parallel))
    assert server.running
    assert server.health()
    assert model.openai_api_base == server.base_url + "/v1"
    shared = "You rank products for a shopper who runs marathons and hikes on weekends. " * 8
    before = server.metrics()
    for item in ("water bottle", "office chair"):
        model.invoke(f"{shared}\nItem: {item}. Relevant? Answer Yes or No.", max_tokens=1)
    after = server.metrics()
    # The second request reuses the shared prefix from llama.cpp's prompt cache.
    assert after["prompt_tokens_cached_total"] > before.get("prompt_tokens_cached_total", 0)
