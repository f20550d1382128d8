"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from aisle.errors import AisleError
from aisle.paths import ensure_dir, ensure_file_target
from aisle.settings import get_settings

console = Console()
err_console = Console(stderr=True)

# Options several commands share, so they read the same everywhere.
JSON_OPTION: Any = typer.Option(
    False, "--json", help="Print exactly one JSON object on stdout (logs, progress and "
    "warnings go to stderr) instead of tables.")
DATA_OPTION: Any = typer.Option(
    None, "--data", help="Shared datasets root (holds llmrank-games/, crowd-truth/, "
    "attribute-extraction/); default AISLE_DATA, else ../shared/data.", show_default=False)
MODEL_OPTION: Any = typer.Option(None, "--model", "-m",
                                 help="Model spec, e.g. local:qwen2.5-coder-0.5b; "
                                      "default AISLE_MODEL.")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error on stderr and exit with `code`."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    err_console.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
    raise typer.Exit(code)


def validation_message(error: ValidationError) -> str:
    """A pydantic error as one line: each bad field's path and what is wrong with it."""
    parts = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "value"
        parts.append(f"{where}: {e['msg']}")
    return f"invalid {error.title}: " + "; ".join(parts)


@contextmanager
def aisle_errors() -> Iterator[None]:
    """Turn aisle's exceptions, and invalid configs or contexts (pydantic), into a
    one-line error and exit code 1."""
    try:
        yield
    except AisleError as e:
        fail(str(e))
    except ValidationError as e:
        fail(validation_message(e))


@contextmanager
def json_stdout(enabled: bool) -> Iterator[Callable[[Mapping[str, Any]], None]]:
    """Yield `emit(obj)`, which writes one JSON object on stdout.

    With `--json` (`enabled`), stdout is kept for that object alone: anything else
    printed meanwhile, a library's stray print included, goes to stderr.
    """
    real = sys.stdout

    def emit(obj: Mapping[str, Any]) -> None:
        real.write(json.dumps(obj, indent=2, default=str) + "\n")
        real.flush()

    if not enabled:
        yield emit
        return
    with redirect_stdout(sys.stderr):
        yield emit


def data_root(data: Path | None) -> Path:
    """`--data`, else the `data` setting (AISLE_DATA)."""
    return data if data is not None else get_settings().data


def check_output_file(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output file that cannot be written (one-line error)."""
    with aisle_errors():
        ensure_file_target(path, option)


def check_output_dir(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output folder that is a file or cannot be created."""
    with aisle_errors():
        ensure_dir(path, option)


@contextmanager
def byte_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar driven by a `(done, total)` callback."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def count_progress() -> Progress:
    """Rich bars that count items: description, bar, done/total, elapsed time."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console)


@contextmanager
def named_progress(unit: str, every: int = 10) -> Iterator[Callable[[str, int, int], None]]:
    """One rich bar per name, driven by a `(name, done, total)` callback. When stderr is
    not a terminal (a log file), a plain `name: done/total unit` line every `every` items
    stands in for the live bars."""
    with count_progress() as progress:
        bars: dict[str, TaskID] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in bars:
                bars[name] = progress.add_task(name, total=total)
            progress.update(bars[name], completed=done)
            if not err_console.is_terminal and (done % every == 0 or done == total):
                err_console.print(f"{name}: {done}/{total} {unit}")

        yield update
