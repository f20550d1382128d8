"""LVA-COG's agents (Forouzandehmehr et al., arXiv 2402.05941, character-based outfit
generation): character profiler, stylist, catalog query writer, critic, and the
prompt concretiser in POAC's sense (arXiv 2404.11589); plus the eval's text-only
baseline and pairwise judge. Each is a `Role`."""

from typing import Any

from aisle.agents._role import ChoiceRole, Role, roles_version
from aisle.agents.outfits._common import CLOTHING, GarmentSlot, Wearer
from aisle.agents.outfits.baseline import (
    BASELINE_STYLIST,
    BaselineOutfit,
    NamedGarment,
    name_outfit,
)
from aisle.agents.outfits.concretiser import CONCRETISER, ImagePrompt, concretise
from aisle.agents.outfits.critic import (
    OUTFIT_CRITIC,
    CriticSlot,
    OutfitCritique,
    critique_outfit,
)
from aisle.agents.outfits.judge import (
    OUTFIT_JUDGE,
    PairVerdict,
    Preference,
    combine_orders,
    judge_pair,
)
from aisle.agents.outfits.profiler import (
    CHARACTER_PROFILER,
    CharacterProfile,
    profile_character,
)
from aisle.agents.outfits.query_writer import QUERY_WRITER, SlotQuery, write_query
from aisle.agents.outfits.stylist import (
    STYLE_DIRECTIONS,
    STYLIST,
    Garment,
    OutfitPlan,
    missing_slots,
    plan_outfit,
)

# Bumped whenever the agents' behaviour as a whole changes, so stored eval answers of
# different versions are never mixed.
# 2: a plan with a one-piece and separates drops the contradicting slots
# (`contradicting_slots`); the prompts are unchanged.
AGENTS_VERSION = 2

ROLES: tuple[Role[Any] | ChoiceRole, ...] = (
    CHARACTER_PROFILER, STYLIST, QUERY_WRITER, OUTFIT_CRITIC, CONCRETISER, BASELINE_STYLIST,
    OUTFIT_JUDGE)

# The fingerprint of `prompts/outfits/` at each agents version (a test checks it).
PROMPTS_FINGERPRINT: dict[int, str] = {1: "48e583899720", 2: "48e583899720"}


def agents_version() -> dict[str, object]:
    """What a run key records about the agents: the pipeline version and each role's."""
    return {"version": AGENTS_VERSION, "roles": roles_version(ROLES)}


__all__ = [
    "AGENTS_VERSION", "BASELINE_STYLIST", "CHARACTER_PROFILER", "CLOTHING", "CONCRETISER",
    "OUTFIT_CRITIC", "OUTFIT_JUDGE", "PROMPTS_FINGERPRINT", "QUERY_WRITER", "ROLES",
    "STYLE_DIRECTIONS", "STYLIST", "BaselineOutfit", "CharacterProfile", "CriticSlot",
    "Garment", "GarmentSlot", "ImagePrompt", "NamedGarment", "OutfitCritique", "OutfitPlan",
    "PairVerdict", "Preference", "SlotQuery", "Wearer", "agents_version", "combine_orders",
    "concretise", "critique_outfit", "judge_pair", "missing_slots", "name_outfit",
    "plan_outfit", "profile_character", "write_query",
]
