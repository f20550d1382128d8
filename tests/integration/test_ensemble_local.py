"""The ensemble graph end to end on the real embedded model (SmolLM2-135M), two prompt
variants as two labelers, on real OA-Mine offers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aisle.evals.ensemble_suite import few_shot_examples
from aisle.evals.oa_mine import load_offers
from aisle.graphs.ensemble import EnsembleContext, build_ensemble_graph
from aisle.llm import load_chat_model, track_usage
from aisle.settings import Settings
from aisle.tools.aggregation import aggregate

pytestmark = pytest.mark.integration

ATTRIBUTES = ["Brand", "Gender", "Shoe type", "Color"]


async def test_ensemble_graph_on_the_embedded_model(
        shared_data_dir: Callable[..., Path]) -> None:
    data = shared_data_dir("attribute-extraction", "oa-mine")
    offers = [o for o in load_offers(data / "test.jsonl")
              if o.category == "Shoes"][:2]
    train = load_offers(data / "train.jsonl")
    model = load_chat_model("local", settings=Settings(cache_enabled=False))
    ctx = EnsembleContext(labelers=["local@zeroshot", "local@fewshot"],
                          models={"local": model})
    graph = build_ensemble_graph()
    rows = []
    for offer in offers:
        state = {"product": {"title": offer.title, "category": offer.category},
                 "attributes": ATTRIBUTES,
                 "examples": few_shot_examples(train, "Shoes", ATTRIBUTES)}
        with track_usage() as usage:
            out = await graph.ainvoke(state, context=ctx)
        assert sorted(a["labeler"] for a in out["answers"]) == ["local@fewshot",
                                                                "local@zeroshot"]
        answered = [a for a in out["answers"] if a["values"] is not None]
        assert answered, f"both labelers failed: {out['answers']}"
        for a in answered:
            assert sorted(a["values"]) == sorted(ATTRIBUTES)
            assert all(isinstance(v, str) and v for v in a["values"].values())
            rows += [(f"{offer.index}|{k}", a["labeler"], v) for k, v in a["values"].items()]
        assert sorted(out["result"]) == sorted(ATTRIBUTES)
        for r in out["result"].values():
            assert r["value"] in r["votes"]
            assert r["agreeing"] == r["votes"][r["value"]]
            assert 0.0 < r["confidence"] <= 1.0
        assert usage.by_agent()["ensemble_labeler"].calls >= 2
        assert usage.total().errors == 0
    # The answers the graph produced can be fitted and the weights reused in the graph.
    weights = aggregate(rows, method="iwmv").weights
    ctx = ctx.model_copy(update={"weights": weights})
    out = await graph.ainvoke({"product": {"title": offers[0].title, "category": "Shoes"},
                               "attributes": ATTRIBUTES,
                               "examples": few_shot_examples(train, "Shoes", ATTRIBUTES)},
                              context=ctx)
    assert out["method"] == "iwmv"
    assert sorted(out["result"]) == sorted(ATTRIBUTES)
