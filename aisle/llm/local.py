"""The `local` backend: llama.cpp's server embedded in this process (xllamacpp),
reached over its OpenAI-compatible HTTP endpoint on loopback. The server lives
here; `aisle.llm.providers.LocalProvider` (name, capabilities, model resolution)
is how specs reach it.

One server per (model, context, slots, threads) is started lazily per process,
health-checked, and shut down at interpreter exit.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aisle.errors import MissingDependencyError, ServerStartupError

__all__ = ["LocalServer", "LocalServerConfig", "check_port", "get_local_server",
           "shutdown_local_servers"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


def check_port(port: int, host: str = HOST,
               fix: str = "choose another port (0 picks a free one)") -> None:
    """Make sure a server could listen on `host:port` (0, any free port, always can).

    llama.cpp reports a taken port as a failure to load the model; this says what it is,
    and `fix`.

    Raises:
        ServerStartupError: another process listens there, or the port cannot be used.
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As a server binds: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ServerStartupError(
                    f"port {port} on {host} is already in use by another server; {fix}"
                ) from e
            raise ServerStartupError(
                f"port {port} on {host} cannot be used ({e.strerror or e}); {fix}") from e


@dataclass(frozen=True)
class LocalServerConfig:
    """How to run the embedded server.

    Attributes:
        model_path: the GGUF file.
        ctx: total context in tokens, divided among the slots.
        parallel: decoding slots (concurrent requests served together).
        threads: CPU threads; 0 means every core.
        port: TCP port on 127.0.0.1; 0 picks a free one.
        verbose: let llama.cpp log to stderr.
        chat_template: a llama.cpp built-in template name (e.g. "gemma") for a GGUF
            without its own; None uses the GGUF's Jinja template.
    """

    model_path: Path
    ctx: int = 8192
    parallel: int = 4
    threads: int = 0
    port: int = 0
    verbose: bool = False
    chat_template: str | None = None


class LocalServer:
    """llama.cpp's HTTP server running inside this process.

    Example:
        >>> server = LocalServer(LocalServerConfig(model_path=path))  # doctest: +SKIP
        >>> server.start()  # doctest: +SKIP
        'http://127.0.0.1:41234'
    """

    def __init__(self, config: LocalServerConfig) -> None:
        self.config = config
        self._server: Any = None
        self._base_url: str | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The server root (no `/v1`), starting the server if needed."""
        return self.start()

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, timeout: float = 120.0) -> str:
        """Load the model and start listening; idempotent. Returns the server root URL.

        Raises:
            MissingDependencyError: xllamacpp is not installed.
            ServerStartupError: the port is taken, the model failed to load or the
                health check failed.
        """
        with self._lock:
            if self._base_url is not None:
                return self._base_url
            try:
                import xllamacpp
            except ImportError as e:
                raise MissingDependencyError("xllamacpp", "the local backend") from e
            cfg = self.config
            if not cfg.model_path.is_file():
                raise ServerStartupError(f"GGUF model file not found: {cfg.model_path}")
            check_port(cfg.port)
            params = xllamacpp.CommonParams()
            params.model.path = str(cfg.model_path)
            params.n_ctx = cfg.ctx
            params.n_parallel = cfg.parallel
            threads = cfg.threads or os.cpu_count() or 1
            params.cpuparams.n_threads = threads
            params.cpuparams_batch.n_threads = threads
            params.port = cfg.port
            if cfg.chat_template:
                params.chat_template = cfg.chat_template  # a built-in, non-Jinja template
                params.use_jinja = False
            else:
                params.use_jinja = True  # the GGUF's own chat template, tool calls
            params.endpoint_metrics = True  # prefix-cache counters for benchmarks
            params.cache_prompt = True
            params.verbosity = 3 if cfg.verbose else -1
            started = time.perf_counter()
            try:
                server = xllamacpp.Server(params)
            except Exception as e:
                check_port(cfg.port)  # taken meanwhile: say so, not "could not load"
                raise ServerStartupError(
                    f"llama.cpp could not load {cfg.model_path}: {e}"
                ) from e
            base_url = str(server.listening_address).rstrip("/")
            self._server = server
            self._wait_healthy(base_url, timeout)
            self._base_url = base_url
            logger.info(
                "local llama.cpp server for %s on %s (%d slots, %d threads) in %.1fs",
                cfg.model_path.name, base_url, cfg.parallel, threads,
                time.perf_counter() - started,
            )
            return base_url

    def _wait_healthy(self, base_url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{base_url}/health", timeout=5.0)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.2)
        self._server = None
        raise ServerStartupError(
            f"local llama.cpp server at {base_url} not healthy after {timeout:.0f}s ({last})"
        )

    def health(self) -> bool:
        """True if the server answers its health check."""
        if self._base_url is None:
            return False
        try:
            return httpx.get(f"{self._base_url}/health", timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def metrics(self) -> dict[str, float]:
        """llama.cpp's Prometheus counters (prompt tokens processed, cached, ...)."""
        r = httpx.get(f"{self.base_url}/metrics", timeout=5.0)
        r.raise_for_status()
        out: dict[str, float] = {}
        for line in r.text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name.removeprefix("llamacpp:")] = float(value)
        return out

    def stop(self) -> None:
        """Stop serving and free the model; safe to call twice."""
        with self._lock:
            server, self._server, self._base_url = self._server, None, None
        if server is not None:
            del server  # the destructor joins llama.cpp's HTTP and main loops


_servers: dict[LocalServerConfig, LocalServer] = {}
_servers_lock = threading.Lock()


def get_local_server(config: LocalServerConfig) -> LocalServer:
    """The process-wide server for this configuration (created, not yet started)."""
    with _servers_lock:
        server = _servers.get(config)
        if server is None:
            server = _servers[config] = LocalServer(config)
        return server


def shutdown_local_servers() -> None:
    """Stop every embedded server this process started (also run at exit)."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.stop()


atexit.register(shutdown_local_servers)
