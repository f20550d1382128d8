"""The ARAG eval runner: resumable per user, and one user's failure does not end a run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from aisle.errors import BackendUnavailableError
from aisle.evals.arag_suite import ARAGEval, EvalSettings, ResultStore
from aisle.evals.llmrank import load_games
from aisle.llm import Capabilities, FakeChatModel


def _games(tmp_path: Path) -> Any:
    titles = {str(i): f"Game {i}" for i in range(10)}
    (tmp_path / "Games.item").write_text(
        "item_id:token\ttitle:token_seq\n" + "".join(f"{k}\t{v}\n" for k, v in titles.items()))
    (tmp_path / "Games-6k.test.inter").write_text(
        "u\th\tt\n" "a\t0 1\t2\n" "b\t3 4\t5\n" "c\t6 7\t8\n")
    (tmp_path / "Games.random").write_text("a\t2 3 4 9\nb\t5 6 7 9\nc\t8 0 1 9\n")
    return load_games(tmp_path)


def test_failed_user_is_skipped_then_retried_on_resume(tmp_path: Path) -> None:
    games = _games(tmp_path)
    cases = games.cases("random", n_candidates=3)
    down = {"on": True}

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        prompt = str(messages[0].content)
        if "Game 3" in prompt and "<history>" in prompt and down["on"] and "- Game 3" in prompt:
            raise BackendUnavailableError("server down")
        ids = json.loads(json.dumps(kwargs["response_format"]["json_schema"]["schema"]))
        enum = ids["properties"]["ranking"]["items"]["enum"]
        return {"ranking": enum}

    model = FakeChatModel(responses=[reply], cycle=True,
                          capabilities=Capabilities(json_schema=True))
    store = ResultStore(tmp_path / "runs.sqlite")
    settings = EvalSettings(methods=("vanilla_rag",), user_concurrency=1)
    runner = ARAGEval(games, None, model, settings, store, run_key="k")  # type: ignore[arg-type]
    asyncio.run(runner.run(cases))
    assert sorted(store.done("vanilla_rag", "k")) == ["a", "c"]
    assert [(m, u) for m, u, _ in runner.failures] == [("vanilla_rag", "b")]
    report = runner.report(cases)
    assert report["metrics"]["vanilla_rag"]["n_users"] == 2

    down["on"] = False
    calls_before = len(model.calls)
    again = ARAGEval(games, None, model, settings, store, run_key="k")  # type: ignore[arg-type]
    asyncio.run(again.run(cases))
    assert sorted(store.done("vanilla_rag", "k")) == ["a", "b", "c"]
    assert len(model.calls) == calls_before + 1  # only the failed user ran again
    assert again.failures == []


def test_nli_order_puts_failed_items_last_and_keeps_ties_in_ranker_order() -> None:
    from aisle.evals.arag_suite import nli_order

    stored = {"ranking": ["a", "b", "c", "d"], "blackboard": {"nli": [
        {"item_id": "a", "score": 0.2}, {"item_id": "b", "score": None},
        {"item_id": "c", "score": 0.9}, {"item_id": "d", "score": 0.2}]}}
    assert nli_order(stored) == ["c", "a", "d", "b"]
