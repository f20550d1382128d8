"""The registered graphs run under the LangGraph API server (`langgraph dev`, in memory),
which hands each run its context as JSON: the graphs in `langgraph.json` load, a JSON
context of model specs is coerced into the graph's pydantic context, and a bad context
fails the run instead of being ignored.

Needs `langgraph-cli[inmem]` (the `dev` extra); without it the tests skip, and fail
under AISLE_REQUIRE_LANGGRAPH=1 (as `make test` sets), so CI cannot pass by skipping.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from aisle.graphs import graph_specs
from aisle.testing import live_group_members
from aisle.testing.outfits import SMALL_CATALOG, write_small_catalog_files

REPO = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT = 45.0

pytestmark = pytest.mark.slow

INSTALL_HINT = ("LangGraph's CLI is not installed: `.venv/bin/pip install -e '.[dev]'` "
                "(or `pip install 'langgraph-cli[inmem]'`)")


def _skip_or_fail(message: str) -> NoReturn:
    """Skip, or fail under AISLE_REQUIRE_LANGGRAPH=1 (the AISLE_REQUIRE_VLLM rule)."""
    if os.environ.get("AISLE_REQUIRE_LANGGRAPH") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _langgraph_executable() -> str:
    """The `langgraph` script beside this interpreter (or on PATH), with its in-memory
    server importable; skips or fails when either is missing."""
    if not all(importlib.util.find_spec(m) for m in ("langgraph_cli", "langgraph_api")):
        _skip_or_fail(INSTALL_HINT)
    script = Path(sys.executable).parent / "langgraph"
    found = str(script) if script.is_file() else shutil.which("langgraph")
    if found is None:
        _skip_or_fail(INSTALL_HINT)
    return found


def _server_config(state_dir: Path) -> Path:
    """The repo's `langgraph.json` with its paths made absolute, so the server can run in
    `state_dir`: `langgraph dev` resolves graph files and dependencies against its working
    directory and keeps its state in `./.langgraph_api` there."""
    config = json.loads((REPO / "langgraph.json").read_text())
    graphs = {}
    for name, target in config["graphs"].items():
        path, _, variable = target.rpartition(":")
        graphs[name] = f"{(REPO / path).resolve()}:{variable}" if path.endswith(".py") else target
    config["graphs"] = graphs
    config["dependencies"] = [str((REPO / d).resolve()) if d.startswith(".") else d
                              for d in config.get("dependencies", [])]
    path = state_dir / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    url: str
    state_dir: Path
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="module")
def langgraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`langgraph dev` on a free port, its working directory (and state) in a temporary
    folder; stopped afterwards, with its whole process group checked gone."""
    executable = _langgraph_executable()
    state_dir = tmp_path_factory.mktemp("langgraph-server")
    config = _server_config(state_dir)
    port = _free_port()
    repo_state = REPO / ".langgraph_api"
    repo_state_existed = repo_state.exists()
    server = Server(url=f"http://127.0.0.1:{port}", state_dir=state_dir,
                    log=state_dir / "server.log")
    # No reload: other edits in the tree must not restart the server mid-test. No
    # --allow-blocking: the fake models never block, and blocking I/O in a node is a bug.
    command = [executable, "dev", "--port", str(port), "--host", "127.0.0.1", "--no-browser",
               "--no-reload", "--config", str(config)]
    env = {**os.environ, "AISLE_HOME": str(state_dir / "aisle-home"),
           "AISLE_CACHE_ENABLED": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1",
           "LANGSMITH_TRACING": "false"}
    with server.log.open("wb") as log:
        proc = subprocess.Popen(command, cwd=state_dir, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(proc, server)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            pytest.fail(f"langgraph dev ignored SIGTERM for 15 s:\n{server.log_tail()}")
    alive = live_group_members(proc.pid)
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"langgraph dev processes {alive} were still alive after it stopped")
    assert (state_dir / ".langgraph_api").is_dir(), "the server kept its state elsewhere"
    assert repo_state.exists() == repo_state_existed, "the server wrote state into the repo"


def _wait_ready(proc: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/ok", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"langgraph dev did not answer /ok in {STARTUP_TIMEOUT:.0f} s:\n"
                f"{server.log_tail()}")


def _check_arag(inputs: dict[str, Any], output: dict[str, Any]) -> None:
    assert sorted(output["ranking"]) == sorted(c["id"] for c in inputs["candidates"])
    assert output["failures"] == []


def _check_ensemble(inputs: dict[str, Any], output: dict[str, Any]) -> None:
    assert set(output["result"]) == set(inputs["attributes"])
    assert all(a["error"] is None for a in output["answers"])


def _check_carts(inputs: dict[str, Any], output: dict[str, Any]) -> None:
    result = output["result"]
    assert result["satisfied"] is True
    assert len(result["title"].split()) <= inputs["max_words"]
    assert output["failures"] == []


def _check_gdo(inputs: dict[str, Any], output: dict[str, Any]) -> None:
    [stats] = output["stats"]
    assert stats["rows_in"] == len(inputs["rows"])
    assert stats["failed"] == 0
    assert output["output"]
    assert output["stopped"] is None


ARAG_INPUT = {"history": [{"id": "h1", "title": "Zelda"}],
              "candidates": [{"id": "a", "title": "Mario"}, {"id": "b", "title": "Halo"}]}
ENSEMBLE_INPUT = {"product": {"title": "Nike Pegasus 40 black", "category": "Shoes"},
                  "attributes": ["Brand", "Color"]}
CARTS_INPUT = {"items": ["Anker USB-C cable 2 m", "Belkin USB-C charging cable"],
               "max_words": 3}

GDO_INPUT = {"rows": [{"title": "Sony Alpha 7"}, {"title": "Lego castle"}]}
GDO_PIPELINE = {"steps": [{"op": "map", "name": "brand", "udp": {
    "prompt": "Brand of <t>{{ title }}</t>?", "output": {"brand": "string"}}}]}

ASSISTANT_INPUT = {"messages": [{"role": "user", "content": "recommend me a game"}]}


def _check_assistant(inputs: dict[str, Any], output: dict[str, Any]) -> None:
    messages = output["messages"]
    assert messages[0]["content"] == "recommend me a game"
    assert messages[-1]["type"] == "ai"
    assert messages[-1]["content"]
    assert output["intent"]["capability"] in {"recommend", "extract", "title", "chat"}


OUTFITS_INPUT = {"character": "Indiana Jones", "gender": "male", "age": "adult"}
# The catalog's folder (a dozen items) and its index, as JSON paths; MiniLM embeds them.
_OUTFITS_DIR = Path(tempfile.mkdtemp(prefix="aisle-outfits-"))
OUTFITS_CONTEXT = {"model": "fake:schema",
                   "catalog": str(write_small_catalog_files(_OUTFITS_DIR / "clothing")),
                   "index_dir": str(_OUTFITS_DIR / "index")}


def _check_outfits(inputs: dict[str, Any], output: dict[str, Any]) -> None:
    result = output["result"]
    (outfit,) = result["outfits"]
    found = [i for i in outfit["items"] if i["item_id"]]
    assert found
    assert all(i["item_id"] in SMALL_CATALOG for i in found)
    assert result["image"]["status"] == "skipped"


# graph -> (input, a valid JSON context on fake models, what the output must satisfy)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any],
                       Callable[[dict[str, Any], dict[str, Any]], None]]] = {
    "arag": (ARAG_INPUT, {"model": "fake:schema"}, _check_arag),
    "ensemble": (ENSEMBLE_INPUT, {"labelers": ["fake:schema@zeroshot"]}, _check_ensemble),
    "carts": (CARTS_INPUT, {"model": "fake:schema", "config": {"max_rounds": 1}}, _check_carts),
    "gdo": (GDO_INPUT, {"model": "fake:hash", "pipeline": GDO_PIPELINE}, _check_gdo),
    "assistant": (ASSISTANT_INPUT, {"model": "fake:schema", "k": 3}, _check_assistant),
    "outfits": (OUTFITS_INPUT, OUTFITS_CONTEXT, _check_outfits),
}

# graph -> (input, a context the graph's schema rejects, a fragment of the error)
BAD_CONTEXTS = [
    pytest.param("arag", ARAG_INPUT, {"model": "fake:schema", "agent_models": {"rankr": "fake"}},
                 "rankr", id="arag-unknown-agent"),
    pytest.param("ensemble", ENSEMBLE_INPUT,
                 {"labelers": ["fake:schema@zeroshot", "fake:schema@zeroshot"]},
                 "labeler names must be distinct", id="ensemble-duplicate-labelers"),
    pytest.param("carts", CARTS_INPUT, {"model": "fake:schema", "config": {"max_rounds": 11}},
                 "max_rounds", id="carts-unbounded-loop"),
    pytest.param("gdo", GDO_INPUT, {"model": "fake:hash", "pipeline": {"steps": [
        {"op": "frobnicate", "udp": {"prompt": "x"}}]}}, "unknown operator",
                 id="gdo-unknown-operator"),
    pytest.param("assistant", ASSISTANT_INPUT, {"model": "fake:schema", "k": 0}, "k",
                 id="assistant-no-recommendations"),
    pytest.param("outfits", OUTFITS_INPUT, {**OUTFITS_CONTEXT, "config": {"max_revisions": 9}},
                 "max_revisions", id="outfits-unbounded-loop"),
]


async def _run(server: Server, graph: str, inputs: dict[str, Any], context: dict[str, Any]
               ) -> tuple[str, dict[str, Any]]:
    """One run on a fresh thread: the run's final status and its output."""
    from langgraph_sdk import get_client

    async with get_client(url=server.url, timeout=60.0) as client:
        thread = await client.threads.create()
        output = await client.runs.wait(thread["thread_id"], graph, input=inputs,
                                        context=context, raise_error=False)
        [run] = await client.runs.list(thread["thread_id"])
    assert isinstance(output, dict)
    return run["status"], output


def test_every_registered_graph_is_served_and_has_a_case(langgraph_server: Server) -> None:
    assistants = httpx.post(f"{langgraph_server.url}/assistants/search", json={},
                            timeout=10.0).json()
    served = {a["graph_id"] for a in assistants}
    assert served == {spec.name for spec in graph_specs()} == set(CASES)


@pytest.mark.parametrize("graph", list(CASES))
async def test_graph_runs_with_a_json_context(langgraph_server: Server, graph: str) -> None:
    inputs, context, check = CASES[graph]
    status, output = await _run(langgraph_server, graph, inputs, context)
    assert status == "success", (output, langgraph_server.log_tail())
    check(inputs, output)


@pytest.mark.parametrize(("graph", "inputs", "context", "message"), BAD_CONTEXTS)
async def test_a_bad_context_fails_the_run(langgraph_server: Server, graph: str,
                                           inputs: dict[str, Any], context: dict[str, Any],
                                           message: str) -> None:
    status, output = await _run(langgraph_server, graph, inputs, context)
    assert status == "error", output
    error = output["__error__"]
    assert error["error"] == "ValidationError"
    assert message in error["message"]
