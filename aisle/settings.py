"""Run-time settings, read from `AISLE_*` environment variables and CLI flags."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


def _default_home() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "aisle"


class Settings(BaseSettings):
    """Everything aisle can be configured with.

    Each field reads the environment variable `AISLE_<FIELD>` (case-insensitive);
    CLI flags override them.

    Example:
        >>> s = Settings(model="fake:test", cache_enabled=False)
        >>> s.model
        'fake:test'
    """

    model_config = SettingsConfigDict(env_prefix="AISLE_", env_file=None, extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Cache, models and results.")
    model: str = Field("local:smollm2-135m", description="Default chat model spec.")
    data: Path = Field(Path("../shared/data"), description="Shared datasets root "
                       "(llmrank-games/, crowd-truth/, attribute-extraction/)")

    # Reliability, shared by every OpenAI-compatible backend.
    request_timeout: float = Field(120.0, gt=0, description="Seconds before one request times out.")
    max_retries: int = Field(4, ge=0, description="Retries on 429, 5xx, timeouts, drops.")
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
