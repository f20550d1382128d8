"""The graph registry is the one list of graphs: `langgraph.json` and the package list
in `pyproject.toml` follow it, every registered graph's wiring is snapshotted, and
every context is plain JSON."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
import typing_extensions

from aisle.errors import ConfigurationError
from aisle.graphs import GraphSpec, get_graph_spec, graph_specs, register_graph

REPO = Path(__file__).resolve().parents[3]
SNAPSHOTS = Path(__file__).parent / "snapshots"
NAMES = [spec.name for spec in graph_specs()]


def test_builtin_graphs_are_registered() -> None:
    assert NAMES[:2] == ["arag", "ensemble"]


def test_langgraph_json_lists_exactly_the_registered_graphs() -> None:
    listed = json.loads((REPO / "langgraph.json").read_text())["graphs"]
    assert listed == {spec.name: spec.langgraph_path for spec in graph_specs()}


def test_pyproject_packages_cover_every_package_folder() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {v: k for k, v in config["package-dir"].items()}
    expected = set()
    for folder, package in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            expected.add(".".join([package, *rel.parts]))
    assert set(config["packages"]) == expected


@pytest.mark.parametrize("name", NAMES)
def test_topology_snapshot(name: str) -> None:
    mermaid = get_graph_spec(name).build().get_graph().draw_mermaid()
    path = SNAPSHOTS / f"{name}.mmd"
    if os.environ.get("AISLE_UPDATE_SNAPSHOTS") == "1":
        path.write_text(mermaid)
    assert path.is_file(), f"no snapshot {path}; run with AISLE_UPDATE_SNAPSHOTS=1 and review"
    assert mermaid == path.read_text(), "graph wiring changed: review, then update snapshots"


@pytest.mark.parametrize("name", NAMES)
def test_context_and_input_schemas_are_json(name: str) -> None:
    spec = get_graph_spec(name)
    schema = spec.context_schema.model_json_schema()
    json.dumps(schema)  # no live objects in the published schema
    assert schema.get("additionalProperties") is False  # a typo is an error
    assert typing_extensions.is_typeddict(spec.input_schema)
    assert spec.agent_names
    assert spec.description
    assert "\n" not in spec.description


def test_unknown_graph_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigurationError, match="registered: arag, ensemble, carts"):
        get_graph_spec("cart")


def test_a_name_cannot_be_taken_twice() -> None:
    arag = get_graph_spec("arag")
    other = GraphSpec(**{**arag.__dict__, "description": "another"})
    with pytest.raises(ConfigurationError, match="already registered"):
        register_graph(other)
    assert register_graph(arag) is arag  # the same spec again is a no-op
