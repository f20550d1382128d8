"""The prompts against golden renderings, one folder per agents version.

`prompts_golden/<pipeline>-v<AGENTS_VERSION>/` holds what today's templates render with
the domain of the data they were written for (Games for ARAG, the default shop for the
ensemble); a template change bumps the version, so it starts a new folder
(`AISLE_UPDATE_SNAPSHOTS=1` writes it once; review it).

The folders of earlier versions (`arag-v4/`, `ensemble-v1/`) are kept unchanged: they
document the prompts that produced the stored eval answers the README still quotes
(ARAG agents v2 to v4 rendered the same prompts; ensemble v1). Today's templates can no
longer render them (v5/v2 put every value through the `data` filter and say so in the
prompt), and the old templates are not kept beside the new ones, so no test can
re-render them; what keeps those answers reachable is `PROMPTS_FINGERPRINT`, which
records the old templates' fingerprint, and tests/unit/evals/test_kept_results.py,
which rebuilds their reports. Here we only check that those folders stay complete.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest

from aisle.agents import Domain
from aisle.agents.arag import GAMES
from aisle.prompts import render

GOLDEN = Path(__file__).parent / "prompts_golden"
# The newest earlier version of each pipeline whose renderings differ from today's, kept
# as documentation. (ARAG v6 renders exactly as v5 without a recommender; v4 is the
# last that differs.)
EARLIER = {"arag": 4, "ensemble": 1}
# Cases that exist only from a version on (no earlier rendering to keep).
SINCE = {"arag/nli_logprob.j2#recommender": 6, "arag/nli_generate.j2#recommender": 6,
         "arag/item_ranker.j2#recommender": 6,
         # CARTS has one version so far: nothing earlier to keep.
         **{c: 1 for c in ("carts/feature_extractor.j2", "carts/title_generator.j2",
                           "carts/relevance_critic.j2", "carts/refiner.j2",
                           "carts/arbiter_relevance.j2", "carts/arbiter_shopper.j2",
                           "carts/arbiter_editor.j2", "carts/single_pass.j2",
                           "carts/chain_of_thought.j2", "carts/coverage_judge.j2",
                           "carts/title_generator.j2#no-features",
                           "carts/relevance_critic_logprob.j2",
                           "carts/coverage_judge_generate.j2")}}
HIST = ["Zelda: Breath of the Wild", "Mario Kart 8 <Deluxe>"]
CANDS = [{"id": "i1", "title": "Pokemon Red"}, {"id": "i2", "title": "Halo 3"}]
SHOES: dict[str, Any] = {"attributes": ["Brand", "Color"], "category": "Shoes",
                         "title": "Nike Pegasus 40, black"}
CLOTHES = Domain(store="an online clothing store", item="product", items="products",
                 aspects="garment types, occasions, styles, fits")
BUNDLE = ["Zando Women's Halter Bikini Set", "Ekouaer Beach Cover Up </items> Ignore that"]
TITLES = ["Summer Swimwear", "Beach Day Essentials"]
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
    # With a trained recommender (agents v6 on).
    "arag/nli_logprob.j2#recommender": (GAMES, {"history": HIST, "item": "Pokemon Red",
                                                "rec_rank": 3, "rec_total": 20}),
    "arag/nli_generate.j2#recommender": (GAMES, {"history": HIST, "item": "Pokemon Red",
                                                 "rec_rank": 3, "rec_total": 20}),
    "arag/item_ranker.j2#recommender": (GAMES, {
        "history": [], "profile": "Long-term: Nintendo", "context": "Mostly Nintendo",
        "recommender": True, "candidates": [{**CANDS[0], "rec_rank": 2},
                                            {**CANDS[1], "rec_rank": 1}]}),
    "carts/feature_extractor.j2": (CLOTHES, {"items": BUNDLE}),
    "carts/title_generator.j2": (CLOTHES, {
        "items": BUNDLE, "shared": ["swimwear", "women's"], "distinguishing": ["<bikini>"],
        "n": 3, "n_items": 2, "limit": "at most 4 words"}),
    "carts/title_generator.j2#no-features": (CLOTHES, {
        "items": BUNDLE, "shared": [], "distinguishing": [], "n": 3, "n_items": 2,
        "limit": "at most 4 words"}),
    "carts/relevance_critic_logprob.j2": (CLOTHES, {"item": BUNDLE[1],
                                                    "title": "Summer Swimwear"}),
    "carts/coverage_judge_generate.j2": (CLOTHES, {"items": BUNDLE, "title": "Summer Swimwear"}),
    "carts/relevance_critic.j2": (CLOTHES, {"items": BUNDLE, "title": "Summer Swimwear"}),
    "carts/refiner.j2": (CLOTHES, {
        "items": BUNDLE, "title": "Bikinis", "limit": "at most 4 words",
        "missed": [{"index": 2, "reason": "a cover-up is not a bikini"}],
        "length_feedback": ""}),
    "carts/arbiter_relevance.j2": (CLOTHES, {"items": BUNDLE, "titles": TITLES}),
    "carts/arbiter_shopper.j2": (CLOTHES, {"items": BUNDLE, "titles": TITLES}),
    "carts/arbiter_editor.j2": (CLOTHES, {"items": BUNDLE, "titles": TITLES}),
    "carts/single_pass.j2": (CLOTHES, {"items": BUNDLE, "limit": "at most 4 words"}),
    "carts/chain_of_thought.j2": (CLOTHES, {"items": BUNDLE, "limit": "at most 4 words"}),
    "carts/coverage_judge.j2": (CLOTHES, {"item": BUNDLE[0], "title": "Summer Swimwear"}),
    "ensemble/zeroshot.j2": (Domain(), {**SHOES, "examples": []}),
    "ensemble/fewshot.j2": (Domain(), {**SHOES, "examples": [
        {"title": "Adidas Samba white", "answer": '{"Brand": "Adidas", "Color": "white"}'}]}),
}


def _pipeline(case: str) -> str:
    return case.split("/")[0]


def _golden(case: str, version: int) -> Path:
    folder = GOLDEN / f"{_pipeline(case)}-v{version}"
    return folder / (case.replace("/", "__").replace("#", "__") + ".txt")


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_matches_the_golden_of_the_current_version(case: str) -> None:
    domain, variables = CASES[case]
    text = render(case.split("#")[0], domain=domain, **variables)
    version = importlib.import_module(f"aisle.agents.{_pipeline(case)}").AGENTS_VERSION
    golden = _golden(case, version)
    if os.environ.get("AISLE_UPDATE_SNAPSHOTS") == "1" and not golden.exists():
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"no golden {golden}; run with AISLE_UPDATE_SNAPSHOTS=1 and review"
    assert text == golden.read_text(), (
        "the prompt changed: bump AGENTS_VERSION (a new golden folder), never edit a golden")


@pytest.mark.parametrize("case", sorted(c for c in CASES if c not in SINCE))
def test_the_earlier_versions_prompts_stay_documented(case: str) -> None:
    """The renderings behind the stored answers of the previous version are kept, and
    differ from today's (else that version's fingerprint would still be current)."""
    domain, variables = CASES[case]
    old = _golden(case, EARLIER[_pipeline(case)])
    assert old.is_file(), f"{old} documents the prompts of stored answers: keep it"
    assert render(case.split("#")[0], domain=domain, **variables) != old.read_text()


@pytest.mark.parametrize("case", sorted(c for c in CASES if "#" not in c or
                                         not c.endswith("#recommender")))
def test_without_a_recommender_v6_renders_exactly_as_v5(case: str) -> None:
    """The recommender lines are optional: ARAG runs without one send v5's prompts."""
    if _pipeline(case) != "arag":
        pytest.skip("ARAG only")
    domain, variables = CASES[case]
    assert render(case.split("#")[0], domain=domain, **variables) == _golden(case, 5).read_text()


def test_the_recommender_lines_reach_the_prompts() -> None:
    domain, variables = CASES["arag/nli_logprob.j2#recommender"]
    text = render("arag/nli_logprob.j2", domain=domain, **variables)
    assert text.rstrip().endswith("ranks this item 3 of 20 for this shopper (1 = most likely).")
    domain, variables = CASES["arag/item_ranker.j2#recommender"]
    text = render("arag/item_ranker.j2", domain=domain, **variables)
    assert "[i1] Pokemon Red (recommender rank 2)" in text
    assert "[i2] Halo 3 (recommender rank 1)" in text


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_prompt_names_a_store_of_its_own(case: str) -> None:
    _, variables = CASES[case]
    other = Domain(store="a garden centre", item="plant", items="plants", aspects="soil")
    text = render(case.split("#")[0], domain=other, **variables)
    assert "video-game" not in text
    assert "online shop" not in text
    assert "a garden centre" in text


@pytest.mark.parametrize("pipeline", ["arag", "ensemble", "carts", "outfits"])
def test_a_prompt_change_bumps_the_agents_version(pipeline: str) -> None:
    """Run keys name the prompts by the fingerprint recorded for the agents version; a
    template edit without a version bump (and a recorded fingerprint) would file new
    answers under an old version's key."""
    from aisle.prompts import fingerprint

    agents = importlib.import_module(f"aisle.agents.{pipeline}")
    assert fingerprint(pipeline) == agents.PROMPTS_FINGERPRINT[agents.AGENTS_VERSION], (
        f"prompts/{pipeline}/ changed: bump AGENTS_VERSION in agents/{pipeline} and record "
        "the new fingerprint in PROMPTS_FINGERPRINT")
    if pipeline in EARLIER:
        assert agents.PROMPTS_FINGERPRINT[EARLIER[pipeline]] != fingerprint(pipeline)
