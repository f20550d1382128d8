"""LLM-ensemble (Fang et al., arXiv 2403.00863) as a LangGraph state machine.

    START -> one `label` per labeler (Send) -> aggregate -> END

Each labeler (a model spec and a prompt variant, `MODEL@VARIANT`) extracts every
requested attribute of a product; `aggregate` combines their answers per attribute with
learned weights (`aisle.tools.aggregation`), or by majority vote when none are given,
and records the value, its confidence and which labelers agreed. A labeler that fails
is recorded on the blackboard and the others still count. The context is plain JSON
(labeler specs, a weights file or the weights themselves, the shop's domain).

Example:
    >>> from aisle.graphs.ensemble import EnsembleContext, build_ensemble_graph
    >>> sorted(build_ensemble_graph().get_graph().nodes)
    ['__end__', '__start__', 'aggregate', 'label']
    >>> [lab.name for lab in EnsembleContext(labelers=["fake@fewshot", "fake"]).parsed()]
    ['fake@fewshot', 'fake@zeroshot']
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import Field, field_validator
from typing_extensions import TypedDict

from aisle.agents import Domain
from aisle.agents.ensemble import Example, LabelerSpec, extract_attributes
from aisle.errors import AisleError, ConfigurationError
from aisle.graphs._context import GraphContext, ModelRef
from aisle.graphs._registry import GraphSpec, register_graph
from aisle.tools.aggregation import FittedWeights, aggregate, load_weights

__all__ = ["AttributeResult", "EnsembleAgent", "EnsembleContext", "EnsembleInput",
           "EnsembleState", "build_ensemble_graph", "graph"]

logger = logging.getLogger(__name__)

EnsembleAgent = Literal["labeler"]
"""The graph's one agent role (each labeler is an instance of it)."""


class EnsembleContext(GraphContext):
    """Run-scoped dependencies, as JSON.

    Attributes:
        labelers: `MODEL_SPEC[@VARIANT]` labelers to fan out to (names must be distinct).
        models: from Python, chat models to use for labelers' model specs (keyed by the
            spec before the `@`); a spec without an entry is loaded with
            `load_chat_model`.
        weights: learned weights (`aisle ensemble fit`): the path of the weights JSON or
            the weights themselves; None aggregates by majority vote.
        domain: what the shop sells, as the prompts name it.
    """

    labelers: list[str] = Field(min_length=1)
    models: dict[str, ModelRef] = Field(default_factory=dict)
    weights: FittedWeights | str | None = None
    domain: Domain = Field(default_factory=Domain)

    @field_validator("labelers")
    @classmethod
    def _valid_labelers(cls, labelers: list[str]) -> list[str]:
        names = [LabelerSpec.parse(s).name for s in labelers]  # unknown variant: an error
        if len(set(names)) != len(names):
            raise ValueError(f"labeler names must be distinct, got {names}")
        return labelers

    def parsed(self) -> list[LabelerSpec]:
        return [LabelerSpec.parse(s) for s in self.labelers]

    async def amodel_of(self, spec: LabelerSpec) -> BaseChatModel:
        return await self.aload_model(self.models.get(spec.model, spec.model))

    def fitted_weights(self) -> FittedWeights | None:
        if self.weights is None or isinstance(self.weights, FittedWeights):
            return self.weights
        return load_weights(Path(self.weights))


class Product(TypedDict):
    title: str
    category: str


class EnsembleInput(TypedDict, total=False):
    """What a caller passes: the product, the attributes, and worked examples for
    labelers using the `fewshot` variant."""

    product: Product
    attributes: list[str]
    examples: list[Example]


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


class EnsembleState(EnsembleInput, total=False):
    """The blackboard: the input, every labeler's answer, the aggregated result."""

    answers: Annotated[list[LabelerAnswer], operator.add]
    result: dict[str, AttributeResult]
    method: str


class _LabelTask(TypedDict):
    product: Product
    attributes: list[str]
    examples: list[Example]
    labeler: int


def _ctx(runtime: Runtime[EnsembleContext]) -> EnsembleContext:
    if runtime.context is None:
        raise ConfigurationError("the ensemble graph needs a context with its labelers, "
                                 'e.g. {"labelers": ["local:smollm2-135m@zeroshot", ...]}')
    return runtime.context


def fan_out(state: EnsembleState, runtime: Runtime[EnsembleContext]) -> list[Send]:
    """One `label` task per labeler."""
    labelers = _ctx(runtime).parsed()
    if not state.get("attributes"):
        raise ConfigurationError("no attributes to extract")
    return [Send("label", _LabelTask(product=state["product"], attributes=state["attributes"],
                                     examples=state.get("examples", []), labeler=i))
            for i in range(len(labelers))]


async def label(state: _LabelTask, runtime: Runtime[EnsembleContext]) -> dict[str, Any]:
    """Run one labeler; a failure is recorded, not raised, so the others still count."""
    ctx = _ctx(runtime)
    labeler = ctx.parsed()[state["labeler"]]
    try:
        values = await extract_attributes(
            await ctx.amodel_of(labeler), title=state["product"]["title"],
            category=state["product"]["category"], attributes=state["attributes"],
            variant=labeler.variant, examples=state["examples"], domain=ctx.domain)
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
    weights = _ctx(runtime).fitted_weights()
    return {"result": combine(state.get("answers", []), state["attributes"], weights),
            "method": weights.method if weights is not None else "mv"}


def build_ensemble_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the ensemble graph.

    Invoke with `await graph.ainvoke({"product": {"title": ..., "category": ...},
    "attributes": [...]}, context=EnsembleContext(labelers=[...]))` (or the context as
    a dict); add `"examples"` for labelers using the `fewshot` variant.
    """
    builder = StateGraph(EnsembleState, context_schema=EnsembleContext,
                         input_schema=EnsembleInput)
    builder.add_node("label", label, input_schema=_LabelTask)
    builder.add_node("aggregate", aggregate_node)
    builder.add_conditional_edges(START, fan_out, ["label"])
    builder.add_edge("label", "aggregate")
    builder.add_edge("aggregate", END)
    return builder.compile(name="ensemble")


graph = build_ensemble_graph()

register_graph(GraphSpec(
    name="ensemble",
    description="LLM-ensemble attribute extraction: several (model, prompt) labelers "
                "aggregated per attribute with learned weights or majority vote.",
    build=build_ensemble_graph, input_schema=EnsembleInput, context_schema=EnsembleContext,
    agents=EnsembleAgent, module="ensemble"))
