"""aisle's HTTP API (`aisle serve`): the registered graphs in LangGraph Agent Protocol
shapes, with persistent threads in SQLite. Needs the `serve` extra (FastAPI, uvicorn,
LangGraph's SQLite checkpointer)."""

from __future__ import annotations

from aisle.server.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
