"""One contract, every backend: the fake, an OpenAI-compatible stub (the `openai`
backend's wire path), the embedded llama.cpp model and a real vLLM server.

Each backend must answer plain and structured requests, finish concurrent requests,
report usage, and honour its declared capabilities.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Literal

import pytest
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from aisle.llm import (
    FakeChatModel,
    SQLiteCache,
    capabilities_of,
    invoke_structured,
    load_chat_model,
    token_logprobs,
    track_usage,
)
from aisle.settings import Settings
from aisle.testing import StubServer, schema_reply

SETTINGS = Settings(cache_enabled=False, max_retries=2, retry_initial_wait=0.05,
                    request_timeout=300)


class Listing(BaseModel):
    """A product listing extracted from a title."""

    brand: str = Field(max_length=40)
    category: Literal["shoes", "electronics", "kitchen", "toys"]
    on_sale: bool


@pytest.fixture(scope="module")
def _stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def _build(
    name: str, request: pytest.FixtureRequest, cache: SQLiteCache | None = None
) -> BaseChatModel:
    store = cache if cache is not None else False
    if name == "fake":
        return FakeChatModel(responses=[schema_reply], cycle=True, cache=cache)
    if name == "stub":
        stub = request.getfixturevalue("_stub")
        return load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                               settings=SETTINGS, cache=store)
    if name == "local":
        return load_chat_model("local", settings=SETTINGS, max_tokens=96, cache=store)
    if name == "vllm":
        server = request.getfixturevalue("vllm_server")
        return load_chat_model("vllm:smollm2-135m", base_url=server.base_url,
                               settings=SETTINGS, max_tokens=96, cache=store)
    raise AssertionError(name)


BACKENDS = [
    pytest.param("fake", id="fake"),
    pytest.param("stub", id="openai-stub"),
    pytest.param("local", id="local", marks=pytest.mark.integration),
    pytest.param("vllm", id="vllm", marks=pytest.mark.vllm),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def model(backend: str, request: pytest.FixtureRequest) -> BaseChatModel:
    return _build(backend, request)


class TestBackendContract:
    def test_plain_answer(self, model: BaseChatModel) -> None:
        message = model.invoke("Name one fruit.")
        assert isinstance(message.text, str)
        assert message.text.strip()

    def test_structured_answer_validates(self, model: BaseChatModel) -> None:
        answer = invoke_structured(
            model, "Title: 'Nike Air Zoom Pegasus 40 running shoes, 20% off'. "
                   "Extract the brand, category and whether it is on sale.", Listing)
        assert isinstance(answer.value, Listing)
        assert answer.attempts in (1, 2)

    async def test_concurrent_requests_all_complete(self, model: BaseChatModel) -> None:
        prompts = [f"Say the number {i}." for i in range(6)]
        answers = await asyncio.gather(*(model.ainvoke(p) for p in prompts))
        assert len(answers) == 6
        assert all(a.text.strip() for a in answers)

    def test_usage_is_recorded(self, model: BaseChatModel) -> None:
        with track_usage() as usage:
            model.invoke("Hello.", config={"metadata": {"aisle_agent": "contract"}})
        (record,) = usage.records
        assert record.agent == "contract"
        assert record.completion_tokens > 0
        assert record.prompt_tokens > 0
        assert record.cache_hit is False

    def test_logprobs_when_declared(self, model: BaseChatModel) -> None:
        caps = capabilities_of(model)
        if not caps.logprobs:
            pytest.skip("backend does not declare logprobs")
        message = model.bind(logprobs=True, top_logprobs=5, max_tokens=1).invoke(
            "Is a water bottle useful to a runner? Answer Yes or No.")
        (first, *_) = token_logprobs(message)
        assert first.logprob <= 0.0
        assert 1 <= len(first.top) <= 5

    def test_json_schema_capability_is_real(self, model: BaseChatModel) -> None:
        if not capabilities_of(model).json_schema:
            pytest.skip("backend does not declare json-schema output")
        # Constrained decoding must hold without the repair turn.
        answer = invoke_structured(model, "Any product.", Listing, repair=False)
        assert answer.attempts == 1

    def test_cache_hit_replays_without_a_model_call(
        self, backend: str, request: pytest.FixtureRequest, tmp_path: object
    ) -> None:
        from pathlib import Path

        cache = SQLiteCache(Path(str(tmp_path)) / "cache.sqlite")
        cached = _build(backend, request, cache=cache)
        with track_usage() as usage:
            first = cached.invoke("Name a colour.")
            second = cached.invoke("Name a colour.")
        assert first.text == second.text
        assert [r.cache_hit for r in usage.records] == [False, True]
        assert cache.hits == 1
