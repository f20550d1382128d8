"""A persistent response cache: LangChain's `BaseCache` interface on SQLite.

Keys are the full request (messages plus every generation parameter) minus
credentials and the server address, so re-running an eval costs no model calls.

A cache is only ever a shortcut, so damage to it never stops a model call: a damaged
file found when the cache opens is moved aside (kept, named in a warning) and a fresh
cache takes its place; damage found later makes a lookup a miss and a write a skip,
each logged and counted in `stats()`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from aisle.errors import CacheError

__all__ = ["CACHE_HIT_KEY", "SQLiteCache"]

logger = logging.getLogger(__name__)

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

# SQLite's primary result codes that mean "this file is damaged or not a database"
# (extended codes carry the primary one in their low byte).
_DAMAGE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}

_WITHOUT_CACHE = ("run without the cache (AISLE_CACHE_ENABLED=false, or --no-cache where a "
                  "command has it)")


class _Damaged(Exception):
    """Raised inside `_open`: the file failed its integrity check."""


class SQLiteCache(BaseCache):
    """LLM responses stored in one SQLite file (WAL mode, safe across threads and
    processes).

    Damaged files are detected and never crash a model call:

    - When the cache opens it runs `PRAGMA quick_check` (about 0.17 s for 50,000
      entries, a 107 MB file, warm in the page cache). A file that fails it, or is
      not SQLite at all (overwritten with text), is renamed to
      `<name>.damaged-<UTC time>` (with its `-wal`/`-shm` files), a warning names the
      moved file, and a fresh cache starts in its place. Moving rather than deleting
      keeps what was cached for salvage (`sqlite3 FILE .recover`), so nothing is lost
      silently; starting fresh rather than raising keeps a long eval running, at the
      price of repeating model calls the damaged file held. A zero-byte file is a valid
      empty SQLite database and is simply used. Only when the file cannot be moved
      or opened at all (permissions, a folder in its place) does opening raise
      `CacheError`, saying how to run without the cache.
    - Damage that appears later, or that `quick_check` cannot see (a flipped byte
      inside a stored value, a damaged index entry), makes a lookup a miss and a write
      a skip: each is logged (the 1st, 10th, 100th... time) and counted in
      `read_errors` / `write_errors`. A stored row is returned only if its key and
      `llm_string` match the request, so a damaged index cannot replay another
      request's answer.

    Args:
        path: the SQLite file (created if missing), or ":memory:".
        check: run the integrity check when opening (skip only for huge caches on slow
            disks, where its cost, linear in the file's size, matters).

    Attributes:
        hits: lookups answered from the cache since this object was created.
        misses: lookups that were not (read errors included).
        read_errors: lookups that failed (damaged row or file) and became misses.
        write_errors: writes that failed (damaged file, disk full, locked) and were
            skipped.
        moved_aside: where a damaged file found at open was moved, else None.

    Example:
        >>> cache = SQLiteCache(":memory:")
        >>> cache.lookup("prompt", "llm") is None
        True
        >>> cache.stats()["read_errors"]
        0
    """

    def __init__(self, path: str | Path, *, check: bool = True) -> None:
        self.path = str(path)
        self.hits = 0
        self.misses = 0
        self.read_errors = 0
        self.write_errors = 0
        self.moved_aside: Path | None = None
        self._lock = threading.Lock()
        if self.path == ":memory:":
            self._conn = self._open(check=False)
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open(check=check)
        except _Damaged as damage:
            self.moved_aside = self._move_aside(damage)
            try:
                self._conn = self._open(check=False)
            except _Damaged as e:  # replaced again meanwhile, by something not SQLite
                raise CacheError(f"cannot start a fresh response cache at {self.path} "
                                 f"after moving a damaged one aside: {e.args[0]}; "
                                 f"{_WITHOUT_CACHE}") from e

    def _open(self, *, check: bool) -> sqlite3.Connection:
        """A connection with the schema in place.

        Raises:
            _Damaged: the file is damaged or not a database.
            CacheError: it cannot be opened for another reason.
        """
        before = _identity(self.path)
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        except sqlite3.Error as e:
            raise CacheError(f"cannot open the response cache {self.path}: {e}; fix the "
                             f"file's permissions or location, or {_WITHOUT_CACHE}") from e
        try:
            if check:
                rows = conn.execute("PRAGMA quick_check(1)").fetchall()
                if rows != [("ok",)]:
                    found = " ".join(str(rows[0][0]).split()) if rows else "no answer"
                    raise _Damaged(f"quick_check: {found}", before)
            with conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as e:
            conn.close()
            if _is_damage(e):
                raise _Damaged(str(e), before) from e
            raise CacheError(f"cannot open the response cache {self.path}: {e}; "
                             f"fix the file's permissions or location, or "
                             f"{_WITHOUT_CACHE}") from e
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self, damage: _Damaged) -> Path | None:
        """Rename the damaged file (and its WAL and shared-memory files); None if another
        process already did."""
        reason, before = damage.args
        if _identity(self.path) != before or before is None:
            # Someone else moved it (and perhaps started a fresh cache) meanwhile.
            logger.warning("response cache %s was damaged (%s); another process has "
                           "already moved it aside", self.path, reason)
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = Path(f"{self.path}.damaged-{stamp}")
        n = 1
        while target.exists():
            target = Path(f"{self.path}.damaged-{stamp}-{n}")
            n += 1
        try:
            os.replace(self.path, target)
            # A WAL left beside a fresh file would be replayed into it: it goes along,
            # keeping its name paired with the moved file.
            for suffix in ("-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.replace(self.path + suffix, f"{target}{suffix}")
        except OSError as e:
            raise CacheError(
                f"the response cache {self.path} is damaged ({reason}) and could not be "
                f"moved aside ({e}); move or delete it (and its -wal/-shm files), or "
                f"{_WITHOUT_CACHE}") from e
        logger.warning("response cache %s is damaged (%s): moved it to %s and started a "
                       "fresh cache; the model calls it held will be made again "
                       "(`sqlite3 %s .recover` may salvage it)", self.path, reason, target,
                       target)
        return target

    @staticmethod
    def _key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        key = self._key(prompt, llm_string)
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT key, llm_string, value FROM responses WHERE key = ?", (key,)
                ).fetchone()
            if row is None:
                found = None
            elif tuple(row[:2]) != (key, llm_string):
                # Only a damaged index leads a lookup to another request's row.
                raise ValueError(f"row found for key {key[:12]} belongs to another request")
            else:
                found = [_decode(item) for item in json.loads(row[2])]
        except (sqlite3.Error, ValueError, KeyError, TypeError) as e:
            # json and pydantic errors are ValueErrors; a bad UTF-8 column is an
            # sqlite3.OperationalError.
            self._failed("read", e)
            found = None
        with self._lock:
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
        return found

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        value = json.dumps([_encode(gen) for gen in return_val])
        key = self._key(prompt, llm_string)
        try:
            with self._lock, self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO responses (key, llm_string, value, created) "
                    "VALUES (?, ?, ?, ?)",
                    (key, llm_string, value, time.time()),
                )
        except sqlite3.Error as e:
            self._failed("write", e)

    def _failed(self, kind: str, error: Exception) -> None:
        """Count a failed read or write; log the 1st, 10th, 100th... of each kind."""
        with self._lock:
            if kind == "read":
                self.read_errors += 1
                count = self.read_errors
            else:
                self.write_errors += 1
                count = self.write_errors
        if str(count).rstrip("0") == "1":  # 1, 10, 100, ...
            outcome = "treated as a miss" if kind == "read" else "response not stored"
            hint = ""
            if isinstance(error, sqlite3.DatabaseError) and _is_damage(error):
                hint = ("; the file looks damaged: the next process to open it checks it "
                        f"and moves it aside, or {_WITHOUT_CACHE}")
            logger.warning("response cache %s: %s failed (%s: %s), %s; %d %s error(s) so "
                           "far%s", self.path, kind, type(error).__name__, error, outcome,
                           count, kind, hint)

    def clear(self, **kwargs: Any) -> None:
        """Delete every stored response.

        Raises:
            CacheError: the file cannot be written (damaged, read-only).
        """
        try:
            with self._lock, self._conn:
                self._conn.execute("DELETE FROM responses")
        except sqlite3.Error as e:
            raise CacheError(f"cannot clear the response cache {self.path}: {e}; delete "
                             f"the file instead, or {_WITHOUT_CACHE}") from e

    def entries(self) -> int:
        """Responses stored on disk.

        Raises:
            CacheError: the file cannot be read (damaged since it was opened).
        """
        try:
            with self._lock:
                return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
        except sqlite3.Error as e:
            raise CacheError(f"cannot count the entries of the response cache {self.path}: "
                             f"{e}; move or delete the file, or {_WITHOUT_CACHE}") from e

    def stats(self) -> dict[str, Any]:
        """Entries on disk (None, with `error`, if they cannot be counted), this
        process's hit/miss/error counts, and where a damaged file was moved."""
        out: dict[str, Any] = {"path": self.path}
        try:
            out["entries"] = self.entries()
        except CacheError as e:
            out["entries"], out["error"] = None, str(e)
        out.update(hits=self.hits, misses=self.misses, read_errors=self.read_errors,
                   write_errors=self.write_errors,
                   moved_aside=str(self.moved_aside) if self.moved_aside else None)
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """True for "database disk image is malformed" and "file is not a database"."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _DAMAGE_CODES


def _identity(path: str) -> tuple[int, int] | None:
    """The file's (device, inode), to tell whether another process replaced it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


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
