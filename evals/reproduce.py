"""Rebuild kept eval reports from their stored answers and check they are unchanged.

Every run folder under `<root>/<suite>/` holds a `report.json` whose `run.config` (with
the data root) rebuilds the suite; the rebuilt report, computed from the suite's
`answers.sqlite` with no model calls, must equal the kept one. The README's tables
are quoted from these reports, so this is what keeps them honest after a refactor.

    .venv/bin/python evals/reproduce.py --root evals/results --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aisle.evals.arag_suite import ARAGEvalConfig, ARAGSuite
from aisle.evals.ensemble_suite import EnsembleEvalConfig, EnsembleSuite
from aisle.evals.llmrank import load_games
from aisle.evals.rec_suite import rebuild_rec_suite
from aisle.evals.runner import EvalRunner, Suite

__all__ = ["Reproduction", "rebuild_suite", "reproduce", "reproduce_all"]


@dataclass(frozen=True)
class Reproduction:
    """One kept report against its rebuild."""

    folder: Path
    same: bool
    rebuilt_in: Path
    differences: list[str]
    runner: EvalRunner[Any]
    rebuilt: dict[str, Any]

    @property
    def only_additions(self) -> bool:
        """Every difference is a field the kept report lacks (a report grew a field)."""
        return all(d.endswith(": added") for d in self.differences)


def rebuild_suite(kept: dict[str, Any], data: Path) -> Suite[Any]:
    """The suite a kept report came from, from its `run.config` and the data root."""
    run = kept["run"]
    if run["suite"] == "rec":
        # Stored ranks (and the training records) rebuild a rec report: no retraining.
        return rebuild_rec_suite(run["config"], data)
    # Runs from before deterministic decoding existed batched their requests; their
    # configs have no `deterministic` field.
    config = {"deterministic": False, **run["config"]}
    if run["suite"] == "arag":
        arag = ARAGEvalConfig.model_validate({**config, "data": data / "llmrank-games"})
        return ARAGSuite(arag, load_games(arag.data))
    if run["suite"] == "carts":
        from aisle.evals.carts_suite import CartsEvalConfig, CartsSuite

        return CartsSuite(CartsEvalConfig.model_validate({**run["config"], "data": data}))
    if run["suite"] == "ensemble":
        # Ensemble runs of agents v1 were kept before the config named the version.
        config = {"agents_version": 1, **config}
        return EnsembleSuite(EnsembleEvalConfig.model_validate({**config, "data": data}))
    if run["suite"] == "outfits":
        from aisle.evals.outfits_suite import OutfitsEvalConfig, OutfitsSuite

        return OutfitsSuite(OutfitsEvalConfig.model_validate({**config, "data": data}))
    raise ValueError(f"unknown suite {run['suite']!r}")


def _diff(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = [f"{path}/{k}: missing" for k in old if k not in new]
        out += [f"{path}/{k}: added" for k in new if k not in old]
        for k in old.keys() & new.keys():
            out += _diff(old[k], new[k], f"{path}/{k}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in _diff(a, b, f"{path}/{i}")]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def reproduce(folder: Path, root: Path, data: Path) -> Reproduction:
    """Rebuild one run folder's report; compare it with the kept `report.json`."""
    kept = json.loads((folder / "report.json").read_text())
    runner = EvalRunner(rebuild_suite(kept, data), root)
    rebuilt = json.loads(json.dumps(runner.report()))  # as it would be written
    differences = _diff(kept, rebuilt)
    return Reproduction(folder, not differences, runner.paths.folder, differences, runner,
                        rebuilt)


def reproduce_all(root: Path, data: Path) -> list[Reproduction]:
    """Every kept run folder under `root`."""
    return [reproduce(report.parent, root, data)
            for report in sorted(root.glob("*/*/report.json"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("evals/results"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--add-fields", action="store_true",
                        help="Rewrite kept reports (and their Markdown and charts) whose "
                             "rebuild only ADDS fields (a report that grew a diagnostic); "
                             "never one where a value changed.")
    args = parser.parse_args()
    results = reproduce_all(args.root, args.data)
    for r in results:
        if args.add_fields and r.only_additions and r.rebuilt_in == r.folder:
            r.runner.write(r.rebuilt)  # also refreshes the Markdown and charts
            print(f"fields added  {r.folder}: " + ", ".join(r.differences))
            continue
        status = "same" if r.same and r.rebuilt_in == r.folder else "DIFFERENT"
        print(f"{status}  {r.folder}" + "".join(f"\n    {d}" for d in r.differences[:10]))
    bad = [r for r in results if not (r.same or (args.add_fields and r.only_additions))
           or r.rebuilt_in != r.folder]
    print(f"{len(results)} reports rebuilt from stored answers; {len(bad)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
