"""The error every dataset loader in `aisle.evals` raises (re-exported by each loader)."""

from __future__ import annotations

from aisle.errors import AisleError

__all__ = ["DatasetError"]


class DatasetError(AisleError, ValueError):
    """A data file is missing or malformed, or names an unknown user, item or dataset."""
