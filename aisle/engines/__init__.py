"""Execution engines: run a per-row function over many rows, locally or on Ray.

`LocalEngine` runs rows as asyncio tasks in this process; `RayEngine` (the `ray` extra)
runs them on a Ray Data actor pool, each actor holding its own model client, so a
pipeline scales past one machine unchanged. Both return the same results for the same
tasks.
"""

from aisle.engines._base import (
    Budget,
    BudgetMeter,
    Engine,
    Progress,
    RowFunction,
    RowResult,
    failed_row,
)
from aisle.engines.local import LocalEngine

__all__ = ["Budget", "BudgetMeter", "Engine", "LocalEngine", "Progress", "RowFunction",
           "RowResult", "failed_row", "get_engine"]


def get_engine(name: str, **options: object) -> Engine:
    """An engine by name: `local` or `ray` (`address=` an existing cluster's address,
    `num_actors=`).

    Raises:
        ConfigurationError: unknown name, or Ray not installed.
    """
    from aisle.errors import ConfigurationError

    if name == "local":
        if options:
            raise ConfigurationError(f"the local engine takes no options, got {sorted(options)}")
        return LocalEngine()
    if name == "ray":
        from aisle.engines.ray import RayEngine

        return RayEngine(**options)  # type: ignore[arg-type]
    raise ConfigurationError(f"unknown engine {name!r}: use 'local' or 'ray'")
