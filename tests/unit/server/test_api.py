"""`aisle serve`'s app, in-process (httpx on the ASGI app): every route, bad input
(404, 409, 413, 422, 429), API keys (401, 403; the health check open), a run that fails
inside a graph (structured error, the thread's state put back), threads that outlive
an app restart, and 20 concurrent chat sessions with no cross-talk, on fake models."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from aisle.server import ServeConfig, create_app

HELLO = {"messages": [{"role": "user", "content": "hello"}]}
CHAT = {"assistant_id": "assistant", "input": HELLO, "context": {"model": "fake:schema"}}


@asynccontextmanager
async def client(tmp_path: Path, **config: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServeConfig(db=tmp_path / "serve.sqlite", **config))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://aisle") as c:
        yield c


async def _thread(c: httpx.AsyncClient, **body: Any) -> str:
    r = await c.post("/threads", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["thread_id"])


def _texts(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"] if m["type"] in ("human", "ai")
            and m["content"]]


async def test_health_info_assistants_and_schemas(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        health = (await c.get("/healthz")).json()
        assert health["ok"] is True
        assert {"arag", "ensemble", "carts", "gdo", "assistant"} <= set(health["graphs"])
        assert (await c.get("/info")).status_code == 200
        found = (await c.post("/assistants/search", json={})).json()
        names = [a["graph_id"] for a in found]
        assert "assistant" in names
        one = (await c.post("/assistants/search", json={"graph_id": "carts"})).json()
        assert [a["graph_id"] for a in one] == ["carts"]
        by_id = (await c.get(f"/assistants/{one[0]['assistant_id']}")).json()
        assert by_id == one[0]
        assert one[0]["assistant_id"] == str(uuid.uuid5(
            uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "carts"))
        schemas = (await c.get("/assistants/assistant/schemas")).json()
        assert "messages" in schemas["input_schema"]["properties"]
        assert "games" in schemas["context_schema"]["properties"]
        drawn = (await c.get("/assistants/assistant/graph")).json()
        assert "route -.-> chat;" in drawn["mermaid"]
        assert (await c.get("/openapi.json")).json()["info"]["title"] == "aisle"


async def test_a_thread_keeps_its_messages_across_runs_and_lists_its_runs(
        tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        tid = await _thread(c, metadata={"user": "u1"})
        first = (await c.post(f"/threads/{tid}/runs/wait", json=CHAT)).json()
        assert _texts(first)[0] == "hello"
        second = (await c.post(f"/threads/{tid}/runs/wait", json={
            **CHAT, "input": {"messages": [{"role": "user", "content": "again"}]}})).json()
        texts = _texts(second)
        assert texts[0] == "hello"
        assert "again" in texts
        state = (await c.get(f"/threads/{tid}/state")).json()
        assert _texts(state["values"]) == texts
        assert state["checkpoint"]["checkpoint_id"]
        history = (await c.post(f"/threads/{tid}/history", json={"limit": 50})).json()
        assert len(history) > 2
        runs = (await c.get(f"/threads/{tid}/runs")).json()
        assert [r["status"] for r in runs] == ["success", "success"]
        run = (await c.get(f"/threads/{tid}/runs/{runs[0]['run_id']}")).json()
        assert run["thread_id"] == tid
        thread = (await c.get(f"/threads/{tid}")).json()
        assert thread["status"] == "idle"
        assert thread["metadata"]["user"] == "u1"
        assert _texts(thread["values"]) == texts
        found = (await c.post("/threads/search", json={"metadata": {"user": "u1"}})).json()
        assert [t["thread_id"] for t in found] == [tid]


async def test_streaming_sends_metadata_then_updates_and_custom_events(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        tid = await _thread(c)
        events: list[tuple[str, Any]] = []
        async with c.stream("POST", f"/threads/{tid}/runs/stream",
                            json={**CHAT, "stream_mode": ["updates", "values"]}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            event = None
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: "):
                    events.append((str(event), json.loads(line[len("data: "):])))
        assert events[0][0] == "metadata"
        assert events[0][1]["thread_id"] == tid
        updates = [d for e, d in events if e == "updates"]
        assert list(updates[0]) == ["route"]
        assert [e for e, _ in events if e == "values"]
        run = (await c.get(f"/threads/{tid}/runs/{events[0][1]['run_id']}")).json()
        assert run["status"] == "success"


async def test_background_run_and_join(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        tid = await _thread(c)
        run = (await c.post(f"/threads/{tid}/runs", json=CHAT)).json()
        assert run["status"] in ("pending", "running")
        joined = (await c.get(f"/threads/{tid}/runs/{run['run_id']}/join")).json()
        assert _texts(joined)[0] == "hello"
        done = (await c.get(f"/threads/{tid}/runs/{run['run_id']}")).json()
        assert done["status"] == "success"


async def test_stateless_runs(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        out = (await c.post("/runs/wait", json=CHAT)).json()
        assert _texts(out)[0] == "hello"
        async with c.stream("POST", "/runs/stream", json=CHAT) as r:
            body = "".join([chunk async for chunk in r.aiter_text()])
        assert body.startswith("event: metadata")
        assert (await c.post("/threads/search", json={})).json() == []


async def test_a_failing_run_is_a_structured_error_and_the_thread_keeps_its_state(
        tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        tid = await _thread(c)
        before = (await c.post(f"/threads/{tid}/runs/wait", json=CHAT)).json()
        # The context validates, but the model cannot be loaded: the run fails inside.
        failed = (await c.post(f"/threads/{tid}/runs/wait", json={
            **CHAT, "input": {"messages": [{"role": "user", "content": "boom"}]},
            "context": {"model": "nosuchprovider:model"}})).json()
        assert set(failed) == {"__error__"}
        assert failed["__error__"]["error"]
        assert "nosuchprovider" in failed["__error__"]["message"]
        state = (await c.get(f"/threads/{tid}/state")).json()
        assert state["values"] == before
        runs = (await c.get(f"/threads/{tid}/runs")).json()
        assert runs[0]["status"] == "error"
        # The thread goes on from its earlier state.
        after = (await c.post(f"/threads/{tid}/runs/wait", json={
            **CHAT, "input": {"messages": [{"role": "user", "content": "again"}]}})).json()
        assert "boom" not in _texts(after)
        # A first run that fails leaves an empty thread.
        fresh = await _thread(c)
        await c.post(f"/threads/{fresh}/runs/wait", json={
            **CHAT, "context": {"model": "nosuchprovider:model"}})
        assert (await c.get(f"/threads/{fresh}/state")).json()["values"] == {}
        # A graph that fails on its input (CARTS needs items) streams an error event.
        async with c.stream("POST", f"/threads/{fresh}/runs/stream", json={
                "assistant_id": "carts", "input": {"items": [], "max_words": 3},
                "context": {"model": "fake:schema"}}) as r:
            body = "".join([chunk async for chunk in r.aiter_text()])
        assert "event: error" in body


@pytest.mark.parametrize(("method", "path", "body", "status", "fragment"), [
    ("get", "/assistants/nope", None, 404, "no assistant 'nope'"),
    ("get", "/threads/nope", None, 404, "no thread 'nope'"),
    ("get", "/threads/nope/state", None, 404, "no thread"),
    ("delete", "/threads/nope", None, 404, "no thread"),
    ("post", "/threads/nope/runs/wait", CHAT, 404, "no thread 'nope'"),
    ("post", "/runs/wait", {**CHAT, "assistant_id": "nope"}, 404, "no assistant"),
    ("post", "/runs/wait", {"input": HELLO}, 422, "assistant_id"),
    ("post", "/runs/wait", {**CHAT, "context": {"model": "fake:schema", "k": 0}}, 422,
     "k: Input should be greater than or equal to 1"),
    ("post", "/runs/wait", {**CHAT, "context": {"modle": "x"}}, 422, "modle"),
    ("post", "/runs/wait", {**CHAT, "input": {"mesages": []}}, 422, "unknown: mesages"),
    ("post", "/runs/wait", {**CHAT, "stream_mode": "sideways"}, 422, "stream_mode"),
    ("post", "/threads/search", {"limit": 0}, 422, "limit"),
])
async def test_bad_requests_are_clear_4xx(tmp_path: Path, method: str, path: str,
                                          body: Any, status: int, fragment: str) -> None:
    async with client(tmp_path) as c:
        r = await c.request(method, path, json=body)
        assert r.status_code == status, r.text
        assert fragment in r.text


async def test_malformed_json_and_oversized_bodies(tmp_path: Path) -> None:
    async with client(tmp_path, max_body_bytes=2048) as c:
        r = await c.post("/runs/wait", content=b"{not json",
                         headers={"content-type": "application/json"})
        assert r.status_code == 422
        big = {**CHAT, "input": {"messages": [{"role": "user", "content": "x" * 5000}]}}
        r = await c.post("/runs/wait", json=big)
        assert r.status_code == 413
        assert "2048 bytes" in r.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 1000

        r = await c.post("/runs/wait", content=chunks(),
                         headers={"content-type": "application/json"})
        assert r.status_code == 413


async def test_a_second_run_on_a_busy_thread_is_refused(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        tid = await _thread(c)
        run = (await c.post(f"/threads/{tid}/runs", json=CHAT)).json()
        second = await c.post(f"/threads/{tid}/runs/wait", json=CHAT)
        assert second.status_code == 409
        assert "already running" in second.text
        await c.get(f"/threads/{tid}/runs/{run['run_id']}/join")
        assert (await c.post(f"/threads/{tid}/runs/wait", json=CHAT)).status_code == 200


async def test_api_keys_guard_every_route_but_health(tmp_path: Path) -> None:
    async with client(tmp_path, api_keys=("k1", "k2")) as c:
        assert (await c.get("/healthz")).status_code == 200
        for path in ("/info", "/openapi.json", "/docs"):
            assert (await c.get(path)).status_code == 401
        r = await c.post("/assistants/search", json={}, headers={"x-api-key": "wrong"})
        assert r.status_code == 403
        assert "unknown key" in r.text
        ok = await c.post("/runs/wait", json=CHAT, headers={"x-api-key": "k2"})
        assert ok.status_code == 200


async def test_each_key_has_its_own_concurrency_limit(tmp_path: Path) -> None:
    async with client(tmp_path, api_keys=("a", "b"), max_runs_per_key=1) as c:
        key_a, key_b = {"x-api-key": "a"}, {"x-api-key": "b"}
        tids = []
        for _ in range(3):
            r = await c.post("/threads", json={}, headers=key_a)
            tids.append(r.json()["thread_id"])
        first = (await c.post(f"/threads/{tids[0]}/runs", json=CHAT, headers=key_a)).json()
        refused = await c.post(f"/threads/{tids[1]}/runs/wait", json=CHAT, headers=key_a)
        assert refused.status_code == 429
        other = await c.post(f"/threads/{tids[2]}/runs/wait", json=CHAT, headers=key_b)
        assert other.status_code == 200
        await c.get(f"/threads/{tids[0]}/runs/{first['run_id']}/join", headers=key_a)


async def test_runs_over_the_limit_get_429_with_retry_after(tmp_path: Path) -> None:
    async with client(tmp_path, max_runs_per_key=1) as c:
        t1, t2 = await _thread(c), await _thread(c)
        first = (await c.post(f"/threads/{t1}/runs", json=CHAT)).json()
        refused = await c.post(f"/threads/{t2}/runs/wait", json=CHAT)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        await c.get(f"/threads/{t1}/runs/{first['run_id']}/join")
        assert (await c.post(f"/threads/{t2}/runs/wait", json=CHAT)).status_code == 200


async def test_threads_outlive_a_restart_and_deleting_one_forgets_it(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        tid = await _thread(c, metadata={"session": "s"})
        await c.post(f"/threads/{tid}/runs/wait", json=CHAT)
        before = (await c.get(f"/threads/{tid}/state")).json()["values"]
    async with client(tmp_path) as c:  # a new app on the same database
        assert (await c.get(f"/threads/{tid}/state")).json()["values"] == before
        out = (await c.post(f"/threads/{tid}/runs/wait", json={
            **CHAT, "input": {"messages": [{"role": "user", "content": "still here?"}]}})).json()
        assert _texts(out)[0] == "hello"
        assert (await c.delete(f"/threads/{tid}")).status_code == 204
        assert (await c.get(f"/threads/{tid}")).status_code == 404
        again = await c.post("/threads", json={"thread_id": tid})
        assert again.status_code == 200
        assert (await c.get(f"/threads/{tid}/state")).json()["values"] == {}


async def test_twenty_concurrent_sessions_do_not_cross_talk(tmp_path: Path) -> None:
    async with client(tmp_path, max_runs_per_key=32) as c:
        tids = [await _thread(c) for _ in range(20)]

        async def session(n: int, tid: str) -> list[str]:
            for turn in range(2):
                r = await c.post(f"/threads/{tid}/runs/wait", json={
                    **CHAT, "input": {"messages": [
                        {"role": "user", "content": f"session {n} turn {turn}"}]}})
                assert r.status_code == 200, r.text
            state = (await c.get(f"/threads/{tid}/state")).json()["values"]
            return [m["content"] for m in state["messages"] if m["type"] == "human"]

        seen = await asyncio.gather(*(session(n, t) for n, t in enumerate(tids)))
        for n, humans in enumerate(seen):
            assert humans == [f"session {n} turn 0", f"session {n} turn 1"]
