"""The API's own records in SQLite: threads (metadata, status) and runs (status, output).

Graph state lives in LangGraph's SQLite checkpointer, in the same database file; these
tables hold what the Agent Protocol shows beside it. Every write commits, so a
restarted server sees every thread and run; runs that were under way when the server
stopped are marked `error` when it starts again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

__all__ = ["BUSY_TIMEOUT", "Store", "now"]

BUSY_TIMEOUT = 30.0
"""Seconds a connection waits for another's write to the database to finish."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS aisle_threads (
    thread_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aisle_runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT,
    assistant_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    output TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS aisle_runs_thread ON aisle_runs (thread_id, created_at);
"""


def now() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat()


def _thread(row: aiosqlite.Row) -> dict[str, Any]:
    return {"thread_id": row["thread_id"], "created_at": row["created_at"],
            "updated_at": row["updated_at"], "metadata": json.loads(row["metadata"]),
            "status": row["status"]}


def _run(row: aiosqlite.Row) -> dict[str, Any]:
    return {"run_id": row["run_id"], "thread_id": row["thread_id"],
            "assistant_id": row["assistant_id"], "created_at": row["created_at"],
            "updated_at": row["updated_at"], "status": row["status"],
            "metadata": json.loads(row["metadata"]), "kwargs": json.loads(row["kwargs"]),
            "multitask_strategy": "reject"}


class Store:
    """Threads and runs (open with `await Store.open(path)`, close with `close()`)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT)
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.executescript(SCHEMA)
        # Runs a stopped server left under way never finish: say so.
        await db.execute("UPDATE aisle_runs SET status = 'error', error = ?, updated_at = ? "
                         "WHERE status IN ('pending', 'running')",
                         (json.dumps({"error": "ServerRestart",
                                      "message": "the server stopped during the run"}), now()))
        await db.execute("UPDATE aisle_threads SET status = 'idle' WHERE status = 'busy'")
        await db.commit()
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    # -- threads ---------------------------------------------------------------------
    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        stamp = now()
        await self.db.execute("INSERT INTO aisle_threads VALUES (?, ?, ?, ?, 'idle')",
                              (thread_id, stamp, stamp, json.dumps(metadata)))
        await self.db.commit()
        return {"thread_id": thread_id, "created_at": stamp, "updated_at": stamp,
                "metadata": metadata, "status": "idle"}

    async def get_thread(self, thread_id: str) -> dict[str, Any] | None:
        async with self.db.execute("SELECT * FROM aisle_threads WHERE thread_id = ?",
                                   (thread_id,)) as cur:
            row = await cur.fetchone()
        return _thread(row) if row else None

    async def search_threads(self, metadata: dict[str, Any], status: str | None,
                             limit: int, offset: int) -> list[dict[str, Any]]:
        async with self.db.execute("SELECT * FROM aisle_threads ORDER BY created_at DESC"
                                   ) as cur:
            rows = [_thread(r) for r in await cur.fetchall()]
        rows = [t for t in rows if all(t["metadata"].get(k) == v for k, v in metadata.items())
                and (status is None or t["status"] == status)]
        return rows[offset:offset + limit]

    async def set_thread_status(self, thread_id: str, status: str) -> None:
        await self.db.execute("UPDATE aisle_threads SET status = ?, updated_at = ? "
                              "WHERE thread_id = ?", (status, now(), thread_id))
        await self.db.commit()

    async def delete_thread(self, thread_id: str) -> bool:
        cur = await self.db.execute("DELETE FROM aisle_threads WHERE thread_id = ?",
                                    (thread_id,))
        await self.db.execute("DELETE FROM aisle_runs WHERE thread_id = ?", (thread_id,))
        await self.db.commit()
        return (cur.rowcount or 0) > 0

    # -- runs ------------------------------------------------------------------------
    async def create_run(self, run_id: str, thread_id: str | None, assistant_id: str,
                         metadata: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        stamp = now()
        await self.db.execute(
            "INSERT INTO aisle_runs VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, NULL, NULL)",
            (run_id, thread_id, assistant_id, stamp, stamp, json.dumps(metadata),
             json.dumps(kwargs)))
        await self.db.commit()
        row = await self.get_run(run_id)
        assert row is not None
        return row

    async def finish_run(self, run_id: str, status: str, output: Any = None,
                         error: dict[str, Any] | None = None) -> None:
        await self.db.execute(
            "UPDATE aisle_runs SET status = ?, output = ?, error = ?, updated_at = ? "
            "WHERE run_id = ?",
            (status, json.dumps(output) if output is not None else None,
             json.dumps(error) if error is not None else None, now(), run_id))
        await self.db.commit()

    async def set_run_status(self, run_id: str, status: str) -> None:
        await self.db.execute("UPDATE aisle_runs SET status = ?, updated_at = ? "
                              "WHERE run_id = ?", (status, now(), run_id))
        await self.db.commit()

    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        async with self.db.execute("SELECT * FROM aisle_runs WHERE run_id = ?",
                                   (run_id,)) as cur:
            row = await cur.fetchone()
        return _run(row) if row else None

    async def run_result(self, run_id: str) -> tuple[Any, dict[str, Any] | None]:
        """A finished run's output and error."""
        async with self.db.execute("SELECT output, error FROM aisle_runs WHERE run_id = ?",
                                   (run_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None, None
        return (json.loads(row["output"]) if row["output"] else None,
                json.loads(row["error"]) if row["error"] else None)

    async def list_runs(self, thread_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
        async with self.db.execute(
                "SELECT * FROM aisle_runs WHERE thread_id = ? ORDER BY created_at DESC "
                "LIMIT ? OFFSET ?", (thread_id, limit, offset)) as cur:
            return [_run(r) for r in await cur.fetchall()]
