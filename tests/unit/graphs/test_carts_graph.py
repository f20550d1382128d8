"""CARTS graph logic on scripted fake models: the bounded refinement loop, the hard
length limit, the vote, and failures that do not lose the other candidates."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from pydantic import ValidationError

from aisle.agents.carts import LengthLimit, check_length
from aisle.errors import ConfigurationError
from aisle.graphs.carts import CartsConfig, CartsContext, build_carts_graph
from aisle.llm import Capabilities, FakeChatModel, track_usage

ITEMS = ["Anker USB-C to USB-C cable, 2 m, braided", "Belkin USB-C charging cable 1 m",
         "UGREEN HDMI 2.1 cable 8K"]
FEATURES = {"shared": ["cables"], "distinguishing": ["USB-C", "HDMI"]}
Reply = Callable[[list[BaseMessage], dict[str, Any]], Any]


def _title_of(messages: list[BaseMessage]) -> str:
    match = re.search(r"<title>(.*?)</title>", str(messages[-1].content if len(messages) == 1
                                                   else messages[0].content))
    assert match, "the prompt shows the title between <title> tags"
    return match.group(1)


def critic(fits: Mapping[str, list[bool]], default: list[bool] | None = None) -> Reply:
    """A critic that answers per title from a table (by the title it is shown)."""
    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        title = _title_of(messages)
        verdict = fits.get(title, default)
        if verdict is None:
            return "not json"
        return {f"item_{i}": {"reason": "fits" if ok else f"{title} is not it", "fits": ok}
                for i, ok in enumerate(verdict, 1)}
    return reply


def _model(*, titles: list[str] | None = None, fits: Reply | None = None,
           refine: Reply | str | list[str] | None = None,
           scores: Mapping[int, list[int]] | Callable[..., Any] | None = None,
           features: Any = FEATURES) -> FakeChatModel:
    titles = titles if titles is not None else ["USB Cables", "Cables and Adapters",
                                                "HDMI Cables"]
    by_schema: dict[str, Any] = {
        "ItemFeatures": features,
        # The generator writes three titles (the default); "" ones are dropped.
        "Titles3": {f"title_{i}": t for i, t in enumerate([*titles, "", "", ""][:3], 1)},
        f"Critique{len(ITEMS)}": fits or critic({}, [True, True, True]),
    }
    if isinstance(refine, list):
        queue = list(refine)
        by_schema["RefinedTitle"] = lambda m, k: {"title": queue.pop(0) if queue else "x"}
    elif isinstance(refine, str):
        by_schema["RefinedTitle"] = {"title": refine}
    elif refine is not None:
        by_schema["RefinedTitle"] = refine
    for n in range(1, 9):
        if callable(scores):
            by_schema[f"Scores{n}"] = scores
        elif scores is not None and n in scores:
            by_schema[f"Scores{n}"] = {f"title_{i}": s for i, s in enumerate(scores[n], 1)}
    return FakeChatModel(by_schema=by_schema, capabilities=Capabilities(json_schema=True))


async def _run(model: FakeChatModel, *, max_words: int | None = 3, max_chars: int | None = None,
               items: list[str] = ITEMS, **config: Any) -> dict[str, Any]:
    ctx = CartsContext(model=model, config=CartsConfig(**config))
    out: dict[str, Any] = await build_carts_graph().ainvoke(
        {"items": items, "max_words": max_words, "max_chars": max_chars}, context=ctx)
    return out


async def test_the_happy_path_keeps_every_agents_output_on_the_blackboard() -> None:
    table = {"USB Cables": [True, True, False], "Cables and Adapters": [True, True, True],
             "HDMI Cables": [False, False, True], "Charging Cables": [True, True, True]}
    model = _model(fits=critic(table), refine="Charging Cables", scores={2: [9, 4]})
    with track_usage() as usage:
        out = await _run(model)
    # Round 0: "USB Cables" and "HDMI Cables" miss items and are refined; round 1's
    # "Charging Cables" fits all three, so the loop ends after one round.
    assert out["round"] == 1
    assert [len(c["versions"]) for c in out["candidates"]] == [2, 1, 2]
    refined = out["candidates"][2]["versions"][1]
    assert (refined["title"], refined["round"], refined["fits"]) == (
        "Charging Cables", 1, [True, True, True])
    first = out["candidates"][2]["versions"][0]
    assert first["reasons"] == ["HDMI Cables is not it", "HDMI Cables is not it", "fits"]
    # Two candidates converged on the same title: it goes before the arbiters once.
    assert [f["title"] for f in out["arbitration"]["finalists"]] == [
        "Charging Cables", "Cables and Adapters"]
    assert out["result"] == {
        "title": "Charging Cables", "satisfied": True, "words": 2, "chars": 15,
        "coverage": 1.0, "covered": [1, 2, 3], "rounds": 1, "candidate": 0,
        "limit": {"max_words": 3, "max_chars": None}, "reason": None}
    assert out["features"].shared == ["cables"]
    assert out["failures"] == []
    agents = usage.by_agent()
    assert {a: agents[a].calls for a in agents} == {
        "feature_extractor": 1, "title_generator": 1, "relevance_critic": 5, "refiner": 2,
        "arbiter": 3}


async def test_the_loop_ends_when_coverage_stops_improving() -> None:
    table = {"USB Cables": [True, True, False], "Cables and Adapters": [True, True, True],
             "HDMI Cables": [False, False, True], "Charging Cables": [True, True, False]}
    model = _model(fits=critic(table), refine="Charging Cables", scores={3: [5, 9, 5]})
    out = await _run(model, max_rounds=5)
    # Round 1's refinements cover 2/3: no better than "USB Cables" (2/3), better than
    # "HDMI Cables" (1/3), which therefore goes round once more, to no gain.
    assert out["round"] == 2
    lengths = {c["id"]: len(c["versions"]) for c in out["candidates"]}
    assert lengths == {0: 2, 1: 1, 2: 3}
    assert out["result"]["title"] == "Cables and Adapters"
    assert out["result"]["coverage"] == 1.0
    assert out["result"]["covered"] == [1, 2, 3]
    assert out["result"]["rounds"] == 2
    assert out["arbitration"]["decided_by"] == "borda"


async def test_the_round_bound_stops_a_refiner_that_never_meets_the_limit() -> None:
    long = "Premium braided charging cables for every single device"
    model = _model(titles=[long, long + " today"], refine=long + " now")
    with track_usage() as usage:
        out = await _run(model, max_words=3, max_rounds=2)
    assert out["round"] == 2
    assert usage.by_agent()["refiner"].calls == 4  # 2 candidates x 2 rounds
    result = out["result"]
    assert result["title"] is None
    assert result["satisfied"] is False
    assert "no title met the limit (at most 3 words) after 2 refinement round(s) of 2" in (
        result["reason"])
    assert out["arbitration"]["finalists"] == []


async def test_zero_rounds_goes_straight_to_arbitration() -> None:
    with track_usage() as usage:
        out = await _run(_model(scores={3: [1, 2, 3]}), max_rounds=0)
    assert "refiner" not in usage.by_agent()
    assert out["result"]["title"] == "HDMI Cables"


@pytest.mark.parametrize("seed", range(12))
async def test_an_over_limit_title_is_never_returned(seed: int) -> None:
    rng = random.Random(seed)
    words = ["usb", "hdmi", "cables", "cords", "adapters", "chargers", "braided", "fast",
             "premium", "gear"]

    def title() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 9)))

    def refine(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        return {"title": title()}

    def fits(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        return {f"item_{i}": {"reason": "r", "fits": rng.random() < 0.6} for i in (1, 2, 3)}

    def scores(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        n = len(re.findall(r"^\d+\. ", str(messages[0].content), re.M)) - len(ITEMS)
        return {f"title_{i}": rng.randint(1, 10) for i in range(1, n + 1)}

    limit = LengthLimit(max_words=rng.choice([2, 3, 4]), max_chars=rng.choice([None, 18, 25]))
    model = _model(titles=[title() for _ in range(3)], fits=fits, refine=refine, scores=scores)
    out = await _run(model, max_words=limit.max_words, max_chars=limit.max_chars,
                     max_rounds=rng.randint(0, 3))
    result = out["result"]
    if result["satisfied"]:
        assert check_length(result["title"], limit).ok
        assert (result["words"], result["chars"]) == (len(result["title"].split()),
                                                      len(result["title"]))
    else:
        assert result["title"] is None
        assert result["reason"]
        assert not any(v["within_limit"] for c in out["candidates"] for v in c["versions"])


async def test_the_borda_vote_picks_across_arbiters() -> None:
    votes = iter([[9, 5, 5], [4, 8, 2], [6, 7, 1]])

    def scores(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        return {f"title_{i}": s for i, s in enumerate(next(votes), 1)}

    out = await _run(_model(scores=scores), max_rounds=0)
    # Borda points: [2 + 1 + 1, 0.5 + 2 + 2, 0.5 + 0 + 0] = [4, 4.5, 0.5]
    assert out["arbitration"]["points"] == [4.0, 4.5, 0.5]
    assert out["result"]["title"] == "Cables and Adapters"
    assert len(out["arbitration"]["scores"]) == 3


async def test_a_failed_arbiter_is_left_out_and_the_others_still_vote() -> None:
    from aisle.graphs.carts import ArbiterSpec

    broken = FakeChatModel(by_schema={"Scores3": "not json at all"},
                           capabilities=Capabilities(json_schema=True))
    arbiters = (ArbiterSpec(prompt="relevance", model=broken),
                ArbiterSpec(prompt="shopper"), ArbiterSpec(prompt="editor"))
    out = await _run(_model(scores={3: [1, 9, 2]}), max_rounds=0, arbiters=arbiters)
    assert out["result"]["title"] == "Cables and Adapters"
    assert out["arbitration"]["scores"] == {"relevance#0": None, "shopper#1": [1, 9, 2],
                                            "editor#2": [1, 9, 2]}
    assert "relevance#0" in out["arbitration"]["errors"]
    assert [f["agent"] for f in out["failures"]] == ["arbiter"]
    assert len(broken.calls) == 2  # the call and its repair turn


async def test_with_every_arbiter_failing_the_tie_break_decides() -> None:
    table = {"USB Cables": [True, True, False], "Cables and Adapters": [True, True, True],
             "HDMI Cables": [False, False, True]}
    model = _model(fits=critic(table), scores=lambda m, k: "nope")
    out = await _run(model, max_rounds=0)
    assert out["arbitration"]["decided_by"] == "tie-break (no arbiter answered)"
    assert out["result"]["title"] == "Cables and Adapters"  # the highest coverage
    assert sum(f["agent"] == "arbiter" for f in out["failures"]) == 3


async def test_a_failed_critic_does_not_lose_the_other_candidates() -> None:
    table = {"USB Cables": [True, True, False], "HDMI Cables": [False, False, True]}
    model = _model(fits=critic(table), scores={3: [5, 5, 5]})  # "Cables and Adapters": bad
    out = await _run(model, max_rounds=0)
    by_title = {c["versions"][0]["title"]: c["versions"][0] for c in out["candidates"]}
    assert by_title["Cables and Adapters"]["critic_error"]
    assert by_title["Cables and Adapters"]["coverage"] is None
    assert by_title["USB Cables"]["coverage"] == pytest.approx(2 / 3)
    assert [f["agent"] for f in out["failures"]] == ["relevance_critic"]
    # Equal Borda points: the known higher coverage wins over the unknown.
    assert out["result"]["title"] == "USB Cables"


async def test_a_failed_refiner_keeps_the_candidate_as_it_was() -> None:
    table = {"USB Cables": [True, True, False], "Cables and Adapters": [True, True, True],
             "HDMI Cables": [False, False, True]}
    model = _model(fits=critic(table), refine=lambda m, k: "broken", scores={3: [9, 1, 1]})
    out = await _run(model, max_rounds=3)
    assert out["round"] == 1
    assert all(len(c["versions"]) == 1 for c in out["candidates"])
    assert sorted(c["stalled"] for c in out["candidates"]) == [False, True, True]
    assert out["result"]["title"] == "USB Cables"


async def test_no_candidates_from_the_generator_is_an_explicit_result() -> None:
    model = FakeChatModel(by_schema={"ItemFeatures": FEATURES, "Titles3": "garbage"},
                          capabilities=Capabilities(json_schema=True))
    out = await _run(model)
    assert out["result"]["satisfied"] is False
    assert out["result"]["reason"] == "the generator gave no candidate title"
    assert [f["agent"] for f in out["failures"]] == ["title_generator"]


async def test_failed_features_still_generate_titles() -> None:
    out = await _run(_model(features="not json", scores={3: [1, 1, 9]}), max_rounds=0)
    assert out["features"] is None
    assert out["result"]["title"] == "HDMI Cables"
    assert out["failures"][0]["agent"] == "feature_extractor"


async def test_duplicate_and_empty_titles_are_dropped() -> None:
    model = _model(titles=["USB Cables", "usb cables", "  "], scores={1: [5]})
    out = await _run(model, max_rounds=0)
    assert [c["versions"][0]["title"] for c in out["candidates"]] == ["USB Cables"]
    assert out["arbitration"]["decided_by"] == "only one candidate within the limit"


async def test_a_single_item_runs_the_same_loop() -> None:
    model = FakeChatModel(by_schema={
        "ItemFeatures": FEATURES, "Titles3": {"title_1": "Braided USB-C Cable",
                                              "title_2": "USB-C Cable", "title_3": "Cables"},
        "Critique1": {"item_1": {"reason": "yes", "fits": True}},
        "Scores3": {"title_1": 3, "title_2": 9, "title_3": 4}},
        capabilities=Capabilities(json_schema=True))
    out = await _run(model, items=ITEMS[:1])
    assert out["result"]["title"] == "USB-C Cable"
    assert out["result"]["covered"] == [1]


async def test_ten_rounds_fit_in_langgraphs_default_recursion_limit() -> None:
    long = "Premium braided charging cables for every device"
    out = await _run(_model(titles=[long], refine=long), max_rounds=10)
    assert out["round"] == 10
    assert out["result"]["satisfied"] is False


async def test_a_character_limit_is_enforced_as_well() -> None:
    model = _model(titles=["USB and HDMI Cables"], refine=["Cables"], scores={1: [5]})
    out = await _run(model, max_words=None, max_chars=10)
    assert out["result"]["title"] == "Cables"
    first = out["candidates"][0]["versions"][0]
    assert first["within_limit"] is False
    assert "19 characters; the limit is 10" in first["length_feedback"]


@pytest.mark.parametrize(("inp", "message"), [
    ({"items": []}, "no items"),
    ({"items": ["ok", "  "], "max_words": 3}, "item 2 has an empty title"),
    ({"items": ["ok"], "max_words": 0}, "invalid length limit max_words"),
    ({"items": ["ok"]}, "needs max_words or max_chars"),
    ({"items": ["ok"] * 31, "max_words": 3}, "at most 30 per carousel"),
])
async def test_bad_input_is_a_one_line_error(inp: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as err:
        await build_carts_graph().ainvoke(inp, context=CartsContext(model=_model()))
    assert "\n" not in str(err.value)


def test_config_bounds() -> None:
    with pytest.raises(ValidationError, match="max_rounds"):
        CartsConfig(max_rounds=11)
    with pytest.raises(ValidationError, match="arbiters"):
        CartsConfig(arbiters=())
    with pytest.raises(ValidationError, match="agent_models"):
        CartsContext(agent_models={"critic": "fake"})  # type: ignore[dict-item]


def _yes(p_yes: float) -> Any:
    import math

    from langchain_core.messages import AIMessage

    top = [{"token": "Yes", "logprob": math.log(p_yes)},
           {"token": "No", "logprob": math.log(1 - p_yes)}]
    return AIMessage(content="Yes", response_metadata={"logprobs": {"content": [
        {"token": "Yes", "logprob": top[0]["logprob"], "top_logprobs": top}]}})


async def test_the_logprob_critic_asks_item_by_item() -> None:
    """With logprobs (auto mode), one Yes/No call per (title, item): P(Yes) >= 0.5 fits,
    and the probability is the reason the refiner reads."""
    def judge(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        text = str(messages[0].content)
        title = _title_of(messages)
        item = re.search(r"<item>(.*?)</item>", text)
        assert item, "the logprob critic shows one item"
        if title == "HDMI Cables":
            return _yes(0.9 if "HDMI" in item.group(1) else 0.2)
        return _yes(0.8)

    model = _model(scores={3: [1, 1, 9]})
    model.by_schema["YesNo"] = judge  # type: ignore[index]
    model.capabilities = Capabilities(json_schema=True, logprobs=True, max_top_logprobs=20)
    with track_usage() as usage:
        out = await _run(model, max_rounds=0)
    assert usage.by_agent()["relevance_critic"].calls == 9  # 3 titles x 3 items
    hdmi = out["candidates"][2]["versions"][0]
    assert hdmi["fits"] == [False, False, True]
    assert hdmi["probabilities"] == pytest.approx([0.2, 0.2, 0.9])
    assert hdmi["reasons"][0] == "P(the title describes it) = 0.20"
    assert out["result"]["title"] == "HDMI Cables"
    assert out["result"]["coverage"] == pytest.approx(1 / 3)


async def test_a_model_without_a_yes_no_answer_is_a_critic_failure() -> None:
    from langchain_core.messages import AIMessage

    model = _model(scores={3: [1, 1, 9]})
    model.by_schema["YesNo"] = AIMessage(  # type: ignore[index]
        content="The", response_metadata={"logprobs": {"content": [
            {"token": "The", "logprob": -0.1, "top_logprobs": [{"token": "The",
                                                                 "logprob": -0.1}]}]}})
    model.capabilities = Capabilities(json_schema=True, logprobs=True, max_top_logprobs=20)
    out = await _run(model, max_rounds=0)
    assert [f["agent"] for f in out["failures"]] == ["relevance_critic"] * 3
    assert "no Yes/No among the top 20" in out["failures"][0]["error"]
    assert out["result"]["title"] == "HDMI Cables"  # the arbiters still decide
