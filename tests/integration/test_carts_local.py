"""CARTS end to end on the real embedded model (Qwen2.5-Coder-0.5B, the `make run`
model) for one real bundle of each domain, and both baselines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aisle.agents.carts import LengthLimit, check_length, cot_title, single_pass_title
from aisle.evals.bundles import domain_of, load_bundles
from aisle.graphs.carts import CartsConfig, CartsContext, build_carts_graph
from aisle.llm import load_chat_model, track_usage
from aisle.settings import Settings

pytestmark = pytest.mark.integration

MODEL = "local:qwen2.5-coder-0.5b"


@pytest.mark.parametrize(("domain", "bundle"), [("electronic", 0), ("clothing", 1)])
async def test_carts_titles_a_real_bundle(domain: str, bundle: int,
                                          shared_data_dir: Callable[..., Path]) -> None:
    bundles = {b.id: b for b in load_bundles(shared_data_dir("bundles"), domain)}
    items = list(bundles[str(bundle)].titles)
    model = load_chat_model(MODEL, settings=Settings(cache_enabled=False))
    ctx = CartsContext(model=model, domain=domain_of(domain),
                       config=CartsConfig(n_candidates=2, max_rounds=1))
    limit = LengthLimit(max_words=4)
    with track_usage() as usage:
        out = await build_carts_graph().ainvoke({"items": items, "max_words": 4}, context=ctx)
    result = out["result"]
    if result["satisfied"]:
        assert check_length(result["title"], limit).ok
        assert result["words"] == len(result["title"].split())
    else:
        assert result["title"] is None
        assert result["reason"]
    assert out["candidates"], "the generator gave no title"
    for candidate in out["candidates"]:
        for version in candidate["versions"]:
            assert version["within_limit"] == check_length(version["title"], limit).ok
            if version["fits"] is not None:
                assert len(version["fits"]) == len(items)
    assert out["round"] <= 1
    agents = usage.by_agent()
    assert agents["feature_extractor"].calls >= 1
    assert agents["title_generator"].calls >= 1
    assert agents["relevance_critic"].calls >= len(out["candidates"])
    assert usage.total().errors == 0
    # The baselines on the same items: a cleaned, non-empty title each.
    single = await single_pass_title(model, items, limit, domain=domain_of(domain))
    reasoning, cot = await cot_title(model, items, limit, domain=domain_of(domain))
    assert single
    assert cot
    assert reasoning
