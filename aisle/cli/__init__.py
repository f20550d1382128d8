"""The `aisle` command line: one typer app, `aisle <area> <verb>`, a module per area.

    aisle arag recommend|eval          aisle ensemble fit|apply|extract|eval
    aisle index build                  aisle models list|pull|path|serve
    aisle graphs list                  aisle chat, aisle info

Every command that prints a result takes `--json` (one JSON object on stdout; logs and
progress on stderr); `--data` is the shared datasets root everywhere (AISLE_DATA).
"""

from __future__ import annotations

import logging

import typer

from aisle.cli import arag, chat, ensemble, graphs, index, info, models

__all__ = ["app", "main"]

app = typer.Typer(
    name="aisle",
    help="LLM agent graphs for e-commerce recommendation and content.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(arag.app, name="arag")
app.add_typer(ensemble.app, name="ensemble")
app.add_typer(index.app, name="index")
app.add_typer(graphs.app, name="graphs")
app.add_typer(models.app, name="models")
app.command("chat")(chat.chat)
app.command("info")(info.info)


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
