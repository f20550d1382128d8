"""The `aisle` command line: one typer app, a module per command group."""

from __future__ import annotations

import logging

import typer

from aisle.cli import arag, chat, ensemble, info, models

__all__ = ["app", "main"]

app = typer.Typer(
    name="aisle",
    help="LLM agent graphs for e-commerce recommendation and content.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(models.app, name="models")
app.command("chat")(chat.chat)
app.command("info")(info.info)
app.command("index")(arag.index)
app.command("recommend")(arag.recommend)
app.add_typer(ensemble.app, name="ensemble")
app.command("extract")(ensemble.extract)
arag.eval_app.command("ensemble")(ensemble.eval_ensemble)
app.add_typer(arag.eval_app, name="eval")


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    app()
