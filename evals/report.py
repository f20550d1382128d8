"""Markdown and PNG reports for eval results (the JSON is the source of truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aisle.errors import MissingDependencyError

__all__ = ["ensemble_markdown", "pyplot", "ranking_chart", "ranking_markdown"]

SHOWN = ("ndcg@1", "ndcg@5", "ndcg@10", "ndcg@20", "hit@1", "hit@5", "hit@10")


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only, no display).

    Raises:
        MissingDependencyError: matplotlib is not installed (the `eval` extra).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise MissingDependencyError("matplotlib", "eval charts",
                                     install="pip install 'aisle[eval]'") from e
    return plt


def ranking_markdown(result: dict[str, Any], title: str) -> str:
    """Metrics (with 95% intervals), validity and usage as Markdown tables."""
    lines = [f"# {title}", ""]
    meta = result.get("run", {})
    if meta:
        lines += [f"- {k}: `{v}`" for k, v in meta.items()] + [""]
    lines += ["## Metrics (mean, 95% bootstrap interval over users)", "",
              "| method | users | " + " | ".join(SHOWN) + " |",
              "|---|---|" + "---|" * len(SHOWN)]
    for method, m in result["metrics"].items():
        cells = [f"{m[k]:.4f} [{m['ci95'][k][0]:.3f}, {m['ci95'][k][1]:.3f}]" for k in SHOWN]
        lines.append(f"| {method} | {m['n_users']} | " + " | ".join(cells) + " |")
    if result.get("validity"):
        keys = sorted({k for v in result["validity"].values() for k in v})
        lines += ["", "## Ranker validity (counts over users)", "",
                  "| method | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for method, v in result["validity"].items():
            lines.append(f"| {method} | " + " | ".join(str(v.get(k, "")) for k in keys) + " |")
    if result.get("diagnostics"):
        keys = sorted({k for v in result["diagnostics"].values() for k in v})
        lines += ["", "## Diagnostics (how the ranker used its input; NLI score spread; "
                  "time per user)", "",
                  "| method | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for method, v in result["diagnostics"].items():
            cells = [_cell(v.get(k, "")) for k in keys]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if result.get("usage"):
        lines += ["", "## Model usage", "",
                  "| method | agent | calls | cache hits | prompt tok | completion tok | "
                  "mean latency s |", "|---|---|---|---|---|---|---|"]
        for method, agents in result["usage"].items():
            for agent, u in agents.items():
                lines.append(f"| {method} | {agent} | {u['calls']} | {u['cache_hits']} | "
                             f"{u['prompt_tokens']} | {u['completion_tokens']} | "
                             f"{u['mean_latency_s']:.3f} |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def ranking_chart(result: dict[str, Any], path: Path, title: str) -> None:
    """A bar chart of NDCG@5 and Hit@5 per method with 95% intervals."""
    plt = pyplot()
    methods = list(result["metrics"])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(methods) + 2), 4))
    width = 0.38
    for j, key in enumerate(("ndcg@5", "hit@5")):
        means = [result["metrics"][m][key] for m in methods]
        lows = [means[i] - result["metrics"][m]["ci95"][key][0] for i, m in enumerate(methods)]
        highs = [result["metrics"][m]["ci95"][key][1] - means[i] for i, m in enumerate(methods)]
        xs = [i + (j - 0.5) * width for i in range(len(methods))]
        ax.bar(xs, means, width, yerr=[lows, highs], capsize=3, label=key)
    ax.set_xticks(range(len(methods)), methods, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def ensemble_markdown(result: dict[str, Any]) -> str:
    """Crowd-truth accuracy beside the published figures, and OA-Mine micro P/R/F1 per
    labeler, majority vote and learned ensemble, per labeler group."""
    lines = ["# LLM-ensemble: label aggregation on real crowd and LLM labels", ""]
    lines += [f"- {k}: `{v}`" for k, v in result.get("run", {}).items()] + [""]
    lines += ["## Crowd-truth: accuracy % (fitted without the truth)", "",
              "| dataset | tasks | labelers | answers | classes | mv | iwmv | ds | "
              "published (Zheng et al. 2017; MV from the files) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, row in result["crowd_truth"].items():
        m = row["methods"]
        published = ", ".join(f"{k} {v}" for k, v in row["published_accuracy"].items())
        lines.append(f"| {name} | {row['tasks']} | {row['labelers']} | {row['answers']} | "
                     f"{row['classes']} | {m['mv']['accuracy']:.2f} | "
                     f"{m['iwmv']['accuracy']:.2f} | {m['ds']['accuracy']:.2f} | {published} |")
        if "f1" in m["mv"]:
            f1_published = ", ".join(f"{k} {v}" for k, v in row["published_f1"].items())
            lines.append(f"| {name} (F1 of class 1) | | | | | {m['mv']['f1']:.2f} | "
                         f"{m['iwmv']['f1']:.2f} | {m['ds']['f1']:.2f} | {f1_published} |")
    oa = result["oa_mine"]
    lines += ["", f"## OA-Mine test: micro P / R / F1 % (the authors' scorer; "
              f"{oa['offers']} offers, local labelers on {oa['subset']})", ""]
    for group, g in oa["groups"].items():
        lines += [f"### {group} ({g['n_offers']} offers)", "",
                  "| labeler | P | R | F1 | iwmv weight |", "|---|---|---|---|---|"]
        weights = g["iwmv"].get("weights", {})
        for name, s in g["labelers"].items():
            lines.append(f"| {name} | {s['precision']:.2f} | {s['recall']:.2f} | "
                         f"{s['f1']:.2f} | {weights.get(name, 0):.3f} |")
        for method, label in (("mv", "majority vote"), ("iwmv", "learned ensemble (iwmv)")):
            s = g[method]
            lines.append(f"| **{label}** | {s['precision']:.2f} | {s['recall']:.2f} | "
                         f"**{s['f1']:.2f}** | |")
        best = g["best_single"]
        lines += ["", f"Best single labeler: {best['labeler']} ({best['f1']:.2f}). "
                  f"Ensemble minus best: majority vote {g['mv_minus_best']:+.2f}, "
                  f"learned {g['iwmv_minus_best']:+.2f} F1 points.", ""]
    failures = oa.get("local_failures", {})
    if failures:
        lines += ["Local labeler answers that failed validation (counted as no answer): " +
                  ", ".join(f"{k} {v}" for k, v in failures.items()), ""]
    return "\n".join(lines) + "\n"
