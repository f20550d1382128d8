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

Local labelers' answers go to a SQLite file beside the output, one row per (labeler,
offer), so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from aisle.agents.ensemble import NA, Example, LabelerSpec, extract_attributes
from aisle.tools.aggregation import aggregate
from aisle.errors import AisleError, StructuredOutputError
from aisle.evals.crowd_truth import (
    CROWD_TRUTH_DATASETS,
    PUBLISHED_ACCURACY,
    PUBLISHED_F1,
    accuracy,
    binary_f1,
    load_crowd_truth,
)
from aisle.evals.oa_mine import Offer, PublishedRun, load_offers, load_published_runs, micro_scores
from aisle.evals.store import ResultStore
from aisle.llm import track_usage

__all__ = ["N_SHOTS", "OAMineEval", "crowd_truth_report", "few_shot_examples", "labels_of"]

logger = logging.getLogger(__name__)

N_SHOTS = 3
_NO_VALUE = {"", NA, "None"}


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
            started = time.perf_counter()
            fit = aggregate(data.answers, method=method,  # type: ignore[arg-type]
                            n_classes=k if method == "iwmv" else None)
            labels = fit.as_dict()
            scores = {"accuracy": 100 * accuracy(labels, data.truth),
                      "iterations": fit.iterations, "converged": fit.converged,
                      "seconds": time.perf_counter() - started}
            if name == "product":
                scores["f1"] = 100 * binary_f1(labels, data.truth, positive="1")
            row["methods"][method] = scores
        out[name] = row
    return out


def labels_of(prediction: Mapping[str, str], attributes: Sequence[str]) -> dict[str, str]:
    """A labeler's prediction as labels for each attribute: the stripped value, "n/a"
    for no value (missing, "n/a", "None" or empty, as the authors' scorer reads them)."""
    out = {}
    for attr in attributes:
        value = str(prediction.get(attr, NA)).strip()
        out[attr] = NA if value in _NO_VALUE else value
    return out


def few_shot_examples(train: Sequence[Offer], category: str, attributes: Sequence[str],
                      n: int = N_SHOTS) -> list[Example]:
    """The first `n` training offers of the category, with their first annotated value
    per attribute (deterministic, so every run shows the same shots)."""
    shots = [o for o in train if o.category == category][:n]
    return [Example(title=o.title, values={a: o.targets[a][0] for a in attributes
                                           if a in o.targets}) for o in shots]


@dataclass
class _Group:
    name: str
    labelers: list[str]
    offers: list[int]


class OAMineEval:
    """Runs local labelers over OA-Mine offers and scores labelers and ensembles."""

    def __init__(self, root: Path, store: ResultStore, *, n_offers: int = 491, seed: int = 0,
                 run_key: str = "", offer_concurrency: int = 4) -> None:
        base = root / "attribute-extraction"
        self.offers = load_offers(base / "oa-mine" / "test.jsonl")
        self.train = load_offers(base / "oa-mine" / "train.jsonl")
        self.published: list[PublishedRun] = load_published_runs(
            base / "published-runs", self.offers)
        self.known: dict[str, tuple[str, ...]] = dict(self.published[0].known_attributes)
        if n_offers >= len(self.offers):
            self.subset = list(range(len(self.offers)))
        else:
            rng = random.Random(seed)
            self.subset = sorted(rng.sample(range(len(self.offers)), n_offers))
        self.store = store
        self.run_key = run_key
        self.offer_concurrency = offer_concurrency
        self.failures: list[tuple[str, int, str]] = []
        self.backend_errors: list[tuple[str, int, str]] = []

    def attributes(self, offer: Offer) -> tuple[str, ...]:
        return self.known[offer.category]

    async def run_labeler(self, spec: LabelerSpec, model: BaseChatModel,
                          progress: Callable[[str, int, int], None] | None = None) -> None:
        """Answer every offer of the subset not yet stored for this labeler."""
        done = self.store.done(spec.name, self.run_key)
        todo = [i for i in self.subset if str(i) not in done]
        count = len(self.subset) - len(todo)
        if progress:
            progress(spec.name, count, len(self.subset))
        sem = asyncio.Semaphore(self.offer_concurrency)

        async def one(index: int) -> None:
            nonlocal count
            offer = self.offers[index]
            attrs = self.attributes(offer)
            examples = (few_shot_examples(self.train, offer.category, attrs)
                        if spec.variant == "fewshot" else [])
            async with sem:
                started = time.perf_counter()
                try:
                    with track_usage() as tracker:
                        values = await extract_attributes(
                            model, title=offer.title, category=offer.category,
                            attributes=attrs, variant=spec.variant, examples=examples)
                except StructuredOutputError as e:
                    # The labeler's answer, even after the repair turn, is not valid: that
                    # is its answer for this offer (no labels), stored and counted.
                    logger.warning("%s gave no valid answer on offer %d: %s", spec.name,
                                   index, e)
                    self.failures.append((spec.name, index, str(e)[:300]))
                    value: dict[str, Any] = {"values": None, "error": str(e)[:300]}
                except AisleError as e:
                    # A backend fault (server down, timeouts after retries) says nothing
                    # about the labeler: logged, not stored, retried when the run resumes.
                    logger.warning("%s: backend error on offer %d, will retry on resume: %s",
                                   spec.name, index, e)
                    self.backend_errors.append((spec.name, index, str(e)[:300]))
                    return
                else:
                    value = {"values": values, "error": None}
                value.update(usage=tracker.to_dict(), seconds=time.perf_counter() - started)
                self.store.put(spec.name, str(index), self.run_key, value)
                count += 1
                if progress:
                    progress(spec.name, count, len(self.subset))

        await asyncio.gather(*(one(i) for i in todo))

    def local_predictions(self, name: str) -> dict[int, dict[str, str] | None]:
        """Stored answers of a local labeler: offer -> values (None where it failed)."""
        return {int(k): v["values"] for k, v in self.store.done(name, self.run_key).items()}

    def report(self, local: Sequence[str]) -> dict[str, Any]:
        """Per-labeler, majority-vote and learned-ensemble micro P/R/F1 for each group of
        labelers: the published runs on all offers; the local labelers, and all of them
        together, on the offers every local labeler has answered."""
        predictions: dict[str, dict[int, dict[str, str] | None]] = {
            run.name: dict(enumerate(run.predictions)) for run in self.published}
        failures: dict[str, int] = {}
        local_offers = set(self.subset)
        for name in local:
            stored = self.local_predictions(name)
            predictions[name] = stored
            failures[name] = sum(v is None for v in stored.values())
            local_offers &= set(stored)
        published = [r.name for r in self.published]
        groups = [_Group("published", published, list(range(len(self.offers))))]
        if len(local) > 1:  # an ensemble of one labeler is not an ensemble
            groups.append(_Group("local", list(local), sorted(local_offers)))
        if local:
            groups.append(_Group("published+local", published + list(local),
                                 sorted(local_offers)))
        return {"offers": len(self.offers), "subset": len(self.subset),
                "local_failures": failures,
                "groups": {g.name: self._score_group(g, predictions) for g in groups}}

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
