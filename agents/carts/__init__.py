"""CARTS's agents (Chen et al., arXiv 2506.17765): feature extractor, title generator,
relevance critic, refiner and arbiters, each a `Role`; the deterministic length check;
the single-pass and chain-of-thought baselines; and the eval's LLM coverage judge."""

from typing import Any

from aisle.agents._role import ChoiceRole, Role, roles_version
from aisle.agents.carts._common import MAX_ITEM_CHARS, TITLE_MAX_CHARS, shown_items
from aisle.agents.carts.arbiter import (
    ARBITER_ROLES,
    ArbiterPrompt,
    Tally,
    score_titles,
    scores_schema,
    vote,
)
from aisle.agents.carts.baselines import (
    CHAIN_OF_THOUGHT,
    SINGLE_PASS,
    cot_title,
    single_pass_title,
)
from aisle.agents.carts.critic import (
    COVERAGE_JUDGE,
    COVERAGE_JUDGE_GENERATE,
    RELEVANCE_CRITIC,
    RELEVANCE_CRITIC_LOGPROB,
    CriticError,
    CriticMode,
    Critique,
    critique_title,
    judge_coverage,
    resolve_critic_mode,
)
from aisle.agents.carts.features import FEATURE_EXTRACTOR, ItemFeatures, extract_features
from aisle.agents.carts.generator import TITLE_GENERATOR, generate_titles, titles_schema
from aisle.agents.carts.length import (
    LengthCheck,
    LengthLimit,
    check_length,
    clean_title,
    count_words,
)
from aisle.agents.carts.refiner import REFINER, Miss, refine_title

# Bumped whenever the agents' behaviour as a whole changes (a role's version, a prompt,
# the length rule, how the graph uses them), so stored eval answers of different versions
# are never mixed.
AGENTS_VERSION = 1

ROLES: tuple[Role[Any] | ChoiceRole, ...] = (
    FEATURE_EXTRACTOR, TITLE_GENERATOR, RELEVANCE_CRITIC, RELEVANCE_CRITIC_LOGPROB, REFINER,
    *ARBITER_ROLES.values(), SINGLE_PASS, CHAIN_OF_THOUGHT, COVERAGE_JUDGE,
    COVERAGE_JUDGE_GENERATE)

# The fingerprint of `prompts/carts/` at each agents version, as stored in run keys; a
# template change must bump AGENTS_VERSION and add its fingerprint here (a test checks).
PROMPTS_FINGERPRINT: dict[int, str] = {1: "2324b9c410a4"}


def agents_version() -> dict[str, object]:
    """What a run key records about the agents: the pipeline version and each role's."""
    return {"version": AGENTS_VERSION, "roles": roles_version(ROLES)}


__all__ = [
    "AGENTS_VERSION",
    "ARBITER_ROLES",
    "CHAIN_OF_THOUGHT",
    "COVERAGE_JUDGE",
    "COVERAGE_JUDGE_GENERATE",
    "FEATURE_EXTRACTOR",
    "MAX_ITEM_CHARS",
    "PROMPTS_FINGERPRINT",
    "REFINER",
    "RELEVANCE_CRITIC",
    "RELEVANCE_CRITIC_LOGPROB",
    "ROLES",
    "SINGLE_PASS",
    "TITLE_GENERATOR",
    "TITLE_MAX_CHARS",
    "ArbiterPrompt",
    "CriticError",
    "CriticMode",
    "Critique",
    "ItemFeatures",
    "LengthCheck",
    "LengthLimit",
    "Miss",
    "Tally",
    "agents_version",
    "check_length",
    "clean_title",
    "cot_title",
    "count_words",
    "critique_title",
    "extract_features",
    "generate_titles",
    "judge_coverage",
    "refine_title",
    "resolve_critic_mode",
    "score_titles",
    "scores_schema",
    "shown_items",
    "single_pass_title",
    "titles_schema",
    "vote",
]
