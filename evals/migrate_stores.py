"""One-off: move the answers stored before the shared eval runner into its layout, and
check that the reports rebuilt from them match the reports they produced.

Before the runner, each eval wrote `<out>.json/.md/.png` and `<out>.runs.sqlite` with a
run key built in the CLI. This script reads each old store, maps its key to the
runner's answer key (same model, modes, agents version; the prompts' new fingerprint,
since the templates now take the shop's domain as a variable and render byte-identical
prompts for the Games and OA-Mine domains, as `tests/unit/test_prompt_golden.py`
checks), copies the answers into `<root>/<suite>/answers.sqlite`, writes each run's
report into its run folder, and compares every number in the old report with the new
one. It never deletes the old files; the commit that ran it did.

    .venv/bin/python evals/migrate_stores.py --old evals/results --root evals/results \\
        --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aisle.evals.arag_suite import ARAGEvalConfig, ARAGSuite, Method
from aisle.evals.ensemble_suite import EnsembleEvalConfig, EnsembleSuite
from aisle.evals.llmrank import load_games
from aisle.evals.runner import EvalRunner, Suite
from aisle.graphs.arag import ARAGConfig


def _old_rows(path: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT method, user_id, run_key, value FROM results").fetchall()


def _numbers(value: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a report, by its path (timings and run metadata left out)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in {"run", "seconds", "latency_s", "mean_latency_s"}:
                continue
            yield from _numbers(v, f"{prefix}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{prefix}/{i}")
    elif isinstance(value, int | float):  # bool is an int
        yield prefix, float(value)


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Paths whose numbers differ, or that the new report lacks."""
    fresh = dict(_numbers(new))
    problems = []
    for path, number in _numbers(old):
        if path not in fresh:
            problems.append(f"{path}: missing")
        elif abs(fresh[path] - number) > 1e-9:
            problems.append(f"{path}: {number} -> {fresh[path]}")
    return problems


def _migrate(suite: Suite[Any], root: Path, rows: list[tuple[str, str, str, str]],
             old_report: Path) -> dict[str, Any]:
    runner = EvalRunner(suite, root)
    for method, case, _, value in rows:
        runner.store.put(method, case, runner.answer_key, json.loads(value))
    report = runner.report()
    runner.write(report)
    old = json.loads(old_report.read_text())
    if "oa_mine" in old:
        for row in old.get("crowd_truth", {}).values():  # timings are gone from reports
            for scores in row["methods"].values():
                scores.pop("seconds", None)
    problems = compare({k: v for k, v in old.items() if k != "run"}, report)
    return {"old": str(old_report), "new": str(runner.paths.folder), "rows": len(rows),
            "numbers_compared": sum(1 for _ in _numbers(old)), "differences": problems}


def _arag_config(data: Path, key: dict[str, Any], n_users: int,
                 methods: tuple[Method, ...]) -> ARAGEvalConfig:
    version = int(key["agents"])
    # Before agents v4 the ranker saw the candidates in the given (shuffled) order; the
    # key had no ranker_order then.
    order = key.get("ranker_order", "given" if version < 4 else "nli")
    return ARAGEvalConfig(
        data=data, retriever=key["retriever"], n_users=n_users, methods=methods,
        model=key["model"], agents_version=version,
        arag=ARAGConfig(nli_mode=key["nli_mode"], ranker_order=order,
                        max_history=key["max_history"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="folder of old *.runs.sqlite")
    parser.add_argument("--root", type=Path, required=True, help="the new results root")
    parser.add_argument("--data", type=Path, required=True, help="the shared data root")
    args = parser.parse_args()
    games = load_games(args.data / "llmrank-games")
    results = []
    for store in sorted(args.old.rglob("*.runs.sqlite")):
        rows = _old_rows(store)
        report = store.with_name(store.name.removesuffix(".runs.sqlite") + ".json")
        keys = {r[2] for r in rows}
        if len(keys) != 1:
            raise SystemExit(f"{store}: {len(keys)} run keys; expected one")
        key = json.loads(keys.pop())
        if store.name.startswith("ensemble"):
            old = json.loads(report.read_text())["run"]
            suite: Suite[Any] = EnsembleSuite(EnsembleEvalConfig(
                data=args.data, labelers=tuple(old["labelers"]), n_offers=old["offers"],
                seed=old["seed"]))
        else:
            old = json.loads(report.read_text())["run"]
            methods = tuple(Method(m) for m in old["methods"])
            config = _arag_config(args.data / "llmrank-games", key, old["users_asked"], methods)
            suite = ARAGSuite(config, games)
        results.append(_migrate(suite, args.root, rows, report))
        print(json.dumps(results[-1]), flush=True)
    bad = [r for r in results if r["differences"]]
    print(f"{len(results)} stores migrated; {len(bad)} with differing numbers", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
