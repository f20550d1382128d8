"""An LLM labeler: one structured attribute-extraction call.

A labeler is a (model spec, prompt variant) pair, written `MODEL_SPEC@VARIANT`, e.g.
`local:smollm2-135m@fewshot`. Variants are the templates in `prompts/ensemble/`:
`zeroshot` (instructions only) and `fewshot` (instructions plus worked examples).

The answer schema is built per call: one string field per requested attribute, so
constrained decoding cannot drop or invent attributes. "n/a" means "not stated".
"""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, create_model
from typing_extensions import TypedDict

from aisle.agents._role import Domain, Role
from aisle.errors import ConfigurationError

__all__ = ["LABELER_ROLES", "NA", "Example", "LabelerSpec", "answer_schema",
           "extract_attributes", "labeler_role", "normalise_value", "prompt_variants"]

NA = "n/a"
"""The label of an attribute with no value, in aisle's answers and in OA-Mine's files."""
MAX_VALUE_CHARS = 60
# How a model may spell "no value" in its answer; the labeler's output normalisation
# (an answer, not a score: OA-Mine's scorer keeps the authors' narrower rule,
# `aisle.evals.oa_mine.is_no_prediction`).
_NA_SPELLINGS = {"", "n/a", "na", "none", "null", "unknown", "not stated", "-"}


class Example(TypedDict):
    """A worked example for the `fewshot` variant: a title and its attribute values."""

    title: str
    values: dict[str, str]


def prompt_variants() -> list[str]:
    """The prompt variants shipped in `prompts/ensemble/`."""
    root = importlib.resources.files("aisle.prompts").joinpath("ensemble")
    return sorted(e.name.removesuffix(".j2") for e in root.iterdir() if e.name.endswith(".j2"))


@dataclass(frozen=True)
class LabelerSpec:
    """A labeler: a model spec and a prompt variant.

    Example:
        >>> spec = LabelerSpec.parse("local:smollm2-135m@fewshot")
        >>> spec.model, spec.variant, spec.name
        ('local:smollm2-135m', 'fewshot', 'local:smollm2-135m@fewshot')
    """

    model: str
    variant: str = "zeroshot"

    @classmethod
    def parse(cls, text: str) -> LabelerSpec:
        """`MODEL_SPEC[@VARIANT]`; the variant defaults to `zeroshot`.

        Raises:
            ConfigurationError: empty model or an unknown variant.
        """
        model, _, variant = text.strip().rpartition("@") if "@" in text else (text, "", "")
        model = model.strip()
        variant = variant.strip() or "zeroshot"
        if not model:
            raise ConfigurationError(f"labeler {text!r} has no model spec "
                                     "(expected MODEL_SPEC@VARIANT)")
        if variant not in prompt_variants():
            raise ConfigurationError(f"labeler {text!r}: unknown prompt variant {variant!r}; "
                                     f"available: {', '.join(prompt_variants())}")
        return cls(model, variant)

    @property
    def name(self) -> str:
        return f"{self.model}@{self.variant}"


def normalise_value(value: Any) -> str:
    """A labeler's value as a label: stripped, and every spelling of "none" as "n/a".

    Example:
        >>> normalise_value("  Diesel "), normalise_value("None"), normalise_value("")
        ('Diesel', 'n/a', 'n/a')
    """
    text = re.sub(r"\s+", " ", str(value)).strip()
    return NA if text.lower() in _NA_SPELLINGS else text


def _budget(schema: type[BaseModel]) -> int:
    # JSON punctuation and keys plus about a token per character of each value at its
    # maximum length, so the schema, not max_tokens, ends a looping value.
    return 32 + len(schema.model_fields) * (MAX_VALUE_CHARS + 12)


def labeler_role(variant: str) -> Role[BaseModel]:
    """The labeler role of a prompt variant (its schema is built per call).

    Raises:
        ConfigurationError: unknown variant.
    """
    if variant not in prompt_variants():
        raise ConfigurationError(f"unknown prompt variant {variant!r}; "
                                 f"available: {', '.join(prompt_variants())}")
    return Role("ensemble_labeler", f"ensemble/{variant}.j2", None, max_tokens=_budget,
                temperature=0.0)


LABELER_ROLES: tuple[Role[BaseModel], ...] = tuple(labeler_role(v) for v in prompt_variants())


def _field_name(i: int) -> str:
    return f"attr_{i}"


@lru_cache(maxsize=128)
def answer_schema(attributes: tuple[str, ...]) -> type[BaseModel]:
    """A pydantic model with one string field per attribute (the JSON keys are the
    attribute names themselves, which may contain spaces)."""
    fields: dict[str, Any] = {
        _field_name(i): (str, Field(alias=attr, max_length=MAX_VALUE_CHARS,
                                    description=f'The {attr} as written in the title, or "n/a".'))
        for i, attr in enumerate(attributes)}
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        "AttributeValues", __config__=ConfigDict(populate_by_name=True, extra="forbid"),
        **fields)
    return model


async def extract_attributes(model: BaseChatModel, *, title: str, category: str,
                             attributes: Sequence[str], variant: str = "zeroshot",
                             examples: Sequence[Example] = (),
                             domain: Domain | None = None) -> dict[str, str]:
    """Ask one labeler for every attribute's value in a product title.

    Returns:
        attribute -> value, "n/a" where the labeler found none.

    Raises:
        ConfigurationError: unknown variant, no attributes, or `fewshot` without examples.
        StructuredOutputError: the answer did not validate after the repair turn.
    """
    if not attributes:
        raise ConfigurationError("no attributes to extract")
    role = labeler_role(variant)
    if variant == "fewshot" and not examples:
        raise ConfigurationError("the fewshot variant needs at least one example")
    attrs = tuple(attributes)
    shown = [{"title": e["title"],
              "answer": json.dumps({a: e["values"].get(a, NA) for a in attrs},
                                   ensure_ascii=False)} for e in examples]
    answer = await role.ask(model, domain=domain, schema=answer_schema(attrs),
                            attributes=list(attrs), category=category, title=title,
                            examples=shown)
    dumped: Mapping[str, Any] = answer.value.model_dump(by_alias=True)
    return {a: normalise_value(dumped[a]) for a in attrs}
