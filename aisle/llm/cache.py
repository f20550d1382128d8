"""A persistent response cache: LangChain's `BaseCache` interface on SQLite.

Keys are the full request (messages plus every generation parameter) minus
credentials and the server address, so re-running an eval costs no model calls.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

__all__ = ["CACHE_HIT_KEY", "SQLiteCache"]

# Set in a replayed message's `response_metadata`, so usage accounting can tell a
# cache hit from a model call.
CACHE_HIT_KEY = "aisle_cache_hit"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    llm_string TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class SQLiteCache(BaseCache):
    """LLM responses stored in one SQLite file (WAL mode, safe across threads).

    Attributes:
        hits: lookups answered from the cache since this object was created.
        misses: lookups that were not.

    Example:
        >>> cache = SQLiteCache(":memory:")
        >>> cache.lookup("prompt", "llm") is None
        True
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        key = self._key(prompt, llm_string)
        with self._lock:
            row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return [_decode(item) for item in json.loads(row[0])]

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        value = json.dumps([_encode(gen) for gen in return_val])
        key = self._key(prompt, llm_string)
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, llm_string, value, created) "
                "VALUES (?, ?, ?, ?)",
                (key, llm_string, value, time.time()),
            )

    def clear(self, **kwargs: Any) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM responses")

    def entries(self) -> int:
        """Responses stored on disk."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Entries on disk and this process's hit/miss counts."""
        return {"path": self.path, "entries": self.entries(),
                "hits": self.hits, "misses": self.misses}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _encode(gen: Generation) -> dict[str, Any]:
    if isinstance(gen, ChatGeneration):
        return {"message": message_to_dict(gen.message), "info": gen.generation_info}
    return {"text": gen.text, "info": gen.generation_info}


def _decode(item: dict[str, Any]) -> Generation:
    if "message" not in item:
        return Generation(text=item["text"], generation_info=item["info"])
    message = messages_from_dict([item["message"]])[0]
    message.response_metadata = {**message.response_metadata, CACHE_HIT_KEY: True}
    return ChatGeneration(message=message, generation_info=item["info"])
