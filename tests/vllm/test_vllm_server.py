"""A real vLLM server (CPU build, SmolLM2 converted from the GGUF), started and stopped
by aisle's managed-server code (the `vllm_server` fixture): model listing, a structured
request through `load_chat_model`, and Yes/No scoring from token logprobs.

The backend contract (tests/contract) runs against the same server.
"""

from __future__ import annotations

from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from aisle.llm import (
    AisleChatModel,
    VLLMServer,
    capabilities_of,
    choice_probabilities,
    invoke_structured,
    load_chat_model,
)
from aisle.settings import Settings

pytestmark = pytest.mark.vllm


class Verdict(BaseModel):
    relevant: Literal["yes", "no"]
    reason: str = Field(max_length=80)


@pytest.fixture
def model(vllm_server: VLLMServer) -> AisleChatModel:
    m = load_chat_model("vllm:smollm2-135m", base_url=vllm_server.base_url, max_tokens=64,
                        settings=Settings(cache_enabled=False, request_timeout=300))
    assert isinstance(m, AisleChatModel)
    return m


def test_server_lists_the_served_model(vllm_server: VLLMServer) -> None:
    models = httpx.get(f"{vllm_server.base_url}/v1/models", timeout=10).json()["data"]
    assert [m["id"] for m in models] == ["smollm2-135m"]
    assert models[0]["max_model_len"] == 2048


def test_structured_request_is_constrained(model: AisleChatModel) -> None:
    assert capabilities_of(model).json_schema
    answer = invoke_structured(
        model, "A shopper who runs marathons looks at energy gels. Relevant?", Verdict,
        repair=False)
    assert answer.value.relevant in {"yes", "no"}
    assert answer.attempts == 1


def test_yes_no_probabilities_from_logprobs(model: AisleChatModel) -> None:
    message = model.bind(logprobs=True, top_logprobs=10, max_tokens=1).invoke(
        "Is a water bottle useful to a marathon runner? Answer Yes or No.")
    probs = choice_probabilities(message, ["Yes", "No"])
    assert probs is not None
    assert sum(probs.values()) == pytest.approx(1.0)
