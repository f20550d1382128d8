"""LLM-ensemble (Fang et al., arXiv 2403.00863) as a LangGraph state machine.

    START -> one `label` per labeler (Send) -> aggregate -> END

Each labeler (a model and a prompt variant) extracts every requested attribute of a
product; `aggregate` combines their answers per attribute with learned weights
(`aisle.ensemble`), or by majority vote when none are given, and records the value,
its confidence and which labelers agreed. A labeler that fails is recorded on the
blackboard and the others still count.

Example:
    >>> from aisle.graphs.ensemble import build_ensemble_graph
    >>> sorted(build_ensemble_graph().get_graph().nodes)
    ['__end__', '__start__', 'aggregate', 'label']
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from typing_extensions import TypedDict

from aisle.agents.ensemble import Example, LabelerSpec, extract_attributes
from aisle.ensemble import FittedWeights, aggregate
from aisle.errors import AisleError, ConfigurationError

__all__ = ["AttributeResult", "EnsembleContext", "EnsembleState", "Labeler",
           "build_ensemble_graph", "graph"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Labeler:
    """A labeler ready to run: its spec and the chat model that serves it."""

    spec: LabelerSpec
    model: BaseChatModel

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class EnsembleContext:
    """Run-scoped dependencies.

    Attributes:
        labelers: the labelers to fan out to (names must be distinct).
        weights: learned weights (`aisle ensemble fit`); None aggregates by majority vote.
    """

    labelers: Sequence[Labeler]
    weights: FittedWeights | None = None

    @classmethod
    def from_specs(cls, specs: Sequence[str | LabelerSpec],
                   load: Callable[[str], BaseChatModel], *,
                   weights: FittedWeights | None = None) -> EnsembleContext:
        """Build labelers from `MODEL@VARIANT` specs; `load` turns a model spec into a
        chat model (e.g. `aisle.llm.load_chat_model`), once per distinct model."""
        parsed = [s if isinstance(s, LabelerSpec) else LabelerSpec.parse(s) for s in specs]
        models: dict[str, BaseChatModel] = {}
        for spec in parsed:
            if spec.model not in models:
                models[spec.model] = load(spec.model)
        return cls([Labeler(s, models[s.model]) for s in parsed], weights)


class Product(TypedDict):
    title: str
    category: str


class LabelerAnswer(TypedDict):
    """One labeler's answer on the blackboard; `values` is None when it failed."""

    labeler: str
    values: dict[str, str] | None
    error: str | None


class AttributeResult(TypedDict):
    """The ensemble's value for one attribute and the evidence behind it."""

    value: str
    confidence: float
    agreeing: list[str]
    votes: dict[str, list[str]]


class EnsembleState(TypedDict, total=False):
    """The blackboard: the input, every labeler's answer, the aggregated result."""

    product: Product
    attributes: list[str]
    examples: list[Example]
    answers: Annotated[list[LabelerAnswer], operator.add]
    result: dict[str, AttributeResult]
    method: str


class _LabelTask(TypedDict):
    product: Product
    attributes: list[str]
    examples: list[Example]
    labeler: int


def fan_out(state: EnsembleState, runtime: Runtime[EnsembleContext]) -> list[Send]:
    """One `label` task per labeler."""
    labelers = runtime.context.labelers
    if not labelers:
        raise ConfigurationError("the ensemble graph got no labelers")
    names = [lab.name for lab in labelers]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"labeler names must be distinct, got {names}")
    if not state.get("attributes"):
        raise ConfigurationError("no attributes to extract")
    return [Send("label", _LabelTask(product=state["product"], attributes=state["attributes"],
                                     examples=state.get("examples", []), labeler=i))
            for i in range(len(labelers))]


async def label(state: _LabelTask, runtime: Runtime[EnsembleContext]) -> dict[str, Any]:
    """Run one labeler; a failure is recorded, not raised, so the others still count."""
    labeler = runtime.context.labelers[state["labeler"]]
    try:
        values = await extract_attributes(
            labeler.model, title=state["product"]["title"],
            category=state["product"]["category"], attributes=state["attributes"],
            variant=labeler.spec.variant, examples=state["examples"])
    except (AisleError, ValueError) as e:
        logger.warning("labeler %s failed: %s", labeler.name, e)
        return {"answers": [LabelerAnswer(labeler=labeler.name, values=None,
                                          error=str(e)[:300])]}
    return {"answers": [LabelerAnswer(labeler=labeler.name, values=values, error=None)]}


def combine(answers: Sequence[LabelerAnswer], attributes: Sequence[str],
            weights: FittedWeights | None) -> dict[str, AttributeResult]:
    """Aggregate the labelers' answers per attribute.

    Raises:
        AisleError: every labeler failed.
        AnswersError: the weights do not know one of the labelers.

    Example:
        >>> answers = [{"labeler": n, "values": {"Brand": v}, "error": None}
        ...            for n, v in [("a", "Nike"), ("b", "Nike"), ("c", "n/a")]]
        >>> r = combine(answers, ["Brand"], None)["Brand"]
        >>> r["value"], r["agreeing"], round(r["confidence"], 2)
        ('Nike', ['a', 'b'], 0.67)
    """
    rows = [(attr, a["labeler"], a["values"][attr])
            for a in answers if a["values"] is not None for attr in attributes]
    if not rows:
        raise AisleError(f"all {len(answers)} labeler(s) failed; nothing to aggregate")
    fit = (weights.apply(rows) if weights is not None
           else aggregate(rows, method="mv", min_labelers=1))
    result: dict[str, AttributeResult] = {}
    for attr in attributes:
        votes: dict[str, list[str]] = {}
        for task, name, value in rows:
            if task == attr:
                votes.setdefault(value, []).append(name)
        value = fit.label_of(attr)
        result[attr] = AttributeResult(value=value, confidence=fit.confidence_of(attr),
                                       agreeing=sorted(votes[value]),
                                       votes={v: sorted(n) for v, n in sorted(votes.items())})
    return result


def aggregate_node(state: EnsembleState, runtime: Runtime[EnsembleContext]) -> dict[str, Any]:
    weights = runtime.context.weights
    return {"result": combine(state.get("answers", []), state["attributes"], weights),
            "method": weights.method if weights is not None else "mv"}


def build_ensemble_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the ensemble graph.

    Invoke with `await graph.ainvoke({"product": {"title": ..., "category": ...},
    "attributes": [...]}, context=EnsembleContext(...))`; add `"examples"` for
    labelers using the `fewshot` variant.
    """
    builder = StateGraph(EnsembleState, context_schema=EnsembleContext)
    builder.add_node("label", label, input_schema=_LabelTask)
    builder.add_node("aggregate", aggregate_node)
    builder.add_conditional_edges(START, fan_out, ["label"])
    builder.add_edge("label", "aggregate")
    builder.add_edge("aggregate", END)
    return builder.compile(name="ensemble")


graph = build_ensemble_graph()
