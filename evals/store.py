"""Per-item eval results on disk (SQLite), so an interrupted eval continues where it
stopped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["ResultStore"]


class ResultStore:
    """Results on disk, keyed by (method, item, run key); `user_id` is any item id
    (a user for ARAG, an offer for the ensemble eval)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False)
        with self._conn:
            self._conn.execute("CREATE TABLE IF NOT EXISTS results (method TEXT, user_id TEXT, "
                               "run_key TEXT, value TEXT, PRIMARY KEY (method, user_id, run_key))")

    def done(self, method: str, run_key: str) -> dict[str, dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT user_id, value FROM results WHERE method = ? AND run_key = ?",
            (method, run_key)).fetchall()
        return {u: json.loads(v) for u, v in rows}

    def put(self, method: str, user_id: str, run_key: str, value: dict[str, Any]) -> None:
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                               (method, user_id, run_key, json.dumps(value)))
