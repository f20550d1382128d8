"""The managed vLLM server's lifecycle, with a stand-in interpreter (no vLLM needed):
readiness timeout, early exit, missing vLLM, and a clean stop of the process group."""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import pytest

from aisle.errors import MissingDependencyError, ServerStartupError
from aisle.llm import VLLMServer, VLLMServerConfig


def _shim(tmp_path: Path, serve: str) -> str:
    """An executable that claims to have vLLM and runs `serve` as its server."""
    path = tmp_path / "python-shim"
    path.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1" = "-c" ]; then exit 0; fi\n'
        f"{serve}\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _gone(pid: int, wait: float = 5.0) -> bool:
    """Dead or a zombie (an orphan waits for PID 1 to reap it), within `wait` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return True
        if state in {"Z", "X"}:
            return True
        time.sleep(0.05)
    return False


def test_missing_vllm_says_what_to_install() -> None:
    server = VLLMServer(VLLMServerConfig(model="m", python=sys.executable))
    with pytest.raises(MissingDependencyError, match="make vllm-env"):
        server.start()


def test_early_exit_reports_the_log(tmp_path: Path) -> None:
    python = _shim(tmp_path, 'echo "CUDA out of memory: boom"; exit 3')
    server = VLLMServer(VLLMServerConfig(model="m", python=python, startup_timeout=30))
    with pytest.raises(ServerStartupError, match=r"(?s)exited with code 3.*boom"):
        server.start()


def test_readiness_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    python = _shim(tmp_path, f"sleep 300 & echo $! > {pidfile}; wait")
    server = VLLMServer(VLLMServerConfig(model="m", python=python, startup_timeout=2))
    with pytest.raises(ServerStartupError, match="not ready after 2s"):
        server.start()
    child = int(pidfile.read_text())
    assert _gone(child), "the grandchild should go with the process group"


def test_command_carries_the_main_options() -> None:
    cfg = VLLMServerConfig(model="/m", python="py", served_model_name="s", max_model_len=4096,
                           dtype="bfloat16", tensor_parallel_size=2,
                           gpu_memory_utilization=0.8, extra_args=("--enforce-eager",))
    cmd = cfg.command(port=1234)
    assert cmd[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    pairs = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert pairs["--model"] == "/m"
    assert pairs["--served-model-name"] == "s"
    assert pairs["--port"] == "1234"
    assert pairs["--max-model-len"] == "4096"
    assert pairs["--dtype"] == "bfloat16"
    assert pairs["--tensor-parallel-size"] == "2"
    assert pairs["--gpu-memory-utilization"] == "0.8"
    assert cmd[-1] == "--enforce-eager"


def test_base_url_before_start_is_an_error() -> None:
    with pytest.raises(ServerStartupError, match="not started"):
        _ = VLLMServer(VLLMServerConfig(model="m")).base_url


def test_load_chat_model_starts_and_reuses_a_managed_server(tmp_path: Path) -> None:
    """The whole managed path, with aisle's stub server standing in for vLLM's."""
    from aisle.llm import VLLMProvider, get_provider, load_chat_model
    from aisle.settings import Settings

    python = _shim(tmp_path, f'shift 2; exec {sys.executable} -m aisle.testing.stub_server "$@"')
    settings = Settings(cache_enabled=False, vllm_python=python, vllm_startup_timeout=60,
                        vllm_max_model_len=1024, vllm_extra_args="--enforce-eager")
    provider = get_provider("vllm")
    assert isinstance(provider, VLLMProvider)
    model = load_chat_model("vllm:/models/tiny", settings=settings)
    again = load_chat_model("vllm:/models/tiny", settings=settings)
    try:
        assert model.invoke("hi").content == "stub answer"
        assert again.invoke("hi").content == "stub answer"
        servers = [s for c, s in provider.managed_servers.items() if c.python == python]
        assert len(servers) == 1  # one server for both models
        cmd = servers[0].config.command(port=1)
        assert "--max-model-len" in cmd
        assert "--enforce-eager" in cmd
    finally:
        provider.stop()
    assert not provider.managed_servers
