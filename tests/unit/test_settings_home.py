"""One home for aisle's state, resolved the same way from the Makefile or by hand:
AISLE_HOME if set, else `<checkout>/.aisle` in a source checkout, else the user cache;
`aisle info` shows which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aisle import settings as settings_module
from aisle.cli import app
from aisle.settings import Settings, get_settings, source_checkout

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def unset_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """AISLE_HOME unset and the user cache under `tmp_path`; returns that cache root."""
    monkeypatch.delenv("AISLE_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    get_settings.cache_clear()
    return tmp_path / "xdg"


def _pyproject(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0"\n')
    return root


def test_aisle_home_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AISLE_HOME", str(tmp_path / "h"))
    s = Settings()
    assert s.home == tmp_path / "h"
    assert s.home_source == "AISLE_HOME"


def test_this_checkout_uses_its_own_dot_aisle(unset_home: Path) -> None:
    # The tests run from a source checkout (an editable install): the Makefile's
    # AISLE_HOME ?= $(CURDIR)/.aisle and a plain `aisle` call agree.
    assert source_checkout() == REPO
    s = Settings()
    assert s.home == REPO / ".aisle"
    assert s.home_source == "source checkout"


def test_empty_aisle_home_counts_as_unset(unset_home: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_HOME", "")
    assert Settings().home == REPO / ".aisle"


def test_an_installed_package_uses_the_user_cache(unset_home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "source_checkout", lambda: None)
    s = Settings()
    assert s.home == unset_home / "aisle"
    assert s.home_source == "user cache"


def test_user_cache_without_xdg(unset_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "source_checkout", lambda: None)
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert Settings().home == Path.home() / ".cache" / "aisle"


@pytest.mark.parametrize(("pyproject", "is_checkout"), [
    ("aisle", True),
    ("other-project", False),
    (None, False),  # a wheel in site-packages: no pyproject.toml beside the package
    ("broken", False),
])
def test_source_checkout_needs_a_pyproject_naming_aisle(
        tmp_path: Path, pyproject: str | None, is_checkout: bool) -> None:
    root = tmp_path / "root"
    root.mkdir()
    if pyproject == "broken":
        (root / "pyproject.toml").write_text("[project\nname = ")
    elif pyproject is not None:
        _pyproject(root, pyproject)
    assert source_checkout(root / "aisle") == (root if is_checkout else None)


def test_info_shows_the_home_and_where_it_came_from(unset_home: Path) -> None:
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["home"] == {"path": str(REPO / ".aisle"),
                                                 "source": "source checkout"}
    table = runner.invoke(app, ["info"], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert f"home: {REPO / '.aisle'} (default for a source checkout" in table.stdout


def test_info_shows_aisle_home_as_the_source(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("AISLE_HOME", str(tmp_path / "h"))
    get_settings.cache_clear()
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["home"] == {"path": str(tmp_path / "h"),
                                                 "source": "AISLE_HOME"}
