"""The prompts take the shop's domain as a variable; rendered with the domain of the
data they were written for, they are byte-identical to the prompts that produced the
stored eval answers (agents v4 for ARAG, v1 for the ensemble), which is what lets
those answers be reused under the new run keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aisle.agents import Domain
from aisle.agents.arag import GAMES
from aisle.prompts import render

GOLDEN = Path(__file__).parent / "prompts_golden"
HIST = ["Zelda: Breath of the Wild", "Mario Kart 8 <Deluxe>"]
CANDS = [{"id": "i1", "title": "Pokemon Red"}, {"id": "i2", "title": "Halo 3"}]
SHOES: dict[str, Any] = {"attributes": ["Brand", "Color"], "category": "Shoes",
                         "title": "Nike Pegasus 40, black"}
CASES: dict[str, tuple[Domain, dict[str, Any]]] = {
    "arag/user_understanding.j2": (GAMES, {"history": HIST}),
    "arag/nli_logprob.j2": (GAMES, {"history": HIST, "item": "Pokemon Red"}),
    "arag/nli_generate.j2": (GAMES, {"history": HIST, "item": "Pokemon Red"}),
    "arag/context_summary.j2": (GAMES, {
        "profile": "Long-term: Nintendo\nRight now: racing",
        "items": [{"id": "i1", "title": "Pokemon Red", "score": 0.91},
                  {"id": "i2", "title": "Halo 3", "score": 0.5}]}),
    "arag/item_ranker.j2#full": (GAMES, {"history": [], "profile": "Long-term: Nintendo",
                                         "context": "Mostly Nintendo", "candidates": CANDS}),
    "arag/item_ranker.j2#vanilla": (GAMES, {"history": HIST, "profile": "", "context": "",
                                            "candidates": CANDS}),
    "ensemble/zeroshot.j2": (Domain(), {**SHOES, "examples": []}),
    "ensemble/fewshot.j2": (Domain(), {**SHOES, "examples": [
        {"title": "Adidas Samba white", "answer": '{"Brand": "Adidas", "Color": "white"}'}]}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_matches_the_prompts_of_the_stored_answers(case: str) -> None:
    domain, variables = CASES[case]
    text = render(case.split("#")[0], domain=domain, **variables)
    golden = GOLDEN / (case.replace("/", "__").replace("#", "__") + ".txt")
    assert text == golden.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_prompt_names_a_store_of_its_own(case: str) -> None:
    _, variables = CASES[case]
    other = Domain(store="a garden centre", item="plant", items="plants", aspects="soil")
    text = render(case.split("#")[0], domain=other, **variables)
    assert "video-game" not in text
    assert "online shop" not in text
    assert "a garden centre" in text


@pytest.mark.parametrize("pipeline", ["arag", "ensemble"])
def test_a_prompt_change_bumps_the_agents_version(pipeline: str) -> None:
    """Run keys name the prompts by the fingerprint recorded for the agents version; a
    template edit without a version bump (and a recorded fingerprint) would file new
    answers under an old version's key."""
    import importlib

    from aisle.prompts import fingerprint

    agents = importlib.import_module(f"aisle.agents.{pipeline}")
    assert fingerprint(pipeline) == agents.PROMPTS_FINGERPRINT[agents.AGENTS_VERSION], (
        f"prompts/{pipeline}/ changed: bump AGENTS_VERSION in agents/{pipeline} and record "
        "the new fingerprint in PROMPTS_FINGERPRINT")
