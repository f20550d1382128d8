"""The outfit planner end to end on the real embedded model (Qwen2.5-Coder-0.5B, the
`make run` model) and the real clothing catalog (bundles/clothing, MiniLM index): one
character, one style, no image endpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aisle.graphs.outfits import OutfitsConfig, OutfitsContext, build_outfits_graph
from aisle.llm import load_chat_model, track_usage
from aisle.settings import Settings
from aisle.tools.outfit_catalog import departments_for, load_clothing

pytestmark = pytest.mark.integration

MODEL = "local:qwen2.5-coder-0.5b"


async def test_an_outfit_for_indiana_jones(shared_data_dir: Callable[..., Path]) -> None:
    folder = shared_data_dir("bundles") / "clothing"
    catalog = load_clothing(folder)
    model = load_chat_model(MODEL, settings=Settings(cache_enabled=False))
    ctx = OutfitsContext(model=model, catalog=str(folder),
                         config=OutfitsConfig(max_revisions=1))
    with track_usage() as usage:
        out = await build_outfits_graph().ainvoke(
            {"character": "Indiana Jones", "gender": "male", "age": "adult"}, context=ctx)
    result = out["result"]
    calls = usage.by_agent()
    assert calls["profiler"].calls >= 1
    assert calls["stylist"].calls >= 1
    assert calls["critic"].calls >= 1
    # The small model's answers parse under constrained decoding: a profile and a kept
    # outfit whose every item is a catalog item of its slot, sold to a man (or unisex).
    assert result["profile"] is not None, out.get("failures")
    (outfit,) = result["outfits"]
    found = [i for i in outfit["items"] if i["item_id"]]
    assert found
    allowed = departments_for("male", "adult")
    for entry in found:
        item = catalog[entry["item_id"]]
        assert entry["slot"] in item.slots
        assert item.departments & allowed
        assert entry["title"] == item.title
    assert outfit["critique"] is not None
    assert result["image"]["status"] == "skipped"
    assert result["image_prompt"] is None or result["image_prompt"]["prompt"].strip()
