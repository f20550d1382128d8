"""Shared fixtures. Tests never touch the user's cache or settings: AISLE_HOME points
at a temporary folder and the response cache is off unless a test passes one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aisle.settings import Settings, get_settings
from aisle.testing import StubServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[None]:
    home = tmp_path_factory.getbasetemp() / "aisle-home"
    monkeypatch.setenv("AISLE_HOME", str(home))
    monkeypatch.setenv("AISLE_CACHE_ENABLED", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def fast_settings() -> Settings:
    """Settings with short back-offs and timeouts, for reliability tests."""
    return Settings(cache_enabled=False, request_timeout=1.0, max_retries=4,
                    retry_initial_wait=0.01, retry_max_wait=2.0)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def _vllm_paths() -> tuple[str, str] | None:
    import os

    python = os.environ.get("AISLE_TEST_VLLM_PYTHON")
    model = os.environ.get("AISLE_TEST_VLLM_MODEL")
    return (python, model) if python and model else None


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[object]:
    """A real vLLM server (CPU build) started and stopped by aisle's managed-server code.

    Needs `make vllm-env` (which `make test` runs) to have set AISLE_TEST_VLLM_PYTHON
    and AISLE_TEST_VLLM_MODEL; with AISLE_REQUIRE_VLLM=1 (as `make test` sets) a
    missing environment fails instead of skipping.
    """
    import os
    import signal

    from aisle.llm import VLLMServer, VLLMServerConfig

    paths = _vllm_paths()
    if paths is None:
        message = "vLLM environment not set up: run `make vllm-env` or `make test`"
        if os.environ.get("AISLE_REQUIRE_VLLM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    python, model = paths
    config = VLLMServerConfig(
        model=model, python=python, served_model_name="smollm2-135m", max_model_len=2048,
        dtype="auto", startup_timeout=600,
        extra_args=tuple(os.environ.get("AISLE_TEST_VLLM_ARGS", "").split()),
    )
    server = VLLMServer(config)
    server.start()
    pid = server.pid
    assert pid is not None
    yield server
    server.stop()
    # Stopped means the whole process group is gone, not just the parent.
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        pass
    else:
        os.killpg(pid, signal.SIGKILL)
        pytest.fail("vLLM's process group was still alive after stop()")
