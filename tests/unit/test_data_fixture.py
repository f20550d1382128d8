"""The shared-data lookup in conftest: AISLE_DATA overrides the default root, and absent
data skips a test, or fails it under AISLE_REQUIRE_DATA=1 (what `make test` sets)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def test_aisle_data_overrides_the_root(shared_data_dir: Callable[..., Path],
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "llmrank-games").mkdir()
    monkeypatch.setenv("AISLE_DATA", str(tmp_path))
    monkeypatch.setenv("AISLE_REQUIRE_DATA", "1")
    assert shared_data_dir() == tmp_path
    assert shared_data_dir("llmrank-games") == tmp_path / "llmrank-games"


@pytest.mark.parametrize(("require", "outcome"), [
    (None, pytest.skip.Exception),
    ("0", pytest.skip.Exception),
    ("1", pytest.fail.Exception),
])
def test_missing_data_skips_unless_required(
        shared_data_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        require: str | None, outcome: type[BaseException]) -> None:
    missing = tmp_path / "nonexistent"
    monkeypatch.setenv("AISLE_DATA", str(missing))
    if require is None:
        monkeypatch.delenv("AISLE_REQUIRE_DATA", raising=False)
    else:
        monkeypatch.setenv("AISLE_REQUIRE_DATA", require)
    with pytest.raises(outcome, match="set AISLE_DATA=") as info:
        shared_data_dir("crowd-truth")
    assert f"shared data not found at {missing / 'crowd-truth'}:" in str(info.value)
    # An existing root with a missing sub-folder is treated the same way.
    missing.mkdir()
    with pytest.raises(outcome, match="set AISLE_DATA="):
        shared_data_dir("crowd-truth")


@pytest.mark.parametrize("unset", ["delete", "empty"])
def test_default_root_is_next_to_the_repo(shared_data_dir: Callable[..., Path],
                                          monkeypatch: pytest.MonkeyPatch,
                                          request: pytest.FixtureRequest, unset: str) -> None:
    if unset == "delete":
        monkeypatch.delenv("AISLE_DATA", raising=False)
    else:
        monkeypatch.setenv("AISLE_DATA", "")
    monkeypatch.setenv("AISLE_REQUIRE_DATA", "1")
    expected = request.config.rootpath.resolve().parent / "shared" / "data" / "no-such-dataset"
    with pytest.raises(pytest.fail.Exception,
                       match=r"put the datasets at \.\./shared/data") as info:
        shared_data_dir("no-such-dataset")
    assert f"shared data not found at {expected}:" in str(info.value)
