"""The ensemble eval's local-labeler run on a scripted fake model: invalid answers are
stored as no answer, backend faults are not stored and are retried on resume, and the
report scores labelers and ensembles on the offers every labeler finished."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from aisle.agents.ensemble import LabelerSpec
from aisle.errors import BackendUnavailableError
from aisle.evals.ensemble_suite import OAMineEval, crowd_truth_report, labels_of
from aisle.evals.store import ResultStore
from aisle.llm import Capabilities, FakeChatModel


@pytest.fixture
def runner(shared_data: Path, tmp_path: Path) -> OAMineEval:
    return OAMineEval(shared_data, ResultStore(tmp_path / "runs.sqlite"), n_offers=3, seed=0,
                      run_key="test", offer_concurrency=2)


def _script(runner: OAMineEval, *, invalid: int, down: set[int]) -> Any:
    by_title = {runner.offers[i].title: i for i in runner.subset}

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        text = str(messages[0].content)
        index = next(i for t, i in by_title.items() if f"<title>{t}</title>" in text)
        if index in down:
            raise BackendUnavailableError("server down")
        if index == invalid:
            return {"nonsense": 1}
        offer = runner.offers[index]
        # Right on the first annotated attribute, "n/a" elsewhere.
        first = next(iter(offer.targets))
        return {a: offer.targets[a][0] if a == first else "n/a"
                for a in runner.attributes(offer)}
    return reply


async def test_invalid_answers_are_stored_and_backend_faults_retried(
        runner: OAMineEval) -> None:
    spec = LabelerSpec("fake", "zeroshot")
    a, b, c = runner.subset
    model = FakeChatModel(responses=[_script(runner, invalid=b, down={c})], cycle=True,
                          capabilities=Capabilities(json_schema=True))
    await runner.run_labeler(spec, model)
    stored = runner.local_predictions(spec.name)
    assert sorted(stored) == sorted([a, b])  # c hit a backend fault: not stored
    assert stored[b] is None
    assert stored[a] is not None
    assert len(stored[a]) == len(runner.attributes(runner.offers[a]))
    assert [f[1] for f in runner.failures] == [b]
    assert {e[1] for e in runner.backend_errors} == {c}
    # Resume with the server back: only c is asked again.
    calls_before = len(model.calls)
    model2 = FakeChatModel(responses=[_script(runner, invalid=b, down=set())], cycle=True,
                           capabilities=Capabilities(json_schema=True))
    await runner.run_labeler(spec, model2)
    assert len(model2.calls) == 1
    assert calls_before > 0
    assert sorted(runner.local_predictions(spec.name)) == sorted([a, b, c])

    report = runner.report([spec.name])
    # One local labeler: no local-only ensemble, but it joins the published runs.
    assert set(report["groups"]) == {"published", "published+local"}
    mixed = report["groups"]["published+local"]
    assert mixed["n_offers"] == 3
    assert report["local_failures"] == {spec.name: 1}
    # Right on one attribute of two offers; "n/a" (no value) everywhere else.
    counts = mixed["labelers"][spec.name]["counts"]
    assert counts["vc"] == 2
    assert counts["vw"] == 0
    assert counts["nv"] == 0
    assert mixed["labelers"][spec.name]["precision"] == 100.0
    assert len(mixed["iwmv"]["weights"]) == 6
    published = report["groups"]["published"]
    assert published["labelers"]["gpt-4-schema-ensemble-train1.0"]["f1"] == 83.43
    assert published["n_offers"] == 491


def test_labels_of_reads_no_value_like_the_authors() -> None:
    assert labels_of({"Brand": " Nike ", "Color": "None", "Size": ""},
                     ["Brand", "Color", "Size", "Gender"]) == {
        "Brand": "Nike", "Color": "n/a", "Size": "n/a", "Gender": "n/a"}


def test_crowd_truth_report_has_every_method_and_the_published_figures(
        shared_data_dir: Callable[..., Path]) -> None:
    report = crowd_truth_report(shared_data_dir("crowd-truth"))
    assert set(report) == {"product", "duck", "dog"}
    product = report["product"]
    assert product["methods"]["mv"]["accuracy"] == pytest.approx(89.66, abs=0.01)
    assert product["methods"]["ds"]["accuracy"] > product["methods"]["mv"]["accuracy"]
    assert "f1" in product["methods"]["ds"]
    assert report["dog"]["classes"] == 4
    assert report["duck"]["published_accuracy"]["ds"] == 87.96
