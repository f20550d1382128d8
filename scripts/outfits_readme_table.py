"""Rebuild the README's outfits eval tables (between the outfits-table markers) from a
kept report: everything `aisle outfits eval` writes to report.md before its gallery
(variants x metrics, the pairwise judge, the critic, diversity, the bias audit), with
its headings turned into bold lines.

Usage: .venv/bin/python scripts/outfits_readme_table.py evals/results/outfits/<run id>
"""

from __future__ import annotations

import sys
from pathlib import Path

from _readme import replace_block

ROOT = Path(__file__).resolve().parent.parent


def tables(folder: Path) -> str:
    text = (folder / "report.md").read_text()
    body = text.split("\n## Gallery", 1)[0].split("\n", 1)[1]  # drop the title line
    lines = [f"**{line[3:]}**" if line.startswith("## ") else line
             for line in body.strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def main() -> None:
    folder = Path(sys.argv[1])
    rel = folder.resolve().relative_to(ROOT)
    replace_block("outfits-table", f".venv/bin/python scripts/outfits_readme_table.py {rel}",
                  tables(folder))


if __name__ == "__main__":
    main()
