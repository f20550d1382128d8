"""The ARAG eval on the shared runner with a scripted fake model: resumable per user,
one user's failure does not end a run, an old agents version is reported, never run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from aisle.errors import BackendUnavailableError, ConfigurationError
from aisle.evals.arag_suite import ARAGEvalConfig, ARAGSuite, Method, nli_order
from aisle.evals.llmrank import GamesData, load_games
from aisle.evals.runner import EvalRunner
from aisle.llm import Capabilities, FakeChatModel


def _games(tmp_path: Path) -> GamesData:
    titles = {str(i): f"Game {i}" for i in range(10)}
    (tmp_path / "Games.item").write_text(
        "item_id:token\ttitle:token_seq\n" + "".join(f"{k}\t{v}\n" for k, v in titles.items()))
    (tmp_path / "Games-6k.test.inter").write_text(
        "u\th\tt\n" "a\t0 1\t2\n" "b\t3 4\t5\n" "c\t6 7\t8\n")
    (tmp_path / "Games.random").write_text(
        "a\t2 3 4 9 5 6 7 8 0 1 2 3 4 9 5 6 7 8 0 1 3\n"
        "b\t5 6 7 9 0 1 2 3 4 8 5 6 7 9 0 1 2 3 4 8 6\n"
        "c\t8 0 1 9 2 3 4 5 6 7 8 0 1 9 2 3 4 5 6 7 0\n")
    return load_games(tmp_path)


def _suite(tmp_path: Path, model: FakeChatModel, **config: Any) -> ARAGSuite:
    games = _games(tmp_path)
    return ARAGSuite(ARAGEvalConfig(data=tmp_path, methods=(Method.vanilla_rag,),
                                    concurrency=1, model="fake", **config),
                     games, model=model)


def test_failed_user_is_skipped_then_retried_on_resume(tmp_path: Path) -> None:
    down = {"on": True}

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        if "- Game 3" in str(messages[0].content) and down["on"]:
            raise BackendUnavailableError("server down")
        schema = kwargs["response_format"]["json_schema"]["schema"]
        return {"ranking": schema["properties"]["ranking"]["items"]["enum"]}

    model = FakeChatModel(by_schema={"Ranking": reply}, capabilities=Capabilities(json_schema=True))
    runner = EvalRunner(_suite(tmp_path, model), tmp_path / "out")
    summary = asyncio.run(runner.run())
    assert sorted(runner.answers()["vanilla_rag"]) == ["a", "c"]
    assert [(f.task, f.case) for f in summary.failures] == [("vanilla_rag", "b")]
    assert runner.report()["metrics"]["vanilla_rag"]["n_users"] == 2

    down["on"] = False
    calls_before = len(model.calls)
    again = EvalRunner(_suite(tmp_path, model), tmp_path / "out")
    assert asyncio.run(again.run()).failures == []
    assert sorted(again.answers()["vanilla_rag"]) == ["a", "b", "c"]
    assert len(model.calls) == calls_before + 1  # only the failed user ran again
    report = again.report()
    assert report["users_scored"] == 3
    assert report["diagnostics"]["vanilla_rag"]["first_pick_is_first_shown"] == 3


def test_an_earlier_agents_version_is_reported_not_run(tmp_path: Path) -> None:
    runner = EvalRunner(_suite(tmp_path, FakeChatModel(), agents_version=2), tmp_path / "o")
    with pytest.raises(ConfigurationError, match="--report-only"):
        asyncio.run(runner.run())
    assert runner.report()["users_scored"] == 0


def test_the_key_names_what_decides_an_answer(tmp_path: Path) -> None:
    key = _suite(tmp_path, FakeChatModel()).answer_key()
    assert key["model"] == "fake"
    assert key["agents"]["version"] >= 4
    assert key["domain"]["store"] == "an online video-game store"
    assert "use_nli" not in key["arag"]  # set per method, not per run
    assert {"prompts", "retriever", "seed"} <= set(key)


def test_nli_order_puts_failed_items_last_and_keeps_ties_in_ranker_order() -> None:
    stored = {"ranking": ["a", "b", "c", "d"], "blackboard": {"nli": [
        {"item_id": "a", "score": 0.2}, {"item_id": "b", "score": None},
        {"item_id": "c", "score": 0.9}, {"item_id": "d", "score": 0.2}]}}
    assert nli_order(stored) == ["c", "a", "d", "b"]


def test_evals_decode_deterministically_by_default_and_say_so_in_the_key(
        tmp_path: Path) -> None:
    default = _suite(tmp_path, FakeChatModel())
    assert default.config.deterministic is True
    assert default.answer_key()["decoding"] == "one-request-at-a-time, no prompt cache"
    batched = _suite(tmp_path, FakeChatModel(), deterministic=False)
    assert "decoding" not in batched.answer_key()  # the kept runs' keys, unchanged


def test_deterministic_loading_gives_the_local_server_one_slot(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from aisle.evals import decoding

    seen: list[tuple[int, int | None, Any]] = []

    def fake_load(spec: str, *, settings: Any = None, max_concurrency: int | None = None,
                  **kwargs: Any) -> Any:
        seen.append((settings.local_parallel if settings else -1, max_concurrency,
                     kwargs.get("extra_body")))
        return FakeChatModel()

    monkeypatch.setattr(decoding, "load_chat_model", fake_load)
    decoding.load_model("local:smollm2-135m", deterministic=True)
    decoding.load_model("local:smollm2-135m", deterministic=False)
    decoding.load_model("openai:gpt-4o-mini", deterministic=True)
    # Deterministic on the embedded server: one slot, one request, no prompt-cache reuse
    # (a reused prefix is computed in other batch shapes than a fresh one). Other backends
    # get no llama.cpp-only field.
    assert seen == [(1, 1, {"cache_prompt": False}), (-1, None, None), (1, 1, None)]


def test_the_local_request_carries_cache_prompt_false(stub: Any) -> None:
    from aisle.llm import load_chat_model
    from aisle.settings import Settings

    model = load_chat_model("openai:stub", base_url=stub.base_url, api_key="k",
                            settings=Settings(cache_enabled=False),
                            extra_body={"cache_prompt": False})
    model.invoke("hi")
    assert stub.stats.bodies[0]["cache_prompt"] is False


# -- with a recommender ------------------------------------------------------------------

def _rec_games(tmp_path: Path) -> GamesData:
    """40 items; users a-c are test users (in Games.random), v1-v6 are not."""
    titles = {str(i): f"Game {i}" for i in range(40)}
    (tmp_path / "Games.item").write_text(
        "item_id:token\ttitle:token_seq\n" + "".join(f"{k}\t{v}\n" for k, v in titles.items()))
    rows = ["a\t0 1 2\t3", "b\t4 5 6\t7", "c\t8 9 10\t11"]
    rows += [f"v{n}\t{n} {n + 10} {n + 20}\t{n + 30}" for n in range(1, 7)]
    (tmp_path / "Games-6k.test.inter").write_text("u\th\tt\n" + "\n".join(rows) + "\n")
    lists = {"a": 3, "b": 7, "c": 11}
    (tmp_path / "Games.random").write_text("".join(
        f"{u}\t{' '.join(str(i) for i in range(12, 31))} {t}\n" for u, t in lists.items()))
    return load_games(tmp_path)


def _trained_pop(games: GamesData, tmp_path: Path) -> Any:
    from aisle.evals.rec_data import games_dataset
    from aisle.tools.recommenders import ModelKind, train_model

    return train_model(games_dataset(games), ModelKind.pop, home=tmp_path / "home")


def _rec_suite(tmp_path: Path, model: FakeChatModel | None = None, **config: Any) -> ARAGSuite:
    games = _rec_games(tmp_path)
    cfg = ARAGEvalConfig(data=tmp_path, methods=(Method.recommender, Method.arag),
                         concurrency=1, model="fake", recommender="pop", valid_users=4,
                         arag={"n_candidates": 20}, **config)
    return ARAGSuite(cfg, games, model=model or FakeChatModel(),
                     recommender=_trained_pop(games, tmp_path))


def test_validation_users_are_not_test_users_and_never_bought_their_negatives(
        tmp_path: Path) -> None:
    suite = _rec_suite(tmp_path)
    valid = suite.validation_cases()
    assert len(valid) == 4
    assert [c.id for c in suite.cases()[:4]] == [c.id for c in valid]  # validation first
    games = suite.data
    for case in valid:
        user = case.id.removeprefix("valid:")
        assert user.startswith("v")  # a, b, c are in the candidate file
        # The target is the last history item; the history is what came before it.
        assert case.target == games.histories[user][-1]
        assert case.history == games.histories[user][:-1]
        assert len(case.candidates) == 20
        assert len(set(case.candidates)) == 20
        bought = {*games.histories[user], games.targets[user]}
        assert set(case.candidates) & bought == {case.target}
    assert [c.candidates for c in valid] == [c.candidates for c in suite.validation_cases()]
    assert suite.coverage() == {"users": 3, "methods": ["recommender", "arag"],
                                "valid_users": 4}
    # Only ARAG runs on them.
    assert suite.applies("arag", valid[0])
    assert not suite.applies("recommender", valid[0])
    assert suite.applies("recommender", suite.test_cases()[0])


def test_the_recommender_method_orders_by_its_score_and_keys_its_checkpoint(
        tmp_path: Path) -> None:
    suite = _rec_suite(tmp_path)
    case = suite.test_cases()[0]
    ranking = suite.rank_without_llm(Method.recommender, case)
    scores = suite.recommender().model.score(list(case.history), ranking)
    assert scores == sorted(scores, reverse=True)
    key = suite.answer_key()["recommender"]
    assert key == {"model": "pop", "checkpoint": suite.recommender().folder.name}
    assert suite.slug().endswith("-pop")


def _stored(orders: dict[str, list[str]], target: str) -> dict[str, Any]:
    validity = {"invented": 0, "duplicates": 0, "missing": 0, "repaired": False,
                "parse_failed": False}
    return {"target": target, "ranking": orders["ranker"], "validity": validity,
            "blackboard": {"nli": [], "fusion": {"orders": orders},
                           "ranker_ranking": orders["ranker"]}}


def test_fusion_weights_are_fitted_on_validation_users_only(tmp_path: Path) -> None:
    suite = _rec_suite(tmp_path)
    items = [str(i) for i in range(20)]
    # On validation users the recommender is right and the agents are wrong ...
    rec_right = {"recommender": items, "nli": items[::-1], "ranker": items[::-1]}
    answers: dict[str, dict[str, Any]] = {"arag": {}, "recommender": {}}
    for case in suite.validation_cases():
        answers["arag"][case.id] = _stored(rec_right, items[0])
    # ... on test users the ranker is right: a fit on test users would pick the ranker.
    ranker_right = {"recommender": items[::-1], "nli": items[::-1], "ranker": items}
    for case in suite.test_cases():
        answers["arag"][case.id] = _stored(ranker_right, items[0])
        answers["recommender"][case.id] = {"target": items[0], "ranking": items[::-1]}
    report = suite.report(answers)
    fusion = report["fusion"]
    assert fusion["fitted"]
    assert fusion["valid_users"] == 4
    assert fusion["weights"]["recommender"] == max(
        fusion["weights"][s] for s in ("recommender", "nli", "ranker"))
    assert fusion["by_source_alone"]["recommender"] == 1.0
    assert report["users_scored"] == 3  # validation users are never scored
    assert report["metrics"]["arag"]["n_users"] == 3
    assert report["metrics"]["arag_ranker_order"]["ndcg@5"] == 1.0
    assert report["metrics"]["arag"]["ndcg@5"] < 1.0  # weights from validation, not test


def test_before_any_validation_user_the_report_says_the_weights_are_not_fitted(
        tmp_path: Path) -> None:
    suite = _rec_suite(tmp_path)
    items = [str(i) for i in range(20)]
    orders = {"recommender": items, "nli": items, "ranker": items}
    answers = {"arag": {c.id: _stored(orders, items[0]) for c in suite.test_cases()},
               "recommender": {c.id: {"target": items[0], "ranking": items}
                               for c in suite.test_cases()}}
    report = suite.report(answers)
    assert report["fusion"]["fitted"] is False
    assert "default (equal) weights" in report["fusion"]["note"]
    assert report["fusion"]["valid_users_asked"] == 4


def test_the_recommender_method_needs_a_recommender(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="needs a recommender"):
        ARAGSuite(ARAGEvalConfig(data=tmp_path, methods=(Method.recommender,)),
                  _rec_games(tmp_path))
