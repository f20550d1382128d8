"""The persistent SQLite response cache behind LangChain's cache interface."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration

from aisle.errors import CacheError
from aisle.llm import FakeChatModel, SQLiteCache, load_chat_model, track_usage
from aisle.settings import Settings
from aisle.testing import StubServer


def _model(stub: StubServer, cache: SQLiteCache, **kw: object):  # type: ignore[no-untyped-def]
    return load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                           settings=Settings(cache_enabled=False), cache=cache, **kw)


def test_second_identical_call_is_a_hit_and_costs_no_request(
    stub: StubServer, tmp_path: Path
) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite")
    model = _model(stub, cache)
    with track_usage() as usage:
        first = model.invoke("hello")
        second = model.invoke("hello")
    assert first.content == second.content
    assert stub.stats.requests == 1
    assert (cache.hits, cache.misses) == (1, 1)
    assert [r.cache_hit for r in usage.records] == [False, True]


def test_cache_persists_across_processes(stub: StubServer, tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    _model(stub, SQLiteCache(path)).invoke("hello")
    reopened = SQLiteCache(path)
    _model(stub, reopened).invoke("hello")
    assert stub.stats.requests == 1
    assert reopened.hits == 1
    assert reopened.entries() == 1


def test_key_covers_parameters_but_not_credentials_or_address(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite")
    with StubServer() as a, StubServer() as b:
        load_chat_model("openai:m", base_url=a.base_url, api_key="key-1",
                        settings=Settings(), cache=cache).invoke("hi")
        # Another address and another key: same request, so a hit.
        load_chat_model("openai:m", base_url=b.base_url, api_key="key-2",
                        settings=Settings(), cache=cache).invoke("hi")
        assert (a.stats.requests, b.stats.requests) == (1, 0)
        # A different temperature, max_tokens, model or prompt is a different request.
        load_chat_model("openai:m", base_url=b.base_url, api_key="k", temperature=0.5,
                        settings=Settings(), cache=cache).invoke("hi")
        load_chat_model("openai:m", base_url=b.base_url, api_key="k", max_tokens=7,
                        settings=Settings(), cache=cache).invoke("hi")
        load_chat_model("openai:other", base_url=b.base_url, api_key="k",
                        settings=Settings(), cache=cache).invoke("hi")
        load_chat_model("openai:m", base_url=b.base_url, api_key="k",
                        settings=Settings(), cache=cache).invoke("hi there")
        assert b.stats.requests == 4
    stored = cache._conn.execute("SELECT llm_string FROM responses").fetchall()
    assert stored
    assert all("key-1" not in s and "key-2" not in s and "127.0.0.1" not in s
               for (s,) in stored)


def test_response_format_is_part_of_the_key(stub: StubServer, tmp_path: Path) -> None:
    model = _model(stub, SQLiteCache(tmp_path / "c.sqlite"))
    fmt = {"type": "json_schema", "json_schema": {"name": "A", "schema": {
        "type": "object", "properties": {"a": {"type": "string"}}}}}
    model.invoke("hi")
    model.bind(response_format=fmt).invoke("hi")
    assert stub.stats.requests == 2


def test_cache_off_means_every_call_reaches_the_server(stub: StubServer) -> None:
    model = load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                            settings=Settings(cache_enabled=False))
    model.invoke("x")
    model.invoke("x")
    assert stub.stats.requests == 2


def test_settings_switch_cache_on(stub: StubServer, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, cache_enabled=True)
    model = load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                            settings=settings)
    model.invoke("x")
    model.invoke("x")
    assert stub.stats.requests == 1
    assert (tmp_path / "cache.sqlite").is_file()


def test_works_with_any_langchain_chat_model(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite")
    model = FakeChatModel(responses=["only once"], cache=cache)
    assert model.invoke("q").content == "only once"
    assert model.invoke("q").content == "only once"  # the script has one reply
    assert cache.hits == 1


# -- damaged state ---------------------------------------------------------------------
# A cache is a shortcut: damage found when it opens moves the file aside (named in a
# warning) and starts a fresh one; damage found later makes lookups misses and writes
# skips, logged and counted. Nothing crashes a model call.

PAGE = 4096


def _filled(path: Path, n: int = 300) -> SQLiteCache:
    """A real cache of n responses of ~2 KB (about one table page each), closed so its
    WAL is checkpointed into the file."""
    cache = SQLiteCache(path)
    for i in range(n):
        cache.update(f"prompt {i}", "llm", [ChatGeneration(
            message=AIMessage(content=f"answer {i}: " + "lorem ipsum " * 170))])
    cache.close()
    return cache


def _truncate_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2 + 123)


def _truncate_to_50_bytes(path: Path) -> None:
    os.truncate(path, 50)


def _overwrite_with_text(path: Path) -> None:
    path.write_text("this is not a database\n" * 100)


def _damage_middle_pages(path: Path) -> None:
    """Four whole pages in the middle of the file overwritten with junk."""
    middle = path.stat().st_size // PAGE // 2
    with path.open("r+b") as f:
        f.seek(middle * PAGE)
        f.write(random.Random(7).randbytes(4 * PAGE))


def _quick_check(path: Path) -> str:
    """`PRAGMA quick_check` on a raw connection: "ok", its first finding, or the error
    it raised."""
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA quick_check").fetchall()[0][0])
    except sqlite3.DatabaseError as e:
        return f"raised: {e}"
    finally:
        conn.close()


@pytest.mark.parametrize("damage", [_truncate_half, _truncate_to_50_bytes,
                                    _overwrite_with_text, _damage_middle_pages])
def test_a_damaged_file_is_moved_aside_and_a_fresh_cache_starts(
    damage: Callable[[Path], None], stub: StubServer, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "c.sqlite"
    _filled(path)
    assert _quick_check(path) == "ok"
    damage(path)
    assert _quick_check(path) != "ok"  # the check really sees this damage
    damaged_bytes = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="aisle.llm.cache"):
        cache = SQLiteCache(path)
    assert cache.moved_aside is not None
    assert cache.moved_aside.name.startswith("c.sqlite.damaged-")
    assert cache.moved_aside.read_bytes() == damaged_bytes  # kept, not deleted
    assert str(cache.moved_aside) in caplog.text
    assert cache.entries() == 0
    model = _model(stub, cache)
    model.invoke("hello")
    model.invoke("hello")
    assert stub.stats.requests == 1
    assert cache.stats()["moved_aside"] == str(cache.moved_aside)
    assert SQLiteCache(path).moved_aside is None  # the fresh file passes the check


def test_the_wal_of_a_damaged_file_goes_with_it(tmp_path: Path) -> None:
    """Another process still holding the damaged cache keeps its WAL alive: the WAL is
    moved with the file (a WAL left beside the fresh file would be replayed into it)."""
    path = tmp_path / "c.sqlite"
    _filled(path)
    holder = SQLiteCache(path)
    holder.update("late", "llm", [ChatGeneration(message=AIMessage(content="in the wal"))])
    assert Path(f"{path}-wal").stat().st_size > 0
    _damage_middle_pages(path)
    try:
        fresh = SQLiteCache(path)
        assert fresh.moved_aside is not None
        assert Path(f"{fresh.moved_aside}-wal").is_file()
        assert fresh.entries() == 0
        assert fresh.lookup("late", "llm") is None
        assert fresh.read_errors == 0
        # The holder goes on with the moved file, without crashing.
        assert holder.lookup("late", "llm") is not None
    finally:
        holder.close()


def test_a_zero_byte_file_is_an_empty_cache(stub: StubServer, tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.touch()
    cache = SQLiteCache(path)
    assert cache.moved_aside is None
    assert list(tmp_path.glob("*.damaged-*")) == []
    _model(stub, cache).invoke("hello")
    assert cache.entries() == 1


def test_damage_found_after_opening_makes_misses_not_crashes(
    stub: StubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The original symptom: entries are counted, but reading the damaged pages raised
    `database disk image is malformed` inside the model call."""
    path = tmp_path / "c.sqlite"
    _filled(path)
    _damage_middle_pages(path)
    cache = SQLiteCache(path, check=False)  # as if the damage happened after opening
    assert cache.entries() == 300  # counting does not touch the damaged pages
    with caplog.at_level(logging.WARNING, logger="aisle.llm.cache"):
        found = [cache.lookup(f"prompt {i}", "llm") for i in range(300)]
    assert cache.read_errors > 0
    assert found.count(None) == cache.read_errors == cache.misses
    assert cache.hits == 300 - cache.read_errors
    assert "database disk image is malformed" in caplog.text
    assert "AISLE_CACHE_ENABLED=false" in caplog.text
    # Logged on the 1st, 10th, 100th... failure, not on every one.
    assert caplog.text.count("read failed") == len(str(cache.read_errors))
    bad = next(i for i, f in enumerate(found) if f is None)
    _model(stub, cache).invoke(f"prompt {bad}")  # neither the lookup nor the write raises
    assert stub.stats.requests == 1


def test_an_undecodable_row_is_a_miss_and_the_next_answer_replaces_it(
    stub: StubServer, tmp_path: Path
) -> None:
    """Bytes flipped inside a stored value pass quick_check (it checks structure, not
    content): the lookup fails to decode, counts a read error and misses."""
    path = tmp_path / "c.sqlite"
    _filled(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"answer 150: ") + 20
    data[at:at + 8] = b"\xff" * 8  # invalid UTF-8 in the middle of a value
    path.write_bytes(bytes(data))
    assert _quick_check(path) == "ok"
    cache = SQLiteCache(path)
    assert cache.moved_aside is None
    assert cache.lookup("prompt 150", "llm") is None
    assert cache.lookup("prompt 151", "llm") is not None
    assert (cache.read_errors, cache.misses, cache.hits) == (1, 1, 1)
    cache.update("prompt 150", "llm", [ChatGeneration(message=AIMessage(content="again"))])
    again = cache.lookup("prompt 150", "llm")
    assert again is not None
    assert again[0].text == "again"


def test_a_row_of_another_request_is_never_replayed(tmp_path: Path) -> None:
    """A damaged index entry could point a key at another request's row: the stored key
    and llm_string must match the request."""
    cache = SQLiteCache(tmp_path / "c.sqlite")
    cache.update("p", "llm-a", [ChatGeneration(message=AIMessage(content="for a"))])
    with cache._conn:
        cache._conn.execute("UPDATE responses SET key = ?", (cache._key("p", "llm-b"),))
    assert cache.lookup("p", "llm-b") is None
    assert cache.read_errors == 1


@pytest.mark.parametrize("breakage", ["bad_json", "bad_shape"])
def test_a_row_that_decodes_badly_is_a_miss(breakage: str, tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite")
    cache.update("p", "llm", [ChatGeneration(message=AIMessage(content="x"))])
    value = "{not json" if breakage == "bad_json" else '[{"message": {"type": "nope"}}]'
    with cache._conn:
        cache._conn.execute("UPDATE responses SET value = ?", (value,))
    assert cache.lookup("p", "llm") is None
    assert (cache.read_errors, cache.misses) == (1, 1)


def test_a_failed_write_is_skipped_and_counted(
    stub: StubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.sqlite"
    cache = SQLiteCache(path)
    cache._conn.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(path)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the timeout
    try:
        with caplog.at_level(logging.WARNING, logger="aisle.llm.cache"):
            answer = _model(stub, cache).invoke("hello")
    finally:
        other.rollback()
        other.close()
    assert answer.content
    assert cache.write_errors == 1
    assert "response not stored" in caplog.text
    assert cache.entries() == 0
    assert cache.stats()["write_errors"] == 1


def test_concurrent_writers_and_openers_are_fine(tmp_path: Path) -> None:
    """Writers on separate connections (as separate processes would be) while new caches
    open and check the file: nothing is taken for damage, nothing is lost."""
    path = tmp_path / "c.sqlite"
    writers = [SQLiteCache(path) for _ in range(3)]

    def write(w: int) -> None:
        for i in range(40):
            writers[w].update(f"p{w}-{i}", "llm", [ChatGeneration(
                message=AIMessage(content="y" * 500))])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    opened = []
    while any(t.is_alive() for t in threads):
        opened.append(SQLiteCache(path))
    for t in threads:
        t.join()
    assert all(c.moved_aside is None for c in opened)
    assert sum(w.write_errors for w in writers) == 0
    assert list(tmp_path.glob("*.damaged-*")) == []
    assert SQLiteCache(path).entries() == 120


def test_a_cache_that_cannot_be_opened_says_how_to_go_on(tmp_path: Path) -> None:
    folder = tmp_path / "c.sqlite"
    folder.mkdir()
    with pytest.raises(CacheError, match=r"AISLE_CACHE_ENABLED=false") as info:
        SQLiteCache(folder)
    assert str(folder) in str(info.value)


def test_a_damaged_file_that_cannot_be_moved_says_how_to_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.sqlite"
    _overwrite_with_text(path)

    def refuse(src: object, dst: object) -> None:
        raise PermissionError("read-only folder")

    monkeypatch.setattr("aisle.llm.cache.os.replace", refuse)
    with pytest.raises(CacheError, match=r"is damaged .* could not be moved aside") as info:
        SQLiteCache(path)
    assert "AISLE_CACHE_ENABLED=false" in str(info.value)
    assert "--no-cache" in str(info.value)
