"""ARAG's four agents (Maragheh et al., arXiv 2506.21931): user understanding, NLI,
context summary and item ranker."""

from aisle.agents.arag._common import Item
from aisle.agents.arag.context_summary import ContextSummary, ScoredItem, summarize_context
from aisle.agents.arag.item_ranker import RankResult, rank_items, ranking_schema, repair_ranking
from aisle.agents.arag.nli import NLIError, NLIJudgement, NLIMode, judge_item, resolve_mode
from aisle.agents.arag.user_understanding import UserProfile, understand_user

# Bumped whenever an agent's behaviour changes (budgets, parsing, schemas), so stored
# eval results of different versions are never mixed. v4: the ranker sees the
# candidates in NLI-score order.
AGENTS_VERSION = 4

__all__ = [
    "AGENTS_VERSION",
    "ContextSummary",
    "Item",
    "NLIError",
    "NLIJudgement",
    "NLIMode",
    "RankResult",
    "ScoredItem",
    "UserProfile",
    "judge_item",
    "rank_items",
    "ranking_schema",
    "repair_ranking",
    "resolve_mode",
    "summarize_context",
    "understand_user",
]
