"""GDO operators on the real embedded model (Qwen2.5-Coder-0.5B): a match step on real
er-magellan Beer pairs through the shipped eval UDP, and a small YAML pipeline (map +
filter) through the compiled graph, with the response cache answering the rerun."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from aisle.agents.gdo import Pipeline
from aisle.evals.gdo_suite import GDOEvalConfig, evaluate
from aisle.graphs.gdo import GDOContext, run_pipeline
from aisle.testing.embeddings import trigram_embed

pytestmark = pytest.mark.integration

MODEL = "local:qwen2.5-coder-0.5b"


async def test_match_operator_on_real_pairs(shared_data_dir: Callable[..., Path]) -> None:
    run = await evaluate(GDOEvalConfig(task="match", data=shared_data_dir("er-magellan", "Beer"),
                                       method="llm", model=MODEL, limit=6, shots=2,
                                       embed=trigram_embed))
    m = run["metrics"]
    assert m["rows"] == 6
    assert m["calls"] + m["cache_hits"] >= 6  # every pair asked (or answered from the cache)
    assert m["failed"] == 0  # constrained decoding: every answer is a valid {"match": bool}
    assert m["tp"] + m["fp"] + m["fn"] <= 6


async def test_yaml_pipeline_on_the_embedded_model(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from aisle.settings import get_settings

    monkeypatch.setenv("AISLE_CACHE_ENABLED", "true")  # the rerun's answers come from it
    get_settings.cache_clear()
    pipeline = Pipeline.from_yaml(f"""
name: tidy
model: {MODEL}
concurrency: 2
steps:
  - op: map
    name: brand
    udp:
      prompt: "Product title: <title>{{{{ title }}}}</title>\\nWhat is the brand?"
      output: {{brand: string}}
      max_tokens: 32
  - op: filter
    name: cameras
    udp:
      prompt: "Is <title>{{{{ title }}}}</title> a camera? Give a short reason."
      max_tokens: 64
""")
    table = pd.DataFrame({"title": ["Sony Alpha 7 IV mirrorless camera body",
                                    "LEGO Star Wars Millennium Falcon 75257",
                                    "Canon EOS R8 full-frame camera"]})
    out, state = await run_pipeline(pipeline, table, context=GDOContext(workdir=str(tmp_path)))
    brand, cameras = state["stats"]
    assert (brand["tasks"], brand["failed"], cameras["tasks"]) == (3, 0, 3)
    assert brand["calls"] >= 3
    assert all(isinstance(b, str) and b for b in out["brand"])
    assert len(out) == cameras["rows_out"]
    assert set(out.columns) >= {"title", "brand", "cameras_reason", "cameras_error"}
    # the rerun is answered from the response cache, with the same output
    again, state2 = await run_pipeline(pipeline, table,
                                       context=GDOContext(workdir=str(tmp_path / "again")))
    assert [s["calls"] for s in state2["stats"]] == [0, 0]
    assert [s["cache_hits"] for s in state2["stats"]] == [3, 3]
    assert again.equals(out)
