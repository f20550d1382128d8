"""Where the CARTS loop loses titles: what the refiner did to each over-limit candidate,
read from the blackboards a kept CARTS eval stored.

For every stored `carts` answer of a report folder, each refinement of a candidate
whose previous version broke the length limit is counted as shorter, longer, the same
length, or unchanged (the same title), and whether it reached the limit. The first
versions (the generator's) are counted apart. Writes `refiner_stats.json` beside the
report (a new file; the report itself is not touched) and prints it.

Usage:
    .venv/bin/python scripts/carts_refiner_stats.py evals/results/carts/<run id>
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from aisle.evals.runner import canonical
from aisle.evals.store import ResultStore


def refiner_stats(answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Counts over the stored blackboards (one per bundle)."""
    c: Counter[str] = Counter()
    for value in answers.values():
        board = value["carts"]
        c["bundles"] += 1
        c["bundles_with_a_title" if board["result"]["satisfied"] else "bundles_without"] += 1
        for cand in board["candidates"]:
            versions = cand["versions"]
            c["candidates"] += 1
            c["first_versions_within_limit"] += bool(versions[0]["within_limit"])
            for before, after in pairwise(versions):
                if before["within_limit"]:
                    continue
                c["refinements_of_over_limit"] += 1
                if after["title"] == before["title"]:
                    c["unchanged"] += 1
                elif (after["words"] or 0) < (before["words"] or 0):
                    c["shorter"] += 1
                elif (after["words"] or 0) > (before["words"] or 0):
                    c["longer"] += 1
                else:
                    c["same_length_new_words"] += 1
                c["reached_the_limit"] += bool(after["within_limit"])
    return dict(c)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="A CARTS report folder.")
    args = parser.parse_args(argv)
    report = json.loads((args.run_dir / "report.json").read_text())
    key = canonical(report["run"]["run_key"]["answers"])
    store = ResultStore(args.run_dir.parent / "answers.sqlite")
    try:
        answers = store.done("carts", key)
    finally:
        store.close()
    expected = report["bundles"]
    if len(answers) != expected:
        print(f"error: {len(answers)} stored carts answers for this run's key, the report "
              f"has {expected} bundles", file=sys.stderr)
        return 1
    stats = {"run_id": report["run"]["run_id"], **refiner_stats(answers)}
    out = args.run_dir / "refiner_stats.json"
    out.write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
