"""Types shared by the ARAG agents, and the domain of the LLMRank Games data."""

from __future__ import annotations

from typing_extensions import TypedDict

from aisle.agents._role import Domain

__all__ = ["GAMES", "Item"]


class Item(TypedDict):
    """A catalog item as the agents see it."""

    id: str
    title: str


# The LLMRank Amazon Games shop. The line break in `aspects` reproduces the wording of
# the prompts the ARAG prompts were written with (agents v2 to v4, whose renderings are
# kept in tests/unit/prompts_golden/arag-v4/); v5 keeps it, so its prompts differ from
# v4's only where values became data (tests/unit/test_prompt_golden.py).
GAMES = Domain(store="an online video-game store",
               aspects="platforms, genres,\nfranchises, accessories")
