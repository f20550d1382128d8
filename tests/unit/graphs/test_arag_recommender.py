"""ARAG with a trained recommender, on a scripted fake model: the recommender's ranks on
the blackboard and in the NLI and ranker prompts, the fusion rule, unknown items, a
recommender that fails, and loading one from its folder."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage

from aisle.agents.arag import FusionWeights, by_score, fuse
from aisle.errors import ConfigurationError
from aisle.graphs.arag import ARAGConfig, ARAGContext, build_arag_graph, load_trained_recommender
from aisle.llm import Capabilities, FakeChatModel
from aisle.tools.recommenders import ModelKind, Popularity, SequenceDataset, train_model
from aisle.tools.recommenders.base import RecommenderInputError

CANDIDATES = [{"id": f"i{n}", "title": f"Game number {n}"} for n in range(6)]
HISTORY = [{"id": "h1", "title": "Zelda"}, {"id": "h2", "title": "Mario Kart"}]
P_YES = {"i0": 0.9, "i1": 0.2, "i2": 0.7, "i3": 0.1, "i4": 0.3, "i5": 0.6}
# Popularity: i3 > i1 > i4 > i0 > i2 > i5.
COUNTS = {"i3": 6, "i1": 5, "i4": 4, "i0": 3, "i2": 2, "i5": 1}
REC_ORDER = ["i3", "i1", "i4", "i0", "i2", "i5"]
RANKER = ["i5", "i4", "i3", "i2", "i1", "i0"]


def _popularity() -> Popularity:
    sequences = [["h1", "h2"]] + [[item] * n for item, n in COUNTS.items()]
    model = Popularity()
    model.fit(sequences, items=["h1", "h2", *COUNTS])
    return model


class Script:
    """Answers by schema and records every prompt."""

    def __init__(self) -> None:
        self.nli_prompts: dict[str, str] = {}
        self.ranker_prompts: list[str] = []

    def replies(self) -> dict[str, Any]:
        return {"UserProfile": {"long_term": "Nintendo games", "session": "racing"},
                "ContextSummary": {"summary": "mostly Nintendo titles"},
                "Ranking": self.rank, "YesNo": self.judge}

    def rank(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        self.ranker_prompts.append(str(messages[0].content))
        schema = kwargs["response_format"]["json_schema"]["schema"]
        allowed = schema["properties"]["ranking"]["items"]["enum"]
        return {"ranking": [i for i in RANKER if i in allowed]
                + [i for i in allowed if i not in RANKER]}

    def judge(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        prompt = str(messages[0].content)
        found = re.search(r"<item>Game number (\w+)</item>", prompt)
        assert found, prompt
        item_id = f"i{found.group(1)}"
        self.nli_prompts[item_id] = prompt
        p = P_YES.get(item_id, 0.5)
        top = [{"token": "Yes", "logprob": math.log(p)},
               {"token": "No", "logprob": math.log(1 - p)}]
        return AIMessage(content="Yes", response_metadata={"logprobs": {"content": [
            {"token": "Yes", "logprob": top[0]["logprob"], "top_logprobs": top}]}})


def _context(script: Script, recommender: Any = None, **config: Any) -> ARAGContext:
    model = FakeChatModel(by_schema=script.replies(),
                          capabilities=Capabilities(json_schema=True, logprobs=True,
                                                    max_top_logprobs=20))
    return ARAGContext(model=model, recommender_model=recommender, config=ARAGConfig(**config))


async def _run(ctx: ARAGContext, candidates: Sequence[dict[str, str]] = CANDIDATES
               ) -> dict[str, Any]:
    return await build_arag_graph().ainvoke(
        {"history": HISTORY, "candidates": list(candidates)}, context=ctx)


async def test_the_recommenders_ranks_reach_the_blackboard_and_every_prompt() -> None:
    script = Script()
    out = await _run(_context(script, _popularity()))
    ranks = {r["item_id"]: r["rank"] for r in out["recommender"]}
    assert [i for i, _ in sorted(ranks.items(), key=lambda kv: kv[1])] == REC_ORDER
    assert all(r["score"] is not None for r in out["recommender"])
    # Each NLI call is told where the recommender puts its item, out of the 6.
    assert "ranks this item 1 of 6" in script.nli_prompts["i3"]
    assert "ranks this item 6 of 6" in script.nli_prompts["i5"]
    (prompt,) = script.ranker_prompts
    assert "[i3] Game number 3 (recommender rank 1)" in prompt
    assert "[i5] Game number 5 (recommender rank 6)" in prompt
    assert "The recommender rank comes from a model trained on" in prompt


async def test_the_final_order_fuses_the_three_orders_and_keeps_the_rankers_own() -> None:
    out = await _run(_context(Script(), _popularity()))
    orders = out["fusion"]["orders"]
    assert orders["recommender"] == REC_ORDER
    assert orders["nli"] == by_score([c["id"] for c in CANDIDATES], P_YES)
    assert orders["ranker"] == RANKER == out["ranker"]["ranking"]
    assert out["fusion"]["weights"]["recommender"] == 1.0
    assert out["ranking"] == fuse(orders, FusionWeights())
    # The three disagree, so the equal-weight fusion is none of them.
    assert out["ranking"] not in (REC_ORDER, RANKER, orders["nli"])


@pytest.mark.parametrize(("weights", "expected"), [
    ({"recommender": 1, "nli": 0, "ranker": 0}, REC_ORDER),
    ({"recommender": 0, "nli": 0, "ranker": 1}, RANKER),
    ({"recommender": 0, "nli": 1, "ranker": 0}, ["i0", "i2", "i5", "i4", "i1", "i3"]),
])
async def test_a_single_weight_gives_that_sources_order(weights: dict[str, float],
                                                        expected: list[str]) -> None:
    out = await _run(_context(Script(), _popularity(), fusion=FusionWeights(**weights)))
    assert out["ranking"] == expected


async def test_without_a_recommender_nothing_changes() -> None:
    script = Script()
    out = await _run(_context(script))
    assert "recommender" not in out
    assert "fusion" not in out
    assert out["ranking"] == RANKER
    for prompt in [*script.nli_prompts.values(), *script.ranker_prompts]:
        assert "recommender rank" not in prompt
        assert "A recommender trained" not in prompt


async def test_the_ranker_can_be_shown_the_recommenders_order() -> None:
    script = Script()
    await _run(_context(script, _popularity(), ranker_order="recommender"))
    shown = re.findall(r"^\[(i\d)\]", script.ranker_prompts[0], flags=re.M)
    assert shown == REC_ORDER


async def test_the_recommender_order_needs_a_recommender() -> None:
    with pytest.raises(ConfigurationError, match="needs a recommender"):
        await _run(_context(Script(), ranker_order="recommender"))


async def test_an_item_the_recommender_does_not_know_gets_no_rank_and_goes_last() -> None:
    script = Script()
    candidates = [*CANDIDATES, {"id": "new", "title": "Game number new"}]
    out = await _run(_context(script, _popularity()), candidates)
    record = next(r for r in out["recommender"] if r["item_id"] == "new")
    assert record["score"] is None
    assert record["rank"] is None
    assert out["fusion"]["orders"]["recommender"] == [*REC_ORDER, "new"]
    assert "recommender" not in script.nli_prompts["inew"].split("</item>")[1]
    assert "[new] Game number new\n" in script.ranker_prompts[0]
    assert sorted(out["ranking"]) == sorted(c["id"] for c in candidates)


class Broken(Popularity):
    def score(self, history: Sequence[str], item_ids: Sequence[str]) -> list[float]:
        raise RecommenderInputError("the model file is damaged")


async def test_a_recommender_that_fails_is_recorded_and_the_agents_go_on() -> None:
    broken = Broken()
    broken.fit([["i0", "i1"]], items=[c["id"] for c in CANDIDATES])
    out = await _run(_context(Script(), broken))
    assert out["failures"] == [{"agent": "recommender", "error": "the model file is damaged"}]
    assert out["recommender"] == []
    assert "fusion" not in out
    assert out["ranking"] == RANKER


async def test_candidates_from_the_recommender_need_an_index_for_titles() -> None:
    ctx = _context(Script(), _popularity())
    with pytest.raises(ConfigurationError, match="need titles"):
        await build_arag_graph().ainvoke({"history": HISTORY}, context=ctx)


def test_a_recommender_folder_is_loaded_and_usable_from_a_json_context(tmp_path: Path) -> None:
    data = SequenceDataset("toy", ("a", "b", "c"), {"u1": ("a", "b", "c"), "u2": ("b", "c", "a"),
                                                    "u3": ("c", "b", "a")})
    trained = train_model(data, ModelKind.pop, home=tmp_path)
    ctx = ARAGContext.model_validate({"model": "fake:schema",
                                      "recommender": str(trained.folder)})
    model = ctx.recommender_of()
    assert model is not None
    assert model is ctx.recommender_of()
    assert set(model.items) == {"a", "b", "c"}


def test_a_folder_without_a_finished_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a trained recommender"):
        load_trained_recommender(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text('{"model": "sasrec"}')
    with pytest.raises(ConfigurationError, match="has not finished training"):
        load_trained_recommender(tmp_path)


async def test_a_grace_folder_is_arags_recommender(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # `--recommender grace`: a GRACE trained by train_model, loaded from its folder,
    # scores every candidate on the blackboard (exact path log-probabilities).
    from aisle.tools.recommenders import GRACE, GRACEConfig, ModelConfigs

    items = ("h1", "h2", *COUNTS)
    sequences = {f"u{n}": ("h1", "h2", item) for n, item in enumerate(REC_ORDER)}
    sequences |= {f"v{n}": (item, "h1", "h2") for n, item in enumerate(REC_ORDER)}
    titles = {i: f"Game number {i[1:]} - {'Xbox 360' if n % 2 else 'PC'}"
              for n, i in enumerate(items)}
    data = SequenceDataset("toy", items, sequences, titles=titles)
    tiny = GRACEConfig(hidden=8, heads=2, inner=16, layers=1, codebook=3, code_levels=2,
                       embedding_dim=4, max_epochs=1, valid_users=None)
    titles_seen: list[list[str]] = []

    def fake_embeddings(titles: Sequence[str]) -> Any:
        import numpy as np

        titles_seen.append(list(titles))
        return np.random.default_rng(0).normal(size=(len(titles), 8)).astype(np.float32)

    # MiniLM is the real embedder (integration tests); here a seeded stand-in.
    monkeypatch.setattr("aisle.tools.recommenders.grace.title_embeddings", fake_embeddings)
    trained = train_model(data, ModelKind.grace, ModelConfigs(grace=tiny), home=tmp_path,
                          threads=1)
    assert titles_seen == [[titles[i] for i in items]]
    model = load_trained_recommender(trained.folder)
    assert isinstance(model, GRACE)
    assert {"platform: Xbox 360", "platform: PC"} <= set(model.tokens.attr_names)
    out = await _run(_context(Script(), model))
    records = {r["item_id"]: r for r in out["recommender"]}
    assert set(records) == set(REC_ORDER)
    assert all(r["score"] is not None and r["score"] < 0 for r in records.values())
    assert sorted(r["rank"] for r in records.values()) == list(range(1, 7))
