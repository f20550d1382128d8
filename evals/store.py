"""Per-case eval answers on disk (SQLite), so an interrupted eval continues where it
stopped."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

__all__ = ["ResultStore"]


class ResultStore:
    """Answers on disk, keyed by (task, case, answer key).

    The answer key is stored once, in `answer_keys`, and each answer row carries its
    hash, so a store of thousands of answers does not repeat a long key per row.
    Safe to share between threads of one process and between processes (SQLite's own
    locking, with a busy timeout).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=60)
        with self._conn:
            self._conn.execute("CREATE TABLE IF NOT EXISTS answer_keys "
                               "(key_hash TEXT PRIMARY KEY, answer_key TEXT NOT NULL)")
            self._conn.execute("CREATE TABLE IF NOT EXISTS answers (task TEXT, case_id TEXT, "
                               "key_hash TEXT, value TEXT, "
                               "PRIMARY KEY (task, case_id, key_hash))")

    @staticmethod
    def key_hash(answer_key: str) -> str:
        return hashlib.sha256(answer_key.encode()).hexdigest()[:16]

    def done(self, task: str, answer_key: str) -> dict[str, dict[str, Any]]:
        """Every stored answer of `task` under `answer_key`, by case id."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT case_id, value FROM answers WHERE task = ? AND key_hash = ?",
                (task, self.key_hash(answer_key))).fetchall()
        return {case: json.loads(v) for case, v in rows}

    def put(self, task: str, case_id: str, answer_key: str, value: dict[str, Any]) -> None:
        """Store (or replace) one answer."""
        digest = self.key_hash(answer_key)
        with self._lock, self._conn:
            self._conn.execute("INSERT OR IGNORE INTO answer_keys VALUES (?, ?)",
                               (digest, answer_key))
            self._conn.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                               (task, case_id, digest, json.dumps(value)))

    def answer_keys(self) -> list[dict[str, Any]]:
        """Every answer key in the store, with its answer count (for `--report-only`
        users looking for what is stored)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT k.answer_key, COUNT(a.case_id) FROM answer_keys k LEFT JOIN answers a "
                "ON a.key_hash = k.key_hash GROUP BY k.key_hash ORDER BY k.answer_key").fetchall()
        return [{"answer_key": json.loads(k), "answers": n} for k, n in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
