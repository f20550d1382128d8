"""The error every dataset loader in `aisle.evals` raises (re-exported by each loader;
defined in `aisle.errors`, so tools that read data files raise it too)."""

from __future__ import annotations

from aisle.errors import DatasetError

__all__ = ["DatasetError"]
