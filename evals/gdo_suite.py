"""LLM-GDO evals: entity matching (er-magellan), imputation and error detection
(data-wrangling), each as LLM alone, cascade, and a non-LLM baseline.

One call evaluates one method on one dataset's test split and returns a result object;
`aisle gdo eval` merges it into a result file that keeps one object per method under
`metrics`. The LLM methods run the real operators (`MatchOp` on the labelled test pairs,
`ImputeOp` on the test rows with the column emptied, `DetectErrorsOp` on the labelled
test cells) through the local engine, so they measure what a pipeline would do. Their
answers land in the response cache as they come: an interrupted run, rerun, answers the
finished rows from the cache and goes on (the operators evaluate whole tables, so the
cache is their answer store rather than the case-by-case `EvalRunner`).

Cascades fit their thresholds on the validation split (matching: MiniLM cosine of the
two records; imputation: the nearest training row's TF-IDF similarity, the confident rows
taking its value; error detection: the value's rarity in its column, fitted on the train
and validation cells) for at most `llm_share` of the rows going to the LLM.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from aisle.agents.gdo import (
    AGENTS_VERSION,
    UDP,
    DetectErrorsOp,
    Example,
    ImputeOp,
    MatchOp,
    Runtime,
    Thresholds,
    fit_thresholds,
    run_operator,
)
from aisle.errors import ConfigurationError
from aisle.evals import wrangling as wr
from aisle.prompts import fingerprint

__all__ = ["DEFAULT_LLM_SHARE", "GDOEvalConfig", "Method", "Task", "check_merge", "evaluate",
           "identity", "markdown_table", "merge_result", "method_key"]

Task = Literal["match", "impute", "detect"]
Method = Literal["llm", "cascade", "baseline"]

DEFAULT_LLM_SHARE = 1 / 3
"""The cascade's default target: at most a third of the validation rows go to the LLM."""

PROMPTS = {"match": "gdo/match.j2", "impute": "gdo/impute.j2", "detect": "gdo/detect.j2",
           "match_yesno": "gdo/match_yesno.j2", "detect_yesno": "gdo/detect_yesno.j2"}


@dataclass
class GDOEvalConfig:
    """One eval run.

    Attributes:
        task: `match`, `impute` or `detect`.
        data: the dataset folder (er-magellan layout for match, `train/valid/test.csv`
            for impute, the Hospital layout for detect).
        method: `llm`, `cascade` or `baseline`.
        model: the LLM's spec (llm, cascade).
        limit: evaluate a fixed random sample of this many test rows (pairs, rows,
            cells), seeded; None is the whole split.
        seed: the sample's seed.
        column: the imputed column.
        shots: few-shot examples from the train split.
        llm_share: the cascade's target share of rows sent to the LLM.
        concurrency: rows in flight.
        decide: matching and detection: `json` (the model writes the boolean) or
            `logprob` (P(Yes) of a one-token answer against a threshold fitted for F1 on
            `valid_limit` validation rows; the method's key gets `_logprob`).
        valid_limit: validation rows the logprob threshold is fitted on.
        embed: texts -> vectors (default MiniLM).
    """

    task: Task
    data: Path
    method: Method
    model: str | Any | None = None
    limit: int | None = None
    seed: int = 2025
    column: str = "manufacturer"
    shots: int = 4
    llm_share: float = DEFAULT_LLM_SHARE
    concurrency: int = 2
    decide: Literal["json", "logprob"] = "json"
    valid_limit: int = 100
    embed: Callable[[Sequence[str]], Any] | None = None
    progress: Callable[[str, int, int], None] | None = None

    def embedder(self) -> Callable[[Sequence[str]], Any]:
        if self.embed is None:
            from aisle.tools.retrieval import Embedder

            self.embed = Embedder().embed
        return self.embed


def _sample(n: int, limit: int | None, seed: int) -> list[int]:
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))


def _udp(task: str, model: Any, examples: list[Example], max_tokens: int) -> UDP:
    """The shipped eval UDP (`prompts/gdo/<task>.j2`) with its few-shot examples."""
    prompt = files("aisle.prompts").joinpath(PROMPTS[task]).read_text(encoding="utf-8")
    return UDP(prompt=prompt, examples=examples, max_tokens=max_tokens,
               model=model if isinstance(model, str) else None)


def _usage(stats: dict[str, Any], rows: int, seconds: float) -> dict[str, Any]:
    calls = stats.get("calls", 0)
    return {"rows": rows, "llm_rows": stats.get("tasks", 0) - stats.get("cascade_decided", 0),
            "llm_share": round(stats.get("llm_share", 0.0), 4), "calls": calls,
            "cache_hits": stats.get("cache_hits", 0),
            "prompt_tokens": stats.get("prompt_tokens", 0),
            "completion_tokens": stats.get("completion_tokens", 0),
            "failed": stats.get("failed", 0), "seconds": round(seconds, 2),
            "seconds_per_row": round(seconds / rows, 4) if rows else 0.0,
            "calls_per_row": round(calls / rows, 4) if rows else 0.0}


def _runtime(config: GDOEvalConfig, **kwargs: Any) -> Runtime:
    if config.model is None:
        raise ConfigurationError("the llm and cascade methods need --model")
    return Runtime(model=config.model, concurrency=config.concurrency,
                   progress=config.progress, **kwargs)


def _fit_threshold(fit: Any, gold: Sequence[int]) -> tuple[float, dict[str, Any]]:
    """The P(Yes) threshold with the best F1 on the validation rows the operator just
    answered (`decide: logprob`), and what fitting it cost."""
    p_yes = [a.get("p_yes", 0.0) if isinstance(a, dict) else 0.0 for a in fit.answers]
    if not any(gold):
        raise ConfigurationError("the validation sample holds no positive row: raise "
                                 "--valid-limit")
    threshold, f1 = wr.best_threshold(p_yes, gold)
    return float(threshold), {"threshold": round(float(threshold), 6),
                              "valid_f1": round(f1, 6), "valid_rows": len(gold),
                              "calls": fit.stats["calls"],
                              "prompt_tokens": fit.stats["prompt_tokens"],
                              "seconds": fit.stats["seconds"],
                              "failed": fit.stats["failed"]}


# ---------------------------------------------------------------------------- match


def _pair_frames(pairs: Sequence[wr.Pair]) -> tuple[pd.DataFrame, pd.DataFrame]:
    left = pd.DataFrame([p.left for p in pairs], dtype=object)
    right = pd.DataFrame([p.right for p in pairs], dtype=object)
    return (left.where(left.notna(), None), right.where(right.notna(), None))


def _match_shots(train: Sequence[wr.Pair], n: int) -> list[Example]:
    pos = [p for p in train if p.label == 1][: (n + 1) // 2]
    neg = [p for p in train if p.label == 0][: n // 2]
    shots = [x for pair in zip(pos, neg, strict=False) for x in pair]
    shots += pos[len(neg):] + neg[len(pos):]
    return [Example(input={"left": p.left, "right": p.right},
                    output={"match": bool(p.label)}) for p in shots[:n]]


async def _eval_match(config: GDOEvalConfig) -> dict[str, Any]:
    test_all = wr.load_pairs(config.data, "test")
    test = [test_all[i] for i in _sample(len(test_all), config.limit, config.seed)]
    gold = [p.label for p in test]
    start = time.perf_counter()
    if config.method == "baseline":
        matcher = wr.EmbeddingMatcher(config.embedder()).fit(wr.load_pairs(config.data, "valid"))
        predicted = matcher.predict(test)
        return {**wr.precision_recall_f1(predicted, gold), "threshold": matcher.threshold,
                **_usage({}, len(test), time.perf_counter() - start),
                "method": "MiniLM cosine of the two records, threshold fit on valid"}
    train = wr.load_pairs(config.data, "train")
    logprob = config.decide == "logprob"
    udp = _udp("match_yesno" if logprob else "match", config.model,
               _match_shots(train, config.shots), 16)
    op = MatchOp(udp=udp, decide=config.decide)
    thresholds: dict[str, Thresholds] = {}
    extra: dict[str, Any] = {}
    if logprob:
        valid_all = wr.load_pairs(config.data, "valid")
        valid = [valid_all[i] for i in _sample(len(valid_all), config.valid_limit, config.seed)]
        vleft, vright = _pair_frames(valid)
        fit = await run_operator(op, vleft, _runtime(
            config, right=vright, pairs=[(i, i) for i in range(len(valid))],
            embed=config.embedder()))
        threshold, extra["fit"] = _fit_threshold(fit, [p.label for p in valid])
        op = op.model_copy(update={"threshold": threshold})
    if config.method == "cascade":
        from aisle.agents.gdo import CascadeSpec
        from aisle.tools.blocking import cosine_pairs, record_text

        valid = wr.load_pairs(config.data, "valid")
        vleft, vright = _pair_frames(valid)  # scored exactly as the operator scores test
        scores = cosine_pairs([record_text(r) for r in vleft.to_dict(orient="records")],
                              [record_text(r) for r in vright.to_dict(orient="records")],
                              config.embedder())
        t = fit_thresholds(scores, [p.label for p in valid], llm_share=config.llm_share)
        thresholds = {"match": t}
        op = op.model_copy(update={"cascade": CascadeSpec(score="embedding")})
        extra["thresholds"] = {"low": t.low, "high": t.high, "fit_on": "valid",
                               "target_llm_share": round(config.llm_share, 4)}
    left, right = _pair_frames(test)
    result = await run_operator(op, left, _runtime(
        config, right=right, pairs=[(i, i) for i in range(len(test))],
        embed=config.embedder(), thresholds=thresholds))
    answers = result.table.sort_values("left_id", kind="stable")
    predicted = [1 if m is True else 0 for m in answers["match"]]
    failed = int(answers["match_error"].notna().sum())
    return {**wr.precision_recall_f1(predicted, gold), **extra,
            **_usage(result.stats, len(test), time.perf_counter() - start),
            "failed_counted_as_no_match": failed}


# --------------------------------------------------------------------------- impute


async def _eval_impute(config: GDOEvalConfig) -> dict[str, Any]:
    data = wr.load_imputation(config.data, config.column)
    rows = _sample(len(data.test), config.limit, config.seed)
    test = data.test.iloc[rows].reset_index(drop=True)
    gold = [v for v in test[config.column]]
    start = time.perf_counter()
    if config.method == "baseline":
        nn = wr.NearestNeighbourImputer(config.column).fit(data.train)
        frequent = wr.most_frequent_impute(data.train, config.column)
        return {"accuracy": wr.imputation_accuracy(nn.predict(test), gold),
                "most_frequent_accuracy": wr.imputation_accuracy([frequent] * len(test), gold),
                **_usage({}, len(test), time.perf_counter() - start),
                "method": "nearest training row by TF-IDF character n-grams (most frequent "
                          "value beside it)"}
    shots = [Example(input={"row": {k: v for k, v in r.items()}, "column": config.column},
                     output={"value": str(r[config.column])})
             for r in data.train.head(config.shots).to_dict(orient="records")]
    udp = _udp("impute", config.model, shots, 24)
    blank = test.copy()
    blank[config.column] = None
    decided: dict[int, str] = {}
    extra: dict[str, Any] = {}
    if config.method == "cascade":
        nn = wr.NearestNeighbourImputer(config.column).fit(data.train)
        valid_sim = nn.similarities(data.valid)
        valid_ok = [int(wr.normalise_value(p) == wr.normalise_value(g)) for p, g in
                    zip(nn.predict(data.valid), data.valid[config.column], strict=True)]
        t = fit_thresholds(valid_sim, valid_ok, llm_share=config.llm_share)
        sims, guesses = nn.similarities(test), nn.predict(test)
        decided = {i: g for i, (s, g) in enumerate(zip(sims, guesses, strict=True))
                   if s >= t.high}
        extra["thresholds"] = {"high": t.high, "fit_on": "valid",
                               "target_llm_share": round(config.llm_share, 4),
                               "note": "rows at or above `high` take the nearest training "
                                       "row's value; the rest go to the LLM"}
    todo = [i for i in range(len(test)) if i not in decided]
    stats: dict[str, Any] = {"tasks": len(test), "cascade_decided": len(decided)}
    predicted: list[str | None] = [decided.get(i) for i in range(len(test))]
    if todo:
        result = await run_operator(ImputeOp(column=config.column, udp=udp),
                                    blank.iloc[todo].reset_index(drop=True), _runtime(config))
        for i, value in zip(todo, result.table[config.column], strict=True):
            predicted[i] = value
        stats = {**result.stats, "tasks": len(test), "cascade_decided": len(decided),
                 "llm_share": len(todo) / len(test)}
    return {"accuracy": wr.imputation_accuracy(predicted, gold), **extra,
            **_usage(stats, len(test), time.perf_counter() - start)}


# --------------------------------------------------------------------------- detect


async def _eval_detect(config: GDOEvalConfig) -> dict[str, Any]:
    data = wr.load_error_detection(config.data)
    cells_all = data.labels["test"].reset_index(drop=True)
    cells = cells_all.iloc[_sample(len(cells_all), config.limit, config.seed)]
    cells = cells.reset_index(drop=True)
    gold = [int(v == 0) for v in cells["is_clean"]]
    start = time.perf_counter()
    if config.method == "baseline":
        detector = wr.FrequencyOutlierDetector().fit(
            data.table, pd.concat([data.labels["train"], data.labels["valid"]]))
        predicted = detector.predict(data.table, cells)
        return {**wr.precision_recall_f1(predicted, gold), "threshold": detector.threshold,
                **_usage({}, len(cells), time.perf_counter() - start),
                "method": "a value seen at most `threshold` times in its column is an error "
                          "(threshold fit on train+valid cells)"}
    table = data.table.reset_index(drop=True)
    position = {row_id: i for i, row_id in enumerate(data.table.index)}
    train = data.labels["train"]
    shot_cells = pd.concat([train[train.is_clean == 0].head((config.shots + 1) // 2),
                            train[train.is_clean == 1].head(config.shots // 2)])
    shots = []
    for r, c, clean in zip(shot_cells.row_id, shot_cells.col_name, shot_cells.is_clean,
                           strict=True):
        row = {str(k): v for k, v in data.table.loc[r].items()}
        shots.append(Example(input={"row": row, "column": c, "value": row[c]},
                             output={"is_error": not clean}))
    logprob = config.decide == "logprob"
    udp = _udp("detect_yesno" if logprob else "detect", config.model, shots, 16)
    op = DetectErrorsOp(udp=udp, columns=sorted(set(cells.col_name)), decide=config.decide)
    thresholds: dict[str, Thresholds] = {}
    extra: dict[str, Any] = {}
    if logprob:
        valid_all = data.labels["valid"].reset_index(drop=True)
        valid = valid_all.iloc[_sample(len(valid_all), config.valid_limit, config.seed)]
        fit_cells = [(position[r], c) for r, c in zip(valid.row_id, valid.col_name, strict=True)]
        fit_op = op.model_copy(update={"columns": sorted(set(valid.col_name))})
        fit = await run_operator(fit_op, table, _runtime(config, cells=fit_cells))
        threshold, extra["fit"] = _fit_threshold(fit, [int(v == 0) for v in valid.is_clean])
        op = op.model_copy(update={"threshold": threshold})
    if config.method == "cascade":
        from aisle.agents.gdo import CascadeSpec

        fit_cells = pd.concat([data.labels["train"], data.labels["valid"]])
        freq = wr.FrequencyOutlierDetector.frequencies(data.table, fit_cells)
        scores = [1.0 / f if f else 0.0 for f in freq]
        t = fit_thresholds(scores, [int(v == 0) for v in fit_cells.is_clean],
                           llm_share=config.llm_share)
        thresholds = {"detect_errors": t}
        op = op.model_copy(update={"cascade": CascadeSpec(score="frequency")})
        extra["thresholds"] = {"low": t.low, "high": t.high, "fit_on": "train+valid",
                               "target_llm_share": round(config.llm_share, 4),
                               "score": "1 / the value's count in its column (0 for empty)"}
    targets = [(position[r], c) for r, c in zip(cells.row_id, cells.col_name, strict=True)]
    result = await run_operator(op, table, _runtime(config, cells=targets,
                                                    thresholds=thresholds))
    out = result.table
    predicted = [1 if out.at[i, f"{c}_is_error"] is True else 0 for i, c in targets]
    return {**wr.precision_recall_f1(predicted, gold), **extra,
            **_usage(result.stats, len(cells), time.perf_counter() - start)}


async def evaluate(config: GDOEvalConfig) -> dict[str, Any]:
    """Run one method on one dataset's test split: the result object to store under
    `metrics[method]`, plus what identifies the run."""
    runners = {"match": _eval_match, "impute": _eval_impute, "detect": _eval_detect}
    if config.task not in runners:
        raise ConfigurationError(f"unknown task {config.task!r}: use match, impute or detect")
    if not Path(config.data).is_dir():  # noqa: ASYNC240 (one stat before the run)
        raise ConfigurationError(f"--data {config.data} is not a folder")
    if config.decide == "logprob" and (config.task == "impute" or config.method == "baseline"):
        raise ConfigurationError("--decide logprob is for the llm and cascade methods of "
                                 "match and detect (yes/no decisions)")
    metrics = await runners[config.task](config)
    model = None if config.method == "baseline" else (
        config.model if isinstance(config.model, str) else type(config.model).__name__)
    return {**identity(config), "method": method_key(config), "model": model,
            "shots": None if config.method == "baseline" else config.shots,
            "agents_version": AGENTS_VERSION, "prompts": fingerprint("gdo"),
            "metrics": {k: (round(v, 6) if isinstance(v, float) else v)
                        for k, v in metrics.items()}}


IDENTITY = ("task", "dataset", "split", "limit", "seed")


def identity(config: GDOEvalConfig) -> dict[str, Any]:
    """What a result file is about: task, dataset, split and sample."""
    return {"task": config.task, "dataset": Path(config.data).name, "split": "test",
            "limit": config.limit, "seed": config.seed if config.limit else None}


def method_key(config: GDOEvalConfig) -> str:
    """The method's key under `metrics`: `llm`, `cascade`, `baseline`, or with
    `--decide logprob` `llm_logprob` / `cascade_logprob`. A cascade fitted for another
    share than the default third says so: `cascade_share25` for `--llm-share 0.25`, so
    both fits can sit in one result file.

    Examples:
        >>> method_key(GDOEvalConfig(task="match", data=Path("x"), method="cascade",
        ...                          decide="logprob", llm_share=0.25))
        'cascade_logprob_share25'
        >>> method_key(GDOEvalConfig(task="match", data=Path("x"), method="cascade"))
        'cascade'
    """
    key = config.method + ("_logprob" if config.decide == "logprob" else "")
    if config.method == "cascade" and abs(config.llm_share - DEFAULT_LLM_SHARE) > 1e-9:
        key += f"_share{round(config.llm_share * 100)}"
    return key


def check_merge(existing: dict[str, Any] | None, config: GDOEvalConfig, *,
                replace: bool = False) -> None:
    """Raise `ConfigurationError` now if this run's result could not go into the file."""
    if existing is None:
        return
    run = {**identity(config), "method": method_key(config)}
    for key in IDENTITY:
        if existing.get(key) != run[key]:
            raise ConfigurationError(f"the result file holds {key}={existing.get(key)!r}, "
                                     f"this run {key}={run[key]!r}: use another --out")
    if method_key(config) in existing.get("metrics", {}) and not replace:
        raise ConfigurationError(f"the result file already holds method {method_key(config)!r}: "
                                 "use another --out, or --replace")


def merge_result(existing: dict[str, Any] | None, run: dict[str, Any], *,
                 replace: bool = False) -> dict[str, Any]:
    """The result file's content with this run's method added under `metrics`.

    Raises:
        ConfigurationError: the file holds another task, dataset or sample, or already
            this method (unless `replace`).
    """
    entry = {k: run[k] for k in ("model", "shots", "agents_version", "prompts")} | run["metrics"]
    if existing is None:
        return {**{k: run[k] for k in IDENTITY}, "metrics": {run["method"]: entry}}
    for key in IDENTITY:
        if existing.get(key) != run[key]:
            raise ConfigurationError(f"the result file holds {key}={existing.get(key)!r}, "
                                     f"this run {key}={run[key]!r}: use another --out")
    if run["method"] in existing["metrics"] and not replace:
        raise ConfigurationError(f"the result file already holds method {run['method']!r}: "
                                 "use another --out, or --replace")
    return {**existing, "metrics": {**existing["metrics"], run["method"]: entry}}


def markdown_table(results: Sequence[dict[str, Any]], names: Sequence[str] | None = None
                   ) -> str:
    """One Markdown row per (result file, method): dataset, sample, method, model, the
    score (F1 with precision and recall, or accuracy), the LLM's share of rows, calls and
    seconds per row; with `names`, each row first names its file. For the README, from
    the kept result files: `python -m aisle.evals.gdo_suite evals/results/gdo/v1/*.json`.

    Example:
        >>> r = {"task": "impute", "dataset": "buy", "limit": None, "metrics": {
        ...     "baseline": {"model": None, "accuracy": 0.77, "rows": 65, "llm_share": 0.0,
        ...                  "calls_per_row": 0.0, "seconds_per_row": 0.03}}}
        >>> print(markdown_table([r]).splitlines()[2])
        | impute | buy | full | baseline | - | acc 0.770 | 0% | 0.00 | 0.03 |
    """
    lines = ["| task | dataset | sample | method | model | score | LLM share | calls/row "
             "| s/row |", "|---|---|---|---|---|---|---|---|---|"]
    if names is not None:
        lines = ["| file " + lines[0], "|---" + lines[1]]
    for n, result in enumerate(results):
        first = "" if names is None else f"| `{names[n]}` "
        sample = "full" if result.get("limit") is None else f"{result['limit']} (seeded)"
        for method, m in result["metrics"].items():
            if "f1" in m:
                score = f"F1 {m['f1']:.3f} (P {m['precision']:.3f}, R {m['recall']:.3f})"
            else:
                score = f"acc {m['accuracy']:.3f}"
            lines.append(f"{first}| {result['task']} | {result['dataset']} | {sample} | {method} | "
                         f"{m.get('model') or '-'} | {score} | {m['llm_share']:.0%} | "
                         f"{m['calls_per_row']:.2f} | {m['seconds_per_row']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # the README's table: python -m aisle.evals.gdo_suite FILES...
    import json
    import sys

    paths = [Path(a) for a in sys.argv[1:]]
    print(markdown_table([json.loads(p.read_text()) for p in paths], [p.name for p in paths]))
