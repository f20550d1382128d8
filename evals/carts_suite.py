"""The CARTS eval: carousel titles for crowd-named product bundles.

Cases are a fixed random sample of the named bundles of one domain of
`../shared/data/bundles/` (`aisle.evals.bundles`). Methods, each on the model under
test and held to the same deterministic length check:

- `single_pass`: one call, the limit in the prompt;
- `chain_of_thought`: one call that reasons first;
- `carts`: the CARTS graph (`aisle.graphs.carts`); it returns no title when no
  candidate met the limit.

A second phase has an LLM judge (a model set apart from the model under test) say, item
by item, whether each title describes the item (`judge[<spec>]:<method>`), and does the
same for the crowd worker's own name (`judge[<spec>]:human`) as a reference row, and for
the name of another bundle of the sample (`human_other`, a negative control: how much
coverage each judge gives a title written for other items). The judge's model is part of
the task's name, not of the answer key, so a new judge adds answers without re-running the
methods.

Metrics per method (report `metrics`; fractions in [0, 1], each with a bootstrap 95%
interval over bundles). A title over the limit, or none, counts as no title: 0
compliance, 0 coverage, 0 similarity (the "held to the limit" reading; the
`unconstrained` block scores every title the method wrote, over the limit or not):

- `compliance`: the share of bundles with a title within the limit;
- `coverage_embedding`: the share of a bundle's items whose title's all-MiniLM-L6-v2
  cosine with the carousel title reaches a threshold fitted on human names of bundles
  outside the sample (names against their own items vs another bundle's items, the
  threshold with the best balanced accuracy; `report.threshold`);
- `coverage_llm`: the share of items the LLM judge says the title describes (bundles
  where the judge failed are left out and counted);
- `rouge_l`: ROUGE-L F1 against the human name (`rouge-score`, stemmed);
- `cosine_to_human`: the embedding cosine with the human name.

`paired` compares CARTS with each baseline on the same bundles (mean difference, its
paired bootstrap interval, wins/ties/losses, sign test); `usage` gives model calls,
tokens and seconds per title; `carts_loop` what the refinement circle did (rounds used,
refined winners, titles with no feasible candidate, agent failures).
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from statistics import mean
from typing import Any, ClassVar

import numpy as np
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aisle.agents.carts import (
    AGENTS_VERSION,
    PROMPTS_FINGERPRINT,
    CriticError,
    LengthLimit,
    agents_version,
    check_length,
    cot_title,
    judge_coverage,
    resolve_critic_mode,
    shown_items,
    single_pass_title,
)
from aisle.errors import ConfigurationError, StructuredOutputError
from aisle.evals.bundles import Bundle, domain_of, load_bundles, sample_bundles, split_for_threshold
from aisle.evals.decoding import decoding_key, load_model
from aisle.evals.metrics import bootstrap_ci
from aisle.evals.runner import Answers, Suite
from aisle.evals.text_metrics import (
    coverage_share,
    fit_threshold,
    paired_bootstrap,
    rouge_l,
    similarity_pairs,
)
from aisle.graphs.carts import CartsConfig, CartsContext, build_carts_graph

__all__ = ["METRICS", "BundleCase", "CartsEvalConfig", "CartsSuite", "Method", "judge_task"]

logger = logging.getLogger(__name__)

METRICS = ("compliance", "coverage_embedding", "coverage_llm", "rouge_l", "cosine_to_human")
HUMAN = "human"
OTHER = "human_other"
REFERENCES = (HUMAN, OTHER)


class Method(StrEnum):
    """A way to write a carousel title."""

    single_pass = "single_pass"
    chain_of_thought = "chain_of_thought"
    carts = "carts"


def judge_task(judge: str, method: str) -> str:
    """The task name of the LLM judge `judge` scoring `method`'s titles.

    Example:
        >>> judge_task("local:qwen2.5-coder-0.5b", "carts")
        'judge[local:qwen2.5-coder-0.5b]:carts'
    """
    return f"judge[{judge}]:{method}"


_JUDGE = re.compile(r"^judge\[(?P<judge>.+)\]:(?P<method>\w+)$")


@dataclass(frozen=True)
class BundleCase:
    """One bundle, by its id."""

    bundle: Bundle

    @property
    def id(self) -> str:
        return self.bundle.id


class CartsEvalConfig(BaseModel):
    """What one CARTS eval run covers.

    Attributes:
        data: the shared data root (holds `bundles/`).
        domain: `electronic` or `clothing`.
        n_bundles: the size of the fixed random sample of named bundles.
        seed: the sample's seed.
        max_words: the title's word limit (and/or `max_chars`).
        max_chars: the title's character limit.
        model: the model under test (spec string).
        judge: the LLM judge's model (spec string), set apart from `model`.
        methods: what to compare.
        carts: the CARTS graph's config.
        n_fit: bundles outside the sample whose names fit the embedding judge's threshold.
        deterministic: decode one request at a time (`aisle.evals.decoding`).
        concurrency: bundles at once (not part of any key).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Path
    domain: str
    n_bundles: int = Field(100, ge=1)
    seed: int = 2025
    max_words: int | None = Field(5, ge=1, le=20)
    max_chars: int | None = Field(None, ge=1, le=80)
    model: str
    judge: str
    methods: tuple[Method, ...] = tuple(Method)
    carts: CartsConfig = Field(default_factory=CartsConfig)
    n_fit: int = Field(200, ge=10)
    deterministic: bool = True
    concurrency: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _checks(self) -> CartsEvalConfig:
        self.limit()  # at least one of max_words / max_chars
        domain_of(self.domain)  # a known domain
        if not self.methods:
            raise ValueError("no methods to evaluate")
        return self

    def limit(self) -> LengthLimit:
        return LengthLimit(max_words=self.max_words, max_chars=self.max_chars)


class CartsSuite(Suite[BundleCase]):
    """Single pass, chain of thought and CARTS on a sample of named bundles."""

    name: ClassVar[str] = "carts"

    def __init__(self, config: CartsEvalConfig,
                 models: Mapping[str, BaseChatModel] | None = None,
                 embed: Any = None) -> None:
        """`models` overrides the chat model of a spec (tests); `embed` the sentence
        embedder (texts -> L2-normalised rows; default all-MiniLM-L6-v2)."""
        self.config = config
        self.concurrency = config.concurrency
        self.domain = domain_of(config.domain)
        self.bundles = load_bundles(config.data / "bundles", config.domain)
        self.sample = sample_bundles(self.bundles, config.n_bundles, config.seed)
        self.fit_set = split_for_threshold(self.bundles, self.sample, config.n_fit, config.seed)
        self._models: dict[str, BaseChatModel] = dict(models or {})
        self._embed = embed
        self._earlier: dict[str, Mapping[str, dict[str, Any]]] = {}
        self.other_names = _other_names(self.sample, config.seed)

    # -- identity ---------------------------------------------------------------------

    def config_json(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json", exclude={"data", "concurrency"})

    def cases(self) -> list[BundleCase]:
        return [BundleCase(b) for b in self.sample]

    def phases(self) -> list[list[str]]:
        methods = [m.value for m in self.config.methods]
        return [methods, [judge_task(self.config.judge, m) for m in [*methods, *REFERENCES]]]

    def answer_key(self) -> dict[str, Any]:
        c = self.config
        return {"data": f"bundles/{c.domain}", "model": c.model,
                "limit": c.limit().model_dump(), "carts": c.carts.model_dump(mode="json"),
                "agents": agents_version(), "prompts": PROMPTS_FINGERPRINT[AGENTS_VERSION],
                "domain": self.domain.model_dump(), **decoding_key(c.deterministic)}

    def coverage(self) -> dict[str, Any]:
        return {"bundles": len(self.sample), "seed": self.config.seed,
                "methods": [m.value for m in self.config.methods], "judge": self.config.judge,
                "n_fit": self.config.n_fit}

    def slug(self) -> str:
        c = self.config
        limit = "-".join(f"{v}{k[4]}" for k, v in c.limit().model_dump().items() if v)
        return f"{c.domain}-{len(self.sample)}-{_short(c.model)}-{limit}"

    # -- running ----------------------------------------------------------------------

    def model(self, spec: str) -> BaseChatModel:
        if spec not in self._models:
            self._models[spec] = load_model(spec, deterministic=self.config.deterministic)
        return self._models[spec]

    def before_phase(self, phase: Sequence[str], earlier: Answers) -> None:
        self._earlier = {task: dict(answers) for task, answers in earlier.items()}

    async def run_one(self, task: str, case: BundleCase) -> dict[str, Any]:
        judged = _JUDGE.match(task)
        if judged:
            return await self._judge(judged["judge"], judged["method"], case)
        return await self._title(Method(task), case)

    async def _title(self, method: Method, case: BundleCase) -> dict[str, Any]:
        limit = self.config.limit()
        items = shown_items(case.bundle.titles, self.config.carts.max_item_chars)
        model = self.model(self.config.model)
        out: dict[str, Any] = {}
        try:
            if method is Method.single_pass:
                title: str | None = await single_pass_title(model, items, limit,
                                                            domain=self.domain)
            elif method is Method.chain_of_thought:
                out["reasoning"], title = await cot_title(model, items, limit,
                                                          domain=self.domain)
            else:
                state = await build_carts_graph().ainvoke(
                    {"items": list(case.bundle.titles), "max_words": limit.max_words,
                     "max_chars": limit.max_chars},
                    context=CartsContext(model=model, domain=self.domain,
                                         config=self.config.carts))
                out["carts"] = _blackboard(state)
                result = state["result"]
                # CARTS returns no title rather than one over the limit; its candidates'
                # closest version is on the blackboard.
                title = result["title"]
        except StructuredOutputError as e:
            # The method's answer, even after the repair turn, is not valid: that is its
            # answer for this bundle (no title), stored and counted. Backend faults go
            # to the runner: not stored, retried on resume.
            logger.warning("%s gave no valid answer on bundle %s: %s", method, case.id, e)
            return {"title": None, "error": str(e)[:300], **out}
        return {"title": title, "error": None, **_length(title, limit), **out}

    async def _judge(self, judge: str, method: str, case: BundleCase) -> dict[str, Any]:
        if method == HUMAN:
            title = case.bundle.name
        elif method == OTHER:
            title = self.other_names.get(case.id)
        else:
            stored = self._earlier.get(method, {}).get(case.id)
            if stored is None:
                raise ConfigurationError(f"no stored {method} title for bundle {case.id} to "
                                         "judge (the title phase runs first)")
            title = stored["title"]
        if not title:
            return {"fits": None, "skipped": "no title"}
        items = shown_items(case.bundle.titles, self.config.carts.max_item_chars)
        model = self.model(judge)
        mode = resolve_critic_mode(model, "auto")
        try:
            fits, probs = await judge_coverage(model, title, items, mode=mode,
                                               domain=self.domain)
        except (StructuredOutputError, CriticError) as e:
            logger.warning("the judge gave no valid answer on %s for bundle %s: %s", method,
                           case.id, e)
            return {"fits": None, "error": str(e)[:300], "mode": mode}
        return {"fits": fits, "probabilities": probs, "title": title, "mode": mode}

    # -- scoring ----------------------------------------------------------------------

    @cached_property
    def embedder(self) -> Any:
        if self._embed is not None:
            return self._embed
        from aisle.tools.retrieval import Embedder

        return Embedder().embed

    def threshold(self) -> dict[str, Any]:
        """The embedding judge's threshold, fitted on names outside the sample."""
        pos, neg = similarity_pairs(self.fit_set, self.embedder, seed=self.config.seed)
        return {**fit_threshold(pos, neg).as_dict(), "bundles": len(self.fit_set)}

    def report(self, answers: Answers) -> dict[str, Any]:
        c = self.config
        limit = c.limit()
        cases = {b.id: b for b in self.sample}
        methods = [m.value for m in c.methods]
        fit = self.threshold()
        texts: set[str] = set()
        for b in self.sample:
            texts.update(b.titles)
            texts.add(b.name or "")
        texts.update(self.other_names.values())
        for m in methods:
            texts.update(v["title"] for v in answers.get(m, {}).values() if v.get("title"))
        ordered = sorted(texts)
        vectors = np.asarray(self.embedder(ordered), dtype=np.float64)
        vec = {t: vectors[i] for i, t in enumerate(ordered)}

        def scores(method: str, bundle: Bundle, title: str | None,
                   judged: dict[str, Any] | None) -> dict[str, float | None]:
            if not title:
                return {"compliance": 0.0, "coverage_embedding": 0.0, "coverage_llm": 0.0,
                        "rouge_l": 0.0, "cosine_to_human": 0.0}
            items = np.stack([vec[t] for t in bundle.titles])
            fits = (judged or {}).get("fits")
            out: dict[str, float | None] = {
                "compliance": float(check_length(title, limit).ok),
                "coverage_embedding": coverage_share(vec[title], items, fit["threshold"]),
                "coverage_llm": sum(fits) / len(fits) if fits else None,
            }
            if method not in REFERENCES:
                out["rouge_l"] = rouge_l(title, bundle.name or "")
                out["cosine_to_human"] = float(vec[title] @ vec[bundle.name or ""])
            return out

        per: dict[str, dict[str, dict[str, float | None]]] = {}  # held to the limit
        raw: dict[str, dict[str, dict[str, float | None]]] = {}  # every title written
        judge_failures: dict[str, int] = {}
        references: dict[str, dict[str, dict[str, Any]]] = {
            HUMAN: {b: {"title": cases[b].name} for b in cases},
                      OTHER: {b: {"title": n} for b, n in self.other_names.items()}}
        for m in [*methods, *REFERENCES]:
            stored: Mapping[str, Mapping[str, Any]] = (
                references[m] if m in references else answers.get(m, {}))
            judged = answers.get(judge_task(c.judge, m), {})
            per[m], raw[m] = {}, {}
            judge_failures[m] = sum(1 for v in judged.values() if v.get("error"))
            for bid, value in stored.items():
                if bid not in cases:
                    continue
                title = value.get("title")
                s = scores(m, cases[bid], title, judged.get(bid))
                raw[m][bid] = s
                per[m][bid] = s if s["compliance"] else {k: 0.0 for k in s}
        metrics = {m: _summary(per[m], c.seed) for m in [*methods, *REFERENCES] if per[m]}
        unconstrained = {m: _summary(raw[m], c.seed) for m in methods if raw[m]}
        paired: dict[str, dict[str, Any]] = {}
        if Method.carts.value in per:
            for base in methods:
                if base == Method.carts.value:
                    continue
                paired[base] = {}
                for k in METRICS:
                    ids = [b for b in per["carts"] if b in per[base]
                           and per["carts"][b].get(k) is not None
                           and per[base][b].get(k) is not None]
                    if ids:
                        paired[base][k] = paired_bootstrap(
                            [float(per["carts"][b][k] or 0.0) for b in ids],
                            [float(per[base][b][k] or 0.0) for b in ids],
                            seed=c.seed).as_dict()
        report: dict[str, Any] = _rounded({
            "domain": c.domain, "limit": limit.model_dump(), "bundles": len(self.sample),
            "threshold": fit, "metrics": metrics, "unconstrained": unconstrained,
            "paired": paired, "judge": {"model": c.judge, "failures": judge_failures},
            "usage": {m: _usage(answers.get(m, {})) for m in methods if answers.get(m)},
            "judge_usage": _usage({k: v for m in [*methods, *REFERENCES]
                                   for k, v in answers.get(judge_task(c.judge, m), {}).items()}),
            "invalid_answers": {m: sum(1 for v in answers.get(m, {}).values() if v.get("error"))
                                for m in methods},
            "carts_loop": _loop(answers.get(Method.carts.value, {})),
            "examples": _examples(self.sample[:5], answers, methods)})
        return report

    def markdown(self, report: dict[str, Any]) -> str:
        return carts_markdown(report)

    def write_extras(self, report: dict[str, Any], folder: Path) -> list[Path]:
        path = folder / "report.png"
        carts_chart(report, path)
        return [path]


def _other_names(sample: Sequence[Bundle], seed: int) -> dict[str, str]:
    """For each bundle, the human name of another bundle of the sample with a different
    name (seeded), the judges' negative control; none when no other name exists."""
    rng = random.Random(f"other:{seed}")
    out: dict[str, str] = {}
    for b in sample:
        others = [o.name for o in sample
                  if o.id != b.id and o.name and b.name and o.name.lower() != b.name.lower()]
        if others:
            out[b.id] = rng.choice(others)
    return out


def _short(spec: str) -> str:
    return spec.split(":", 1)[-1].replace("/", "-")


def _length(title: str | None, limit: LengthLimit) -> dict[str, Any]:
    if not title:
        return {"words": None, "chars": None, "within_limit": False}
    check = check_length(title, limit)
    return {"words": check.words, "chars": check.chars, "within_limit": check.ok}


def _blackboard(state: Mapping[str, Any]) -> dict[str, Any]:
    """What the eval keeps of a CARTS run: everything but the input."""
    features = state.get("features")
    return {"result": state["result"], "round": state.get("round", 0),
            "features": features.model_dump() if features is not None else None,
            "candidates": state.get("candidates", []),
            "arbitration": state.get("arbitration", {}),
            "failures": state.get("failures", [])}


def _summary(rows: Mapping[str, Mapping[str, float | None]], seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n_bundles": len(rows), "ci95": {}, "n": {}}
    keys = [k for k in METRICS if any(k in r for r in rows.values())]
    for k in keys:
        values = [float(v) for r in rows.values() if (v := r.get(k)) is not None]
        ci = bootstrap_ci(values, seed=seed)
        out[k] = ci.mean
        out["ci95"][k] = [ci.low, ci.high]
        out["n"][k] = len(values)
    return out


def _usage(stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    n = len(stored)
    if not n:
        return {"titles": 0}
    calls = prompt = completion = 0
    by_agent: Counter[str] = Counter()
    for v in stored.values():
        usage = v.get("usage") or {}
        total = usage.get("total", {})
        calls += total.get("calls", 0)
        prompt += total.get("prompt_tokens", 0)
        completion += total.get("completion_tokens", 0)
        by_agent.update({a: u.get("calls", 0) for a, u in usage.items() if a != "total"})
    seconds = [v["seconds"] for v in stored.values() if "seconds" in v]
    return {"titles": n, "calls_per_title": calls / n, "prompt_tokens_per_title": prompt / n,
            "completion_tokens_per_title": completion / n,
            "seconds_per_title": mean(seconds) if seconds else None,
            "calls_per_title_by_agent": {a: c / n for a, c in sorted(by_agent.items())}}


def _loop(stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What the refinement circle did over the bundles."""
    boards = [v["carts"] for v in stored.values() if v.get("carts")]
    if not boards:
        return {}
    rounds = Counter(b["round"] for b in boards)
    failures = Counter(f["agent"] for b in boards for f in b["failures"])
    decided = Counter(b["arbitration"].get("decided_by", "none") for b in boards)
    winners = [b for b in boards if b["result"]["satisfied"]]
    refined = sum(1 for b in winners for f in b["arbitration"]["finalists"]
                  if f["candidate"] == b["result"]["candidate"] and f["round"] > 0)
    first = [v["within_limit"] for b in boards for c in b["candidates"]
             for v in c["versions"][:1]]
    best_first = [max((c["versions"][0]["coverage"] or 0.0) for c in b["candidates"])
                  for b in boards if b["candidates"]]
    return {"bundles": len(boards), "rounds_used": dict(sorted(rounds.items())),
            "no_feasible_title": len(boards) - len(winners),
            "winner_was_refined": refined,
            "first_versions_within_limit": sum(first), "first_versions": len(first),
            "critic_best_first_coverage": mean(best_first) if best_first else None,
            "critic_winner_coverage": mean(w["result"]["coverage"] or 0.0 for w in winners)
            if winners else None,
            "agent_failures": dict(sorted(failures.items())),
            "decided_by": dict(sorted(decided.items()))}


def _examples(bundles: Sequence[Bundle], answers: Answers,
              methods: Sequence[str]) -> list[dict[str, Any]]:
    return [{"bundle": b.id, "human": b.name, "items": list(b.titles),
             **{m: answers.get(m, {}).get(b.id, {}).get("title") for m in methods}}
            for b in bundles]


def _rounded(value: Any) -> Any:
    """Floats to 6 significant digits, so a rebuilt report does not differ in the last
    bits of a sum."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def carts_markdown(report: dict[str, Any]) -> str:
    """The report's tables as Markdown."""
    limit = ", ".join(f"{k} {v}" for k, v in report["limit"].items() if v)
    lines = [f"# CARTS on {report['domain']} bundles ({report['bundles']} bundles; {limit})", ""]
    meta = report.get("run", {})
    if meta:
        lines += [f"- {k}: `{v}`" for k, v in meta.items()] + [""]
    th = report["threshold"]
    lines += ["## Metrics (held to the length limit; mean, 95% bootstrap interval over "
              "bundles)", "",
              "| method | bundles | " + " | ".join(METRICS) + " |",
              "|---|---|" + "---|" * len(METRICS)]
    for m, row in report["metrics"].items():
        cells = [(f"{row[k]:.4f} [{row['ci95'][k][0]:.3f}, {row['ci95'][k][1]:.3f}]"
                  if k in row else "-") for k in METRICS]
        lines.append(f"| {m} | {row['n_bundles']} | " + " | ".join(cells) + " |")
    lines += ["", "`human`: the crowd worker's name for the bundle; `human_other`: the name of "
              "another bundle of the sample, a negative control (the coverage a judge gives a "
              "title written for other items).", "",
              f"Embedding judge: cosine >= {th['threshold']:.4f} (balanced accuracy "
              f"{th['balanced_accuracy']:.3f} on {th['bundles']} names outside the sample). "
              f"LLM judge: `{report['judge']['model']}`, failures "
              f"{report['judge']['failures']}.", ""]
    if report.get("unconstrained"):
        lines += ["## Every title written, over the limit or not", "",
                  "| method | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
        for m, row in report["unconstrained"].items():
            lines.append(f"| {m} | " + " | ".join(f"{row[k]:.4f}" if k in row else "-"
                                                    for k in METRICS) + " |")
        lines.append("")
    if report.get("paired"):
        lines += ["## CARTS minus each baseline, same bundles (paired bootstrap 95%; "
                  "wins/ties/losses; sign test)", "",
                  "| baseline | metric | mean diff | 95% CI | W/T/L | p |",
                  "|---|---|---|---|---|---|"]
        for base, per in report["paired"].items():
            for k, d in per.items():
                lines.append(f"| {base} | {k} | {d['mean']:+.4f} | [{d['ci_low']:+.3f}, "
                             f"{d['ci_high']:+.3f}] | {d['wins']}/{d['ties']}/{d['losses']} "
                             f"| {d['p_value']:.3g} |")
        lines.append("")
    lines += ["## Cost per title", "",
              "| method | calls | prompt tok | completion tok | seconds |", "|---|---|---|---|---|"]
    for m, u in report["usage"].items():
        if u.get("titles"):
            secs = u["seconds_per_title"]
            lines.append(f"| {m} | {u['calls_per_title']:.2f} | "
                         f"{u['prompt_tokens_per_title']:.0f} | "
                         f"{u['completion_tokens_per_title']:.0f} | "
                         f"{secs:.1f} |" if secs is not None else f"| {m} | - | - | - | - |")
    if report.get("carts_loop"):
        lines += ["", "## The CARTS loop", ""]
        lines += [f"- {k}: {v}" for k, v in report["carts_loop"].items()]
    if report["examples"]:
        keys = [k for k in report["examples"][0] if k not in ("bundle", "human", "items")]
        lines += ["", "## Examples", "", "| bundle | human | " + " | ".join(keys) + " |",
                  "|---|---|" + "---|" * len(keys)]
        for ex in report["examples"]:
            lines.append(f"| {ex['bundle']} | {ex['human']} | " +
                         " | ".join(str(ex[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def carts_chart(report: dict[str, Any], path: Path) -> None:
    """Bars of every metric per method, with 95% intervals."""
    from aisle.evals.report import pyplot

    plt = pyplot()
    methods = list(report["metrics"])
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(1, len(methods))
    for j, m in enumerate(methods):
        row = report["metrics"][m]
        keys = [k for k in METRICS if k in row]
        xs = [METRICS.index(k) + (j - (len(methods) - 1) / 2) * width for k in keys]
        means = [row[k] for k in keys]
        err = [[row[k] - row["ci95"][k][0] for k in keys], [row["ci95"][k][1] - row[k]
                                                            for k in keys]]
        ax.bar(xs, means, width, yerr=err, capsize=2, label=m)
    ax.set_xticks(range(len(METRICS)), METRICS, rotation=15, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"CARTS on {report['domain']} bundles (held to the limit)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
