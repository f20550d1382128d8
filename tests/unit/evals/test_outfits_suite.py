"""The outfits eval on a scripted fake model and the small hand-made catalog: every
variant runs on each character and its gender-swapped twin, the judge is asked in both
orders, the metrics are computed from the catalog, and the bias audit pairs twins."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from aisle.evals.outfits_suite import (
    OutfitsEvalConfig,
    OutfitsSuite,
    Variant,
    chosen_outfit,
    judge_task,
)
from aisle.evals.runner import EvalRunner
from aisle.llm import Capabilities, FakeChatModel
from aisle.testing.outfits import small_outfit_catalog

CHARACTERS = """
- name: Indiana Jones
  source: film
  work: Raiders of the Lost Ark
  gender: male
  age: adult
  note: 1930s archaeologist
- name: Mary Poppins
  source: film
  work: Mary Poppins
  gender: female
  age: adult
  note: Edwardian London nanny
"""


def _garment(slot: str, category: str, colour: str = "brown") -> dict[str, Any]:
    return {"slot": slot, "category": category, "colour": colour, "material": "cotton",
            "style": [], "trait": "bold"}


def _model() -> FakeChatModel:
    judged: list[str] = []

    def judge(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        text = str(messages[0].content)
        a = text.split("<outfit_a>")[1].split("</outfit_a>")[0]
        judged.append(text)
        # Prefers the outfit with more items; on a tie, always position A (a biased
        # judge whose bias the two orders cancel).
        b = text.split("<outfit_b>")[1].split("</outfit_b>")[0]
        na, nb = a.count("\n- "), b.count("\n- ")
        return {"reason": "fuller", "better": "A" if na >= nb else "B"}

    def spec(g: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in g.items() if k != "slot"}

    plan = {"top": spec(_garment("top", "oxford shirt", "white")),
            "bottom": spec(_garment("bottom", "chino pants", "khaki")),
            "one_piece": None, "outerwear": None,
            "footwear": spec(_garment("footwear", "ankle boots")),
            "accessories": [spec(_garment("accessory", "fedora hat"))]}
    return FakeChatModel(
        by_schema={
            "CharacterProfile": {"era": "1930s", "setting": "digs", "palette": ["khaki"],
                                 "materials": ["leather"], "signature_pieces": ["hat"],
                                 "traits": ["bold"]},
            "OutfitPlan": plan,
            "SlotQuery": lambda m, k: {"query": re.search(
                r"category: (.+)", str(m[0].content)).group(1)},  # type: ignore[union-attr]
            "OutfitCritique": {"faithfulness": 4, "coherence": 3, "wearability": 5,
                               "verdict": "accept", "feedback": "ok"},
            "ImagePrompt": {"elements": ["a", "b"], "prompt": "p"},
            # The baseline names two garments only: an incomplete outfit.
            "BaselineOutfit": {"top": "white cotton shirt", "bottom": None,
                               "one_piece": None, "outerwear": None,
                               "footwear": "leather boots", "accessories": ["felt hat"]},
            "Preference": judge},
        responses=["not json"], cycle=True, capabilities=Capabilities(json_schema=True))


@pytest.fixture
def suite(tmp_path: Path) -> OutfitsSuite:
    characters = tmp_path / "characters.yaml"
    characters.write_text(CHARACTERS)
    config = OutfitsEvalConfig(data=tmp_path, characters=characters, model="fake:m",
                               judge="fake:j", styles=2)
    model = _model()
    return OutfitsSuite(config, models={"fake:m": model, "fake:j": model},
                        catalog=small_outfit_catalog(tmp_path / "idx"))


async def test_every_variant_and_the_judge_in_both_orders(suite: OutfitsSuite,
                                                          tmp_path: Path) -> None:
    assert [c.id for c in suite.cases()] == [
        "indiana-jones-male-adult", "indiana-jones-female-adult",
        "mary-poppins-female-adult", "mary-poppins-male-adult"]
    assert suite.phases()[1] == [judge_task("fake:j", "graph", "baseline"),
                                 judge_task("fake:j", "diverse", "baseline"),
                                 judge_task("fake:j", "diverse", "graph")]
    runner = EvalRunner(suite, tmp_path / "results")
    outcome = await runner.run()
    assert outcome.failures == []
    report = runner.report()
    assert report["characters"] == 4
    graph = report["metrics"]["graph"]
    # The graph's four garments: top, bottom and footwear found for every wearer (the
    # women's shelf has no hat, so the twins' outfits have 3 items, the men's 4).
    assert graph["completeness"] == 1.0
    assert graph["complete"] == 1.0
    assert graph["slot_correct"] == 1.0
    baseline = report["metrics"]["baseline"]
    assert baseline["completeness"] == pytest.approx(2 / 3)  # no bottom
    assert baseline["complete"] == 0.0
    # "ankle boots" -> "boots" is in the men's boot title; the women's pumps are not boots.
    answers = runner.answers()
    man = suite.outfit_scores(chosen_outfit(answers["graph"]["indiana-jones-male-adult"]),
                              suite.characters[0])
    woman = suite.outfit_scores(chosen_outfit(answers["graph"]["indiana-jones-female-adult"]),
                                suite.characters[1])
    assert man["category_match"] == 1.0
    # The women's shelf has a blouse, a skirt and pumps: the slots are filled, but none
    # is the shirt, pants or boots planned.
    assert woman["category_match"] == 0.0
    assert woman["items"] == 3.0
    assert man["wearer_department"] == 1.0
    # The judge prefers fuller outfits: the graph beats the baseline in both orders.
    pref = report["preference"]["graph~baseline"]
    assert pref["wins"] == 4
    assert pref["position_consistent"] == 1.0
    # Graph and diverse plan the same outfit here: a tie that the two orders expose as
    # the judge's position bias (A both times), scored 0.
    same = report["preference"]["diverse~graph"]
    assert same["ties"] == 4
    assert same["position_consistent"] == 0.0
    assert same["answers"] == {"A": 8, "B": 0, "tie": 0}
    assert pref["answers"]["A"] + pref["answers"]["B"] == 8
    # Diverse: both style directions give the same plan, so the repeat is dropped.
    assert report["diversity"]["styles_kept"]["mean"] == 1.0
    # The bias audit pairs each character with its twin.
    bias = report["bias"]
    assert bias["pairs"] == 2
    assert bias["metrics"]["graph"]["items"]["mean"] == pytest.approx(
        (man["items"] - woman["items"] + 0) / 2, abs=0.51)
    assert set(bias["shape"]["graph"]) == {"female", "male"}
    text = suite.markdown(report)
    assert "## Bias audit (2 character / gender-swapped twin pairs" in text
    assert "### Indiana Jones: adult female (gender-swapped twin)" in text
    json.dumps(report)  # the report is JSON
    # No image prompt is written: nothing reads it in the eval.
    assert "ImagePrompt" not in {c.schema for c in suite._models["fake:m"].calls}  # type: ignore[attr-defined]


def test_variants_can_be_chosen(tmp_path: Path) -> None:
    characters = tmp_path / "c.yaml"
    characters.write_text(CHARACTERS)
    config = OutfitsEvalConfig(data=tmp_path, characters=characters, model="fake:m",
                               judge="fake:j", variants=(Variant.baseline, Variant.graph))
    suite = OutfitsSuite(config, models={"fake:m": _model()},
                         catalog=small_outfit_catalog(tmp_path / "idx"))
    assert suite.phases() == [["baseline", "graph"],
                              [judge_task("fake:j", "graph", "baseline")]]
