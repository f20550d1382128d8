"""What every execution engine shares: the per-row function it runs, the result of one
row, and the budget meter that stops a run with what it finished kept.

An engine maps a `RowFunction` over a list of tasks (plain JSON dicts, one per row, pair
or group) and returns one `RowResult` per task, in task order, or None for a task it
did not start because the budget ran out. A `RowFunction` holds only plain data (a
prompt, a schema, a model spec), so it pickles to another process or machine, and builds
its clients once per worker in `setup()`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

from aisle.errors import ConfigurationError

__all__ = ["Budget", "BudgetMeter", "Engine", "Progress", "RowFunction", "RowResult"]

Progress = Callable[[int, int], None]
"""Called with (tasks done, tasks in all) as rows finish."""


class RowResult(TypedDict):
    """One row's outcome.

    Attributes:
        value: the validated answer (JSON), or None when the row failed.
        error: why the row failed (invalid answer after the repair turn, server
            error), or None.
        prompt_tokens, completion_tokens: what the row's model calls used (0 for an
            answer from the response cache).
        calls: model calls made (0 when every answer came from the cache).
        cached: the answer came from the response cache.
        seconds: wall time of the row.
    """

    value: Any
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    calls: int
    cached: bool
    seconds: float


def failed_row(error: str, seconds: float = 0.0) -> RowResult:
    return RowResult(value=None, error=error, prompt_tokens=0, completion_tokens=0,
                     calls=0, cached=False, seconds=seconds)


class RowFunction(ABC):
    """The work for one task; picklable (plain data only until `setup`)."""

    def setup(self) -> None:  # noqa: B027 (optional hook, empty by default)
        """Build what the calls need (a model client) in the worker that runs them;
        called once per worker before the first call. Default: nothing."""

    @abstractmethod
    async def __call__(self, task: Mapping[str, Any]) -> RowResult:
        """Run one task. Never raises for a bad row: a failure is a `RowResult` with
        `error` set, so the row is kept, not dropped."""


@dataclass(frozen=True)
class Budget:
    """A cap on a run's cost: model calls and tokens (prompt + completion). Answers
    from the response cache cost nothing. None is no cap.

    Example:
        >>> Budget(calls=100).unlimited
        False
    """

    calls: int | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("calls", "tokens"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigurationError(f"budget {name} must be >= 0, not {value}")

    @property
    def unlimited(self) -> bool:
        return self.calls is None and self.tokens is None


class BudgetMeter:
    """Counts what a run spent against its `Budget`; shared by every operator of a
    pipeline and safe across threads.

    A task reserves one call before it starts (`reserve`), so the call cap is never
    exceeded; a cached answer gives its reservation back. Tokens are known only after a
    call, so the token cap is checked before each start and a run can end above it by
    what the calls already in flight use (at most the engine's concurrency).

    Example:
        >>> meter = BudgetMeter(Budget(calls=1))
        >>> meter.reserve(), meter.reserve()
        (True, False)
        >>> meter.stopped
        'calls'
    """

    def __init__(self, budget: Budget | None = None, *, calls: int = 0,
                 tokens: int = 0) -> None:
        self.budget = budget or Budget()
        self.calls = calls
        self.tokens = tokens
        self.stopped: str | None = None
        self._lock = threading.Lock()

    def reserve(self) -> bool:
        """Take one call from the budget; False (and `stopped` set) when none is left."""
        with self._lock:
            if self.budget.tokens is not None and self.tokens >= self.budget.tokens:
                self.stopped = self.stopped or "tokens"
            if self.budget.calls is not None and self.calls >= self.budget.calls:
                self.stopped = self.stopped or "calls"
            if self.stopped:
                return False
            self.calls += 1
            return True

    def settle(self, result: RowResult) -> None:
        """Book a finished task: its tokens, and its reserved call back if it made none
        (an answer from the cache); a task that made several calls (a repair turn)
        books the extra ones."""
        with self._lock:
            self.calls += result["calls"] - 1
            self.tokens += result["prompt_tokens"] + result["completion_tokens"]

    def state(self) -> dict[str, Any]:
        return {"calls": self.calls, "tokens": self.tokens, "stopped": self.stopped,
                "budget": {"calls": self.budget.calls, "tokens": self.budget.tokens}}


class Engine(ABC):
    """Runs a `RowFunction` over tasks, `concurrency` at a time."""

    name: ClassVar[str]

    @abstractmethod
    async def map(self, fn: RowFunction, tasks: Sequence[Mapping[str, Any]], *,
                  concurrency: int, meter: BudgetMeter | None = None,
                  progress: Progress | None = None) -> list[RowResult | None]:
        """One result per task, in task order; None for a task not started because the
        budget ran out (tasks start in order, so those are a suffix of the list)."""
