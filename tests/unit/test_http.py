"""A chat model keeps working across event loops (each `asyncio.run` is a new loop)."""

from __future__ import annotations

import asyncio

from aisle.llm import load_chat_model
from aisle.settings import Settings
from aisle.testing import StubServer


def test_one_model_used_from_several_event_loops(stub: StubServer) -> None:
    model = load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                            settings=Settings(cache_enabled=False, max_retries=0))
    for _ in range(3):
        answers = asyncio.run(_many(model))
        assert [a.content for a in answers] == ["stub answer"] * 3
    assert stub.stats.requests == 9


async def _many(model):  # type: ignore[no-untyped-def]
    return await asyncio.gather(*(model.ainvoke(f"q{i}") for i in range(3)))
