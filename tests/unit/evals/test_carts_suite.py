"""The CARTS eval on the shared runner with scripted fake models and a toy bundle folder:
titles held to the limit, the judge phase on stored titles (and the human names), paired
comparisons, invalid answers stored, backend faults retried on resume, and a report that
rebuilds the same from the stored answers."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import BaseMessage

from aisle.errors import BackendUnavailableError
from aisle.evals.carts_suite import METRICS, CartsEvalConfig, CartsSuite, judge_task
from aisle.evals.runner import EvalRunner
from aisle.llm import Capabilities, FakeChatModel

ToyBundles = Callable[..., Path]
KINDS = ["cable", "charger", "mouse", "keyboard", "speaker", "camera"]  # as toy_bundles


def embed(texts: list[str]) -> np.ndarray:
    """A bag of hashed words, L2-normalised: texts sharing words are close."""
    out = np.zeros((len(texts), 64))
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z]+", text.lower()):
            out[i, int(hashlib.md5(word.rstrip("s").encode()).hexdigest(), 16) % 64] += 1.0
        out[i] /= max(np.linalg.norm(out[i]), 1e-9)
    return out


def _kind(messages: list[BaseMessage]) -> str:
    text = str(messages[0].content)
    tag = "items" if "<items>" in text else "common"  # the generator sees features only
    shown = text[text.index(f"<{tag}>"):text.index(f"</{tag}>")]
    return next(k for k in KINDS if k in shown)


def _model(*, down: set[str] | None = None, invalid_cot: bool = False) -> FakeChatModel:
    """Single pass writes an over-limit title; chain of thought a good one (or an
    invalid answer); CARTS's agents converge on '<Kind>s'."""
    def one(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        kind = _kind(messages)
        if down and kind in down:
            raise BackendUnavailableError("server down")
        return {"title": f"All the {kind}s you could ever want today"}

    def cot(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        if invalid_cot:
            return "no json here"
        return {"reasoning": "they are all the same kind", "title": f"Black {_kind(messages)}s"}

    by_schema: dict[str, Any] = {
        "OneTitle": one, "ReasonedTitle": cot,
        "ItemFeatures": lambda m, k: {"shared": [_kind(m)], "distinguishing": []},
        "Titles3": lambda m, k: {"title_1": f"{_kind(m).title()}s", "title_2": "Gadgets",
                                 "title_3": "Great gear for every single day"},
        "RefinedTitle": lambda m, k: {"title": f"{_kind(m).title()} Deals"},
    }
    for n in range(1, 6):
        by_schema[f"Critique{n}"] = {f"item_{i}": {"reason": "ok", "fits": True}
                                     for i in range(1, n + 1)}
        by_schema[f"Coverage{n}"] = lambda m, k, n=n: {
            f"item_{i}": "gadget" not in str(m[0].content).lower().split("<title>")[1][:20]
            for i in range(1, n + 1)}
        by_schema[f"Scores{n}"] = {f"title_{i}": 10 - i for i in range(1, n + 1)}
    return FakeChatModel(by_schema=by_schema, capabilities=Capabilities(json_schema=True))


def _suite(data: Path, model: FakeChatModel, **config: Any) -> CartsSuite:
    cfg = CartsEvalConfig(data=data, domain="electronic", n_bundles=8, seed=1, max_words=3,
                          model="fake:under-test", judge="fake:judge", n_fit=20, **config)
    return CartsSuite(cfg, models={"fake:under-test": model, "fake:judge": model}, embed=embed)


async def test_titles_are_held_to_the_limit_and_judged(tmp_path: Path,
                                                       toy_bundles: ToyBundles) -> None:
    data = toy_bundles(tmp_path / "data")
    runner = EvalRunner(_suite(data, _model()), tmp_path / "out")
    summary = await runner.run()
    assert not summary.failures
    assert summary.stored["carts"] == 8
    assert summary.stored[judge_task("fake:judge", "human")] == 8
    report = runner.report()
    m = report["metrics"]
    assert set(m) == {"single_pass", "chain_of_thought", "carts", "human", "human_other"}
    for method in ("single_pass", "chain_of_thought", "carts"):
        assert set(METRICS) <= set(m[method])
        assert all(0.0 <= m[method][k] <= 1.0 for k in METRICS)
    # Single pass wrote 8-word titles under a 3-word limit: no credit held to the limit,
    # but its coverage shows in the unconstrained block.
    assert m["single_pass"]["compliance"] == 0.0
    assert m["single_pass"]["coverage_llm"] == 0.0
    assert report["unconstrained"]["single_pass"]["coverage_llm"] == 1.0
    assert m["carts"]["compliance"] == 1.0
    assert m["chain_of_thought"]["compliance"] == 1.0
    # The human row: names are "<kind>s", judged like any title (no ROUGE with itself).
    assert "rouge_l" not in m["human"]
    assert m["human"]["compliance"] == 1.0
    # The negative control: another kind's name covers none of the items by embedding.
    assert summary.stored[judge_task("fake:judge", "human_other")] == 8
    assert m["human_other"]["coverage_embedding"] < m["human"]["coverage_embedding"]
    # CARTS's "<Kind>s" equals the human name up to case: ROUGE-L 1.
    assert m["carts"]["rouge_l"] == pytest.approx(1.0)
    paired = report["paired"]["single_pass"]["compliance"]
    assert (paired["wins"], paired["losses"], paired["mean"]) == (8, 0, 1.0)
    assert paired["p_value"] == pytest.approx(2 * 0.5 ** 8)
    loop = report["carts_loop"]
    assert loop["bundles"] == 8
    assert loop["no_feasible_title"] == 0
    assert report["usage"]["carts"]["calls_per_title"] > report["usage"]["single_pass"][
        "calls_per_title"] == 1.0
    assert report["threshold"]["bundles"] == 20
    files = runner.write(report)
    assert {f.name for f in files} == {"report.json", "report.md", "report.png"}
    md = (runner.paths.folder / "report.md").read_text()
    assert "| carts | 8 |" in md
    # The stored answers rebuild the same report (no model calls).
    again = EvalRunner(_suite(data, FakeChatModel()), tmp_path / "out")
    assert json.dumps(again.report(), sort_keys=True) == json.dumps(report, sort_keys=True)


async def test_backend_faults_are_retried_and_invalid_answers_stored(
        tmp_path: Path, toy_bundles: ToyBundles) -> None:
    data = toy_bundles(tmp_path / "data")
    probe = _suite(data, FakeChatModel())
    down_kind = next(k for k in KINDS if k in probe.sample[0].titles[0])
    runner = EvalRunner(_suite(data, _model(down={down_kind}, invalid_cot=True)), tmp_path)
    summary = await runner.run()
    affected = [b.id for b in probe.sample if down_kind in b.titles[0]]
    assert summary.failures
    assert {f.case for f in summary.failures} == set(affected)
    cot = runner.stored("chain_of_thought")
    assert all(v["title"] is None and v["error"] for v in cot.values())
    assert not set(affected) & set(runner.stored("single_pass"))
    # Resume with the server back: only the missing work runs.
    runner = EvalRunner(_suite(data, _model(invalid_cot=True)), tmp_path)
    summary = await runner.run()
    assert summary.stored["single_pass"] == len(affected)
    assert len(runner.stored("single_pass")) == 8
    report = runner.report()
    assert report["invalid_answers"]["chain_of_thought"] == 8
    assert report["metrics"]["chain_of_thought"]["compliance"] == 0.0


def test_the_sample_and_the_threshold_set_do_not_overlap(tmp_path: Path,
                                                        toy_bundles: ToyBundles) -> None:
    suite = _suite(toy_bundles(tmp_path), FakeChatModel())
    assert len(suite.sample) == 8
    assert not {b.id for b in suite.sample} & {b.id for b in suite.fit_set}
    assert suite.slug() == "electronic-8-under-test-3w"
    names = {b.id: b.name for b in suite.sample}
    assert set(suite.other_names) == set(names)
    assert all(other != names[b] for b, other in suite.other_names.items())
    assert set(suite.other_names.values()) <= set(names.values())


def test_config_errors(tmp_path: Path, toy_bundles: ToyBundles) -> None:
    data = toy_bundles(tmp_path)
    with pytest.raises(ValueError, match="max_words or max_chars"):
        CartsEvalConfig(data=data, domain="electronic", model="m", judge="j", max_words=None)
    with pytest.raises(ValueError, match=r"unknown bundle domain|electronic"):
        CartsEvalConfig(data=data, domain="toys", model="m", judge="j")
