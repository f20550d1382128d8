"""Rebuild one version of the README's GRACE table (between the grace-table-VERSION
markers) from the kept rec reports in evals/results/rec/: for Beauty and Sports, the
published rows (TIGER, and SASRec as the TIGER paper reports it), the project's SASRec,
and every GRACE run of that version's model size (the default, dense attention, no
attribute tokens), each with its 95% intervals and its training budget (epochs, best
epoch, seconds) on the machine it ran on.

Versions: v1 is the first CPU size (hidden 64, feed-forward 256, SASRec's); v2 the CPU
size tuned on Beauty's validation split (hidden 128, feed-forward 512, the `GRACEConfig`
default since).

Usage: .venv/bin/python scripts/grace_readme_table.py --version v1|v2 [--print]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _readme import replace_block

from aisle.tools.recommenders.config import GRACEConfig

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "evals" / "results" / "rec"
METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
DATASETS = ("beauty", "sports")
HARDWARE = "2-core CPU"  # every rec report here ran on the session machine (no GPU lent)
CPU = GRACEConfig()  # the CPU budget's defaults: a run that differs is labelled
SIZE = ("hidden", "inner", "layers", "heads")
VERSIONS = {"v1": {"hidden": 64, "inner": 256, "layers": 2, "heads": 2},
            "v2": {"hidden": 128, "inner": 512, "layers": 2, "heads": 2}}


def _reports(dataset: str) -> list[tuple[str, dict]]:
    out = []
    for path in sorted(RESULTS.glob(f"{dataset}-full-*/report.json")):
        out.append((path.parent.name, json.loads(path.read_text())))
    return out


def _variant(config: dict) -> str:
    parts = []
    if config["attention"] != "jsa":
        parts.append(f"{config['attention']} attention")
    if config["attribute_tokens"] == 0:
        parts.append("no attribute tokens")
    elif config["attribute_tokens"] != CPU.attribute_tokens:
        n = config["attribute_tokens"]
        parts.append(("JSA, " if config["attention"] == "jsa" else "")
                     + f"{n} attribute token{'s' if n > 1 else ''}")
    name = "GRACE-style" + (f" ({', '.join(parts)})" if parts else " (JSA, attribute tokens)")
    if config["max_minutes"] is None:
        name += " [gpu budget]"
    if config["patience"] >= config["max_epochs"]:  # an equal-epoch run: no early stop
        name += f" [{config['max_epochs']} epochs, no early stop]"
    elif config["patience"] != CPU.patience:  # the first runs, before patience became 5
        name += f" [patience {config['patience']}]"
    return name


def _cell(metrics: dict, key: str) -> str:
    value = f"{metrics[key]:.4f}"
    ci = metrics.get("ci95", {}).get(key)
    return f"{value} ({ci[0]:.4f}-{ci[1]:.4f})" if ci else value


def _budget(training: dict) -> str:
    stop = ("time budget" if training["stopped_by_time"] else
            "early stop" if training["stopped_early"] else "max epochs")
    return (f"{training['epochs']} epochs (best {training['best_epoch']}, {stop}), "
            f"{training['seconds'] / 60:.1f} min")


def rows(dataset: str, version: str) -> list[str]:
    lines = []
    reports = _reports(dataset)
    if not reports:
        return lines
    published = reports[0][1]["published"]
    for name in ("TIGER", "SASRec (TIGER paper)"):
        if name in published:
            p = published[name]
            lines.append(f"| {dataset} | {name} (published) | "
                         + " | ".join(f"{p[k]:.4f}" for k in METRICS) + " | paper | |")
    ordered = []
    for run_id, report in reports:
        for model, metrics in report["metrics"].items():
            if model == "sasrec":
                ordered.append((0, "SASRec (aisle)", metrics, report, model, run_id))
            elif model == "grace":
                cfg = report["run"]["config"]["configs"]["grace"]
                if {k: cfg[k] for k in SIZE} != VERSIONS[version]:
                    continue
                rank = (1 + (cfg["attention"] != "jsa") + 2 * (cfg["attribute_tokens"] == 0)
                        + 2.5 * (cfg["attribute_tokens"] not in (0, CPU.attribute_tokens))
                        + 4 * (cfg["patience"] != CPU.patience))
                ordered.append((rank, _variant(cfg), metrics, report, model, run_id))
    for _, name, metrics, report, model, run_id in sorted(ordered, key=lambda r: r[0]):
        lines.append(f"| {dataset} | {name} | "
                     + " | ".join(_cell(metrics, k) for k in METRICS)
                     + f" | {_budget(report['training'][model])}, {HARDWARE} | `{run_id}` |")
    return lines


def table(version: str) -> str:
    head = ("| dataset | model | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | training | report |\n"
            "|---|---|---|---|---|---|---|---|\n")
    return head + "\n".join(line for ds in DATASETS for line in rows(ds, version)) + "\n"


def main() -> None:
    args = sys.argv[1:]
    if "--version" not in args or args[args.index("--version") + 1:][:1] == [] or \
            args[args.index("--version") + 1] not in VERSIONS:
        sys.exit(f"usage: grace_readme_table.py --version {'|'.join(VERSIONS)} [--print]")
    version = args[args.index("--version") + 1]
    text = table(version)
    if "--print" in args:
        print(text, end="")
        return
    replace_block(f"grace-table-{version}",
                  f".venv/bin/python scripts/grace_readme_table.py --version {version}", text)


if __name__ == "__main__":
    main()
