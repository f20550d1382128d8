"""The outfit planner on a scripted fake model and a small hand-made catalog (trigram
embeddings, no MiniLM): slot and wearer filters, every id from the catalog, a slot the
catalog cannot fill reported as missing, the critic's bounded revise loop, diverse-style
deduplication, bad input, and the image hook (skipped, a stub endpoint with the
vision-enhanced round, an endpoint that is down)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from aisle.agents.outfits import OutfitPlan, missing_slots
from aisle.agents.outfits.baseline import BaselineOutfit
from aisle.errors import ConfigurationError
from aisle.graphs.outfits import (
    OutfitsConfig,
    OutfitsContext,
    build_outfit_subgraph,
    build_outfits_graph,
)
from aisle.llm import Capabilities, FakeChatModel
from aisle.testing.outfits import small_outfit_catalog
from aisle.tools.images import ImageEndpoint
from aisle.tools.outfit_catalog import OutfitCatalog


def _catalog(tmp_path: Path, drop: tuple[str, ...] = ()) -> OutfitCatalog:
    return small_outfit_catalog(tmp_path / f"idx-{len(drop)}", drop)


PROFILE = {"era": "1930s", "setting": "jungle digs", "palette": ["khaki", "brown"],
           "materials": ["leather", "cotton"], "signature_pieces": ["fedora", "jacket"],
           "traits": ["adventurous"]}


def _garment(slot: str, category: str, colour: str = "brown", material: str = "leather"
             ) -> dict[str, Any]:
    return {"slot": slot, "category": category, "colour": colour, "material": material,
            "style": ["rugged"], "trait": "adventurous"}


def _plan(*garments: dict[str, Any]) -> dict[str, Any]:
    """The stylist's answer (one field per slot) holding these garments."""
    plan: dict[str, Any] = {"top": None, "bottom": None, "one_piece": None,
                            "outerwear": None, "footwear": None, "accessories": []}
    for g in garments:
        spec = {k: v for k, v in g.items() if k != "slot"}
        if g["slot"] == "accessory":
            plan["accessories"].append(spec)
        else:
            plan[g["slot"]] = spec
    return plan


PLAN = _plan(_garment("top", "oxford shirt", "white", "cotton"),
             _garment("bottom", "chino pants", "khaki", "cotton"),
             _garment("outerwear", "bomber jacket"),
             _garment("footwear", "ankle boots"),
             _garment("accessory", "fedora hat", "brown", "felt"))


def _query(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
    text = str(messages[0].content)
    category = re.search(r"category: (.+)", text)
    colour = re.search(r"colour: (.+)", text)
    assert category
    assert colour
    return {"query": f"men's {colour.group(1)} {category.group(1)}"}


def _model(*, plan: Any = None, critique: Any = None, **extra: Any) -> FakeChatModel:
    return FakeChatModel(
        by_schema={"CharacterProfile": PROFILE, "OutfitPlan": plan or PLAN,
                   "SlotQuery": _query,
                   "OutfitCritique": critique or {"faithfulness": 4, "coherence": 4,
                                                  "wearability": 5, "verdict": "accept",
                                                  "feedback": "Good."},
                   "ImagePrompt": {"elements": ["fedora", "bomber jacket"],
                                   "prompt": "A full-body photo of a man in a fedora."},
                   **extra},
        responses=["not json"], cycle=True, capabilities=Capabilities(json_schema=True))


def _stylist_calls(model: FakeChatModel) -> list[Any]:
    return [c for c in model.calls if c.schema == "OutfitPlan"]


INDY = {"character": "Indiana Jones", "gender": "male", "age": "adult"}


async def test_one_outfit_fills_each_slot_from_its_own_shelf(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    model = _model()
    out = await build_outfits_graph().ainvoke(
        INDY, context=OutfitsContext(model=model, catalog=catalog))
    result = out["result"]
    (outfit,) = result["outfits"]
    assert outfit["status"] == "ok"
    assert outfit["missing"] == []
    by_slot = {i["slot"]: i["item_id"] for i in outfit["items"]}
    assert by_slot == {"top": "m-shirt", "bottom": "m-chino", "footwear": "m-boot",
                       "outerwear": "m-jacket", "accessory": "m-hat"}
    for entry in outfit["items"]:
        item = catalog.items[entry["item_id"]]
        assert entry["slot"] in item.slots
        assert item.departments & {"men", "unisex"}
        assert entry["title"] == item.title
        assert entry["query"].startswith("men's ")
    assert outfit["critique"]["verdict"] == "accept"
    assert outfit["revisions"] == 0
    assert result["profile"] == PROFILE
    assert result["image_prompt"]["prompt"].startswith("A full-body photo")
    assert result["image"]["status"] == "skipped"
    assert "no image endpoint" in result["image"]["reason"]
    # The stylist read the profile; the concretiser the chosen items' titles.
    assert "Signature pieces: fedora, jacket." in str(_stylist_calls(model)[0].messages[0].content)
    (poac,) = [c for c in model.calls if c.schema == "ImagePrompt"]
    assert "Men's felt fedora hat" in str(poac.messages[0].content)


async def test_a_womans_footwear_slot_gets_a_womans_shoe_whatever_the_query(
        tmp_path: Path) -> None:
    model = _model(SlotQuery={"query": "white cotton oxford shirt"})
    out = await build_outfits_graph().ainvoke(
        {"character": "Mary Poppins", "gender": "female", "age": "adult"},
        context=OutfitsContext(model=model, catalog=_catalog(tmp_path)))
    (outfit,) = out["result"]["outfits"]
    got = {i["slot"]: i["item_id"] for i in outfit["items"]}
    assert got["footwear"] == "w-heel"  # the only women's shoe, though the query says shirt
    assert got["top"] == "w-blouse"
    assert got["bottom"] == "w-skirt"
    # No women's outerwear or accessory in this catalog: reported, never invented.
    assert {i["item_id"] for i in outfit["items"] if i["slot"] in ("outerwear", "accessory")
            } == {None}
    assert outfit["missing"] == ["outerwear (brown leather bomber jacket (rugged))",
                                 "accessory (brown felt fedora hat (rugged))"]


async def test_an_incomplete_plan_is_reported_missing(tmp_path: Path) -> None:
    plan = _plan(_garment("top", "shirt"), _garment("footwear", "boots"),
                 _garment("accessory", "hat"), _garment("accessory", "watch"))
    out = await build_outfits_graph().ainvoke(
        INDY, context=OutfitsContext(model=_model(plan=plan), catalog=_catalog(tmp_path)))
    (outfit,) = out["result"]["outfits"]
    assert outfit["missing"] == ["bottom"]
    # The two accessories got two different items.
    accessories = [i["item_id"] for i in outfit["items"] if i["slot"] == "accessory"]
    assert len(set(accessories)) == 2


@pytest.mark.parametrize(("body", "kept"), [
    (("top", "bottom", "one_piece"), ["top", "bottom"]),
    (("top", "one_piece"), ["one_piece"]),
    (("bottom", "one_piece"), ["one_piece"]),
    (("one_piece",), ["one_piece"]),
    (("top", "bottom"), ["top", "bottom"]),
])
def test_a_plan_never_keeps_a_one_piece_beside_separates(body: tuple[str, ...],
                                                         kept: list[str]) -> None:
    names = {"top": "oxford shirt", "bottom": "chino pants", "one_piece": "jumpsuit"}
    plan = OutfitPlan.model_validate(_plan(*(_garment(s, names[s]) for s in body),
                                           _garment("footwear", "ankle boots")))
    assert [g.slot for g in plan.garments] == [*kept, "footwear"]
    assert set(plan.dropped) == set(body) - set(kept)
    assert missing_slots([g.slot for g in plan.garments]) == []
    baseline = BaselineOutfit.model_validate(
        {"top": None, "bottom": None, "one_piece": None, "outerwear": None,
         "footwear": "boots", "accessories": [], **{s: names[s] for s in body}})
    assert [g.slot for g in baseline.garments] == [*kept, "footwear"]
    assert baseline.dropped == plan.dropped


async def test_the_graph_retrieves_no_item_for_a_dropped_slot(tmp_path: Path) -> None:
    plan = _plan(_garment("top", "oxford shirt", "white", "cotton"),
                 _garment("bottom", "chino pants", "khaki", "cotton"),
                 _garment("one_piece", "jumpsuit", "khaki", "cotton"),
                 _garment("footwear", "ankle boots"))
    model = _model(plan=plan)
    out = await build_outfits_graph().ainvoke(
        INDY, context=OutfitsContext(model=model, catalog=_catalog(tmp_path)))
    (outfit,) = out["result"]["outfits"]
    assert {i["slot"] for i in outfit["items"]} == {"top", "bottom", "footwear"}
    assert outfit["missing"] == []
    queries = [str(c.messages[0].content) for c in model.calls if c.schema == "SlotQuery"]
    assert len(queries) == 3
    assert not any("jumpsuit" in q for q in queries)


async def test_a_low_score_sends_the_outfit_back_whatever_the_verdict(
        tmp_path: Path) -> None:
    model = _model(critique={"faithfulness": 1, "coherence": 4, "wearability": 4,
                             "verdict": "accept", "feedback": "Not Indy at all."})
    out = await build_outfits_graph().ainvoke(INDY, context=OutfitsContext(
        model=model, catalog=_catalog(tmp_path), config=OutfitsConfig(max_revisions=1)))
    assert len(_stylist_calls(model)) == 2
    assert out["result"]["outfits"][0]["revisions"] == 1


@pytest.mark.parametrize("max_revisions", [0, 2])
async def test_the_critic_sends_back_at_most_max_revisions_times(
        tmp_path: Path, max_revisions: int) -> None:
    model = _model(critique={"faithfulness": 2, "coherence": 3, "wearability": 3,
                             "verdict": "revise", "feedback": "More khaki."})
    ctx = OutfitsContext(model=model, catalog=_catalog(tmp_path),
                         config=OutfitsConfig(max_revisions=max_revisions))
    out = await build_outfits_graph().ainvoke(INDY, context=ctx)
    calls = _stylist_calls(model)
    assert len(calls) == max_revisions + 1
    assert [c.schema for c in model.calls].count("OutfitCritique") == max_revisions + 1
    (outfit,) = out["result"]["outfits"]
    assert outfit["revisions"] == max_revisions
    if max_revisions:
        assert "More khaki. (faithfulness 2/5" in str(calls[-1].messages[0].content)


async def test_diverse_styles_drop_repeats(tmp_path: Path) -> None:
    other = _plan(_garment("top", "crew neck tee", "grey", "cotton"),
                  _garment("bottom", "denim jeans", "dark blue", "denim"),
                  _garment("footwear", "canvas sneakers", "white", "canvas"))

    def plan(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        # The first two directions plan the same outfit; the third another.
        return other if "formal" in str(messages[0].content) else PLAN

    model = _model(plan=plan)
    out = await build_outfits_graph().ainvoke(
        {**INDY, "styles": 3}, context=OutfitsContext(model=model, catalog=_catalog(tmp_path)))
    result = out["result"]
    assert [o["style_index"] for o in result["outfits"]] == [0, 2]
    assert [o["style_index"] for o in result["dropped"]] == [1]
    assert out["distances"][0][1] == pytest.approx(0.0, abs=1e-6)
    assert out["distances"][0][2] > 0.1
    styles = [re.search(r"Style direction for this outfit: (.+)",
                        str(c.messages[0].content)) for c in _stylist_calls(model)]
    assert len({s.group(1) for s in styles if s}) == 3


@pytest.mark.parametrize(("bad", "message"), [
    ({"character": "  "}, "no character"),
    ({"age": "toddler"}, "age 'toddler' is not one of child, teen, adult, senior"),
    ({"gender": "robot"}, "gender 'robot' is not one of female, male"),
    ({"character": "x" * 81}, "at most 80"),
    ({"styles": 9}, "styles=9: between 1 and 5"),
])
async def test_bad_input_is_a_one_line_error_before_any_call(
        tmp_path: Path, bad: dict[str, Any], message: str) -> None:
    model = _model()
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        await build_outfits_graph().ainvoke({**INDY, **bad}, context=OutfitsContext(
            model=model, catalog=_catalog(tmp_path)))
    assert model.calls == []


async def test_a_failed_stylist_leaves_the_style_without_an_outfit(tmp_path: Path) -> None:
    out = await build_outfits_graph().ainvoke(
        INDY, context=OutfitsContext(model=_model(plan="not json"), catalog=_catalog(tmp_path)))
    assert out["result"]["outfits"] == []
    assert out["result"]["dropped"][0]["status"] == "failed"
    assert [f["agent"] for f in out["failures"]] == ["stylist"]
    assert out["result"]["image"]["status"] == "skipped"


async def test_the_image_endpoint_draws_and_the_vlm_revises(tmp_path: Path) -> None:
    from aisle.testing.image_stub import image_stub_server

    model = _model()
    with image_stub_server(description="A brown felt hat and tall riding boots.") as stub:
        endpoint = ImageEndpoint(base_url=stub.base_url, model="stub-image",
                                 vlm_model="stub-vlm")
        out = await build_outfits_graph().ainvoke(INDY, context=OutfitsContext(
            model=model, catalog=_catalog(tmp_path), image=endpoint))
        paths = [r.path for r in stub.requests]
    result = out["result"]
    assert result["rounds"] == 2
    assert result["image"]["status"] == "generated"
    assert result["image"]["bytes"] > 0
    # Round 2: the stylist and query writers saw the picture's description.
    calls = _stylist_calls(model)
    assert len(calls) == 2
    assert "tall riding boots" in str(calls[1].messages[0].content)
    assert "tall riding boots" not in str(calls[0].messages[0].content)
    assert paths.count("/v1/images/generations") == 2  # one picture per round
    assert paths.count("/v1/chat/completions") == 1  # described once (vision_rounds=1)
    assert all(o["round"] == 1 for o in result["outfits"])


async def test_an_endpoint_that_is_down_is_reported_and_the_outfit_stands(
        tmp_path: Path) -> None:
    endpoint = ImageEndpoint(base_url="http://127.0.0.1:9/v1", model="m", timeout_s=2,
                             max_retries=0)
    out = await build_outfits_graph().ainvoke(INDY, context=OutfitsContext(
        model=_model(), catalog=_catalog(tmp_path), image=endpoint))
    assert out["result"]["image"]["status"] == "failed"
    assert "127.0.0.1:9" in out["result"]["image"]["reason"]
    assert len(out["result"]["outfits"]) == 1


def test_the_topology() -> None:
    outer = build_outfits_graph().get_graph().draw_mermaid()
    for edge in ("__start__ --> profile;", "profile -.-> outfit;", "outfit --> select;",
                 "select --> concretise;", "concretise --> image;", "image -.-> outfit;",
                 "image -.-> result;", "result --> __end__;"):
        assert edge in outer, edge
    inner = build_outfit_subgraph().get_graph().draw_mermaid()
    for edge in ("__start__ --> stylist;", "stylist -.-> retrieve;", "stylist -.-> finish;",
                 "retrieve --> critic;", "critic -.-> stylist;", "critic -.-> finish;",
                 "finish --> __end__;"):
        assert edge in inner, edge
