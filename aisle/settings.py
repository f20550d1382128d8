"""Run-time settings, read from `AISLE_*` environment variables and CLI flags."""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "source_checkout"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def source_checkout(package_dir: Path = _PACKAGE_DIR) -> Path | None:
    """The source checkout aisle runs from, or None for an installed wheel.

    aisle runs from a checkout (an editable install) when the folder above the `aisle`
    package holds a `pyproject.toml` naming the project `aisle`.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "pyproject.toml").write_text('[project]\\nname = "aisle"\\n')
        >>> source_checkout(root / "aisle") == root
        True
        >>> source_checkout(root / "site-packages" / "aisle") is None
        True
    """
    root = package_dir.parent
    try:
        with (root / "pyproject.toml").open("rb") as f:
            project = tomllib.load(f).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return root if isinstance(project, dict) and project.get("name") == "aisle" else None


def _user_cache_home() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "aisle"


def _default_home() -> Path:
    """AISLE_HOME when unset: `<checkout>/.aisle` in a source checkout (where the
    Makefile puts it too), else the user cache (`$XDG_CACHE_HOME/aisle`, `~/.cache/aisle`)."""
    checkout = source_checkout()
    return checkout / ".aisle" if checkout is not None else _user_cache_home()


class Settings(BaseSettings):
    """Everything aisle can be configured with.

    Each field reads the environment variable `AISLE_<FIELD>` (case-insensitive; an
    empty one counts as unset); CLI flags override them.

    Example:
        >>> s = Settings(model="fake:test", cache_enabled=False)
        >>> s.model
        'fake:test'
    """

    model_config = SettingsConfigDict(env_prefix="AISLE_", env_file=None, extra="ignore",
                                      env_ignore_empty=True)

    home: Path = Field(default_factory=_default_home, description="Cache, models, indexes, "
                       "results and logs; default <checkout>/.aisle in a source checkout, "
                       "else the user cache.")
    model: str = Field("local:smollm2-135m", description="Default chat model spec.")
    data: Path = Field(Path("../shared/data"), description="Shared datasets root "
                       "(llmrank-games/, crowd-truth/, attribute-extraction/)")

    # Reliability, shared by every OpenAI-compatible backend.
    # A silent server (accepts connections, never answers) is reported after two
    # timeouts, about a minute: a timed-out request is retried once (RetryPolicy).
    request_timeout: float = Field(30.0, gt=0, description="Seconds before one request "
                                   "times out; a timed-out request is retried once.")
    max_retries: int = Field(4, ge=0, description="Retries on 429, 5xx and refused or "
                             "dropped connections (timeouts: once).")
    retry_initial_wait: float = Field(0.5, ge=0, description="First back-off, seconds.")
    retry_max_wait: float = Field(30.0, gt=0, description="Longest single back-off, seconds.")
    max_concurrency: int = Field(4, ge=1, description="In-flight requests per backend.")

    # Response cache.
    cache_enabled: bool = Field(True, description="Persist model responses in SQLite.")
    cache_path: Path | None = Field(None, description="Defaults to <home>/cache.sqlite.")

    # Embedded llama.cpp (the `local` backend).
    local_ctx: int = Field(8192, ge=256, description="Total context, shared by the slots.")
    local_parallel: int = Field(4, ge=1, description="Parallel decoding slots.")
    local_threads: int = Field(0, ge=0, description="CPU threads; 0 means all cores.")
    local_startup_timeout: float = Field(120.0, gt=0)
    local_request_timeout: float = Field(
        900.0, gt=0, description="Seconds before one request to the embedded server times "
        "out (not retried). The server is aisle's own and health-checked at start; on a "
        "small CPU a long answer, or slots sharing the cores, legitimately takes minutes.")

    # Recommenders (`aisle rec`, `aisle.tools.recommenders`).
    rec_threads: int = Field(0, ge=0, description="Torch CPU threads for training and "
                             "scoring recommenders; 0 means all cores.")
    rec_device: str = Field("auto", description="Torch device for GRACE: auto (cuda when "
                            "torch sees a GPU, else cpu), cpu, cuda or cuda:N. Not part of "
                            "a model's checkpoint key: a model trained on one device loads "
                            "on any.")

    # vLLM (the `vllm` backend).
    vllm_base_url: str | None = Field(None, description="Use a running server; else start one.")
    vllm_api_key: SecretStr | None = None
    vllm_python: str | None = Field(None, description="Interpreter with vLLM installed.")
    vllm_max_model_len: int | None = None
    vllm_dtype: str = "auto"
    vllm_tensor_parallel_size: int = Field(1, ge=1)
    vllm_gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    vllm_startup_timeout: float = Field(600.0, gt=0)
    vllm_extra_args: str = Field("", description="Extra CLI arguments for vLLM's server.")

    # Hosted OpenAI or any OpenAI-compatible endpoint (the `openai` backend).
    openai_base_url: str | None = Field(None, description="Defaults to api.openai.com.")
    openai_api_key: SecretStr | None = None

    # Image generation (`aisle.tools.images`): an OpenAI-compatible images endpoint and
    # a vision-language chat model that describes its images. Unset: no images.
    image_base_url: str | None = Field(None, description="OpenAI-compatible images "
                                       "endpoint, e.g. http://127.0.0.1:9000/v1.")
    image_model: str | None = Field(None, description="Image model name; needed with "
                                    "image_base_url.")
    image_api_key: SecretStr | None = None
    vlm_base_url: str | None = Field(None, description="Vision-language chat endpoint; "
                                     "defaults to image_base_url.")
    vlm_model: str | None = Field(None, description="Vision-language model that describes "
                                  "generated images; unset: no vision loop.")
    vlm_api_key: SecretStr | None = Field(None, description="Key for vlm_base_url; without "
                                          "vlm_base_url the image key is used.")

    @property
    def home_source(self) -> str:
        """Where `home` came from: `AISLE_HOME`, the source checkout, or the user cache."""
        if "home" in self.model_fields_set:
            return "AISLE_HOME"
        if source_checkout() is not None:
            return "source checkout"
        return "user cache"

    @property
    def resolved_cache_path(self) -> Path:
        return self.cache_path or self.home / "cache.sqlite"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings read from the environment (cached; see `Settings`)."""
    return Settings()
