"""The pieces every `aisle <pipeline> eval` command shares (`aisle.cli._eval`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aisle.cli import _eval
from aisle.evals.runner import Failure


def test_warn_failures_counts_them_and_names_the_first(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    _eval.warn_failures([Failure("carts", "b7", "503 from the server"),
                         Failure("carts", "b9", "timeout")], "(task, bundle)", "bundle")
    err = capsys.readouterr().err
    assert "2 (task, bundle) runs failed and were not stored" in err
    assert "rerun the same command" in err
    assert "carts on bundle b7: 503 from the server" in err
    assert "b9" not in err


def test_warn_failures_is_silent_without_failures(capsys: pytest.CaptureFixture[str]) -> None:
    _eval.warn_failures([], "(task, bundle)")
    assert capsys.readouterr().err == ""


class _Runner:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, report: dict[str, Any]) -> list[Path]:
        path = self.root / "report.json"
        path.write_text(str(report))
        return [path]


def test_write_report_writes_and_emits_with_json(tmp_path: Path) -> None:
    emitted: list[Any] = []
    failure = Failure("llm", "u1", "boom")
    files = _eval.write_report(_Runner(tmp_path), {"n": 1}, [failure],  # type: ignore[arg-type]
                               emitted.append)
    assert files == [tmp_path / "report.json"]
    assert files[0].is_file()
    assert emitted == [{"report": {"n": 1}, "files": [str(tmp_path / "report.json")],
                        "failures": [{"task": "llm", "case": "u1", "error": "boom"}]}]
    assert _eval.write_report(_Runner(tmp_path), {"n": 2}, [], None) == files  # type: ignore[arg-type]


def test_results_root_option_names_the_suite_folder() -> None:
    help_text = _eval.results_root_option("carts").help
    assert "OUT/carts/<run id>/" in help_text
    assert "OUT/carts/answers.sqlite" in help_text
