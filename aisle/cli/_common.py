"""Helpers shared by the CLI command modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
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

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def aisle_errors() -> Iterator[None]:
    """Turn aisle's exceptions into a one-line error and exit code 1."""
    try:
        yield
    except AisleError as e:
        fail(str(e))


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
