"""The shared eval runner on a toy suite: resume, failures retried, keys and paths."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aisle.errors import BackendUnavailableError, ConfigurationError
from aisle.evals.runner import Answers, EvalRunner, Suite
from aisle.llm import FakeChatModel


@dataclass(frozen=True)
class Toy:
    id: str


class ToySuite(Suite[Toy]):
    name: ClassVar[str] = "toy"

    def __init__(self, cases: list[str], *, version: int = 1, down: set[str] | None = None,
                 phases: list[list[str]] | None = None) -> None:
        self._cases = [Toy(c) for c in cases]
        self.version = version
        self.down = down if down is not None else set()
        self._phases = phases or [["a", "b"]]
        self.calls: list[tuple[str, str]] = []
        self.concurrency = 2

    def cases(self) -> list[Toy]:
        return self._cases

    def phases(self) -> list[list[str]]:
        return self._phases

    def answer_key(self) -> dict[str, Any]:
        return {"version": self.version}

    def coverage(self) -> dict[str, Any]:
        return {"cases": [c.id for c in self._cases]}

    def slug(self) -> str:
        return f"toy-{len(self._cases)}"

    async def run_one(self, task: str, case: Toy) -> dict[str, Any]:
        self.calls.append((task, case.id))
        if case.id in self.down:
            raise BackendUnavailableError("server down")
        model = FakeChatModel(responses=["x"])
        await model.ainvoke("hi")  # one model call, so usage is recorded
        return {"answer": f"{task}:{case.id}"}

    def report(self, answers: Answers) -> dict[str, Any]:
        return {"n": {task: len(v) for task, v in answers.items()}}


def test_resume_skips_stored_answers_and_retries_failures(tmp_path: Path) -> None:
    suite = ToySuite(["1", "2", "3"], down={"2"})
    runner = EvalRunner(suite, tmp_path)
    summary = asyncio.run(runner.run())
    assert [(f.task, f.case) for f in summary.failures] == [("a", "2")]
    # A failed case's later tasks wait for the retry (case-major within a phase).
    assert ("b", "2") not in suite.calls
    assert runner.report()["n"] == {"a": 2, "b": 2}

    suite.down.clear()
    suite.calls.clear()
    again = asyncio.run(EvalRunner(suite, tmp_path).run())
    assert sorted(suite.calls) == [("a", "2"), ("b", "2")]  # only what was missing
    assert again.failures == []
    stored = EvalRunner(suite, tmp_path).answers()
    assert stored["a"]["2"]["answer"] == "a:2"
    assert stored["a"]["2"]["usage"]["total"]["calls"] == 1
    assert stored["a"]["2"]["seconds"] >= 0


def test_a_larger_run_reuses_a_smaller_runs_answers_but_gets_its_own_folder(
        tmp_path: Path) -> None:
    small = EvalRunner(ToySuite(["1", "2"]), tmp_path)
    asyncio.run(small.run())
    small.write(small.report())
    suite = ToySuite(["1", "2", "3"])
    large = EvalRunner(suite, tmp_path)
    asyncio.run(large.run())
    assert sorted(suite.calls) == [("a", "3"), ("b", "3")]
    large.write(large.report())
    assert small.paths.folder != large.paths.folder
    assert small.paths.store == large.paths.store
    assert (small.paths.folder / "report.json").is_file()
    assert (large.paths.folder / "report.json").is_file()


def test_a_new_agents_version_never_reuses_stored_answers(tmp_path: Path) -> None:
    asyncio.run(EvalRunner(ToySuite(["1"]), tmp_path).run())
    suite = ToySuite(["1"], version=2)
    runner = EvalRunner(suite, tmp_path)
    asyncio.run(runner.run())
    assert sorted(suite.calls) == [("a", "1"), ("b", "1")]
    assert runner.paths.folder != EvalRunner(ToySuite(["1"]), tmp_path).paths.folder


def test_phases_run_one_after_another(tmp_path: Path) -> None:
    suite = ToySuite(["1", "2"], phases=[["a"], ["b"]])
    asyncio.run(EvalRunner(suite, tmp_path).run())
    assert [t for t, _ in suite.calls] == ["a", "a", "b", "b"]


def test_progress_reports_every_stored_answer(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    asyncio.run(EvalRunner(ToySuite(["1", "2"]), tmp_path).run(
        progress=lambda *a: seen.append(a)))
    assert {("a", 0, 2), ("a", 2, 2), ("b", 2, 2)} <= set(seen)


def test_report_names_its_run(tmp_path: Path) -> None:
    runner = EvalRunner(ToySuite(["1"]), tmp_path)
    asyncio.run(runner.run())
    files = runner.write(runner.report())
    assert files[0] == tmp_path / "toy" / runner.paths.run_id / "report.json"
    assert runner.paths.run_id.startswith("toy-1-")
    assert runner.report()["run"]["run_key"] == {"answers": {"version": 1},
                                                 "covers": {"cases": ["1"]}}


def test_an_unwritable_results_root_is_refused_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for root in (blocker, blocker / "below"):
        with pytest.raises(ConfigurationError, match="is a file"):
            EvalRunner.check_writable(root)
    EvalRunner.check_writable(tmp_path / "new" / "root")
    assert (tmp_path / "new" / "root").is_dir()


class OnlySome(ToySuite):
    """Task `b` applies to cases starting with `t` only (validation-style cases)."""

    def applies(self, task: str, case: Toy) -> bool:
        return task == "a" or case.id.startswith("t")


def test_a_task_runs_only_on_the_cases_it_applies_to(tmp_path: Path) -> None:
    suite = OnlySome(["v1", "t1", "t2"])
    seen: list[tuple[str, int, int]] = []
    runner = EvalRunner(suite, tmp_path)
    asyncio.run(runner.run(progress=lambda *a: seen.append(a)))
    assert sorted(suite.calls) == [("a", "t1"), ("a", "t2"), ("a", "v1"), ("b", "t1"),
                                   ("b", "t2")]
    assert ("b", 2, 2) in seen
    assert ("a", 3, 3) in seen
    suite.calls.clear()
    asyncio.run(EvalRunner(suite, tmp_path).run())
    assert suite.calls == []  # nothing left: the skipped pair is not "missing"
