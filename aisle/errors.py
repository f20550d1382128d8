"""The exceptions aisle raises.

Every error names the bad value and says how to fix it. Catch `AisleError` to
handle any of them.
"""

from __future__ import annotations

__all__ = [
    "AisleError",
    "BackendError",
    "BackendUnavailableError",
    "CacheError",
    "ConfigurationError",
    "DatasetError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ServerStartupError",
    "StructuredOutputError",
]


class AisleError(Exception):
    """Base class of every error raised by aisle."""


class ConfigurationError(AisleError, ValueError):
    """A setting, flag or model spec is invalid."""


class DatasetError(AisleError, ValueError):
    """A data file is missing or malformed, or names an unknown user, item or dataset."""


class MissingDependencyError(AisleError, ImportError):
    """An optional dependency is not installed.

    The message says which package to install.
    """

    def __init__(self, package: str, feature: str, install: str | None = None) -> None:
        self.package = package
        self.feature = feature
        self.install = install or f"pip install {package}"
        super().__init__(
            f"{feature} needs the optional package {package!r}, which is not installed. "
            f"Install it with: {self.install}"
        )


class CacheError(AisleError):
    """The response cache cannot be opened or read: the message names the file and
    how to go on without it (`--no-cache` or `AISLE_CACHE_ENABLED=false`)."""


class ModelNotFoundError(AisleError, FileNotFoundError):
    """A model file or registry name does not exist or failed verification."""


class BackendError(AisleError):
    """A model backend failed to answer."""


class BackendUnavailableError(BackendError, ConnectionError):
    """A model server cannot be reached (down, refusing connections, or timing out)."""


class ServerStartupError(BackendError):
    """A server that aisle starts (llama.cpp, vLLM) did not become ready."""


class StructuredOutputError(AisleError, ValueError):
    """A model's answer did not validate against the requested schema, even after a repair turn.

    Attributes:
        schema_name: name of the pydantic model that was requested.
        raw_outputs: every raw answer the model gave, first attempt first.
        errors: the validation error text for each raw answer.
    """

    def __init__(self, schema_name: str, raw_outputs: list[str], errors: list[str]) -> None:
        self.schema_name = schema_name
        self.raw_outputs = raw_outputs
        self.errors = errors
        last = raw_outputs[-1] if raw_outputs else ""
        shown = last if len(last) <= 500 else last[:500] + "..."
        super().__init__(
            f"model output did not validate as {schema_name} after {len(raw_outputs)} "
            f"attempt(s); last error: {errors[-1] if errors else 'n/a'}; last raw output: {shown!r}"
        )
