"""The persistent SQLite response cache behind LangChain's cache interface."""

from __future__ import annotations

from pathlib import Path

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
