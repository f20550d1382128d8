"""`aisle rec train|recommend|eval`: trained recommenders (SASRec, item-kNN, popularity,
GRACE)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table

from aisle.cli._common import (
    DATA_OPTION,
    JSON_OPTION,
    aisle_errors,
    check_output_dir,
    console,
    count_progress,
    data_root,
    fail,
    json_stdout,
    resumable,
)
from aisle.cli._eval import (
    REPORT_ONLY_OPTION,
    compute_answers,
    results_root_option,
    warn_failures,
    write_report,
)
from aisle.cli.arag import Candidates
from aisle.settings import get_settings
from aisle.tools.recommenders.config import (
    CLASSIC_MODELS,
    GRACEConfig,
    ModelConfigs,
    ModelKind,
    SASRecConfig,
)

if TYPE_CHECKING:
    from aisle.evals.rec_data import RecData
    from aisle.evals.runner import Failure
    from aisle.tools.recommenders import EpochLog, FitProgress, TrainedModel

app = typer.Typer(help="Trained recommenders: SASRec, item-kNN, popularity and GRACE on the "
                       "amazon-seq and LLMRank Games data (train, recommend, evaluate).",
                  no_args_is_help=True)

_DATASET: Any = typer.Option(
    ..., "--dataset", "-d",
    help="Dataset under --data: beauty (amazon-seq/Beauty.txt), sports "
         "(amazon-seq/Sports_and_Outdoors.txt), another amazon-seq NAME, llmrank-games; "
         "or a path to an S3-Rec NAME.txt (`user item item ...` per line) or to a folder "
         "in the LLMRank Games layout.")
_MODEL: Any = typer.Option(ModelKind.sasrec, "--model", "-m", help="Which recommender.")
_EPOCHS: Any = typer.Option(
    None, "--epochs", min=1, show_default=False,
    help=f"SASRec and GRACE: most epochs (default {SASRecConfig().max_epochs}; training "
         "stops earlier after --patience epochs without a better validation NDCG@10). "
         "Part of the checkpoint key.")
_PATIENCE: Any = typer.Option(
    None, "--patience", min=1, show_default=False,
    help="SASRec and GRACE: stop after this many epochs without a better validation "
         f"NDCG@10 (default {SASRecConfig().patience}); the best epoch is kept either way. "
         "With --patience equal to --epochs every model trains exactly --epochs epochs "
         "(an equal-budget comparison). Part of the checkpoint key.")
_THREADS: Any = typer.Option(None, "--threads", min=0, show_default=False,
                             help="Torch CPU threads; default AISLE_REC_THREADS (0 = all "
                                  "cores).")


_MAX_MINUTES: Any = typer.Option(
    None, "--max-minutes", min=0, show_default=False,
    help="SASRec and GRACE: wall-clock budget of the training in minutes (default "
         f"{SASRecConfig().max_minutes:g}; 0: none); no epoch starts that would end past "
         "it. Part of the checkpoint key.")


_ATTENTION: Any = typer.Option(
    None, "--attention", show_default=False,
    help="GRACE: jsa (journey-aware sparse attention, the default) or dense (the ablation). "
         "Part of the checkpoint key.")
_ATTRIBUTE_TOKENS: Any = typer.Option(
    None, "--attribute-tokens", min=0, show_default=False,
    help=f"GRACE: attribute tokens before each semantic ID (default "
         f"{GRACEConfig().attribute_tokens}; 0: the ablation without them). Part of the "
         "checkpoint key.")
_BUDGET: Any = typer.Option(
    "cpu", "--budget", show_default=True,
    help="GRACE: cpu (the 2-core budget: hidden 128, 2 layers, 60 minutes) or gpu (the full "
         "budget: a larger model, the whole validation set, no time limit). Part of the "
         "checkpoint key.")


def _configs(epochs: int | None, max_minutes: float | None = None,
             attention: str | None = None, attribute_tokens: int | None = None,
             budget: str = "cpu", patience: int | None = None) -> ModelConfigs:
    changes: dict[str, Any] = {}
    if epochs is not None:
        changes["max_epochs"] = epochs
    if patience is not None:
        changes["patience"] = patience
    if max_minutes is not None:
        changes["max_minutes"] = max_minutes or None  # 0: no budget
    grace = dict(changes)
    if attention is not None:
        grace["attention"] = attention
    if attribute_tokens is not None:
        grace["attribute_tokens"] = attribute_tokens
    if budget not in ("cpu", "gpu"):
        fail(f"--budget must be cpu or gpu, got {budget!r}")
    try:
        return ModelConfigs(sasrec=SASRecConfig(**changes),
                            grace=GRACEConfig.gpu(**grace) if budget == "gpu"
                            else GRACEConfig(**grace))
    except ValidationError as e:
        fail("; ".join((f"--{str(err['loc'][-1]).replace('_', '-')}: " if err["loc"] else "")
                       + err["msg"] for err in e.errors(include_url=False)))


def _again(epochs: int | None, max_minutes: float | None, attention: str | None = None,
           attribute_tokens: int | None = None, budget: str = "cpu",
           patience: int | None = None) -> str:
    """The config options to repeat in a suggested command."""
    return ((f" --epochs {epochs}" if epochs is not None else "")
            + (f" --patience {patience}" if patience is not None else "")
            + (f" --max-minutes {max_minutes:g}" if max_minutes is not None else "")
            + (f" --attention {attention}" if attention is not None else "")
            + (f" --attribute-tokens {attribute_tokens}" if attribute_tokens is not None
               else "")
            + (f" --budget {budget}" if budget != "cpu" else ""))


def _load_data(data: Path | None, dataset: str) -> RecData:
    from aisle.evals.rec_data import load_rec_data

    with aisle_errors():
        return load_rec_data(data_root(data), dataset)


class _TrainProgress:
    """Rich bars (epochs, batches) on a terminal, a line per epoch on stderr always,
    and the same lines, timestamped, appended to the model folder's `train.log`."""

    def __init__(self, model: str, log: Path) -> None:
        self.model = model
        self.log = log
        self.progress = count_progress()
        self._epochs: TaskID | None = None
        self._batches: TaskID | None = None

    def __enter__(self) -> _TrainProgress:
        self.progress.__enter__()
        self._line(f"started: {self.model}")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.__exit__(kind, error, tb)
        self._line("finished" if kind is None else
                   "interrupted (rerun the same command to resume from the last epoch)")

    def _line(self, text: str) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", encoding="utf-8") as f:
            f.write(f"{datetime.now().isoformat(timespec='seconds')} {text}\n")

    def on_batch(self, epoch: int, done: int, total: int) -> None:
        if self._batches is None:
            self._batches = self.progress.add_task(f"{self.model} batches", total=total)
        self.progress.update(self._batches, completed=done, total=total,
                             description=f"{self.model} epoch {epoch} batches")

    def on_epoch(self, log: EpochLog, max_epochs: int) -> None:
        if self._epochs is None:
            self._epochs = self.progress.add_task(f"{self.model} epochs", total=max_epochs)
        self.progress.update(self._epochs, completed=log.epoch)
        valid = "" if log.valid_ndcg10 is None else \
            f", valid NDCG@10 {log.valid_ndcg10:.4f}, Recall@10 {log.valid_recall10:.4f}"
        text = (f"{self.model} epoch {log.epoch}/{max_epochs}: loss {log.loss:.4f}{valid}, "
                f"{log.seconds:.1f} s{' (best)' if log.best else ''}")
        self._line(text)
        self.progress.console.print(escape(text), soft_wrap=True)


def _train(rec: RecData, kind: ModelKind, configs: ModelConfigs,
           run: Callable[[FitProgress], TrainedModel]) -> TrainedModel:
    """`run(progress)` (a training, resumed or loaded) with bars, epoch lines and the
    model folder's `train.log`; Ctrl-C keeps the finished epochs."""
    from aisle.tools.recommenders import checkpoint_dir

    folder = checkpoint_dir(rec.dataset, kind, configs, rec.split)
    check_output_dir(folder, "AISLE_HOME")
    with aisle_errors(), resumable(f"the finished epochs in {folder}"), \
            _TrainProgress(str(kind), folder / "train.log") as progress:
        return run(progress)


def _summary(trained: TrainedModel, rec: RecData) -> dict[str, Any]:
    record = trained.record
    return {"dataset": rec.dataset.summary(), "model": str(trained.kind),
            "folder": str(trained.folder), "loaded": trained.loaded,
            "training": record.model_dump(mode="json")}


@app.command("train")
def train(
    dataset: str = _DATASET,
    data: Path | None = DATA_OPTION,
    model: ModelKind = _MODEL,
    epochs: int | None = _EPOCHS,
    patience: int | None = _PATIENCE,
    max_minutes: float | None = _MAX_MINUTES,
    attention: str | None = _ATTENTION,
    attribute_tokens: int | None = _ATTRIBUTE_TOKENS,
    budget: str = _BUDGET,
    threads: int | None = _THREADS,
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a recommender on a dataset's leave-one-out training split, or resume its
    interrupted training from the last finished epoch. The model is kept under
    AISLE_HOME/rec/<dataset>-<model>-<config hash>/; a finished one is only loaded."""
    from aisle.tools.recommenders import train_model

    rec = _load_data(data, dataset)
    configs = _configs(epochs, max_minutes, attention, attribute_tokens, budget, patience)
    with json_stdout(as_json) as emit:
        trained = _train(rec, model, configs, lambda progress: train_model(
            rec.dataset, model, configs, rec.split, progress=progress, threads=threads))
        result = _summary(trained, rec)
        if as_json:
            emit(result)
            return
    record = trained.record
    state = "loaded (already trained)" if trained.loaded else "trained"
    valid = "" if record.valid_ndcg10 is None else \
        f"; validation NDCG@10 {record.valid_ndcg10:.4f}, Recall@10 {record.valid_recall10:.4f}"
    epochs_text = f", {record.epochs} epochs (best {record.best_epoch})" if record.epochs else ""
    console.print(f"{model} on {rec.dataset.name}: {state}{epochs_text}{valid}; "
                  f"{record.seconds:.1f} s; {trained.folder}", soft_wrap=True)


def _history_ids(history: list[str], extra: list[str]) -> list[str]:
    """`--history` values and the words after them, split on commas and spaces."""
    ids = [part for text in [*history, *extra] for part in text.replace(",", " ").split()]
    return ids


@app.command("recommend", context_settings={"allow_extra_args": True})
def recommend(
    ctx: typer.Context,
    dataset: str = _DATASET,
    history: list[str] = typer.Option(
        ..., "--history", show_default=False,
        help="The user's item ids, oldest first: --history ID ID ... (or comma-separated)."),
    data: Path | None = DATA_OPTION,
    model: ModelKind = _MODEL,
    k: int = typer.Option(10, "--k", "-k", min=1, help="How many items."),
    epochs: int | None = _EPOCHS,
    patience: int | None = _PATIENCE,
    max_minutes: float | None = _MAX_MINUTES,
    attention: str | None = _ATTENTION,
    attribute_tokens: int | None = _ATTRIBUTE_TOKENS,
    budget: str = _BUDGET,
    threads: int | None = _THREADS,
    as_json: bool = JSON_OPTION,
) -> None:
    """Top-k items of the whole catalog for a history (its own items left out), from a
    model `aisle rec train` trained with the same options."""
    from aisle.tools.recommenders import (
        ExplainingRecommender,
        RecommenderInputError,
        checkpoint_dir,
        load_model,
    )

    ids = _history_ids(history, list(ctx.args))
    if not ids:
        fail("--history is empty; pass the user's item ids, oldest first")
    rec = _load_data(data, dataset)
    configs = _configs(epochs, max_minutes, attention, attribute_tokens, budget, patience)
    folder = checkpoint_dir(rec.dataset, model, configs, rec.split)
    with aisle_errors():
        fitted = load_model(folder, model, threads=threads)
    if fitted is None:
        again = _again(epochs, max_minutes, attention, attribute_tokens, budget, patience)
        fail(f"no trained {model} for {rec.dataset.name} in {folder}; train it first: aisle "
             f"rec train --dataset {dataset} --model {model}{again}"
             + (f" --data {data}" if data is not None else ""))
    with json_stdout(as_json) as emit:
        try:
            top = fitted.recommend(ids, k)
        except RecommenderInputError as e:
            fail(f"--history: {e}")
        rows: list[dict[str, Any]] = [
            {"rank": pos, "item_id": r.item_id, "score": r.score,
             **({"title": rec.title(r.item_id)} if rec.games is not None else {})}
            for pos, r in enumerate(top, 1)]
        explains = isinstance(fitted, ExplainingRecommender)
        if isinstance(fitted, ExplainingRecommender):
            paths = fitted.reasoning(ids, [r.item_id for r in top])
            for row, steps in zip(rows, paths, strict=True):
                row["reasoning"] = [{"attribute": st.attribute,
                                     "probability": st.probability} for st in steps]
        if as_json:
            emit({"dataset": rec.dataset.name, "model": str(model), "history": ids,
                  "recommendations": rows})
            return
    table = Table(title=f"{model} on {rec.dataset.name}: top {k} after {len(ids)} items")
    for col in ("#", "item", "score", *(["title"] if rec.games is not None else []),
                *(["reasoning"] if explains else [])):
        table.add_column(col)
    for row in rows:
        why = ", ".join(f"{st['attribute']} ({st['probability']:.2f})"
                        for st in row.get("reasoning", []))
        table.add_row(str(row["rank"]), escape(str(row["item_id"])), f"{row['score']:.4f}",
                      *([escape(str(row.get("title") or ""))] if rec.games is not None else []),
                      *([escape(why)] if explains else []))
    console.print(table)


@app.command("eval")
def eval_rec(
    dataset: str = _DATASET,
    data: Path | None = DATA_OPTION,
    models: list[ModelKind] | None = typer.Option(
        None, "--model", "-m", show_default=False,
        help="A model to evaluate; repeat for several. Default: sasrec, itemknn, pop."),
    users: int | None = typer.Option(None, "--users", min=1, show_default=False,
                                     help="The first N test users (default: all; "
                                          "llmrank-games: its 200)."),
    candidates: Candidates = typer.Option(Candidates.random, "--candidates",
                                          help="llmrank-games only: the candidate lists, "
                                               "the retriever file Games.<NAME>."),
    keep_history: bool = typer.Option(
        False, "--rank-history-items",
        help="Full ranking: rank the history's own items too (default: they are excluded "
             "from the ranking, the standard)."),
    epochs: int | None = _EPOCHS,
    patience: int | None = _PATIENCE,
    max_minutes: float | None = _MAX_MINUTES,
    attention: str | None = _ATTENTION,
    attribute_tokens: int | None = _ATTRIBUTE_TOKENS,
    budget: str = _BUDGET,
    threads: int | None = _THREADS,
    out: Path | None = results_root_option(
        "rec", "report.json, report.md, report.png with the training curve"),
    report_only: bool = REPORT_ONLY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Evaluate recommenders: on amazon-seq data, leave-one-out with full ranking over the
    catalog (history items excluded), Recall@5/10 and NDCG@5/10; on llmrank-games, the
    paper's 20-candidate protocol (the ARAG eval's lists), NDCG@1/5/10/20. Every metric
    with a 95% bootstrap interval. Models train first if needed; resumable (Ctrl-C keeps
    finished epochs and batches; rerun the same command to continue)."""
    from aisle.evals.rec_suite import RecEvalConfig, RecSuite
    from aisle.evals.runner import EvalRunner

    chosen = tuple(dict.fromkeys(models)) if models else CLASSIC_MODELS
    root = out if out is not None else get_settings().home / "results"
    rec = _load_data(data, dataset)
    with aisle_errors(), json_stdout(as_json) as emit:
        configs = _configs(epochs, max_minutes, attention, attribute_tokens, budget, patience)
        config = RecEvalConfig(dataset=dataset, models=chosen, n_users=users,
                               retriever=candidates.value, exclude_history=not keep_history,
                               configs=configs)
        EvalRunner.check_writable(root)
        suite = RecSuite(config, rec, threads=threads)
        asked = sum(len(b.users) for b in suite.cases())
        if users is not None and asked < users:
            fail(f"--users {users} is more than the {asked} test users of {rec.dataset.name}; "
                 f"pass --users {asked} or fewer")
        runner = EvalRunner(suite, root)
        failures: list[Failure] = []
        if not report_only:
            total = len(suite.cases())
            for kind in chosen:
                if len(runner.stored(str(kind))) < total:
                    _train(rec, kind, config.configs, partial(suite.fitted, kind))
            failures = compute_answers(runner, "batches", every=5)
            warn_failures(failures, "(model, batch)", "batch")
        report = runner.report()
        if report["users_scored"] == 0:
            fail(f"no answers are stored for this run under {runner.paths.store}; run "
                 "without --report-only to compute them")
        files = write_report(runner, report, failures, emit if as_json else None)
        if as_json:
            return
    names = suite.metric_names()
    table = Table(title=suite.title(report))
    for col in ("model", "users", *names):
        table.add_column(col)
    for model, m in report["metrics"].items():
        table.add_row(model, str(m["n_users"]), *(f"{m[k]:.4f}" for k in names))
    for source, values in report["published"].items():
        table.add_row(f"{source} (published)", "",
                      *(f"{values[k]:.4f}" if k in values else "" for k in names))
    console.print(table)
    console.print("wrote " + ", ".join(str(f) for f in files), soft_wrap=True)
