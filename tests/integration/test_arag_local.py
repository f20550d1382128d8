"""ARAG end to end on the real embedded model (SmolLM2-135M) for a few real users."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aisle.agents.arag import GAMES
from aisle.evals.llmrank import load_games
from aisle.graphs.arag import ARAGConfig, ARAGContext, build_arag_graph
from aisle.llm import load_chat_model, track_usage
from aisle.settings import Settings

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("nli_mode", ["logprob", "generate"])
async def test_arag_ranks_real_users_on_the_embedded_model(
        nli_mode: str, shared_data_dir: Callable[..., Path]) -> None:
    games = load_games(shared_data_dir("llmrank-games"))
    model = load_chat_model("local", settings=Settings(cache_enabled=False), max_tokens=256)
    graph = build_arag_graph()
    for case in games.cases("random", n_users=2, n_candidates=6):
        state = games.arag_input(case, max_history=10)
        ctx = ARAGContext(model=model, domain=GAMES,
                          config=ARAGConfig(nli_mode=nli_mode,  # type: ignore[arg-type]
                                            min_accepted=2, max_history=10))
        with track_usage() as usage:
            out = await graph.ainvoke(state, context=ctx)
        assert sorted(out["ranking"]) == sorted(case.candidates)  # a full permutation
        assert len(out["nli"]) == 6
        scored = [r for r in out["nli"] if r["score"] is not None]
        assert scored, "every NLI call failed"
        assert all(0.0 <= r["score"] <= 1.0 for r in scored)
        assert {r["mode"] for r in scored} == {nli_mode}
        assert out["user_profile"].startswith("Long-term:")
        assert len(out["accepted"]) >= 2
        assert out["context_summary"]
        per_agent = usage.by_agent()
        assert per_agent["nli"].calls >= 6
        assert per_agent["item_ranker"].calls >= 1
        assert usage.total().errors == 0


async def test_arag_with_a_recommender_on_the_embedded_model(
        shared_data_dir: Callable[..., Path]) -> None:
    """A popularity recommender fitted on the real Games histories beside the agents: its
    ranks reach the blackboard and the prompts, and the ranking is the fusion of the
    three orders."""
    from aisle.agents.arag import FusionWeights, fuse
    from aisle.tools.recommenders import Popularity

    games = load_games(shared_data_dir("llmrank-games"))
    recommender = Popularity()
    recommender.fit(list(games.histories.values()), items=sorted(games.items))
    model = load_chat_model("local", settings=Settings(cache_enabled=False), max_tokens=256)
    (case,) = games.cases("random", n_users=1, n_candidates=6)
    ctx = ARAGContext(model=model, domain=GAMES, recommender_model=recommender,
                      config=ARAGConfig(nli_mode="logprob", min_accepted=2, max_history=10))
    out = await build_arag_graph().ainvoke(games.arag_input(case, max_history=10), context=ctx)
    ranks = sorted(r["rank"] for r in out["recommender"])
    assert ranks == [1, 2, 3, 4, 5, 6]
    orders = out["fusion"]["orders"]
    assert set(orders) == {"recommender", "nli", "ranker"}
    assert out["ranking"] == fuse(orders, FusionWeights())
    assert sorted(out["ranking"]) == sorted(case.candidates)
    assert sorted(out["ranker"]["ranking"]) == sorted(case.candidates)
