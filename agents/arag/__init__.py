"""ARAG's four agents (Maragheh et al., arXiv 2506.21931): user understanding, NLI,
context summary and item ranker, each a `Role` (prompt, schema, budget, version)."""

from typing import Any

from aisle.agents._role import ChoiceRole, Role, roles_version
from aisle.agents.arag._common import GAMES, Item
from aisle.agents.arag.context_summary import (
    CONTEXT_SUMMARY,
    ContextSummary,
    ScoredItem,
    summarize_context,
)
from aisle.agents.arag.fusion import FusionFit, FusionWeights, fit_weights, fuse
from aisle.agents.arag.item_ranker import (
    ITEM_RANKER,
    RankResult,
    by_score,
    rank_items,
    ranking_schema,
    repair_ranking,
)
from aisle.agents.arag.nli import (
    NLI_GENERATE,
    NLI_LOGPROB,
    NLIError,
    NLIJudgement,
    NLIMode,
    NLIScore,
    judge_item,
    resolve_mode,
)
from aisle.agents.arag.user_understanding import USER_UNDERSTANDING, UserProfile, understand_user

# Bumped whenever the agents' behaviour as a whole changes (a role's version, or how
# the graph uses them), so stored eval results of different versions are never mixed.
# v4: the ranker sees the candidates in NLI-score order.
# v5: catalog text and the agents' text derived from it are data: every value goes
#     through the `data` filter (no `<`/`>`, no line breaks: it cannot close its block
#     or forge a role marker) inside a tagged block, and each prompt says so.
# v6: a trained recommender's rank of each candidate can be shown to the NLI and ranker
#     agents (optional lines: without a recommender the prompts render exactly as v5's),
#     and the final order fuses the recommender's, the NLI and the ranker's orders.
AGENTS_VERSION = 6

ROLES: tuple[Role[Any] | ChoiceRole, ...] = (
    USER_UNDERSTANDING, NLI_LOGPROB, NLI_GENERATE, CONTEXT_SUMMARY, ITEM_RANKER)

# The fingerprint of `prompts/arag/` at each agents version, as stored in run keys.
# Versions 2 to 4 used the same templates (their Games-domain renderings are kept in
# tests/unit/prompts_golden/arag-v4/), so they share one; v5 escapes values as data. A
# template change must bump AGENTS_VERSION and add its fingerprint here (a test checks),
# so stored answers of earlier versions stay reachable and are never mixed with new ones.
PROMPTS_FINGERPRINT: dict[int, str] = {2: "fc517f46f54e", 3: "fc517f46f54e", 4: "fc517f46f54e",
                                       5: "c18da255b40c", 6: "00a4929467e1"}


def agents_version() -> dict[str, object]:
    """What a run key records about the agents: the pipeline version and each role's."""
    return {"version": AGENTS_VERSION, "roles": roles_version(ROLES)}


__all__ = [
    "AGENTS_VERSION",
    "CONTEXT_SUMMARY",
    "GAMES",
    "ITEM_RANKER",
    "NLI_GENERATE",
    "NLI_LOGPROB",
    "PROMPTS_FINGERPRINT",
    "ROLES",
    "USER_UNDERSTANDING",
    "ContextSummary",
    "FusionFit",
    "FusionWeights",
    "Item",
    "NLIError",
    "NLIJudgement",
    "NLIMode",
    "NLIScore",
    "RankResult",
    "ScoredItem",
    "UserProfile",
    "agents_version",
    "by_score",
    "fit_weights",
    "fuse",
    "judge_item",
    "rank_items",
    "ranking_schema",
    "repair_ranking",
    "resolve_mode",
    "summarize_context",
    "understand_user",
]
