"""The `aisle` command line: one typer app, `aisle <area> <verb>`, a module per area.

    aisle arag recommend|eval          aisle ensemble fit|apply|extract|eval
    aisle index build                  aisle models list|pull|path|serve
    aisle graphs list                  aisle rec train|recommend|eval
    aisle chat, aisle info

Every command that prints a result takes `--json` (one JSON object on stdout; logs and
progress on stderr); `--data` is the shared datasets root everywhere (AISLE_DATA).

No traceback reaches a user: every error ends as one line on stderr (`_AisleGroup`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from aisle.cli import (
    _common,
    arag,
    carts,
    chat,
    ensemble,
    gdo,
    graphs,
    index,
    info,
    models,
    outfits,
    rec,
    serve,
)
from aisle.cli._common import err_console, log_internal_error, one_line, validation_message
from aisle.errors import AisleError

__all__ = ["app", "main"]


class _AisleGroup(TyperGroup):
    """The root command. It runs the command tree itself (click's non-standalone mode)
    so that every way out is one line on stderr:

    - a usage error (bad option value, unknown command): the message and where help is,
      exit 2;
    - aisle's own errors and invalid settings or configs, wherever they escape: `error:`
      and the message, exit 1;
    - anything else (a bug): `internal error: <type>: <message>; full traceback in
      <log>`, the traceback written to `AISLE_HOME/logs/`, exit 1.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        _common.INVOCATION[:] = list(args) if args is not None else sys.argv[1:]
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode,
                                windows_expand_args, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args,
                              **extra)
        except typer.TyperException as e:  # click's ClickException and UsageError
            _usage_error(e)
        except typer.Abort:
            err_console.print("aborted", soft_wrap=True)
            sys.exit(1)
        except AisleError as e:
            _error(str(e))
        except ValidationError as e:
            _error(validation_message(e))
        except Exception as e:
            path = log_internal_error(e, _common.INVOCATION)
            where = f"full traceback in {path}" if path else "no log could be written"
            err_console.print(one_line(f"internal error: {type(e).__name__}: {e}; {where}"),
                              markup=False, highlight=False, soft_wrap=True)
            sys.exit(1)
        # Non-standalone click returns the code of a `typer.Exit`, else the command's value.
        sys.exit(rv if isinstance(rv, int) else 0)


def _error(message: str) -> NoReturn:
    err_console.print(one_line(f"error: {message}"), markup=False, highlight=False,
                      soft_wrap=True)
    sys.exit(1)


def _usage_error(e: typer.TyperException) -> NoReturn:
    code = int(getattr(e, "exit_code", 2))
    if type(e).__name__ == "NoArgsIsHelpError":
        sys.exit(code)  # typer has printed the help already
    ctx = getattr(e, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    err_console.print(one_line(f"error: {e.format_message()}{hint}"), markup=False,
                      highlight=False, soft_wrap=True)
    sys.exit(code)


app = typer.Typer(
    name="aisle",
    cls=_AisleGroup,
    help="LLM agent graphs for e-commerce recommendation and content.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(arag.app, name="arag")
app.add_typer(ensemble.app, name="ensemble")
app.add_typer(index.app, name="index")
app.add_typer(graphs.app, name="graphs")
app.add_typer(models.app, name="models")
app.add_typer(rec.app, name="rec")
app.add_typer(carts.app, name="carts")
app.add_typer(gdo.app, name="gdo")
app.add_typer(outfits.app, name="outfits")
app.command("chat")(chat.chat)
app.command("info")(info.info)
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level (stderr)."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    app()
