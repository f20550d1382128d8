"""The root folders install under the `aisle` namespace, from an editable install and
from a built wheel, and nothing installs a bare `agents`/`tools`/`evals` module."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAPPED = {"agents": "aisle.agents", "graphs": "aisle.graphs", "prompts": "aisle.prompts",
          "tools": "aisle.tools", "evals": "aisle.evals"}
PROBE = """
import importlib, importlib.util, json, sys
mods = {m: importlib.import_module(m).__file__ for m in sys.argv[1:]}
bare = [b for b in ("agents", "graphs", "prompts", "tools", "evals")
        if importlib.util.find_spec(b) is not None]
from aisle.prompts import render
prompt = render("chat/system.j2", json_schema=True)
print(json.dumps({"files": mods, "bare": bare, "prompt": prompt}))
"""


def _probe(env: dict[str, str], cwd: Path) -> dict[str, object]:
    import json

    out = subprocess.run(
        [sys.executable, "-c", PROBE, "aisle", *MAPPED.values(), "aisle.llm", "aisle.cli"],
        capture_output=True, text=True, env=env, cwd=cwd, check=True,
    )
    return dict(json.loads(out.stdout))


def _source_packages() -> set[str]:
    """Every package folder in the source tree, by its `aisle.*` name."""
    found = set()
    for root, name in [("aisle", "aisle"), *MAPPED.items()]:
        for init in (REPO / root).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / root)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    return found


def test_editable_install_maps_root_folders(tmp_path: Path) -> None:
    result = _probe(dict(os.environ), cwd=tmp_path)
    files = result["files"]
    assert isinstance(files, dict)
    for folder, module in MAPPED.items():
        assert Path(files[module]).parent == REPO / folder
    assert result["bare"] == []
    assert "JSON object" in str(result["prompt"])


@pytest.mark.slow
def test_wheel_contains_every_package_and_prompt_and_imports(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
         str(REPO)], check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("aisle-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"aisle"}
    packages = {str(Path(n).parent).replace("/", ".") for n in names if n.endswith("__init__.py")}
    assert packages == _source_packages(), "a package folder is missing from pyproject's list"
    prompts = {p.relative_to(REPO).as_posix() for p in (REPO / "prompts").rglob("*.j2")}
    assert {"aisle/" + p for p in prompts} <= set(names)

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--target", str(target), str(wheel)], check=True, capture_output=True)
    # The wheel's copy must win over the editable install: put it first on the path.
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONNOUSERSITE": "1"}
    result = _probe(env, cwd=tmp_path)
    files = result["files"]
    assert isinstance(files, dict)
    for module in ["aisle", *MAPPED.values()]:
        assert Path(files[module]).is_relative_to(target), module
    assert result["bare"] == []
