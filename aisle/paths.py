"""Output paths checked before any work: a run must not fail at its end because its
output cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

from aisle.errors import ConfigurationError

__all__ = ["ensure_dir", "ensure_file_target"]


def ensure_dir(path: Path, option: str = "--out") -> None:
    """Create `path` as a folder, or raise naming the option to change.

    Raises:
        ConfigurationError: it (or a parent) is a file, or it cannot be created.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> ensure_dir(root / "a" / "b"); (root / "a" / "b").is_dir()
        True
    """
    for folder in [path, *path.parents]:
        if folder.exists():
            if not folder.is_dir():
                raise ConfigurationError(f"{option} {path} cannot be created: {folder} is a "
                                         f"file; pass another {option}")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigurationError(f"{option} {path} cannot be created: {e}; pass another "
                                 f"{option}") from e


def ensure_file_target(path: Path, option: str = "--out") -> None:
    """Make sure a file can be written at `path` (its parents are created).

    Raises:
        ConfigurationError: `path` is a folder, or its folder cannot be created or written.
    """
    if path.is_dir():
        raise ConfigurationError(f"{option} {path} is a folder; pass a file path")
    ensure_dir(path.parent, option)
    if not os.access(path.parent, os.W_OK):
        raise ConfigurationError(f"{option} {path} cannot be written: {path.parent} is not "
                                 f"writable; pass another {option}")
