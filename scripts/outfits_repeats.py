"""How much the outfits of a kept outfits eval repeat across characters: per variant, the
outfits in the gallery, how many are distinct (as sets of item ids), the distinct items,
and the item that recurs most with the share of outfits holding it.

Usage: .venv/bin/python scripts/outfits_repeats.py evals/results/outfits/<run id>
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def main() -> None:
    report = json.loads((Path(sys.argv[1]) / "report.json").read_text())
    for variant in ("baseline", "graph", "diverse"):
        outfits = [c["variants"][variant] for c in report["gallery"]
                   if c["variants"].get(variant)]
        if not outfits:
            continue
        sets = {frozenset(i["item_id"] for i in o) for o in outfits}
        items = Counter(item for o in outfits for item in {i["item_id"] for i in o})
        titles = {i["item_id"]: i["title"] for o in outfits for i in o}
        top, n = items.most_common(1)[0]
        print(f"{variant}: {len(outfits)} outfits, {len(sets)} distinct, {len(items)} distinct "
              f"items; most recurring: {titles[top]!r} in {n} ({n / len(outfits):.1%})")


if __name__ == "__main__":
    main()
