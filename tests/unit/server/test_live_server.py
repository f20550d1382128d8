"""A real `aisle serve` on 127.0.0.1 (a subprocess, uvicorn, SQLite on disk): the
`langgraph-sdk` client against it (assistants, threads, runs that wait and stream,
state, deletion), threads that survive a server restart, and a bounded load test that
reports p50/p99 latency and errors and checks that no request is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aisle.testing import live_group_members

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "build" / "test-artifacts"
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    home: Path
    db: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        port = self.url.rsplit(":", 1)[1]
        env = {**os.environ, "AISLE_HOME": str(self.home), "AISLE_CACHE_ENABLED": "false"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aisle.cli", "serve", "--port", port, "--db", str(self.db),
                 "--max-runs-per-key", "64"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"aisle serve exited with {self.proc.returncode}:\n"
                            f"{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"aisle serve did not answer in 60 s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=20)
        alive = live_group_members(self.proc.pid)
        if alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
            pytest.fail(f"aisle serve left processes {alive} behind")
        self.proc = None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("aisle-serve")
    server = LiveServer(url=f"http://127.0.0.1:{_free_port()}", home=folder / "home",
                        db=folder / "serve.sqlite", log=folder / "serve.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_the_langgraph_sdk_client_works_against_it(live: LiveServer) -> None:
    from langgraph_sdk import get_client

    async with get_client(url=live.url, timeout=60.0) as client:
        assistants = await client.assistants.search()
        assert "assistant" in {a["graph_id"] for a in assistants}
        assistant = await client.assistants.get("assistant")
        schemas = await client.assistants.get_schemas(assistant["assistant_id"])
        assert "messages" in schemas["input_schema"]["properties"]

        thread = await client.threads.create(metadata={"demo": "sdk"})
        tid = thread["thread_id"]
        out = await client.runs.wait(tid, "assistant", input=HELLO,
                                     context={"model": "fake:schema"})
        assert isinstance(out, dict)
        assert out["messages"][0]["content"] == "hello"

        parts = [part async for part in client.runs.stream(
            tid, "assistant", input={"messages": [{"role": "user", "content": "more"}]},
            context={"model": "fake:schema"}, stream_mode=["updates", "values"])]
        events = [p.event for p in parts]
        assert events[0] == "metadata"
        assert "updates" in events
        assert "values" in events

        state = await client.threads.get_state(tid)
        humans = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
        assert humans == ["hello", "more"]
        runs = await client.runs.list(tid)
        assert [r["status"] for r in runs] == ["success", "success"]

        # A failed run raises through the SDK, and the thread is as it was.
        with pytest.raises(Exception, match="nosuch"):  # the SDK raises a bare Exception
            await client.runs.wait(tid, "assistant", input=HELLO,
                                   context={"model": "nosuch:model"})
        assert (await client.threads.get_state(tid))["values"] == state["values"]

        await client.threads.delete(tid)
        with pytest.raises(httpx.HTTPStatusError) as info:
            await client.threads.get(tid)
        assert info.value.response.status_code == 404


async def test_threads_survive_a_server_restart(live: LiveServer) -> None:
    from langgraph_sdk import get_client

    async with get_client(url=live.url, timeout=60.0) as client:
        thread = await client.threads.create()
        await client.runs.wait(thread["thread_id"], "assistant", input=HELLO,
                               context={"model": "fake:schema"})
        before = await client.threads.get_state(thread["thread_id"])
    live.stop()
    live.start()
    async with get_client(url=live.url, timeout=60.0) as client:
        after = await client.threads.get_state(thread["thread_id"])
        assert after["values"] == before["values"]
        assert after["checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]


async def test_bounded_load_reports_latency_and_loses_nothing(live: LiveServer) -> None:
    """200 chat runs, 20 at a time, each on its own thread: every run answers its own
    message; p50/p99 latency and the error count are printed and kept as an artifact."""
    total, concurrency = 200, 20
    latencies: list[float] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async with httpx.AsyncClient(base_url=live.url, timeout=60.0) as c:
        async def one(n: int) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    tid = (await c.post("/threads", json={})).json()["thread_id"]
                    r = await c.post(f"/threads/{tid}/runs/wait", json={
                        "assistant_id": "assistant", "context": {"model": "fake:schema"},
                        "input": {"messages": [{"role": "user", "content": f"req {n}"}]}})
                    r.raise_for_status()
                    first = r.json()["messages"][0]["content"]
                    if first != f"req {n}":
                        errors.append(f"request {n} got {first!r}")
                except (httpx.HTTPError, KeyError, ValueError) as e:
                    errors.append(f"request {n}: {e!r}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(total)))
        wall = time.perf_counter() - started
        threads = (await c.post("/threads/search", json={"limit": 1000})).json()

    latencies.sort()
    report = {"requests": total, "concurrency": concurrency, "errors": len(errors),
              "wall_s": round(wall, 2), "requests_per_s": round(total / wall, 1),
              "p50_ms": round(statistics.median(latencies) * 1000, 1),
              "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1)}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "serve-load.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\naisle serve load test: {report}")
    assert errors == []
    assert len(latencies) == total
    ours = {t["thread_id"] for t in threads}
    assert len(ours) >= total  # every thread the load made is kept
