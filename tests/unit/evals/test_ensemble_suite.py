"""The ensemble eval on the shared runner with a scripted fake model: invalid answers
are stored as no answer, backend faults are not stored and are retried on resume, one
labeler runs at a time, and the report scores labelers and ensembles on the offers
every labeler finished."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from aisle.errors import BackendUnavailableError
from aisle.evals.ensemble_suite import (
    EnsembleEvalConfig,
    EnsembleSuite,
    crowd_truth_report,
    labels_of,
)
from aisle.evals.runner import EvalRunner
from aisle.llm import Capabilities, FakeChatModel

LABELER = "fake@zeroshot"


def _suite(data: Path, model: FakeChatModel, labelers: tuple[str, ...] = (LABELER,)
           ) -> EnsembleSuite:
    config = EnsembleEvalConfig(data=data, labelers=labelers, n_offers=3, seed=0,
                                concurrency=2)
    return EnsembleSuite(config, models={"fake": model})


def _model(suite_offers: Any, subset: list[int], *, invalid: int, down: set[int],
           known: dict[str, tuple[str, ...]]) -> FakeChatModel:
    by_title = {suite_offers[i].title: i for i in subset}

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        text = str(messages[0].content)
        index = next(i for t, i in by_title.items() if f"<title>{t}</title>" in text)
        if index in down:
            raise BackendUnavailableError("server down")
        if index == invalid:
            return {"nonsense": 1}
        offer = suite_offers[index]
        # Right on the first annotated attribute, "n/a" elsewhere.
        first = next(iter(offer.targets))
        return {a: offer.targets[a][0] if a == first else "n/a"
                for a in known[offer.category]}
    return FakeChatModel(by_schema={"AttributeValues": reply},
                         capabilities=Capabilities(json_schema=True))


async def test_invalid_answers_are_stored_and_backend_faults_retried(
        shared_data: Path, tmp_path: Path) -> None:
    probe = _suite(shared_data, FakeChatModel())
    a, b, c = probe.subset
    model = _model(probe.offers, probe.subset, invalid=b, down={c}, known=probe.known)
    runner = EvalRunner(_suite(shared_data, model), tmp_path)
    summary = await runner.run()
    stored = runner.answers()[LABELER]
    assert sorted(stored) == sorted([str(a), str(b)])  # c hit a backend fault: not stored
    assert stored[str(b)]["values"] is None
    assert stored[str(a)]["values"] is not None
    assert [(f.task, f.case) for f in summary.failures] == [(LABELER, str(c))]

    # Resume with the server back: only c is asked again.
    model2 = _model(probe.offers, probe.subset, invalid=b, down=set(), known=probe.known)
    runner2 = EvalRunner(_suite(shared_data, model2), tmp_path)
    await runner2.run()
    assert len(model2.calls) == 1
    assert sorted(runner2.answers()[LABELER]) == sorted(str(i) for i in (a, b, c))

    report = runner2.report()["oa_mine"]
    # One local labeler: no local-only ensemble, but it joins the published runs.
    assert set(report["groups"]) == {"published", "published+local"}
    mixed = report["groups"]["published+local"]
    assert mixed["n_offers"] == 3
    assert report["local_failures"] == {LABELER: 1}
    # Right on one attribute of two offers; "n/a" (no value) everywhere else.
    counts = mixed["labelers"][LABELER]["counts"]
    assert counts["vc"] == 2
    assert counts["vw"] == 0
    assert counts["nv"] == 0
    assert mixed["labelers"][LABELER]["precision"] == 100.0
    assert len(mixed["iwmv"]["weights"]) == 6
    published = report["groups"]["published"]
    assert published["labelers"]["gpt-4-schema-ensemble-train1.0"]["f1"] == 83.43
    assert published["n_offers"] == 491


def test_one_labeler_per_phase(shared_data: Path) -> None:
    suite = _suite(shared_data, FakeChatModel(), labelers=("fake@zeroshot", "fake@fewshot"))
    assert suite.phases() == [["fake@zeroshot"], ["fake@fewshot"]]


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
    # Dog's majority vote depends on its tie-break: ties all wrong <= aisle <= ...
    dog = report["dog"]["methods"]["mv"]
    assert dog["tied_tasks"] == 50
    assert dog["accuracy_ties_wrong"] < dog["accuracy"]
    assert dog["accuracy_ties_wrong"] < dog["accuracy_random_tie_break"]
