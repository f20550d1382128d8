"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import codecs
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout, suppress
from datetime import datetime
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
# The arguments of the running command (set by the app's `main`), for logs.
INVOCATION: list[str] = []
err_console = Console(stderr=True)

# Options several commands share, so they read the same everywhere.
JSON_OPTION: Any = typer.Option(
    False, "--json", help="Print exactly one JSON object on stdout (logs, progress and "
    "warnings go to stderr) instead of tables.")
DATA_OPTION: Any = typer.Option(
    None, "--data", help="Shared datasets root (holds llmrank-games/, crowd-truth/, "
    "attribute-extraction/); default AISLE_DATA, else ../shared/data.", show_default=False)
DECODING_OPTION: Any = typer.Option(
    True, "--deterministic/--batched",
    help="Decode one request at a time on one server slot, so reruns give the same "
         "answers (default), or let the local server batch concurrent requests (faster; "
         "answers vary run to run). The mode is part of the run key; runs from before "
         "the mode existed are reported with --batched.")
MODEL_OPTION: Any = typer.Option(None, "--model", "-m",
                                 help="Model spec, e.g. local:qwen2.5-coder-0.5b; "
                                      "default AISLE_MODEL.")


def one_line(message: str) -> str:
    """`message` with its lines joined by spaces (an error is one line on stderr)."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error on stderr and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {escape(one_line(message))}", soft_wrap=True)
    raise typer.Exit(code)


def validation_message(error: ValidationError) -> str:
    """A pydantic error as one line: each bad field's path and what is wrong with it.
    For the settings, the field is named by its environment variable."""
    parts = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "value"
        if error.title == "Settings":
            where = f"AISLE_{where.upper()}"
        parts.append(f"{where}: {e['msg']}")
    return f"invalid {error.title}: " + "; ".join(parts)


def log_internal_error(error: BaseException, argv: Sequence[str]) -> Path | None:
    """Write an unexpected exception's traceback to `AISLE_HOME/logs/aisle-<time>.log`
    (the system temp folder when the home cannot be used); returns the file, or None
    when no log could be written."""
    text = (f"aisle {' '.join(argv)}\n{datetime.now().isoformat(timespec='seconds')}\n\n"
            + "".join(traceback.format_exception(error)))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for folder in _log_folders():
        path = folder / f"aisle-{stamp}-{os.getpid()}.log"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        return path
    return None


def _log_folders() -> list[Path]:
    folders = []
    with suppress(ValidationError):  # invalid settings: the home is unknown
        folders.append(get_settings().home / "logs")
    return [*folders, Path(tempfile.gettempdir()) / "aisle-logs"]


def check_text_file(path: Path, option: str, expected: str) -> None:
    """Refuse, before any work, an input that is a folder, unreadable, or not UTF-8
    text (a binary file), naming the option and what it should hold (one-line error).
    A missing file passes: its reader says so in its own words."""
    if not path.exists():
        return
    if path.is_dir():
        fail(f"{option} {path} is a folder; pass {expected}")
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                decoder.decode(block)
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:
        fail(f"{option} {path} is not a text file (byte {offset + e.start} is not UTF-8); "
             f"pass {expected}")
    except OSError as e:
        fail(f"{option} {path} cannot be read ({e.strerror or e}); pass {expected}")


@contextmanager
def resumable(what: str) -> Iterator[None]:
    """Ctrl-C inside: one line saying what is kept and that the same command resumes,
    and exit code 130 (128 + SIGINT)."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted:[/] {escape(what)} so far are kept; run the "
                          "same command again to resume", soft_wrap=True)
        raise typer.Exit(130) from None


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
    """Rich bars that count items: description, bar, done/total, elapsed time. Off when
    stderr is not a terminal (a log file), where callers print plain lines instead."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console,
                    disable=not err_console.is_terminal)


class _ProgressLog:
    """Timestamped `name: done/total unit` lines appended to a file, so a long run can be
    followed (and read afterwards) whatever happens to the terminal."""

    def __init__(self, path: Path | None, unit: str) -> None:
        self.unit = unit
        self._file = None
        if path is not None:
            ensure_dir(path.parent)
            self._file = path.open("a", encoding="utf-8", buffering=1)

    def line(self, text: str) -> None:
        if self._file is not None:
            self._file.write(f"{datetime.now().isoformat(timespec='seconds')} {text}\n")

    def close(self, interrupted: bool) -> None:
        if self._file is not None:
            self.line("interrupted (rerun the same command to resume)" if interrupted
                      else "finished")
            self._file.close()


@contextmanager
def _logged(log: _ProgressLog, command: str) -> Iterator[None]:
    log.line(f"started: aisle {command}".rstrip())
    interrupted = True
    try:
        yield
        interrupted = False
    finally:
        log.close(interrupted)


@contextmanager
def named_progress(unit: str, every: int = 10, log: Path | None = None
                   ) -> Iterator[Callable[[str, int, int], None]]:
    """One rich bar per name, driven by a `(name, done, total)` callback. When stderr is
    not a terminal (a log file), a plain `name: done/total unit` line every `every` items
    (and at the end) stands in for the live bars; with `log`, the same lines, timestamped,
    are appended to that file too."""
    progress_log = _ProgressLog(log, unit)
    with count_progress() as progress, _logged(progress_log, " ".join(INVOCATION)):
        bars: dict[str, TaskID] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in bars:
                bars[name] = progress.add_task(name, total=total)
            progress.update(bars[name], completed=done)
            if done % every == 0 or done == total:
                text = f"{name}: {done}/{total} {unit}"
                progress_log.line(text)
                if not err_console.is_terminal:
                    err_console.print(escape(text), soft_wrap=True)

        yield update


@contextmanager
def item_progress(name: str, total: int, unit: str, every: int, log: Path | None = None
                  ) -> Iterator[Callable[[int], None]]:
    """One rich bar driven by a `done` callback; plain `name: done/total unit` lines
    every `every` items (and at the end) when stderr is not a terminal, and appended,
    timestamped, to `log` when given."""
    progress_log = _ProgressLog(log, unit)
    with count_progress() as progress, _logged(progress_log, " ".join(INVOCATION)):
        task = progress.add_task(name, total=total)
        printed = -1

        def update(done: int) -> None:
            nonlocal printed
            progress.update(task, completed=done)
            if done != printed and (done // every > printed // every or done == total):
                printed = done
                text = f"{name}: {done}/{total} {unit}"
                progress_log.line(text)
                if not err_console.is_terminal:
                    err_console.print(escape(text), soft_wrap=True)

        yield update
