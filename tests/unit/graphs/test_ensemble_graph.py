"""Ensemble graph logic on scripted fake models: topology, one call per labeler,
weighted aggregation, failures that do not lose the other labelers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from pydantic import ValidationError

from aisle.agents.ensemble import LabelerSpec, answer_schema, extract_attributes
from aisle.errors import AisleError, ConfigurationError
from aisle.graphs.ensemble import EnsembleContext, build_ensemble_graph
from aisle.llm import Capabilities, FakeChatModel, track_usage
from aisle.tools.aggregation import AnswersError, aggregate

PRODUCT = {"title": "Diesel Men's Exposure High-Top Sneaker", "category": "Shoes"}
ATTRIBUTES = ["Brand", "Gender", "Color"]


def _model(answer: dict[str, Any] | Exception) -> FakeChatModel:
    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        assert PRODUCT["title"] in str(messages[0].content)
        return answer
    return FakeChatModel(by_schema={"AttributeValues": reply},
                         capabilities=Capabilities(json_schema=True))


def _context(answers: dict[str, dict[str, Any] | Exception], **kwargs: Any
             ) -> EnsembleContext:
    """Labelers `fake:<name>@zeroshot`, each answering from its own fake model."""
    return EnsembleContext(labelers=[f"fake:{n}@zeroshot" for n in answers],
                           models={f"fake:{n}": _model(a) for n, a in answers.items()},
                           **kwargs)


GOOD = {"Brand": "Diesel", "Gender": "Men's", "Color": "n/a"}
WRONG = {"Brand": "Exposure", "Gender": "Men's", "Color": "Black"}


async def test_one_call_per_labeler_and_majority_vote() -> None:
    ctx = _context({"a": GOOD, "b": GOOD, "c": WRONG})
    with track_usage() as usage:
        out = await build_ensemble_graph().ainvoke(
            {"product": PRODUCT, "attributes": ATTRIBUTES}, context=ctx)
    assert usage.by_agent()["ensemble_labeler"].calls == 3
    assert sorted(a["labeler"] for a in out["answers"]) == [
        "fake:a@zeroshot", "fake:b@zeroshot", "fake:c@zeroshot"]
    assert out["method"] == "mv"
    brand = out["result"]["Brand"]
    assert brand["value"] == "Diesel"
    assert brand["agreeing"] == ["fake:a@zeroshot", "fake:b@zeroshot"]
    assert brand["votes"] == {"Diesel": ["fake:a@zeroshot", "fake:b@zeroshot"],
                              "Exposure": ["fake:c@zeroshot"]}
    assert brand["confidence"] == pytest.approx(2 / 3)
    assert out["result"]["Gender"]["confidence"] == pytest.approx(1.0)


async def test_learned_weights_let_one_reliable_labeler_win() -> None:
    # Learn on a batch where c is always right, a and b are each wrong alone on 8 of
    # 20 tasks and wrong together on 2; then c alone outvotes a + b on the product.
    rows = []
    for i in range(20):
        truth = f"v{i}"
        rows.append((f"t{i}", "fake:c@zeroshot", truth))
        rows.append((f"t{i}", "fake:a@zeroshot", "x" if i < 10 else truth))
        rows.append((f"t{i}", "fake:b@zeroshot", "x" if i < 2 or i >= 12 else truth))
    weights = aggregate(rows, method="iwmv").weights
    ctx = _context({"a": WRONG, "b": WRONG, "c": GOOD}, weights=weights)
    out = await build_ensemble_graph().ainvoke(
        {"product": PRODUCT, "attributes": ATTRIBUTES}, context=ctx)
    assert out["method"] == "iwmv"
    assert out["result"]["Brand"]["value"] == "Diesel"
    assert out["result"]["Brand"]["agreeing"] == ["fake:c@zeroshot"]
    assert out["result"]["Color"]["value"] == "n/a"


async def test_a_failing_labeler_does_not_lose_the_others() -> None:
    ctx = _context({"a": GOOD, "bad": {"Brand": 7}, "c": GOOD})
    out = await build_ensemble_graph().ainvoke(
        {"product": PRODUCT, "attributes": ATTRIBUTES}, context=ctx)
    failed = [a for a in out["answers"] if a["values"] is None]
    assert [a["labeler"] for a in failed] == ["fake:bad@zeroshot"]
    assert failed[0]["error"]
    assert out["result"]["Brand"]["value"] == "Diesel"
    assert out["result"]["Brand"]["confidence"] == pytest.approx(1.0)


async def test_all_labelers_failing_is_an_error() -> None:
    ctx = _context({"bad": {"nope": 1}})
    with pytest.raises(AisleError, match="all 1 labeler"):
        await build_ensemble_graph().ainvoke(
            {"product": PRODUCT, "attributes": ATTRIBUTES}, context=ctx)


async def test_weights_without_a_labeler_are_an_error() -> None:
    weights = aggregate([("t", "fake:a@zeroshot", "x"), ("t", "fake:b@zeroshot", "x")],
                        method="iwmv").weights
    ctx = _context({"a": GOOD, "z": GOOD}, weights=weights)
    with pytest.raises(AnswersError, match="no weights for labeler"):
        await build_ensemble_graph().ainvoke(
            {"product": PRODUCT, "attributes": ATTRIBUTES}, context=ctx)


async def test_no_attributes_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="no attributes"):
        await build_ensemble_graph().ainvoke({"product": PRODUCT, "attributes": []},
                                             context=_context({"a": GOOD}))


@pytest.mark.parametrize(("labelers", "message"), [
    ([], "at least 1 item"),
    (["fake:a", "fake:a@zeroshot"], "distinct"),
    (["fake:a@sonnet"], "unknown prompt variant"),
])
def test_bad_labelers_are_refused_by_the_context(labelers: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EnsembleContext(labelers=labelers)


async def test_no_context_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="needs a context"):
        await build_ensemble_graph().ainvoke({"product": PRODUCT, "attributes": ATTRIBUTES})


async def test_weights_file_in_a_json_context(tmp_path: Path) -> None:
    rows = [(f"t{i}", f"fake:{n}@zeroshot", "v") for i in range(3) for n in "ab"]
    aggregate(rows, method="iwmv").weights.save(tmp_path / "w.json")
    ctx = _context({"a": GOOD, "b": WRONG}, weights=str(tmp_path / "w.json"))
    out = await build_ensemble_graph().ainvoke(
        {"product": PRODUCT, "attributes": ATTRIBUTES}, context=ctx)
    assert out["method"] == "iwmv"


async def test_fewshot_prompt_shows_examples_and_values_are_normalised() -> None:
    seen: list[str] = []

    def reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        seen.append(str(messages[0].content))
        return {"Brand": " Diesel ", "Gender": "None", "Color": ""}

    model = FakeChatModel(by_schema={"AttributeValues": reply},
                          capabilities=Capabilities(json_schema=True))
    values = await extract_attributes(
        model, title=PRODUCT["title"], category="Shoes", attributes=ATTRIBUTES,
        variant="fewshot", examples=[{"title": "Nike Air Max Women's", "values": {
            "Brand": "Nike", "Gender": "Women's"}}])
    assert values == {"Brand": "Diesel", "Gender": "n/a", "Color": "n/a"}
    assert 'Nike Air Max Women\'s' in seen[0]
    assert '"Color": "n/a"' in seen[0]  # missing example values are shown as n/a
    assert seen[0].rstrip().endswith(f"<title>{PRODUCT['title']}</title>")
    with pytest.raises(ConfigurationError, match="needs at least one example"):
        await extract_attributes(model, title="x", category="Shoes", attributes=["Brand"],
                                 variant="fewshot")


def test_answer_schema_keys_are_the_attribute_names() -> None:
    schema = answer_schema(("Model name", "Brand")).model_json_schema()
    assert sorted(schema["properties"]) == ["Brand", "Model name"]
    assert sorted(schema["required"]) == ["Brand", "Model name"]


@pytest.mark.parametrize(("text", "model", "variant"), [
    ("local:smollm2-135m@fewshot", "local:smollm2-135m", "fewshot"),
    ("local:smollm2-135m", "local:smollm2-135m", "zeroshot"),
    ("openai:gpt-4o-mini@zeroshot", "openai:gpt-4o-mini", "zeroshot"),
])
def test_labeler_spec_parse(text: str, model: str, variant: str) -> None:
    spec = LabelerSpec.parse(text)
    assert (spec.model, spec.variant) == (model, variant)


@pytest.mark.parametrize(("text", "message"), [
    ("local:smollm2-135m@poetry", "unknown prompt variant 'poetry'"),
    ("@fewshot", "no model spec"),
])
def test_labeler_spec_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LabelerSpec.parse(text)
