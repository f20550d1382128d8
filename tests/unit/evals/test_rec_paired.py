"""`evals/rec_paired.py`: paired differences between two kept rec runs, from their stored
ranks (no model calls)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aisle.evals.rec_paired import compare, relative

RUNS = Path(__file__).resolve().parents[3] / "evals" / "results" / "rec"
JSA = RUNS / "beauty-full-22363u-grace-5b63a637a5"
DENSE = RUNS / "beauty-full-22363u-grace-448d2b39d5"


def test_relative_change_and_its_interval() -> None:
    a = np.array([1.0, 0.0, 1.0, 1.0] * 10)
    b = np.array([1.0, 1.0, 0.0, 0.0] * 10)
    r = relative(a, b)
    assert r["mean"] == pytest.approx(0.5)  # 0.75 / 0.5 - 1
    assert r["ci_low"] < r["mean"] < r["ci_high"]
    same = relative(a, a)
    assert same["mean"] == same["ci_low"] == same["ci_high"] == 0.0
    with pytest.raises(ValueError, match="not defined"):
        relative(a, np.zeros(40))


def test_a_run_against_itself_differs_by_nothing(shared_data: Path) -> None:
    result = compare(DENSE, DENSE, "grace", "grace", shared_data)
    ndcg = result["metrics"]["ndcg@10"]
    assert result["users"] == 22363
    assert ndcg["difference"] == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert ndcg["users_equal"] == 22363


def test_two_runs_differ_by_their_reports_metrics(shared_data: Path) -> None:
    result = compare(JSA, DENSE, "grace", "grace", shared_data)
    kept_a = json.loads((JSA / "report.json").read_text())["metrics"]["grace"]
    kept_b = json.loads((DENSE / "report.json").read_text())["metrics"]["grace"]
    for metric in ("recall@10", "ndcg@10"):
        m = result["metrics"][metric]
        assert m["a"] == pytest.approx(kept_a[metric])
        assert m["b"] == pytest.approx(kept_b[metric])
        assert m["difference"]["mean"] == pytest.approx(kept_a[metric] - kept_b[metric])
        assert m["difference"]["ci_low"] < m["difference"]["mean"] < m["difference"]["ci_high"]
    with pytest.raises(SystemExit, match="no stored answers of 'sasrec'"):
        compare(JSA, DENSE, "sasrec", "grace", shared_data)
