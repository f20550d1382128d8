"""An OpenAI-compatible chat server on loopback that answers instantly or with a set
latency, caps its own concurrency, and injects faults on request: HTTP 429 with
`Retry-After`, 5xx, slow answers and dropped connections.

It serves `/v1/chat/completions`, `/v1/models` and `/health`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from aisle.testing.schema_instance import schema_instance

__all__ = ["Fault", "LoopbackServer", "StubServer"]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is an expected part of fault tests.
        return


@dataclass(frozen=True)
class Fault:
    """What to do to one request instead of answering it normally.

    Attributes:
        status: answer with this HTTP status (e.g. 429, 500) and an error body.
        retry_after: `Retry-After` header value in seconds, with `status`.
        delay: sleep this long first (then answer normally, unless `status`).
        drop: close the connection without answering.
    """

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False


F = TypeVar("F")


class LoopbackServer(Generic[F]):
    """A threaded HTTP server on 127.0.0.1 (port 0: a free one) with a queue of injected
    faults, each for one upcoming request; a subclass gives the handler class.

    Use it as a context manager, or `start()` / `stop()`.
    """

    def __init__(self, port: int = 0) -> None:
        self._faults: deque[F] = deque()
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        # A short poll keeps `stop()` (which waits for the next poll) quick.
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """The API root clients use, `http://127.0.0.1:<port>/v1`."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def inject(self, *faults: F) -> None:
        """Queue faults; each applies to one upcoming request, in order."""
        with self._lock:
            self._faults.extend(faults)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _next_fault(self) -> F | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None


@dataclass
class StubStats:
    requests: int = 0
    answered: int = 0
    faults: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)


class StubServer(LoopbackServer[Fault]):
    """A fault-injecting OpenAI-compatible server for tests and benchmarks.

    Args:
        latency: seconds each normal answer takes.
        max_concurrency: requests processed at once; more wait in line (0 = no cap).
        reply: text of plain answers.

    Example:
        >>> with StubServer() as stub:  # doctest: +SKIP
        ...     stub.inject(Fault(status=429, retry_after=1))
        ...     model = load_chat_model("openai:stub", base_url=stub.base_url, api_key="x")
    """

    def __init__(
        self,
        latency: float = 0.0,
        max_concurrency: int = 0,
        reply: str = "stub answer",
        port: int = 0,
    ) -> None:
        self.latency = latency
        self.reply = reply
        self.stats = StubStats()
        self._slots = threading.Semaphore(max_concurrency) if max_concurrency > 0 else None
        super().__init__(port)

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            content = json.dumps(schema_instance(fmt["json_schema"]["schema"]))
        else:
            content = self.reply
        choice: dict[str, Any] = {
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": content},
        }
        if body.get("logprobs"):
            first = content.split()[0] if content.split() else content
            k = int(body.get("top_logprobs") or 1)
            top = [{"token": first, "logprob": -0.1, "bytes": None}]
            top += [{"token": f"alt{i}", "logprob": -3.0 - i, "bytes": None} for i in range(k - 1)]
            choice["logprobs"] = {"content": [
                {"token": first, "logprob": -0.1, "bytes": None, "top_logprobs": top}
            ]}
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        completion_tokens = len(content.split())
        return {
            "id": f"chatcmpl-stub-{self.stats.requests}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "stub"),
            "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else ~40 ms per answer from delayed ACKs

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, payload: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list",
                                     "data": [{"id": "stub", "object": "model"}]})
                elif self.path.startswith("/health"):
                    self._send(200, {"status": "ok"})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with stub._lock:
                    stub.stats.requests += 1
                    stub.stats.bodies.append(body)
                fault = stub._next_fault()
                if fault is not None:
                    with stub._lock:
                        stub.stats.faults += 1
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.drop:
                        self.close_connection = True
                        return
                    if fault.status is not None:
                        headers = {}
                        if fault.retry_after is not None:
                            headers["Retry-After"] = f"{fault.retry_after:g}"
                        self._send(fault.status, {"error": {
                            "message": f"injected HTTP {fault.status}", "type": "stub"}},
                            headers)
                        return
                self._serve(body)

            def _serve(self, body: dict[str, Any]) -> None:
                if stub._slots is not None:
                    stub._slots.acquire()
                try:
                    with stub._lock:
                        stub.stats.in_flight += 1
                        stub.stats.max_in_flight = max(stub.stats.max_in_flight,
                                                       stub.stats.in_flight)
                    if stub.latency:
                        time.sleep(stub.latency)
                    payload = stub._answer(body)
                    with stub._lock:
                        stub.stats.in_flight -= 1
                        stub.stats.answered += 1
                finally:
                    if stub._slots is not None:
                        stub._slots.release()
                self._send(200, payload)

        return Handler


@contextlib.contextmanager
def spawn_stub(latency: float = 0.0, max_concurrency: int = 0,
               reply: str = "stub answer") -> Iterator[str]:
    """Run the stub in its own process (no GIL shared with the client being measured);
    yields its root URL once `/health` answers, and stops it afterwards."""
    import subprocess
    import sys

    import httpx

    from aisle.llm.vllm import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aisle.testing.stub_server", "--port", str(port),
         "--latency", str(latency), "--max-concurrency", str(max_concurrency), "--reply", reply],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    """Run the stub as a process: `python -m aisle.testing.stub_server --port N`.

    Unknown arguments are ignored, so it can stand in for a server command line
    (tests use it in place of vLLM's).
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="OpenAI-compatible stub server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--max-concurrency", type=int, default=0)
    parser.add_argument("--reply", default="stub answer", help="Text of plain answers.")
    args, _ = parser.parse_known_args(argv)
    server = StubServer(latency=args.latency, max_concurrency=args.max_concurrency,
                        reply=args.reply, port=args.port).start()
    print(f"stub listening on {server.base_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
