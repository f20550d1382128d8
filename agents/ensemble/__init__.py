"""LLM-ensemble labelers: one structured attribute-extraction call per (model, prompt
variant) pair, each variant a `Role`."""

from aisle.agents._role import roles_version
from aisle.agents.ensemble.labeler import (
    LABELER_ROLES,
    NA,
    Example,
    LabelerSpec,
    answer_schema,
    extract_attributes,
    labeler_role,
    normalise_value,
    prompt_variants,
)

# Bumped whenever the labelers' behaviour changes (a role's version, normalisation,
# schema), so stored eval answers of different versions are never mixed.
# v2: the title, category, examples and attribute names are data: each goes through the
#     `data` filter (no `<`/`>`, no line breaks) inside a tagged block, and the prompts
#     say so.
AGENTS_VERSION = 2

# The fingerprint of `prompts/ensemble/` at each agents version, as stored in run keys; a
# template change must bump AGENTS_VERSION and add its fingerprint here (a test checks).
# v1's renderings are kept in tests/unit/prompts_golden/ensemble-v1/.
PROMPTS_FINGERPRINT: dict[int, str] = {1: "8eb8a67fac0a", 2: "2c3b0bc2e675"}


def agents_version() -> dict[str, object]:
    """What a run key records about the agents: the pipeline version and each role's."""
    return {"version": AGENTS_VERSION, "roles": roles_version(LABELER_ROLES)}


__all__ = [
    "AGENTS_VERSION",
    "LABELER_ROLES",
    "NA",
    "PROMPTS_FINGERPRINT",
    "Example",
    "LabelerSpec",
    "agents_version",
    "answer_schema",
    "extract_attributes",
    "labeler_role",
    "normalise_value",
    "prompt_variants",
]
