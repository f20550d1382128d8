"""GDO pipelines as graphs: YAML round-trip, the compiled topology, the budget stop,
the registered loop graph, and a pipeline file's relative paths."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from aisle.agents.gdo import Pipeline, read_table, write_table
from aisle.errors import ConfigurationError
from aisle.graphs.gdo import GDOContext, build_gdo_graph, compile_pipeline, run_pipeline
from aisle.testing.embeddings import trigram_embed

SNAPSHOT = Path(__file__).parent / "snapshots" / "gdo-pipeline.mmd"

EVERY_OPERATOR = """
name: every-operator
model: fake:hash
concurrency: 2
budget: {calls: 500, tokens: 100000}
steps:
  - op: map
    name: brand
    udp: {prompt: "Brand of <t>{{ title }}</t>?", output: {brand: string}}
  - op: extract
    name: specs
    attributes: {megapixels: integer, colour: string}
    udp: {prompt: "<t>{{ title }}</t>", max_tokens: 64}
  - op: classify
    name: kind
    labels: [camera, toy]
    column: category
    udp: {prompt: "<t>{{ title }}</t>"}
  - op: impute
    column: price
    type: number
    udp:
      prompt: "Price of <t>{{ title }}</t>?"
      examples: [{input: {title: Apple iPad}, output: {value: 499}}]
  - op: detect_errors
    columns: [title]
    cascade: {score: frequency, low: 0.1, high: 0.95}
    udp: {prompt: "{{ column }} = <v>{{ value }}</v>"}
  - op: filter
    name: keep
    ensemble:
      method: iwmv
      variants: [{name: a}, {name: b, prompt: "Keep? <t>{{ title }}</t>"}]
    udp: {prompt: "<t>{{ title }}</t>"}
  - op: resolve
    left_id: title
    k: 2
    udp: {prompt: "<l>{{ left.title }}</l><r>{{ right.title }}</r>"}
  - op: aggregate
    group_by: [entity_id]
    udp: {prompt: "{% for r in rows %}{{ r.title }} {% endfor %}", output: {summary: string}}
"""


def test_yaml_round_trip_keeps_every_operator() -> None:
    pipeline = Pipeline.from_yaml(EVERY_OPERATOR)
    assert [s.op for s in pipeline.steps] == ["map", "extract", "classify", "impute",
                                              "detect_errors", "filter", "resolve", "aggregate"]
    again = Pipeline.from_yaml(pipeline.to_yaml())
    assert again == pipeline
    assert again.to_yaml() == pipeline.to_yaml()


@pytest.mark.parametrize(("text", "message"), [
    ("steps: [{op: frobnicate, udp: {prompt: x}}]", "step 1: unknown operator 'frobnicate'"),
    ("steps: [{udp: {prompt: x}}]", "step 1: no 'op'"),
    ("steps: []", "steps"),
    ("steps: [{op: map, udp: {prompt: x, output: {a: string}}}, "
     "{op: map, udp: {prompt: y, output: {b: string}}}]", "step names repeat: map"),
    ("steps: [{op: map, udp: {prompt: x, output: {a: strin}}}]", "step 1"),
    ("steps: [{op: filter, udp: {prompt: x}, cascade: {score: embedding}}]", "no cascade"),
    ("steps: [{op: map, udp: {prompt: x, output: {a: string}}, ensemble: "
     "{variants: [{name: a}, {name: b}]}}]", "one decision"),
    ("{not yaml", "not valid YAML"),
])
def test_a_bad_pipeline_gets_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        Pipeline.from_yaml(text)


def test_compiled_pipeline_topology_snapshot() -> None:
    mermaid = compile_pipeline(Pipeline.from_yaml(EVERY_OPERATOR)).get_graph().draw_mermaid()
    if os.environ.get("AISLE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(mermaid)
    assert SNAPSHOT.is_file(), "run with AISLE_UPDATE_SNAPSHOTS=1 and review"
    assert mermaid == SNAPSHOT.read_text(), "pipeline wiring changed: review the snapshot"


def _titles() -> pd.DataFrame:
    return pd.DataFrame({"title": ["Sony Alpha 7", "Sony Alpha 7 II", "Lego castle",
                                   "Nikon Z5", "Canon R8"],
                         "price": ["1000", None, "80", None, "1500"]})


async def test_every_operator_runs_end_to_end_on_the_fake(tmp_path: Path) -> None:
    from aisle.graphs import gdo

    pipeline = Pipeline.from_yaml(EVERY_OPERATOR)
    original = gdo._embed
    gdo._embed = lambda: trigram_embed  # type: ignore[assignment]  # no MiniLM in unit tests
    try:
        out, state = await run_pipeline(pipeline, _titles(),
                                        context=GDOContext(workdir=str(tmp_path)))
    finally:
        gdo._embed = original
    assert [s["step"] for s in state["stats"]] == [s.step for s in pipeline.steps]
    assert state["stopped"] is None
    assert {"entity_id", "summary", "aggregate_error"} <= set(out.columns)
    assert state["spent"]["calls"] == sum(s["calls"] for s in state["stats"])
    files = sorted(p.name for p in tmp_path.iterdir())  # noqa: ASYNC240
    assert files[0] == "00-input.parquet"
    assert len(files) == 1 + len(pipeline.steps)


async def test_the_budget_stops_the_pipeline_and_keeps_what_finished(tmp_path: Path) -> None:
    pipeline = Pipeline.from_yaml("""
model: fake:hash
concurrency: 1
budget: {calls: 7}
steps:
  - op: map
    name: brand
    udp: {prompt: "<t>{{ title }}</t>", output: {brand: string}}
  - op: map
    name: colour
    udp: {prompt: "<t>{{ title }}</t>", output: {colour: string}}
  - op: map
    name: never
    udp: {prompt: "<t>{{ title }}</t>", output: {never: string}}
""")
    out, state = await run_pipeline(pipeline, _titles(), context=GDOContext(workdir=str(tmp_path)))
    assert [s["step"] for s in state["stats"]] == ["brand", "colour"]
    assert "budget (calls)" in str(state["stopped"])
    assert "'colour'" in str(state["stopped"])
    assert out["brand"].notna().all()
    assert out["colour"].notna().sum() == 2
    assert out["colour_error"].tolist()[2:] == ["not run: the budget ran out"] * 3
    assert "never" not in out.columns
    assert state["spent"]["calls"] == 7


async def test_registered_graph_runs_the_pipeline_from_its_context(tmp_path: Path) -> None:
    pipeline = Pipeline.from_yaml("""
steps:
  - op: map
    name: brand
    udp: {prompt: "<t>{{ title }}</t>", output: {brand: string}}
  - op: filter
    udp: {prompt: "<t>{{ title }}</t>"}
""")
    source = write_table(_titles(), tmp_path / "in.jsonl")
    state = await build_gdo_graph().ainvoke(
        {"table": str(source)},
        context=GDOContext(pipeline=pipeline, model="fake:hash", workdir=str(tmp_path / "w"),
                           limit=3))
    assert [s["step"] for s in state["stats"]] == ["brand", "filter"]
    assert state["stats"][0]["rows_in"] == 3


async def test_the_registered_graph_needs_a_pipeline() -> None:
    with pytest.raises(ConfigurationError, match="no pipeline"):
        await build_gdo_graph().ainvoke({"rows": [{"a": 1}]}, context=GDOContext())


async def test_relative_files_resolve_against_the_pipeline_file(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "same.j2").write_text("<l>{{ left.name }}</l><r>{{ right.name }}</r>")
    write_table(pd.DataFrame({"rid": ["b1", "b2"], "name": ["sony a7", "lego castle"]}),
                tmp_path / "right.csv")
    (tmp_path / "p.yaml").write_text("""
model: fake:hash
steps:
  - op: match
    right: right.csv
    right_id: rid
    columns: [name]
    k: 1
    udp: {prompt_file: prompts/same.j2}
""")
    from aisle.graphs import gdo

    original = gdo._embed
    gdo._embed = lambda: trigram_embed  # type: ignore[assignment]
    try:
        out, _ = await run_pipeline(Pipeline.from_yaml(tmp_path / "p.yaml"),
                                    pd.DataFrame({"name": ["sony alpha a7", "castle lego"]}),
                                    context=GDOContext(workdir=str(tmp_path / "w")))
    finally:
        gdo._embed = original
    assert set(out["right_id"]) == {"b1", "b2"}
    assert out["match_error"].isna().all()


def test_tables_round_trip_through_every_format(tmp_path: Path) -> None:
    table = _titles()
    for suffix in (".csv", ".jsonl", ".json", ".parquet"):
        back = read_table(write_table(table, tmp_path / f"t{suffix}"))
        assert back["title"].tolist() == table["title"].tolist(), suffix
        assert back["price"].tolist()[1] is None, suffix


def test_unreadable_tables_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown table format"):
        read_table(tmp_path / "t.xlsx")
    with pytest.raises(ConfigurationError, match="not found"):
        read_table(tmp_path / "missing.csv")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(ConfigurationError, match="not a readable jsonl"):
        read_table(bad)


async def test_a_filter_that_keeps_nothing_lets_later_steps_pass_through(
        tmp_path: Path) -> None:
    from aisle.llm import FakeChatModel

    fake = FakeChatModel(by_schema={"none": {"reason": "no", "keep": False},
                                    "brand": {"brand": "x"}})
    pipeline = Pipeline.from_yaml("""
steps:
  - op: filter
    name: none
    udp: {prompt: "<t>{{ title }}</t>"}
  - op: map
    name: brand
    udp: {prompt: "<t>{{ title }}</t>", output: {brand: string}}
  - op: resolve
    columns: [title]
    udp: {prompt: "{{ left.title }} {{ right.title }}"}
""")
    out, state = await run_pipeline(pipeline, _titles(), context=GDOContext(
        model=fake, workdir=str(tmp_path)))
    assert out.empty
    assert [s["tasks"] for s in state["stats"]] == [5, 0, 0]
    with pytest.raises(ConfigurationError, match="input table is empty"):
        await run_pipeline(pipeline, _titles().head(0), context=GDOContext(model=fake))
