"""The LLM-ensemble eval: label aggregation on real crowd and LLM labels.

Two parts (README, "LLM-ensemble", gives the protocol and the results):

- **crowd-truth** (Product, Duck, Dog): majority vote, the iterative weighted vote and
  Dawid-Skene, fitted without the truth, scored by accuracy (and positive-class F1 on
  Product) beside the figures published in the data README.
- **OA-Mine** test offers: each labeler extracts every attribute the authors' prompts
  asked for in the offer's category. A task is one (offer, attribute) and its label
  the value, "n/a" for none (an open vocabulary). Labelers are the authors' published
  GPT-3.5/GPT-4 runs and aisle's own (model, prompt variant) labelers on local models,
  run on a seeded random subset of offers when `n_offers` is below 491. Each labeler,
  the majority vote and the learned ensemble (iterative weighted vote, unsupervised:
  fitted on the same answers without the truth) are scored with the authors' micro
  P/R/F1. Dawid-Skene is not run here: its per-labeler confusion matrix over an open
  vocabulary of thousands of values is neither estimable nor affordable.

It runs on the shared `EvalRunner`: a local labeler's answers are stored per (labeler,
offer) under the answer key (agents version, prompts, shots, domain), one labeler at a
time (so one local model server runs at a time), and an interrupted run continues
where it stopped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field

from aisle.agents import Domain
from aisle.agents.ensemble import (
    AGENTS_VERSION,
    NA,
    PROMPTS_FINGERPRINT,
    Example,
    LabelerSpec,
    agents_version,
    extract_attributes,
)
from aisle.errors import ConfigurationError, StructuredOutputError
from aisle.evals.crowd_truth import (
    CROWD_TRUTH_DATASETS,
    PUBLISHED_ACCURACY,
    PUBLISHED_F1,
    accuracy,
    binary_f1,
    load_crowd_truth,
)
from aisle.evals.decoding import decoding_key, load_model
from aisle.evals.oa_mine import (
    Offer,
    PublishedRun,
    is_no_prediction,
    load_offers,
    load_published_runs,
    micro_scores,
)
from aisle.evals.runner import Answers, Suite
from aisle.tools.aggregation import aggregate

__all__ = ["N_SHOTS", "EnsembleEvalConfig", "EnsembleSuite", "OfferCase", "crowd_truth_report",
           "few_shot_examples", "labels_of"]

logger = logging.getLogger(__name__)

N_SHOTS = 3


def crowd_truth_report(root: Path) -> dict[str, Any]:
    """Accuracy (%) of mv, iwmv and ds on each crowd-truth dataset, with the published
    figures; Product also gets the positive-class F1 (%)."""
    out: dict[str, Any] = {}
    for name in CROWD_TRUTH_DATASETS:
        data = load_crowd_truth(root, name)
        k = len(data.classes)
        row: dict[str, Any] = {"tasks": len(data.truth), "classes": k,
                               "labelers": int(data.answers["labeler"].nunique()),
                               "answers": len(data.answers), "methods": {},
                               "published_accuracy": PUBLISHED_ACCURACY.get(name, {}),
                               "published_f1": PUBLISHED_F1.get(name, {})}
        for method in ("mv", "iwmv", "ds"):
            # No timings here: the report must come out the same from the same data
            # (fit times are measured by benchmarks/bench_ensemble.py).
            fit = aggregate(data.answers, method=method,  # type: ignore[arg-type]
                            n_classes=k if method == "iwmv" else None)
            labels = fit.as_dict()
            scores = {"accuracy": 100 * accuracy(labels, data.truth),
                      "iterations": fit.iterations, "converged": fit.converged}
            if name == "product":
                scores["f1"] = 100 * binary_f1(labels, data.truth, positive="1")
            if method == "mv":
                scores.update(_mv_ties(data.answers, data.truth))
            row["methods"][method] = scores
        out[name] = row
    return out


def _mv_ties(answers: Any, truth: Mapping[str, str]) -> dict[str, Any]:
    """How much the majority vote's accuracy depends on its tie-break: the tied tasks,
    the accuracy (%) if every tie counted as wrong, and the expected accuracy under a
    uniformly random tie-break."""
    counts = answers.groupby(["task", "label"]).size()
    tied = 0
    wrong_ties = expected = 0.0
    for task, votes in counts.groupby(level="task"):
        if task not in truth:
            continue
        top = votes[votes == votes.max()].index.get_level_values("label").astype(str)
        if len(top) == 1:
            hit = float(top[0] == truth[task])
            wrong_ties += hit
            expected += hit
        else:
            tied += 1
            expected += float(truth[task] in set(top)) / len(top)
    n = len(truth)
    return {"tied_tasks": tied, "accuracy_ties_wrong": 100 * wrong_ties / n,
            "accuracy_random_tie_break": 100 * expected / n}


def labels_of(prediction: Mapping[str, str], attributes: Sequence[str]) -> dict[str, str]:
    """A labeler's prediction as labels for each attribute: the stripped value, "n/a"
    for no value (missing or empty, or what the authors' scorer reads as none)."""
    out = {}
    for attr in attributes:
        value = str(prediction.get(attr, NA)).strip()
        out[attr] = NA if not value or is_no_prediction(value) else value
    return out


def few_shot_examples(train: Sequence[Offer], category: str, attributes: Sequence[str],
                      n: int = N_SHOTS) -> list[Example]:
    """The first `n` training offers of the category, with their first annotated value
    per attribute (deterministic, so every run shows the same shots)."""
    shots = [o for o in train if o.category == category][:n]
    return [Example(title=o.title, values={a: o.targets[a][0] for a in attributes
                                           if a in o.targets}) for o in shots]


@dataclass(frozen=True)
class _Group:
    name: str
    labelers: list[str]
    offers: list[int]


@dataclass(frozen=True)
class OfferCase:
    """One OA-Mine test offer, by its index in `test.jsonl`."""

    index: int
    offer: Offer

    @property
    def id(self) -> str:
        return str(self.index)


class EnsembleEvalConfig(BaseModel):
    """What one ensemble eval run covers.

    Attributes:
        data: the shared data root (holds `crowd-truth/` and `attribute-extraction/`).
        labelers: aisle's local labelers, `MODEL_SPEC@VARIANT`; none: published runs only.
        n_offers: a seeded random subset of the 491 OA-Mine test offers (491 = all).
        seed: the subset's seed.
        domain: the shop the prompts name.
        deterministic: decode one request at a time (`aisle.evals.decoding`), so the
            same offers give the same answers run after run; False lets a local server
            batch concurrent requests (the kept runs before this mode existed).
        agents_version: the agents version whose stored answers to use; an earlier
            version than the code's can be reported, not run.
        concurrency: offers labelled at once (not part of any key).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Path
    labelers: tuple[str, ...] = ()
    n_offers: int = Field(491, ge=1)
    seed: int = 0
    domain: Domain = Field(default_factory=Domain)
    deterministic: bool = True
    agents_version: int = Field(AGENTS_VERSION, ge=1, le=AGENTS_VERSION)
    concurrency: int = Field(4, ge=1)


class EnsembleSuite(Suite[OfferCase]):
    """Crowd-truth aggregation, and local and published labelers on OA-Mine."""

    name: ClassVar[str] = "ensemble"

    def __init__(self, config: EnsembleEvalConfig,
                 models: Mapping[str, BaseChatModel] | None = None) -> None:
        """`models` overrides the chat model of a labeler's model spec (tests)."""
        self.config = config
        self.specs = [LabelerSpec.parse(s) for s in config.labelers]
        self.concurrency = config.concurrency
        base = config.data / "attribute-extraction"
        self.offers = load_offers(base / "oa-mine" / "test.jsonl")
        self.train = load_offers(base / "oa-mine" / "train.jsonl")
        self.published: list[PublishedRun] = load_published_runs(
            base / "published-runs", self.offers)
        self.known: dict[str, tuple[str, ...]] = dict(self.published[0].known_attributes)
        if config.n_offers >= len(self.offers):
            self.subset = list(range(len(self.offers)))
        else:
            rng = random.Random(config.seed)
            self.subset = sorted(rng.sample(range(len(self.offers)), config.n_offers))
        self._models: dict[str, BaseChatModel] = dict(models or {})

    def config_json(self) -> dict[str, Any]:
        # Runs of agents v1 were kept before the field existed; their configs lack it.
        exclude = {"data", "concurrency"} | (
            {"agents_version"} if self.config.agents_version == 1 else set())
        return self.config.model_dump(mode="json", exclude=exclude)

    def check_runnable(self) -> None:
        if self.config.agents_version != AGENTS_VERSION:
            raise ConfigurationError(
                f"agents version {self.config.agents_version} can be reported from stored "
                f"answers, not run: the code is at version {AGENTS_VERSION}")

    def cases(self) -> list[OfferCase]:
        return [OfferCase(i, self.offers[i]) for i in self.subset]

    def phases(self) -> list[list[str]]:
        # One labeler at a time: on a small CPU two local model servers starve each other.
        return [[spec.name] for spec in self.specs]

    def answer_key(self) -> dict[str, Any]:
        version = self.config.agents_version
        return {"data": "oa-mine", "agents": {**agents_version(), "version": version},
                "prompts": PROMPTS_FINGERPRINT[version], "shots": N_SHOTS,
                "domain": self.config.domain.model_dump(),
                **decoding_key(self.config.deterministic)}

    def coverage(self) -> dict[str, Any]:
        return {"labelers": [s.name for s in self.specs], "offers": len(self.subset),
                "seed": self.config.seed}

    def slug(self) -> str:
        return f"oa-mine-{len(self.subset)}-{len(self.specs)}-labelers"

    def attributes(self, offer: Offer) -> tuple[str, ...]:
        return self.known[offer.category]

    def model(self, spec: LabelerSpec) -> BaseChatModel:
        if spec.model not in self._models:
            self._models[spec.model] = load_model(spec.model,
                                                  deterministic=self.config.deterministic)
        return self._models[spec.model]

    async def run_one(self, task: str, case: OfferCase) -> dict[str, Any]:
        spec = LabelerSpec.parse(task)
        offer = case.offer
        attrs = self.attributes(offer)
        examples = (few_shot_examples(self.train, offer.category, attrs)
                    if spec.variant == "fewshot" else [])
        try:
            values = await extract_attributes(
                self.model(spec), title=offer.title, category=offer.category,
                attributes=attrs, variant=spec.variant, examples=examples,
                domain=self.config.domain)
        except StructuredOutputError as e:
            # The labeler's answer, even after the repair turn, is not valid: that is its
            # answer for this offer (no labels), stored and counted. Backend faults
            # (other AisleErrors) go to the runner: not stored, retried on resume.
            logger.warning("%s gave no valid answer on offer %d: %s", task, case.index, e)
            return {"values": None, "error": str(e)[:300]}
        return {"values": values, "error": None}

    def report(self, answers: Answers) -> dict[str, Any]:
        """Crowd-truth accuracies; per-labeler, majority-vote and learned-ensemble micro
        P/R/F1 for each group of labelers: the published runs on all offers; the local
        labelers, and all of them together, on the offers every local labeler answered."""
        predictions: dict[str, dict[int, dict[str, str] | None]] = {
            run.name: dict(enumerate(run.predictions)) for run in self.published}
        failures: dict[str, int] = {}
        seconds: dict[str, float] = {}
        local = [s.name for s in self.specs]
        local_offers = set(self.subset)
        for name in local:
            stored = {int(k): v["values"] for k, v in answers.get(name, {}).items()}
            predictions[name] = stored
            failures[name] = sum(v is None for v in stored.values())
            local_offers &= set(stored)
            timed = [v["seconds"] for v in answers.get(name, {}).values() if "seconds" in v]
            if timed:
                # Wall time of one answer while `concurrency` offers ran at once.
                seconds[name] = median(timed)
        published = [r.name for r in self.published]
        groups = [_Group("published", published, list(range(len(self.offers))))]
        if len(local) > 1:  # an ensemble of one labeler is not an ensemble
            groups.append(_Group("local", local, sorted(local_offers)))
        if local:
            groups.append(_Group("published+local", published + local, sorted(local_offers)))
        oa = {"offers": len(self.offers), "subset": len(self.subset), "local_failures": failures,
              "local_median_seconds_per_answer": seconds,
              "groups": {g.name: self._score_group(g, predictions) for g in groups}}
        return {"crowd_truth": crowd_truth_report(self.config.data / "crowd-truth"),
                "oa_mine": oa}

    def markdown(self, report: dict[str, Any]) -> str:
        from aisle.evals.report import ensemble_markdown

        return ensemble_markdown(report)

    def _score_group(self, group: _Group,
                     predictions: Mapping[str, Mapping[int, dict[str, str] | None]]
                     ) -> dict[str, Any]:
        offers = [self.offers[i] for i in group.offers]
        rows: list[tuple[str, str, str]] = []
        per_labeler: dict[str, Any] = {}
        for name in group.labelers:
            preds: list[dict[str, str]] = []
            for offer in offers:
                attrs = self.attributes(offer)
                raw = predictions[name].get(offer.index)
                if raw is None:  # failed: no answer, and "no value" for its own score
                    preds.append({})
                    continue
                labels = labels_of(raw, attrs)
                preds.append(labels)
                rows += [(f"{offer.index}|{a}", name, v) for a, v in labels.items()]
            per_labeler[name] = _scores(micro_scores(offers, preds, self.known))
        result: dict[str, Any] = {"n_offers": len(offers), "labelers": per_labeler}
        for method in ("mv", "iwmv"):
            fit = aggregate(rows, method=method)  # type: ignore[arg-type]
            chosen = fit.as_dict()
            preds = [{a: chosen.get(f"{o.index}|{a}", NA) for a in self.attributes(o)}
                     for o in offers]
            result[method] = {**_scores(micro_scores(offers, preds, self.known)),
                              "iterations": fit.iterations, "converged": fit.converged}
            if method == "iwmv":
                result[method]["weights"] = {k: round(v.weight, 4)
                                             for k, v in fit.weights.labelers.items()}
                result[method]["accuracy_vs_consensus"] = {
                    k: round(v.accuracy or 0.0, 4) for k, v in fit.weights.labelers.items()}
        best = max(per_labeler, key=lambda n: per_labeler[n]["f1"])
        result["best_single"] = {"labeler": best, "f1": per_labeler[best]["f1"]}
        for method in ("mv", "iwmv"):
            result[f"{method}_minus_best"] = round(result[method]["f1"] - per_labeler[best]["f1"],
                                                   2)
        return result


def _scores(s: Any) -> dict[str, Any]:
    return {"precision": s.precision, "recall": s.recall, "f1": s.f1, "counts": s.counts}
