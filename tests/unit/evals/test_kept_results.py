"""Every kept eval report (the README quotes them) comes out the same when rebuilt from
its stored answers, with no model calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisle.evals.reproduce import reproduce

RESULTS = Path(__file__).resolve().parents[3] / "evals" / "results"
FOLDERS = sorted(p.parent for p in RESULTS.glob("*/*/report.json"))


def test_there_are_kept_reports() -> None:
    assert len(FOLDERS) >= 14
    assert {f.parent.name for f in FOLDERS} == {"arag", "carts", "ensemble", "outfits", "rec"}
    # The recommender runs: Beauty and LLMRank Games with all three models, Sports with
    # item-kNN and popularity (README, "Recommenders").
    assert {f.name.split("-full-")[0].split("-candidates-")[0]
            for f in FOLDERS if f.parent.name == "rec"} >= {"beauty", "llmrank-games", "sports"}


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_kept_report_is_rebuilt_unchanged(folder: Path, shared_data: Path) -> None:
    result = reproduce(folder, RESULTS, shared_data)
    assert result.rebuilt_in == folder, "the run key no longer names this folder"
    assert result.same, result.differences[:10]
