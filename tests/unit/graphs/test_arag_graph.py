"""ARAG graph logic on a scripted fake model: topology, fan-out, threshold and
backfill, ranker repair, and NLI failures that do not lose the other items."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import ValidationError

from aisle.agents.arag import repair_ranking
from aisle.errors import ConfigurationError
from aisle.graphs.arag import (
    ARAGConfig,
    ARAGContext,
    build_arag_graph,
    order_for_ranker,
    select_accepted,
)
from aisle.llm import Capabilities, FakeChatModel, track_usage

CANDIDATES = [{"id": f"i{n}", "title": f"Game number {n}"} for n in range(6)]
HISTORY = [{"id": "h1", "title": "Zelda"}, {"id": "h2", "title": "Mario Kart"}]


def _yes_no(p_yes: float) -> AIMessage:
    top = [{"token": "Yes", "logprob": math.log(p_yes)},
           {"token": "No", "logprob": math.log(1 - p_yes)}]
    return AIMessage(content="Yes", response_metadata={"logprobs": {"content": [
        {"token": "Yes", "logprob": top[0]["logprob"], "top_logprobs": top}]}})


class Script:
    """Answers each agent by the schema its call asks for (never by prompt wording), so
    neither the order of calls nor a reworded prompt matters."""

    def __init__(self, p_yes: dict[str, float], ranking: list[str],
                 broken: frozenset[str] = frozenset()) -> None:
        self.p_yes, self.ranking, self.broken = p_yes, ranking, broken

    def replies(self) -> dict[str, Any]:
        return {"UserProfile": {"long_term": "Nintendo games", "session": "racing"},
                "ContextSummary": {"summary": "mostly Nintendo titles"},
                "Ranking": self.rank,
                "YesNo": self.judge}

    def rank(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        return {"ranking": self.ranking}

    def judge(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        item = re.search(r"<item>Game number (\d+)</item>", str(messages[0].content))
        assert item, messages[0].content
        item_id = f"i{item.group(1)}"
        if item_id in self.broken:
            return AIMessage(content="The", response_metadata={"logprobs": {"content": [
                {"token": "The", "logprob": -0.1, "top_logprobs": [
                    {"token": "The", "logprob": -0.1}]}]}})
        return _yes_no(self.p_yes[item_id])


def _context(script: Script, **config: Any) -> ARAGContext:
    model = FakeChatModel(by_schema=script.replies(),
                          capabilities=Capabilities(json_schema=True, logprobs=True,
                                                    max_top_logprobs=20))
    return ARAGContext(model=model, config=ARAGConfig(**config))


P_YES = {"i0": 0.9, "i1": 0.2, "i2": 0.7, "i3": 0.1, "i4": 0.3, "i5": 0.6}


async def test_fan_out_runs_one_nli_per_candidate_and_keeps_the_blackboard() -> None:
    script = Script(P_YES, ranking=[c["id"] for c in CANDIDATES])
    ctx = _context(script)
    with track_usage() as usage:
        out = await build_arag_graph().ainvoke(
            {"history": HISTORY, "candidates": CANDIDATES}, context=ctx)
    per_agent = usage.by_agent()
    assert per_agent["nli"].calls == len(CANDIDATES)
    assert per_agent["user_understanding"].calls == 1
    assert per_agent["context_summary"].calls == 1
    assert per_agent["item_ranker"].calls == 1
    assert sorted(r["item_id"] for r in out["nli"]) == sorted(c["id"] for c in CANDIDATES)
    assert {r["item_id"]: round(r["score"], 6) for r in out["nli"]} == P_YES
    assert out["user_profile"].startswith("Long-term: Nintendo games")
    assert out["context_summary"] == "mostly Nintendo titles"
    assert out["ranking"] == [c["id"] for c in CANDIDATES]
    assert out["ranker"]["repaired"] is False


async def test_threshold_selects_and_backfills() -> None:
    script = Script(P_YES, ranking=[c["id"] for c in CANDIDATES])
    out = await build_arag_graph().ainvoke(
        {"history": HISTORY, "candidates": CANDIDATES},
        context=_context(script, threshold=0.65, min_accepted=1))
    assert [a.id for a in out["accepted"]] == ["i0", "i2"]
    out = await build_arag_graph().ainvoke(
        {"history": HISTORY, "candidates": CANDIDATES},
        context=_context(script, threshold=0.95, min_accepted=3))
    assert [a.id for a in out["accepted"]] == ["i0", "i2", "i5"]  # backfilled by score


def test_select_accepted_never_takes_failed_items() -> None:
    accepted = select_accepted(CANDIDATES, {"i0": 0.1}, threshold=0.5, min_accepted=3)
    assert [a.id for a in accepted] == ["i0"]


async def test_bad_permutation_is_repaired_by_nli_order() -> None:
    script = Script(P_YES, ranking=["i3", "i3", "i1"])  # duplicates, most ids missing
    out = await build_arag_graph().ainvoke(
        {"history": HISTORY, "candidates": CANDIDATES}, context=_context(script))
    # i3, i1 as proposed, then the rest by NLI score: i0 .9, i2 .7, i5 .6, i4 .3
    assert out["ranking"] == ["i3", "i1", "i0", "i2", "i5", "i4"]
    assert out["ranker"]["repaired"] is True
    assert out["ranker"]["duplicates"] == 1
    assert out["ranker"]["missing"] == 4
    # Three ids for six slots fails the schema twice: the ids are salvaged from the text.
    assert out["ranker"]["parse_failed"] is True


async def test_nli_failures_on_some_items_do_not_lose_the_rest() -> None:
    script = Script(P_YES, ranking=[], broken=frozenset({"i0", "i4"}))
    out = await build_arag_graph().ainvoke(
        {"history": HISTORY, "candidates": CANDIDATES}, context=_context(script))
    records = {r["item_id"]: r for r in out["nli"]}
    assert len(records) == len(CANDIDATES)
    assert records["i0"]["score"] is None
    assert "Yes/No" in str(records["i0"]["error"])
    assert records["i4"]["score"] is None
    assert records["i2"]["score"] == pytest.approx(0.7)
    # The ranker answered nothing valid: fallback is NLI order, failed items last.
    assert out["ranking"] == ["i2", "i5", "i1", "i3", "i0", "i4"]
    assert sorted(out["ranking"]) == sorted(c["id"] for c in CANDIDATES)


async def test_ablation_skips_nli_and_summary() -> None:
    script = Script(P_YES, ranking=["i5", "i4", "i3", "i2", "i1", "i0"])
    with track_usage() as usage:
        out = await build_arag_graph().ainvoke(
            {"history": HISTORY, "candidates": CANDIDATES},
            context=_context(script, use_nli=False))
    assert set(usage.by_agent()) == {"user_understanding", "item_ranker"}
    assert out["ranking"] == ["i5", "i4", "i3", "i2", "i1", "i0"]


async def test_retriever_supplies_candidates_when_none_are_given() -> None:
    script = Script(P_YES, ranking=[c["id"] for c in CANDIDATES])
    seen: list[tuple[list[str], int]] = []

    def retriever(history_ids: Any, k: int) -> list[Any]:
        seen.append((list(history_ids), k))
        return CANDIDATES[:k]

    ctx = _context(script, n_candidates=4).model_copy(update={"retriever": retriever})
    out = await build_arag_graph().ainvoke({"history": HISTORY}, context=ctx)
    assert seen == [(["h1", "h2"], 4)]
    assert sorted(out["ranking"]) == ["i0", "i1", "i2", "i3"]


def test_repair_ranking_counts() -> None:
    r = repair_ranking(["x", "a", "a", "c"], ["a", "b", "c"], ["b", "c", "a"])
    assert r.ranking == ["a", "c", "b"]
    assert (r.invented, r.duplicates, r.missing) == (["x"], ["a"], ["b"])
    assert repair_ranking(["c", "a", "b"], ["a", "b", "c"], []).repaired is False


def test_generate_mode_prompt_and_scale() -> None:
    import asyncio

    from aisle.agents.arag import judge_item

    model = FakeChatModel(by_schema={"_Generated": {"rationale": "fits", "score": 7}},
                          capabilities=Capabilities(json_schema=True))
    verdict = asyncio.run(judge_item(model, ["Zelda"], "i1", "Mario", mode="generate"))
    assert verdict.score == pytest.approx(0.7)
    assert verdict.rationale == "fits"
    prompt = str(model.calls[0].messages[-1].content)
    assert prompt.index("Zelda") < prompt.index("Mario")  # shared history first, item last


async def test_failed_profile_and_summary_are_recorded_and_ranking_still_comes() -> None:
    class Verbose(Script):
        def replies(self) -> dict[str, Any]:
            truncated = '{"long_term": "1.1.1.1.1.1'  # twice: first answer and repair turn
            return {**super().replies(), "UserProfile": truncated,
                    "ContextSummary": truncated}

    script = Verbose(P_YES, ranking=[c["id"] for c in CANDIDATES])
    out = await build_arag_graph().ainvoke(
        {"history": HISTORY, "candidates": CANDIDATES}, context=_context(script))
    assert [f["agent"] for f in out["failures"]] == ["user_understanding", "context_summary"]
    assert out["user_profile"] == ""
    assert out["context_summary"] == ""
    assert out["ranking"] == [c["id"] for c in CANDIDATES]


class _Recording(Script):
    """Also keeps the ids in the order the ranker's prompt lists them."""

    shown: list[str]

    def rank(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        text = str(messages[0].content)
        block = text.split("<candidates>")[1].split("</candidates>")[0]
        self.shown = re.findall(r"\[(\w+)\]", block)
        return super().rank(messages, kwargs)


@pytest.mark.parametrize(("order", "expected"), [
    ("nli", ["i0", "i2", "i5", "i4", "i1", "i3"]),  # by P(yes), best first
    ("given", [c["id"] for c in CANDIDATES]),
])
async def test_ranker_sees_candidates_in_the_configured_order(order: str,
                                                              expected: list[str]) -> None:
    script = _Recording(P_YES, ranking=["i3", "i1", "i4", "i5", "i2", "i0"])
    out = await build_arag_graph().ainvoke(
        {"history": HISTORY, "candidates": CANDIDATES},
        context=_context(script, ranker_order=order))
    assert script.shown == expected
    # The ranker's own answer still decides the final order, whatever it was shown.
    assert out["ranking"] == ["i3", "i1", "i4", "i5", "i2", "i0"]
    assert out["ranker"]["repaired"] is False


async def test_ranker_order_puts_failed_nli_items_last_in_given_order() -> None:
    script = _Recording(P_YES, ranking=[c["id"] for c in CANDIDATES],
                        broken=frozenset({"i0", "i5"}))
    await build_arag_graph().ainvoke({"history": HISTORY, "candidates": CANDIDATES},
                                     context=_context(script))
    assert script.shown == ["i2", "i4", "i1", "i3", "i0", "i5"]


def test_unknown_ranker_order_is_a_clear_error() -> None:
    script = Script(P_YES, ranking=[c["id"] for c in CANDIDATES])
    with pytest.raises(ValidationError, match="ranker_order"):
        _context(script, ranker_order="best")
    with pytest.raises(ConfigurationError, match="ranker_order"):
        order_for_ranker(CANDIDATES, {}, "best")  # type: ignore[arg-type]


def test_a_misspelt_agent_is_an_error_not_the_default_model() -> None:
    with pytest.raises(ValidationError, match="item_ranker"):
        ARAGContext(model="fake", agent_models={"ranker": "fake"})  # type: ignore[dict-item]


async def test_context_given_as_a_dict_is_validated_and_used() -> None:
    """The LangGraph server passes the context as a dict."""
    script = _Recording(P_YES, ranking=[c["id"] for c in CANDIDATES])
    model = _context(script).model
    out = await build_arag_graph().ainvoke(
        {"history": HISTORY, "candidates": CANDIDATES},
        context={"model": model, "config": {"use_nli": False, "ranker_order": "given"},
                 "domain": {"store": "a garden centre"}})
    assert out["ranking"] == [c["id"] for c in CANDIDATES]
    assert not out.get("nli")
    assert isinstance(model, FakeChatModel)
    assert "a garden centre" in str(model.calls[-1].messages[0].content)


async def test_the_ablation_switch_has_one_source() -> None:
    """One graph; `use_nli` in the context decides, so the graph can never be built one
    way and run the other."""
    script = Script(P_YES, ranking=[c["id"] for c in CANDIDATES])
    for use_nli in (True, False):
        out = await build_arag_graph().ainvoke(
            {"history": HISTORY, "candidates": CANDIDATES},
            context=_context(script, use_nli=use_nli))
        assert len(out["ranking"]) == len(CANDIDATES)
        assert bool(out.get("nli")) is use_nli
