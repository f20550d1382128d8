"""`aisle serve`: the registered graphs over HTTP (LangGraph Agent Protocol shapes),
threads persistent in SQLite."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from aisle.cli._common import DATA_OPTION, aisle_errors, console, data_root, fail
from aisle.errors import MissingDependencyError
from aisle.settings import get_settings


def _contexts(values: list[str]) -> dict[str, dict[str, Any]]:
    """`GRAPH=FILE.json` or `GRAPH=JSON` pairs -> default contexts per graph."""
    out: dict[str, dict[str, Any]] = {}
    for value in values:
        graph, sep, given = value.partition("=")
        if not sep or not graph:
            fail(f"--context {value!r}: expected GRAPH=FILE.json or GRAPH='{{...}}'")
        text = given
        if not given.lstrip().startswith("{"):
            path = Path(given).expanduser()
            if not path.is_file():
                fail(f"--context {value!r}: no file {path}")
            text = path.read_text(encoding="utf-8")
        try:
            parsed = json.loads(text)
        except ValueError as e:
            fail(f"--context {graph}: not JSON ({e})")
        if not isinstance(parsed, dict):
            fail(f"--context {graph}: expected a JSON object")
        out[graph] = parsed
    return out


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8123, "--port", min=1, max=65535,
                             help="Port (2024 is langgraph dev's default; not that)."),
    db: Path | None = typer.Option(None, "--db", show_default=False,
                                   help="SQLite file for threads, runs and graph state "
                                        "(default AISLE_HOME/serve/aisle.sqlite)."),
    api_key: list[str] = typer.Option(
        [], "--api-key", show_default=False,
        help="A key the x-api-key header must carry (repeat for several; also "
             "AISLE_API_KEYS, comma-separated). None: no key needed."),
    max_runs_per_key: int = typer.Option(8, "--max-runs-per-key", min=1,
                                         help="Runs one key may have under way at once."),
    max_body_kb: int = typer.Option(1024, "--max-body-kb", min=1,
                                    help="Largest request body, in KiB."),
    context: list[str] = typer.Option(
        [], "--context", show_default=False,
        help="Default context of a graph: GRAPH=FILE.json or GRAPH='{...}' (repeatable); "
             "a run's own context overrides it key by key."),
) -> None:
    """Serve every registered graph over HTTP until interrupted: assistants, threads
    (kept in SQLite across restarts) and runs (wait, stream as server-sent events, or in
    the background), in the shapes the langgraph-sdk client expects."""
    try:
        import uvicorn

        from aisle.server import ServeConfig, create_app
    except ImportError as e:
        raise MissingDependencyError("fastapi", "aisle serve",
                                     install="pip install 'aisle[serve]'") from e
    keys = [*api_key, *[k for k in os.environ.get("AISLE_API_KEYS", "").split(",") if k]]
    with aisle_errors():
        config = ServeConfig(db=db or get_settings().home / "serve" / "aisle.sqlite",
                             api_keys=tuple(dict.fromkeys(keys)),
                             max_runs_per_key=max_runs_per_key,
                             max_body_bytes=max_body_kb * 1024, contexts=_contexts(context))
        app = create_app(config)
    console.print(f"aisle serve on http://{host}:{port} (threads in {config.db}; "
                  f"{'API key required' if config.api_keys else 'no API key'}); docs at "
                  f"/docs", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def demo(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(7860, "--port", min=1, max=65535, help="Port."),
    model: str | None = typer.Option(
        None, "--model", "-m", show_default=False,
        help="The model every agent uses, 'provider:model' (default AISLE_MODEL, the "
             "embedded llama.cpp model)."),
    data: Path | None = DATA_OPTION,
    recommender: Path | None = typer.Option(
        None, "--recommender", show_default=False,
        help="A trained recommender's folder (`aisle rec train` prints it): candidates "
             "for items named in the chat."),
    db: Path | None = typer.Option(None, "--db", show_default=False,
                                   help="SQLite file for the chat threads (default "
                                        "AISLE_HOME/demo/threads.sqlite)."),
) -> None:
    """The shopping assistant as a chat page on localhost (Gradio, fully offline):
    recommendations with ARAG, attributes with the ensemble, set titles with CARTS."""
    try:
        from aisle.server.demo import build_demo, theme
    except ImportError as e:
        raise MissingDependencyError("gradio", "aisle demo",
                                     install="pip install 'aisle[demo]'") from e
    games = data_root(data) / "llmrank-games"
    if not (games / "Games.item").is_file():
        fail(f"no LLMRank Games data in {games}; pass --data with the shared datasets root")
    context: dict[str, Any] = {"model": model or get_settings().model, "games": str(games)}
    if recommender is not None:
        context["recommender"] = str(recommender)
    with aisle_errors():
        app = build_demo(context, db or get_settings().home / "demo" / "threads.sqlite")
    console.print(f"aisle demo on http://{host}:{port} (model {context['model']})",
                  soft_wrap=True)
    app.launch(server_name=host, server_port=port, theme=theme(), show_error=True,
               quiet=True, ssr_mode=False)
