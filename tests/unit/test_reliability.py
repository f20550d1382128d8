"""The retry/timeout/concurrency layer against a fault-injecting OpenAI-compatible stub."""

from __future__ import annotations

import asyncio

import pytest

from aisle.errors import BackendError, BackendUnavailableError
from aisle.llm import AisleChatModel, load_chat_model
from aisle.settings import Settings
from aisle.testing import Fault, StubServer


def _model(stub: StubServer, settings: Settings, **kw: object) -> AisleChatModel:
    model = load_chat_model("openai:stub", base_url=stub.base_url, api_key="test-key",
                            settings=settings, **kw)
    assert isinstance(model, AisleChatModel)
    return model


@pytest.mark.parametrize(
    ("fault", "expected_retries"),
    [
        pytest.param(Fault(status=429, retry_after=0.2), 1, id="429-retry-after"),
        pytest.param(Fault(status=500), 1, id="500"),
        pytest.param(Fault(status=503), 1, id="503"),
        pytest.param(Fault(delay=2.5), 1, id="slow-past-timeout"),
        pytest.param(Fault(drop=True), 1, id="dropped-connection"),
    ],
)
def test_transient_faults_are_retried(
    stub: StubServer, fast_settings: Settings, fault: Fault, expected_retries: int
) -> None:
    stub.inject(fault)
    model = _model(stub, fast_settings)
    assert model.invoke("hello").content == "stub answer"
    assert model.retry_stats.retries == expected_retries
    assert stub.stats.answered == 1


def test_retry_after_is_honoured(stub: StubServer, fast_settings: Settings) -> None:
    stub.inject(Fault(status=429, retry_after=1.5), Fault(status=429, retry_after=0.25))
    model = _model(stub, fast_settings)
    model.invoke("hello")
    # The back-offs are exactly the server's Retry-After, not the exponential schedule.
    assert model.retry_stats.sleeps == [1.5, 0.25]


def test_retry_after_is_capped_by_max_wait(stub: StubServer) -> None:
    settings = Settings(cache_enabled=False, retry_initial_wait=0.01, retry_max_wait=0.3)
    stub.inject(Fault(status=429, retry_after=60))
    model = _model(stub, settings)
    model.invoke("hello")
    assert model.retry_stats.sleeps == [0.3]


def test_mixed_faults_in_a_row_then_success(stub: StubServer, fast_settings: Settings) -> None:
    stub.inject(Fault(status=429, retry_after=0.1), Fault(status=500), Fault(drop=True),
                Fault(delay=2.5))
    model = _model(stub, fast_settings)
    assert model.invoke("hello").content == "stub answer"
    assert model.retry_stats.attempts == 5


def test_persistent_5xx_gives_up_with_backend_error(
    stub: StubServer, fast_settings: Settings
) -> None:
    stub.inject(*[Fault(status=500)] * 10)
    model = _model(stub, fast_settings)
    with pytest.raises(BackendError, match="HTTP 500") as info:
        model.invoke("hello")
    assert info.value.__cause__ is not None  # chained, not swallowed
    assert stub.stats.requests == fast_settings.max_retries + 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(
    stub: StubServer, fast_settings: Settings, status: int
) -> None:
    stub.inject(Fault(status=status))
    model = _model(stub, fast_settings)
    with pytest.raises(BackendError, match=f"HTTP {status}"):
        model.invoke("hello")
    assert stub.stats.requests == 1
    assert model.retry_stats.retries == 0


def test_server_down_is_a_clear_error(fast_settings: Settings) -> None:
    settings = fast_settings.model_copy(update={"max_retries": 1})
    model = load_chat_model("openai:x", base_url="http://127.0.0.1:9/v1", api_key="k",
                            settings=settings)
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1:9.*is the server running"):
        model.invoke("hello")


async def test_async_path_retries_too(stub: StubServer, fast_settings: Settings) -> None:
    stub.inject(Fault(status=429, retry_after=0.1), Fault(drop=True))
    model = _model(stub, fast_settings)
    message = await model.ainvoke("hello")
    assert message.content == "stub answer"
    assert model.retry_stats.retries == 2


async def test_concurrency_is_bounded_per_backend(fast_settings: Settings) -> None:
    with StubServer(latency=0.2) as stub:
        model = _model(stub, fast_settings, max_concurrency=2)
        answers = await asyncio.gather(*(model.ainvoke(f"q{i}") for i in range(8)))
    assert len(answers) == 8
    assert stub.stats.max_in_flight == 2


async def test_concurrency_bound_is_shared_by_models_of_one_backend(
    fast_settings: Settings,
) -> None:
    with StubServer(latency=0.2) as stub:
        a = _model(stub, fast_settings, max_concurrency=3)
        b = _model(stub, fast_settings, max_concurrency=3, temperature=0.7)
        await asyncio.gather(*(m.ainvoke(f"q{i}") for i in range(6) for m in (a, b)))
    assert stub.stats.max_in_flight == 3


def test_sdk_retries_are_off(stub: StubServer, fast_settings: Settings) -> None:
    model = _model(stub, fast_settings)
    assert model.max_retries == 0
    assert model.root_client.max_retries == 0
