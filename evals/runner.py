"""One resumable eval runner for every suite.

A suite says what to run (its cases, its tasks in phases, how to run one task on one
case, how to score what is stored); the runner does the rest the same way for all:
concurrency, the answer store, usage and timing per answer, failures that are retried
on resume, progress, and where the results go.

Keys and paths:

- The **answer key** is the part of a suite's config that decides one stored answer
  (model, modes, the agents' version, the prompts' fingerprint, the domain...). It keys
  the suite's answer store `<root>/<suite>/answers.sqlite`, so a larger run reuses a
  smaller one's answers, and a changed prompt or agent version never reuses them.
- The **run key** adds what the run covers (its cases and tasks). The run's files go to
  `<root>/<suite>/<slug>-<hash of the run key>/` (`report.json`, `report.md`, charts,
  `run.json`), so no run ever overwrites another run's table.

Example:
    >>> run_id("arag", {"model": "local:smollm2-135m"}, "smollm2")
    'smollm2-e6a32ecc6b'
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from aisle.errors import AisleError
from aisle.evals.store import ResultStore
from aisle.llm import track_usage
from aisle.paths import ensure_dir

__all__ = ["Answers", "Case", "EvalRunner", "Failure", "Progress", "RunPaths", "Suite",
           "canonical", "run_id"]

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""`(task, done, total)`: called as answers are stored."""

Answers = Mapping[str, Mapping[str, dict[str, Any]]]
"""Stored answers of a run: task -> case id -> the stored value."""


class Case(Protocol):
    """Anything with a stable id."""

    @property
    def id(self) -> str: ...


C = TypeVar("C", bound=Case)


def canonical(value: Any) -> str:
    """The one JSON text of a key: sorted keys, no whitespace variance."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def run_id(suite: str, run_key: Mapping[str, Any], slug: str) -> str:
    """A run's folder name: a readable slug and a hash of the whole run key."""
    digest = hashlib.sha256(f"{suite}\0{canonical(run_key)}".encode()).hexdigest()[:10]
    return f"{slug}-{digest}"


@dataclass(frozen=True)
class Failure:
    """A (task, case) that raised a backend-side error; not stored, retried on resume."""

    task: str
    case: str
    error: str


class Suite(ABC, Generic[C]):
    """What one eval suite defines; the `EvalRunner` does the rest.

    A suite's `run_one` returns the value to store for one (task, case), or raises an
    `AisleError` for a fault that says nothing about the method (a server down, a
    timeout): those are counted as failures, not stored, and retried on resume. An
    answer that is simply bad (an invalid structured answer) is the method's answer:
    return it, marked, so it is stored and counted.
    """

    name: ClassVar[str]
    """The suite's folder under the results root and its CLI area (`aisle <name> eval`)."""

    concurrency: int = 1

    @abstractmethod
    def cases(self) -> Sequence[C]:
        """The cases, in a stable order."""

    @abstractmethod
    def phases(self) -> Sequence[Sequence[str]]:
        """The tasks (methods, labelers...) in phases. Phases run one after another;
        within a phase each case goes through the phase's tasks in turn, cases
        `concurrency` at a time, so an interrupted run leaves whole cases behind."""

    @abstractmethod
    def answer_key(self) -> dict[str, Any]:
        """What decides one stored answer (see the module docstring)."""

    @abstractmethod
    def coverage(self) -> dict[str, Any]:
        """What the run covers beyond the answer key (case selection, tasks)."""

    @abstractmethod
    def slug(self) -> str:
        """A readable prefix for the run's folder, e.g. `games-random-50-qwen-logprob`."""

    @abstractmethod
    async def run_one(self, task: str, case: C) -> dict[str, Any]:
        """Run one task on one case; the value to store (JSON)."""

    @abstractmethod
    def report(self, answers: Answers) -> dict[str, Any]:
        """Scores from the stored answers of this run's cases (no model calls)."""

    def markdown(self, report: dict[str, Any]) -> str:
        """The report as Markdown (default: the JSON in a code block)."""
        return f"# {self.name}\n\n```json\n{json.dumps(report, indent=2)}\n```\n"

    def write_extras(self, report: dict[str, Any], folder: Path) -> list[Path]:
        """Extra files (charts) beside the report; the paths written."""
        return []

    def config_json(self) -> dict[str, Any]:
        """The suite's config as JSON, without machine-specific paths: with the data
        root, it rebuilds the suite (`evals/reproduce.py` does)."""
        return {}

    def check_runnable(self) -> None:
        """Raise `ConfigurationError` when this config can only be reported, not run
        (e.g. it names an earlier agents version than the code has)."""

    def applies(self, task: str, case: C) -> bool:
        """Whether `task` runs on `case` (default: every task on every case). A suite
        with cases only some tasks need (validation users for fitting, say) says so."""
        return True

    def before_phase(self, phase: Sequence[str], earlier: Answers) -> None:
        """Called before each phase runs with the answers stored so far for the earlier
        phases' tasks, for a task that works on another task's answer (a judge scoring
        a method's title). Default: nothing."""

    def run_key(self) -> dict[str, Any]:
        return {"answers": self.answer_key(), "covers": self.coverage()}


@dataclass
class RunPaths:
    """Where a run's files go."""

    root: Path
    suite: str
    run_id: str

    @property
    def folder(self) -> Path:
        return self.root / self.suite / self.run_id

    @property
    def store(self) -> Path:
        return self.root / self.suite / "answers.sqlite"

    @property
    def report(self) -> Path:
        return self.folder / "report.json"

    @property
    def progress_log(self) -> Path:
        """Timestamped progress lines of every run with this key (appended)."""
        return self.folder / "progress.log"


@dataclass
class RunSummary:
    """What one `run()` did."""

    stored: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)


class EvalRunner(Generic[C]):
    """Runs a suite resumably and writes its report.

    Args:
        suite: the suite.
        root: the results root; the run's files go under `<root>/<suite.name>/`.
    """

    def __init__(self, suite: Suite[C], root: Path) -> None:
        self.suite = suite
        self.run_key = suite.run_key()
        self.answer_key = canonical(suite.answer_key())
        self.paths = RunPaths(root, suite.name, run_id(suite.name, self.run_key, suite.slug()))
        self._store: ResultStore | None = None

    @staticmethod
    def check_writable(root: Path) -> None:
        """Refuse, before any work, a results root that cannot hold folders.

        Raises:
            ConfigurationError: the root (or a parent) is a file, or cannot be created.
        """
        ensure_dir(root, "--out")

    @property
    def store(self) -> ResultStore:
        if self._store is None:
            self._store = ResultStore(self.paths.store)
        return self._store

    def stored(self, task: str) -> dict[str, dict[str, Any]]:
        return self.store.done(task, self.answer_key)

    async def run(self, progress: Progress | None = None) -> RunSummary:
        """Run every (task, case) not yet stored under the answer key.

        Raises:
            ConfigurationError: the suite's config can only be reported.
        """
        self.suite.check_runnable()
        cases = list(self.suite.cases())
        ids = {c.id for c in cases}
        summary = RunSummary()
        sem = asyncio.Semaphore(max(1, self.suite.concurrency))
        earlier: list[str] = []
        for phase in self.suite.phases():
            self.suite.before_phase(phase, {task: self.stored(task) for task in earlier})
            earlier += phase
            done = {task: set(self.stored(task)) & ids for task in phase}
            counts = {task: len(done[task]) for task in phase}
            totals = {task: sum(self.suite.applies(task, c) for c in cases) for task in phase}
            if progress:
                for task in phase:
                    progress(task, counts[task], totals[task])

            async def one(case: C, phase: Sequence[str] = phase,
                          done: dict[str, set[str]] = done,
                          counts: dict[str, int] = counts,
                          totals: dict[str, int] = totals) -> None:
                async with sem:
                    for task in phase:
                        if case.id in done[task] or not self.suite.applies(task, case):
                            continue
                        started = time.perf_counter()
                        try:
                            with track_usage() as tracker:
                                value = await self.suite.run_one(task, case)
                        except AisleError as e:
                            # A fault outside the method (server down, timeouts after
                            # retries) must not end a multi-hour run: logged, not
                            # stored, retried on resume; the case's later tasks wait.
                            logger.warning("%s failed on %s: %s", task, case.id, e)
                            summary.failures.append(Failure(task, case.id, str(e)[:300]))
                            return
                        if tracker.total().calls:
                            value["usage"] = tracker.to_dict()
                        value["seconds"] = time.perf_counter() - started
                        self.store.put(task, case.id, self.answer_key, value)
                        counts[task] += 1
                        summary.stored[task] = summary.stored.get(task, 0) + 1
                        if progress:
                            progress(task, counts[task], totals[task])

            await asyncio.gather(*(one(c) for c in cases))
        return summary

    def answers(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The stored answers of this run's tasks and cases."""
        ids = {c.id for c in self.suite.cases()}
        return {task: {k: v for k, v in self.stored(task).items() if k in ids}
                for phase in self.suite.phases() for task in phase}

    def report(self) -> dict[str, Any]:
        """The suite's report from the stored answers, with the run's identity."""
        report = self.suite.report(self.answers())
        report["run"] = {"suite": self.suite.name, "run_id": self.paths.run_id,
                         "config": self.suite.config_json(), "run_key": self.run_key}
        return report

    def write(self, report: dict[str, Any]) -> list[Path]:
        """Write `report.json`, `report.md` and the suite's extras into the run folder."""
        folder = self.paths.folder
        folder.mkdir(parents=True, exist_ok=True)
        self.paths.report.write_text(json.dumps(report, indent=2) + "\n")
        md = folder / "report.md"
        md.write_text(self.suite.markdown(report))
        return [self.paths.report, md, *self.suite.write_extras(report, folder)]
