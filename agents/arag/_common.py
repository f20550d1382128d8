"""Types shared by the ARAG agents, and the domain of the LLMRank Games data."""

from __future__ import annotations

from typing_extensions import TypedDict

from aisle.agents._role import Domain

__all__ = ["GAMES", "Item"]


class Item(TypedDict):
    """A catalog item as the agents see it."""

    id: str
    title: str


# The LLMRank Amazon Games shop. The line break in `aspects` keeps the rendered prompts
# byte-identical to agents v4's, whose stored eval answers are still valid
# (tests/unit/test_prompts.py checks against the golden renderings).
GAMES = Domain(store="an online video-game store",
               aspects="platforms, genres,\nfranchises, accessories")
