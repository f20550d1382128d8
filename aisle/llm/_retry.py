"""The one reliability layer: retries with back-off, timeouts mapped to errors, and a
per-backend concurrency bound.

Every OpenAI-compatible backend (embedded llama.cpp, vLLM, hosted APIs) goes through
here; the OpenAI SDK's own retries are switched off so the two never stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    stop_after_attempt,
    wait_exponential_jitter,
)

from aisle.errors import BackendError, BackendUnavailableError

__all__ = ["ConcurrencyLimiter", "RetryPolicy", "RetryStats", "is_retryable", "translate_error"]

logger = logging.getLogger(__name__)


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed request is worth sending again.

    Retried: HTTP 429, any 5xx, timeouts, refused or dropped connections (how often a
    timeout is retried is capped separately, `RetryPolicy.max_timeout_retries`).
    Never retried: other 4xx (the request itself is wrong) and programming errors.
    """
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's `Retry-After` (seconds or an HTTP date), if the error carries one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(value) / 1000.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time())


_JITTER = 1.0
"""Seconds of random jitter added to each exponential back-off, at most."""


@dataclass
class RetryStats:
    """What the retry layer did, for tests and reports."""

    attempts: int = 0
    retries: int = 0
    sleeps: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    A timeout costs a whole request timeout, and a server that let one request time out
    (hung, or swamped) seldom answers the next: timeouts are retried at most
    `max_timeout_retries` times, so a silent server is reported after
    `(max_timeout_retries + 1) * request_timeout` plus a short back-off, while 429s, 5xx
    and refused or dropped connections get all `max_retries`.

    Attributes:
        max_retries: retries after the first attempt.
        initial_wait: first back-off in seconds (doubled each time, with jitter).
        max_wait: cap on a single back-off, and on an honoured `Retry-After`.
        max_timeout_retries: of those, how many may follow a timeout.
        timeout_setting: the setting that sets this backend's request timeout, named in
            the error a timeout raises.

    Example:
        >>> RetryPolicy().silent_server_budget(request_timeout=30.0)
        61.5
    """

    max_retries: int = 4
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_timeout_retries: int = 1
    timeout_setting: str = "AISLE_REQUEST_TIMEOUT"

    def silent_server_budget(self, request_timeout: float) -> float:
        """At most how many seconds pass before a server that never answers is reported:
        every allowed attempt times out, with the longest back-offs between them."""
        attempts = min(self.max_retries, self.max_timeout_retries) + 1
        waits = sum(min(self.initial_wait * 2.0 ** i + _JITTER, self.max_wait)
                    for i in range(attempts - 1))
        return attempts * request_timeout + waits

    def _should_retry(self) -> Callable[[RetryCallState], bool]:
        """A per-call retry predicate that counts this call's timeouts."""
        timeouts = 0

        def should_retry(state: RetryCallState) -> bool:
            nonlocal timeouts
            exc = state.outcome.exception() if state.outcome else None
            if exc is None or not is_retryable(exc):
                return False
            if isinstance(exc, openai.APITimeoutError):
                timeouts += 1
                return timeouts <= self.max_timeout_retries
            return True

        return should_retry

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after_seconds(exc) if exc is not None else None
        if hinted is not None:
            return min(hinted, self.max_wait)
        backoff = wait_exponential_jitter(multiplier=self.initial_wait, max=self.max_wait,
                                          jitter=_JITTER)
        return float(backoff(state))

    def _kwargs(self, stats: RetryStats) -> dict[str, Any]:
        def before_sleep(state: RetryCallState) -> None:
            wait = state.next_action.sleep if state.next_action else 0.0
            stats.retries += 1
            stats.sleeps.append(wait)
            exc = state.outcome.exception() if state.outcome else None
            logger.warning("retrying after %s (attempt %d), waiting %.2fs",
                           type(exc).__name__, state.attempt_number, wait)

        return {
            "retry": self._should_retry(),
            "stop": stop_after_attempt(self.max_retries + 1),
            "wait": self._wait,
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def retrying(self, stats: RetryStats) -> Retrying:
        return Retrying(**self._kwargs(stats))

    def async_retrying(self, stats: RetryStats) -> AsyncRetrying:
        return AsyncRetrying(**self._kwargs(stats))


def translate_error(exc: BaseException, backend: str, base_url: str | None,
                    timeout_setting: str = "AISLE_REQUEST_TIMEOUT") -> BaseException:
    """Turn an OpenAI SDK error into aisle's own, with a message that says what to do."""
    where = f"{backend} backend at {base_url}" if base_url else f"{backend} backend"
    if isinstance(exc, openai.APITimeoutError):
        return BackendUnavailableError(
            f"{where} did not answer in time; raise {timeout_setting} or lower the load"
        )
    if isinstance(exc, openai.APIConnectionError):
        return BackendUnavailableError(
            f"cannot reach the {where}: is the server running? ({exc.__cause__ or exc})"
        )
    if isinstance(exc, openai.APIStatusError):
        return BackendError(f"{where} answered HTTP {exc.status_code}: {exc.message}")
    return exc


class ConcurrencyLimiter:
    """Bounds in-flight requests to one backend, for threads and for event loops.

    An `asyncio.Semaphore` belongs to one event loop, so one is kept per loop; sync
    callers share a thread semaphore.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"concurrency limit must be >= 1, got {limit}")
        self.limit = limit
        self._thread_sem = threading.BoundedSemaphore(limit)
        self._loop_sems: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._thread_sem:
            yield

    @contextlib.asynccontextmanager
    async def aslot(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._loop_sems.get(loop)
            if sem is None:
                sem = self._loop_sems[loop] = asyncio.Semaphore(self.limit)
        async with sem:
            yield
