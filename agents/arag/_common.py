"""Types shared by the ARAG agents."""

from __future__ import annotations

from typing_extensions import TypedDict

__all__ = ["Item"]


class Item(TypedDict):
    """A catalog item as the agents see it."""

    id: str
    title: str
