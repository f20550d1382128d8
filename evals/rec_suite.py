"""The recommender eval: SASRec, item-kNN and popularity on one dataset.

Protocols (chosen by the dataset, `aisle.evals.rec_data`):

- **full** (amazon-seq Beauty, Sports, any S3-Rec file): leave-one-out, each user's last
  item is the target, ranked against **the whole catalog with the user's history items
  excluded from the ranking** (`exclude_history`; they cannot be ranked, and no target
  in these datasets is a repeat of a history item). Recall@5/10 and NDCG@5/10.
- **candidates** (LLMRank Games): the paper's 20-candidate protocol with the same
  candidate lists and seed the ARAG eval uses (`GamesData.cases`), the first
  `n_users` (all 200) users; NDCG@1/5/10/20 and Recall (= Hit) @1/5/10. Candidates
  are ordered by score, ties in the list's order.

Metrics are fractions in [0, 1], each with a 95% bootstrap interval over users
(`aisle.evals.metrics.bootstrap_ci`, drawn in chunks so 35k users fit in memory).

Models are trained (or loaded) once per dataset and config under `AISLE_HOME/rec/`
(`aisle.tools.recommenders.train_model`), before their first batch. A case is a batch of
`BATCH_USERS` test users, so the answer store holds one row per batch and model; an
interrupted eval keeps its finished batches and the checkpoint of an interrupted
training, and the same command resumes both. The first batch's answer carries the
training record (epochs, the validation curve), so the report, its chart and
`evals/reproduce.py` need only the stored answers.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aisle.evals.metrics import Interval, hit_at_k, ndcg_at_k
from aisle.evals.rec_data import RecData
from aisle.evals.runner import Answers, Suite
from aisle.tools.recommenders import (
    CLASSIC_MODELS,
    CatalogRecommender,
    FitProgress,
    ModelConfigs,
    ModelKind,
    TrainedModel,
    train_model,
)

__all__ = ["BATCH_USERS", "PUBLISHED", "REC_EVAL_VERSION", "RecEvalConfig", "RecSuite",
           "UserBatch", "bootstrap_chunked", "metric_values", "rank_metrics",
           "rebuild_rec_suite"]

REC_EVAL_VERSION = 1
"""Bump when what a stored answer means changes (ranking rule, protocol)."""

BATCH_USERS = 1024

FULL_METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
CANDIDATE_METRICS = ("ndcg@1", "ndcg@5", "ndcg@10", "ndcg@20", "recall@1", "recall@5",
                     "recall@10")

# Published figures the README sets beside ours (../shared/data/README.md): full
# ranking from the TIGER paper (NeurIPS 2023); LLMRank Games from Hou et al. (ECIR
# 2024), Table 2, random candidates.
PUBLISHED: dict[str, dict[str, dict[str, float]]] = {
    "beauty": {"SASRec (TIGER paper)": {"recall@5": 0.0387, "recall@10": 0.0605,
                                        "ndcg@5": 0.0249, "ndcg@10": 0.0318},
               "TIGER": {"recall@5": 0.0454, "recall@10": 0.0648, "ndcg@5": 0.0321,
                         "ndcg@10": 0.0384}},
    "sports": {"SASRec (TIGER paper)": {"recall@5": 0.0233, "recall@10": 0.0350,
                                        "ndcg@5": 0.0154, "ndcg@10": 0.0192},
               "TIGER": {"recall@5": 0.0264, "recall@10": 0.0400, "ndcg@5": 0.0181,
                         "ndcg@10": 0.0225}},
    "llmrank-games": {"SASRec (LLMRank, Table 2)": {"ndcg@1": 0.5690, "ndcg@5": 0.7319,
                                                    "ndcg@10": 0.7592, "ndcg@20": 0.7714}},
}


@dataclass(frozen=True)
class UserBatch:
    """Test users scored together: histories (oldest first), targets, and for the
    candidates protocol each user's candidate list."""

    id: str
    users: tuple[str, ...]
    histories: tuple[tuple[str, ...], ...]
    targets: tuple[str, ...]
    candidates: tuple[tuple[str, ...], ...] | None = None


class RecEvalConfig(BaseModel):
    """What one recommender eval covers.

    Attributes:
        dataset: `beauty`, `sports`, `llmrank-games`, or a path (`rec_data`).
        models: the models to train and score.
        n_users: the first N test users (default: every user; LLMRank Games: its 200).
        retriever: LLMRank Games only: the candidate file `Games.<retriever>`.
        exclude_history: full ranking only: leave the history's items out of the
            ranking (the standard; False ranks them too).
        configs: the models' configs.
        seed: the bootstrap's seed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = "beauty"
    models: tuple[ModelKind, ...] = CLASSIC_MODELS
    n_users: int | None = Field(None, ge=1)
    retriever: str = "random"
    exclude_history: bool = True
    configs: ModelConfigs = Field(default_factory=ModelConfigs)
    seed: int = 0


class RecSuite(Suite[UserBatch]):
    """Recommenders on one dataset's test users (see the module docstring)."""

    name: ClassVar[str] = "rec"

    def __init__(self, config: RecEvalConfig, data: RecData, *, home: Path | None = None,
                 threads: int | None = None) -> None:
        """`home` instead of AISLE_HOME for the checkpoints; `threads` for torch
        (default: the `rec_threads` setting). Neither is part of any key."""
        self.config = config
        self.data = data
        self.home = home
        self.threads = threads
        self._cases: list[UserBatch] | None = None
        self._fitted: dict[ModelKind, TrainedModel] = {}

    # -- what the run is -------------------------------------------------------------
    def cases(self) -> list[UserBatch]:
        if self._cases is None:
            self._cases = self._make_cases()
        return self._cases

    def _make_cases(self) -> list[UserBatch]:
        n = self.config.n_users
        if self.data.games is not None:
            games = self.data.games.cases(self.config.retriever, n_users=n)
            rows = [(c.user_id, c.history, c.target, c.candidates) for c in games]
        else:
            from aisle.tools.recommenders import leave_one_out

            test = leave_one_out(self.data.dataset, self.data.split).test
            rows = [(u, h, t, ()) for u, h, t in test[:n]]
        out = []
        for start in range(0, len(rows), BATCH_USERS):
            chunk = rows[start:start + BATCH_USERS]
            out.append(UserBatch(
                f"users-{start:06d}", tuple(r[0] for r in chunk), tuple(r[1] for r in chunk),
                tuple(r[2] for r in chunk),
                tuple(r[3] for r in chunk) if self.data.games is not None else None))
        return out

    def phases(self) -> list[list[str]]:
        return [[str(m) for m in self.config.models]]

    def answer_key(self) -> dict[str, Any]:
        c, d = self.config, self.data
        key: dict[str, Any] = {
            "version": REC_EVAL_VERSION, "dataset": d.dataset.name,
            "fingerprint": d.dataset.fingerprint, "split": d.split.model_dump(mode="json"),
            "protocol": d.protocol,
            "configs": c.configs.model_dump(mode="json", exclude=self._unused_configs())}
        if d.protocol == "full":
            key["exclude_history"] = c.exclude_history
        else:
            key["retriever"] = c.retriever
        return key

    def coverage(self) -> dict[str, Any]:
        return {"users": sum(len(b.users) for b in self.cases()),
                "models": [str(m) for m in self.config.models]}

    def slug(self) -> str:
        users = sum(len(b.users) for b in self.cases())
        extra = f"-{self.config.retriever}" if self.data.protocol == "candidates" else ""
        return (f"{self.data.dataset.name}-{self.data.protocol}{extra}-{users}u-"
                + "-".join(str(m) for m in self.config.models))

    def _unused_configs(self) -> set[str] | None:
        """GRACE's config is left out of runs without GRACE (runs kept from before it
        existed read back unchanged)."""
        return None if ModelKind.grace in self.config.models else {"grace"}

    def config_json(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json",
                                      exclude={"configs": self._unused_configs() or set()})

    # -- models ----------------------------------------------------------------------
    def fitted(self, kind: ModelKind, progress: FitProgress | None = None) -> TrainedModel:
        """`kind` trained on this dataset's split (loaded when already trained)."""
        if kind not in self._fitted:
            self._fitted[kind] = train_model(
                self.data.dataset, kind, self.config.configs, self.data.split,
                home=self.home, progress=progress, threads=self.threads)
        return self._fitted[kind]

    async def run_one(self, task: str, case: UserBatch) -> dict[str, Any]:
        # Loading (or, outside the CLI, training) a model must not block the loop.
        trained = await asyncio.to_thread(self.fitted, ModelKind(task))
        value = await asyncio.to_thread(self.rank, trained.model, case)
        record = trained.record
        value["fit"] = {"folder": trained.folder.name, "epochs": record.epochs,
                        "best_epoch": record.best_epoch}
        if case.id == self.cases()[0].id:
            value["training"] = record.model_dump(mode="json")
        return value

    def rank(self, model: CatalogRecommender, case: UserBatch) -> dict[str, Any]:
        """The batch's target ranks (None: excluded) and, for candidates, each user's
        ranked candidate list."""
        if case.candidates is None:
            ranks = model.rank_targets(case.histories, case.targets,
                                       exclude_history=self.config.exclude_history)
            return {"users": list(case.users), "ranks": ranks}
        scores = model.catalog_scores([model.encode(h) for h in case.histories])
        rankings: list[list[str]] = []
        out_ranks: list[int | None] = []
        for row, (cands, target) in enumerate(zip(case.candidates, case.targets, strict=True)):
            s = scores[row, model.encode(cands, "candidate ids")]
            order = sorted(range(len(cands)), key=lambda j: -float(s[j]))  # stable
            ranking = [cands[j] for j in order]
            rankings.append(ranking)
            out_ranks.append(ranking.index(target) + 1 if target in ranking else None)
        return {"users": list(case.users), "ranks": out_ranks, "rankings": rankings}

    # -- scoring ---------------------------------------------------------------------
    def metric_names(self) -> tuple[str, ...]:
        return CANDIDATE_METRICS if self.data.protocol == "candidates" else FULL_METRICS

    def report(self, answers: Answers) -> dict[str, Any]:
        """Metrics with 95% intervals on the users every model has answered, the
        training records, and the published figures for this dataset."""
        models = [str(m) for m in self.config.models]
        order = [u for b in self.cases() for u in b.users]
        ranks: dict[str, dict[str, int | None]] = {}
        training: dict[str, Any] = {}
        fits: dict[str, list[str]] = {}
        for m in models:
            stored = answers.get(m, {})
            ranks[m] = {u: r for v in stored.values()
                        for u, r in zip(v["users"], v["ranks"], strict=True)}
            first = stored.get(self.cases()[0].id) if self.cases() else None
            if first is not None and "training" in first:
                training[m] = first["training"]
            fits[m] = sorted({v["fit"]["folder"] for v in stored.values()})
        users = [u for u in order if all(u in ranks[m] for m in models)]
        names = self.metric_names()
        metrics = {m: rank_metrics([ranks[m][u] for u in users], names, seed=self.config.seed)
                   for m in models}
        return {"dataset": self.data.dataset.summary(), "protocol": self.protocol_text(),
                "metrics": metrics, "training": training, "checkpoints": fits,
                "published": PUBLISHED.get(self.data.dataset.name, {}),
                "users_scored": len(users), "users_asked": len(order)}

    def protocol_text(self) -> str:
        if self.data.protocol == "candidates":
            return (f"LLMRank 20-candidate protocol (Games.{self.config.retriever}, the ARAG "
                    "eval's candidate lists); ties in candidate-list order")
        excluded = ("history items excluded from the ranking" if self.config.exclude_history
                    else "history items ranked too")
        return f"leave-one-out, full ranking over the catalog, {excluded}"

    def title(self, report: Mapping[str, Any]) -> str:
        return (f"Recommenders on {self.data.dataset.name} ({report['users_scored']} users, "
                f"{'20 candidates' if self.data.protocol == 'candidates' else 'full ranking'})")

    def markdown(self, report: dict[str, Any]) -> str:
        names = self.metric_names()
        lines = [f"# {self.title(report)}", "", f"- protocol: {report['protocol']}",
                 f"- dataset: {report['dataset']}",
                 f"- run: `{report.get('run', {}).get('run_id', '')}`", "",
                 "## Metrics (fractions; mean [95% bootstrap interval over users])", "",
                 "| model | users | " + " | ".join(names) + " |",
                 "|---|---|" + "---|" * len(names)]
        for model, m in report["metrics"].items():
            cells = [f"{m[k]:.4f} [{m['ci95'][k][0]:.4f}, {m['ci95'][k][1]:.4f}]"
                     for k in names]
            lines.append(f"| {model} | {m['n_users']} | " + " | ".join(cells) + " |")
        for source, values in report["published"].items():
            cells = [f"{values[k]:.4f}" if k in values else "" for k in names]
            lines.append(f"| *{source}, published* | | " + " | ".join(cells) + " |")
        if report["training"]:
            lines += ["", "## Training", "",
                      "| model | epochs | best epoch | stopped by | seconds | "
                      "valid NDCG@10 | valid Recall@10 |", "|---|---|---|---|---|---|---|"]
            for model, t in report["training"].items():
                lines.append(f"| {model} | {t['epochs']} | {t['best_epoch'] or ''} | "
                             f"{_stopped_by(t)} | {t['seconds']:.1f} | "
                             f"{_fmt(t['valid_ndcg10'])} | {_fmt(t['valid_recall10'])} |")
        return "\n".join(lines) + "\n"

    def write_extras(self, report: dict[str, Any], folder: Path) -> list[Path]:
        path = folder / "report.png"
        training_chart(report, path, self.title(report), self.metric_names())
        return [path]


def rebuild_rec_suite(config: Mapping[str, Any], data: Path) -> RecSuite:
    """The suite a kept report's `run.config` describes, on the data root `data` (what
    `evals/reproduce.py` needs to rebuild a `rec` report from its stored answers)."""
    from aisle.evals.rec_data import load_rec_data

    parsed = RecEvalConfig.model_validate(dict(config))
    return RecSuite(parsed, load_rec_data(data, parsed.dataset))


def _stopped_by(training: Mapping[str, Any]) -> str:
    """Why a training ended: patience, the time budget, or its epochs ran out."""
    if training.get("stopped_early"):
        return "patience"
    if training.get("stopped_by_time"):
        return "time budget"
    return "max epochs" if training.get("epochs") else "one pass"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def bootstrap_chunked(values: Sequence[float], *, n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0, chunk_cells: int = 4_000_000) -> Interval:
    """`aisle.evals.metrics.bootstrap_ci`, drawn a few resamples at a time: the same
    random stream, so the same interval, without an `n_boot x n` matrix in memory.

    Example:
        >>> from aisle.evals.metrics import bootstrap_ci
        >>> values = [0.0, 1.0, 0.5, 0.25, 1.0, 0.0, 0.0]
        >>> bootstrap_chunked(values, chunk_cells=20) == bootstrap_ci(values)
        True
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    step = max(1, chunk_cells // arr.size)
    # Whole rows of draws per chunk keep the stream identical to one big draw.
    means = np.concatenate([
        arr[rng.integers(0, arr.size, size=(min(step, n_boot - start), arr.size))].mean(axis=1)
        for start in range(0, n_boot, step)])
    alpha = (1.0 - level) / 2.0
    return Interval(float(arr.mean()), float(np.quantile(means, alpha)),
                    float(np.quantile(means, 1.0 - alpha)))


def metric_values(ranks: Sequence[int | None], name: str) -> list[float]:
    """Each user's `recall@k` (= hit@k) or `ndcg@k` from its 1-based rank (None: a miss).

    Raises:
        ValueError: a metric other than recall@k or ndcg@k.

    Example:
        >>> metric_values([1, None, 12], "recall@10")
        [1.0, 0.0, 0.0]
    """
    metric, _, k_text = name.partition("@")
    if metric not in ("ndcg", "recall") or not k_text.isdigit():
        raise ValueError(f"unknown metric {name!r}; use recall@k or ndcg@k")
    score = ndcg_at_k if metric == "ndcg" else hit_at_k
    return [score(r, int(k_text)) for r in ranks]


def rank_metrics(ranks: Sequence[int | None], names: Sequence[str], *, seed: int = 0
                 ) -> dict[str, Any]:
    """`recall@k` (= hit@k: one target per user) and `ndcg@k` of 1-based ranks (None: a
    miss), each with a 95% bootstrap interval, as the suites report them.

    Example:
        >>> m = rank_metrics([1, 3, None, 12], ["recall@10", "ndcg@10"])
        >>> m["n_users"], m["recall@10"], round(m["ndcg@10"], 4)
        (4, 0.5, 0.375)
    """
    out: dict[str, Any] = {"n_users": len(ranks)}
    ci: dict[str, list[float]] = {}
    for name in names:
        interval = bootstrap_chunked(metric_values(ranks, name), seed=seed)
        out[name] = interval.mean
        ci[name] = [interval.low, interval.high]
    out["ci95"] = ci
    return out


def training_chart(report: dict[str, Any], path: Path, title: str,
                   names: Sequence[str]) -> None:
    """Left: validation NDCG@10 and training loss per epoch of every model trained in
    epochs (one-pass models as a flat line at their validation NDCG@10). Right: the
    test metrics with their 95% intervals."""
    from aisle.evals.report import pyplot

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (curve, bars) = plt.subplots(1, 2, figsize=(12, 4.5))
    palette = plt.get_cmap("tab10")
    loss_axis = None
    for i, (model, t) in enumerate(report["training"].items()):
        color = palette(i % 10)
        history = t.get("history") or []
        if history:
            epochs = [h["epoch"] for h in history]
            valid = [h["valid_ndcg10"] for h in history]
            if any(v is not None for v in valid):
                curve.plot(epochs, valid, marker="o", color=color,
                           label=f"{model} valid NDCG@10")
            if loss_axis is None:
                loss_axis = curve.twinx()
                loss_axis.set_ylabel("training loss (cross-entropy)")
            loss_axis.plot(epochs, [h["loss"] for h in history], linestyle="--",
                           color=color, alpha=0.6, label=f"{model} loss")
        elif t.get("valid_ndcg10") is not None:
            curve.axhline(t["valid_ndcg10"], linestyle=":", color=color,
                          label=f"{model} valid NDCG@10 (one pass)")
    curve.xaxis.set_major_locator(MaxNLocator(integer=True))
    curve.set_xlabel("epoch")
    curve.set_ylabel("validation NDCG@10")
    curve.set_title("training curve")
    handles, labels = curve.get_legend_handles_labels()
    if loss_axis is not None:
        more = loss_axis.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if handles:
        curve.legend(handles, labels, fontsize=8, loc="center right")
    models = list(report["metrics"])
    width = 0.8 / max(len(names), 1)
    for j, key in enumerate(names):
        means = [report["metrics"][m][key] for m in models]
        lows = [max(0.0, means[i] - report["metrics"][m]["ci95"][key][0])
                for i, m in enumerate(models)]
        highs = [max(0.0, report["metrics"][m]["ci95"][key][1] - means[i])
                 for i, m in enumerate(models)]
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(models))]
        bars.bar(xs, [0.0 if math.isnan(v) else v for v in means], width,
                 yerr=[lows, highs], capsize=2, label=key)
    bars.set_xticks(range(len(models)), models)
    bars.set_title("test metrics (95% intervals)")
    bars.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
