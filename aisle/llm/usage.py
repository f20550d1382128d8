"""Usage accounting: tokens, latency, cache hits, backend and agent for every call,
aggregated per agent over a run.

A LangChain callback handler registered through a context variable, so it sees
every chat model call made inside `track_usage()`, including calls deep inside a
LangGraph graph, with no plumbing through the graph.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook
from rich.table import Table

from aisle.llm.cache import CACHE_HIT_KEY

__all__ = ["AgentUsage", "CallRecord", "UsageTracker", "sum_usage", "track_usage"]

AGENT_KEY = "aisle_agent"
# The requested answer schema's name, in the run metadata (test fakes answer by it).
SCHEMA_KEY = "aisle_schema"
BACKEND_KEY = "aisle_backend"


@dataclass(frozen=True)
class CallRecord:
    """One chat model call."""

    agent: str
    backend: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    latency_s: float
    cache_hit: bool
    error: str | None = None


@dataclass
class AgentUsage:
    """Totals for one agent."""

    agent: str
    calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    latency_s: float = 0.0

    @property
    def mean_latency_s(self) -> float:
        model_calls = self.calls - self.cache_hits
        return self.latency_s / model_calls if model_calls else 0.0

    def add(self, other: AgentUsage | Mapping[str, Any]) -> None:
        """Add another total (or its `to_dict()` row) to this one."""
        row = asdict(other) if isinstance(other, AgentUsage) else other
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + row.get(name, 0))


_SUMMED = ("calls", "cache_hits", "errors", "prompt_tokens", "completion_tokens",
           "cached_prompt_tokens", "latency_s")


class UsageTracker(BaseCallbackHandler):
    """Collects a `CallRecord` per chat model call. Use `track_usage()` to install one.

    The agent name comes from the call's metadata: `aisle_agent` if the caller set
    it, else the LangGraph node the call ran in.
    """

    run_inline = True  # cheap and order-preserving; no executor hop per call

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self._pending: dict[UUID, tuple[float, str, str, str]] = {}
        self._lock = threading.Lock()

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        invocation_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        meta = metadata or {}
        agent = str(meta.get(AGENT_KEY) or meta.get("langgraph_node") or "-")
        backend = str(meta.get(BACKEND_KEY) or meta.get("ls_provider") or "-")
        model = str(meta.get("ls_model_name") or (invocation_params or {}).get("model") or "-")
        with self._lock:
            self._pending[run_id] = (time.perf_counter(), agent, backend, model)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            started = self._pending.pop(run_id, None)
        if started is None:
            return
        t0, agent, backend, model = started
        prompt = completion = cached = 0
        hit = False
        for gens in response.generations:
            for gen in gens:
                if not isinstance(gen, ChatGeneration) or not isinstance(gen.message, AIMessage):
                    continue
                hit = hit or bool(gen.message.response_metadata.get(CACHE_HIT_KEY))
                usage: dict[str, Any] = dict(gen.message.usage_metadata or {})
                prompt += int(usage.get("input_tokens", 0))
                completion += int(usage.get("output_tokens", 0))
                details = usage.get("input_token_details") or {}
                cached += int(details.get("cache_read", 0) or 0)
        self._add(CallRecord(agent, backend, model, prompt, completion, cached,
                             time.perf_counter() - t0, hit))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            started = self._pending.pop(run_id, None)
        if started is None:
            return
        t0, agent, backend, model = started
        self._add(CallRecord(agent, backend, model, 0, 0, 0, time.perf_counter() - t0, False,
                             error=type(error).__name__))

    def _add(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)

    def by_agent(self) -> dict[str, AgentUsage]:
        """Totals per agent, in order of first appearance."""
        out: dict[str, AgentUsage] = {}
        with self._lock:
            records = list(self.records)
        for r in records:
            agg = out.setdefault(r.agent, AgentUsage(r.agent))
            agg.calls += 1
            agg.cache_hits += r.cache_hit
            agg.errors += r.error is not None
            agg.prompt_tokens += r.prompt_tokens
            agg.completion_tokens += r.completion_tokens
            agg.cached_prompt_tokens += r.cached_prompt_tokens
            if not r.cache_hit:
                agg.latency_s += r.latency_s
        return out

    def total(self) -> AgentUsage:
        """Totals over every agent."""
        tot = AgentUsage("total")
        for agg in self.by_agent().values():
            tot.add(agg)
        return tot

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: per agent and total."""
        rows = {name: {**asdict(a), "mean_latency_s": a.mean_latency_s}
                for name, a in self.by_agent().items()}
        tot = self.total()
        rows["total"] = {**asdict(tot), "mean_latency_s": tot.mean_latency_s}
        return rows

    def table(self, title: str = "Model usage per agent") -> Table:
        """A rich table of the per-agent totals."""
        table = Table(title=title)
        for col in ("agent", "calls", "cache hits", "errors", "prompt tok", "completion tok",
                    "cached prompt tok", "mean latency s"):
            table.add_column(col, justify="left" if col == "agent" else "right")
        rows = [*self.by_agent().values(), self.total()]
        for a in rows:
            table.add_row(a.agent, str(a.calls), str(a.cache_hits), str(a.errors),
                          str(a.prompt_tokens), str(a.completion_tokens),
                          str(a.cached_prompt_tokens), f"{a.mean_latency_s:.3f}")
        return table


def sum_usage(tables: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Add up `UsageTracker.to_dict()` tables (e.g. one per eval case), per agent.

    Example:
        >>> one = {"nli": {"calls": 2, "cache_hits": 1, "latency_s": 3.0}}
        >>> sum_usage([one, one])["nli"]["mean_latency_s"]
        3.0
    """
    out: dict[str, AgentUsage] = {}
    for table in tables:
        for agent, row in table.items():
            out.setdefault(agent, AgentUsage(agent)).add(row)
    return {name: {**asdict(a), "mean_latency_s": a.mean_latency_s} for name, a in out.items()}


_current: ContextVar[UsageTracker | None] = ContextVar("aisle_usage_tracker", default=None)
register_configure_hook(_current, inheritable=True)


@contextmanager
def track_usage(tracker: UsageTracker | None = None) -> Iterator[UsageTracker]:
    """Record every chat model call made inside the block.

    Example:
        >>> from aisle.llm import FakeChatModel
        >>> with track_usage() as usage:
        ...     _ = FakeChatModel(responses=["ok"]).invoke("hi")
        >>> usage.total().calls
        1
    """
    tracker = tracker or UsageTracker()
    token = _current.set(tracker)
    try:
        yield tracker
    finally:
        _current.reset(token)
