"""Shared fixtures. Tests never touch the user's cache or settings: AISLE_HOME points
at a temporary folder and the response cache is off unless a test passes one.

The public datasets are read from one place, `shared_data_root()`: AISLE_DATA if set,
else `<repo>/../shared/data`. A test asks for `shared_data` (the root) or calls
`shared_data_dir("llmrank-games")` (a sub-path); either skips when the data is absent,
and fails instead under AISLE_REQUIRE_DATA=1 (as `make test` sets), so CI cannot pass by
skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from aisle.settings import Settings, get_settings
from aisle.testing import StubServer, live_group_members

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[None]:
    home = tmp_path_factory.getbasetemp() / "aisle-home"
    monkeypatch.setenv("AISLE_HOME", str(home))
    monkeypatch.setenv("AISLE_CACHE_ENABLED", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def fast_settings() -> Settings:
    """Settings with short back-offs and timeouts, for reliability tests."""
    return Settings(cache_enabled=False, request_timeout=1.0, max_retries=4,
                    retry_initial_wait=0.01, retry_max_wait=2.0)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def _skip_or_fail(message: str, require_var: str) -> NoReturn:
    """Skip the test, or fail it when `require_var` is set to 1 (CI must not skip)."""
    if os.environ.get(require_var) == "1":
        pytest.fail(message)
    pytest.skip(message)


def shared_data_root() -> Path:
    """Where the tests read the public datasets: AISLE_DATA, else `<repo>/../shared/data`."""
    override = os.environ.get("AISLE_DATA")
    return Path(override).expanduser().absolute() if override else REPO.parent / "shared" / "data"


def require_shared_data(*parts: str) -> Path:
    """`shared_data_root() / parts`; skips the test when it is absent (fails under
    AISLE_REQUIRE_DATA=1). Read at call time, so a monkeypatched AISLE_DATA applies."""
    path = shared_data_root().joinpath(*parts)
    if not path.exists():
        _skip_or_fail(f"shared data not found at {path}: set AISLE_DATA=/path/to/data or put "
                      "the datasets at ../shared/data (see its README.md)", "AISLE_REQUIRE_DATA")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The root of the shared datasets (see `shared_data_root`); skips or fails if absent."""
    return require_shared_data()


@pytest.fixture(scope="session")
def shared_data_dir() -> Callable[..., Path]:
    """`shared_data_dir("crowd-truth", "d_jn-product")`: a path under the shared data, for
    use inside a test or a fixture; skips or fails (AISLE_REQUIRE_DATA=1) if absent."""
    return require_shared_data


def _vllm_paths() -> tuple[str, str] | None:
    python = os.environ.get("AISLE_TEST_VLLM_PYTHON")
    model = os.environ.get("AISLE_TEST_VLLM_MODEL")
    return (python, model) if python and model else None


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[object]:
    """A real vLLM server (CPU build) started and stopped by aisle's managed-server code.

    Needs `make vllm-env` (which `make test` runs) to have set AISLE_TEST_VLLM_PYTHON
    and AISLE_TEST_VLLM_MODEL; with AISLE_REQUIRE_VLLM=1 (as `make test` sets) a
    missing environment fails instead of skipping.
    """
    import signal

    from aisle.llm import VLLMServer, VLLMServerConfig

    paths = _vllm_paths()
    if paths is None:
        _skip_or_fail("vLLM environment not set up: run `make vllm-env` or `make test`",
                      "AISLE_REQUIRE_VLLM")
    python, model = paths
    # What vLLM's CPU build needs on a small box: a bounded KV cache (its default
    # asks for 92% of NUMA node 0), eager mode (compiling costs ~2 minutes and gains
    # nothing here), loopback only, no telemetry, no hub. TMPDIR is kept under
    # AISLE_HOME so the kernel vLLM compiles for logprobs is cached between runs.
    tmp = Path(os.environ.get("AISLE_TEST_VLLM_TMPDIR", REPO / ".aisle" / "vllm-tmp"))
    tmp.mkdir(parents=True, exist_ok=True)
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "auto",
           "VLLM_HOST_IP": "127.0.0.1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TMPDIR": str(tmp)}
    config = VLLMServerConfig(
        model=model, python=python, served_model_name="smollm2-135m", max_model_len=2048,
        dtype="float32", startup_timeout=600, extra_args=("--enforce-eager",),
        env=tuple(env.items()),
    )
    server = VLLMServer(config)
    server.start()
    pid = server.pid
    assert pid is not None
    # The first logprobs request compiles a kernel (~20 s cold); do it once here.
    import httpx

    httpx.post(f"{server.base_url}/v1/chat/completions", timeout=300, json={
        "model": "smollm2-135m", "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 1, "logprobs": True, "top_logprobs": 1}).raise_for_status()
    yield server
    server.stop()
    # Stopped means the whole process group is gone (API server, engine core and
    # worker), not just the parent.
    alive = live_group_members(pid)
    if alive:
        os.killpg(pid, signal.SIGKILL)
        pytest.fail(f"vLLM processes {alive} were still alive after stop()")


@pytest.fixture
def toy_bundles() -> Callable[..., Path]:
    """`make(root, n=40)`: a toy `root/bundles/electronic/` folder in the bundles layout,
    bundle b named "<kind>s" holding 2 + b % 3 items "BrandJ <kind> model N, black"
    (kinds: cable, charger, mouse, keyboard, speaker, camera, in turn)."""
    def make(root: Path, n: int = 40) -> Path:
        kinds = ["cable", "charger", "mouse", "keyboard", "speaker", "camera"]
        folder = root / "bundles" / "electronic"
        folder.mkdir(parents=True)
        intents, links, titles = ["bundle ID,intent"], ["bundle ID,item ID"], ["item ID,titles"]
        item = 0
        for b in range(n):
            kind = kinds[b % len(kinds)]
            intents.append(f"{b},{kind}s")
            for j in range(2 + b % 3):
                titles.append(f'{item},"Brand{j} {kind} model {item}, black"')
                links.append(f"{b},{item}")
                item += 1
        (folder / "bundle_intent.csv").write_text("\n".join(intents) + "\n")
        (folder / "bundle_item.csv").write_text("\n".join(links) + "\n")
        (folder / "item_titles.csv").write_text("\n".join(titles) + "\n")
        return root
    return make
