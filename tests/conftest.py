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
