"""What every `aisle <pipeline> eval` command shares: the `--out` and `--report-only`
options, computing the missing answers with progress and a resumable Ctrl-C, the warning
for cases that failed, and writing the report (or emitting it with `--json`).

The eval runner (`aisle.evals.runner`) is imported only when a command runs, so that
`aisle --help` stays fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from aisle.cli._common import err_console, named_progress, resumable

if TYPE_CHECKING:
    from aisle.evals.runner import EvalRunner, Failure

__all__ = ["REPORT_ONLY_OPTION", "compute_answers", "results_root_option", "warn_failures",
           "write_report"]

REPORT_ONLY_OPTION: Any = typer.Option(False, "--report-only",
                                       help="Write the report from stored answers; run "
                                            "nothing.")


def results_root_option(suite: str, files: str = "report.json, report.md, report.png") -> Any:
    """The `--out` option of `aisle SUITE eval`: the results root, where the run's files
    go under `OUT/SUITE/<run id>/` and its answers store is `OUT/SUITE/answers.sqlite`."""
    return typer.Option(
        None, "--out", show_default=False,
        help=f"Results root (default AISLE_HOME/results). Files go under OUT/{suite}/<run "
             f"id>/ ({files}); the answers store is OUT/{suite}/answers.sqlite. A run never "
             "overwrites another run's report.")


def warn_failures(failures: list[Failure], pair: str, case: str = "") -> None:
    """Say how many (task, case) runs failed and were not stored, and the first error.

    Args:
        failures: the run's failures (none: nothing is printed).
        pair: what a failed run is, e.g. "(method, user)".
        case: the word before a case id in the first failure, e.g. "user".
    """
    if not failures:
        return
    first = failures[0]
    where = f"{case} {escape(first.case)}" if case else escape(first.case)
    err_console.print(f"[yellow]{len(failures)} {pair} runs failed and were not stored; "
                      f"rerun the same command to retry them.[/] First: "
                      f"{escape(first.task)} on {where}: {escape(first.error)}",
                      soft_wrap=True)


def compute_answers(runner: EvalRunner[Any], unit: str, every: int = 10) -> list[Failure]:
    """Run every (task, case) that has no stored answer yet, with a progress line per
    `every` `unit`s (also written to the run's progress log); Ctrl-C keeps what is
    stored and says how to resume. Returns the failures (not stored, retried on the
    next run)."""
    with resumable(f"the answers stored in {runner.paths.store}"), \
            named_progress(unit, every=every, log=runner.paths.progress_log) as update:
        return asyncio.run(runner.run(progress=update)).failures


def write_report(runner: EvalRunner[Any], report: dict[str, Any], failures: list[Failure],
                 emit: Callable[[Mapping[str, Any]], None] | None) -> list[Path]:
    """Write the report's files; with `emit` (`--json`), also print the report, the files
    and the failures as one JSON object. Returns the files written."""
    files = runner.write(report)
    if emit is not None:
        emit({"report": report, "files": [str(f) for f in files],
              "failures": [asdict(f) for f in failures]})
    return files
