"""Relevance critic: for one title, item by item, whether it describes the item and why.

Two modes, as ARAG's NLI agent has:

- `logprob` (`RELEVANCE_CRITIC_LOGPROB`): one call per item, a one-token Yes/No answer;
  the item fits when P(Yes) / (P(Yes) + P(No)) >= 0.5, and the reason given to the
  refiner is that probability. Small local models give a usable signal this way, and
  each call costs one output token.
- `generate` (`RELEVANCE_CRITIC`): one structured call per title, a written reason and
  a verdict for every item. On Qwen2.5-Coder-0.5B it calls nearly every item a fit and
  its reasons copy the item titles (README, CARTS).

`auto` is `logprob` where the backend returns logprobs. The eval's LLM coverage judge
(`COVERAGE_JUDGE`, same two modes) asks the question in its own words; it is a separate
role so that a judge model set apart from the model under test never shares a prompt
with the agents it scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, create_model

from aisle.agents._role import ChoiceRole, Domain, Role
from aisle.errors import AisleError
from aisle.llm import capabilities_of

__all__ = ["COVERAGE_JUDGE", "COVERAGE_JUDGE_GENERATE", "RELEVANCE_CRITIC",
           "RELEVANCE_CRITIC_LOGPROB", "CriticError", "CriticMode", "Critique", "Verdict",
           "critique_schema", "critique_title", "judge_coverage", "judge_schema",
           "resolve_critic_mode"]

CriticMode = Literal["logprob", "generate"]


class CriticError(AisleError):
    """The model gave no usable Yes/No signal for an item (logprob mode)."""


def resolve_critic_mode(model: BaseChatModel, mode: CriticMode | Literal["auto"]) -> CriticMode:
    """`auto` means `logprob` where the backend returns logprobs, else `generate`.

    Raises:
        CriticError: `logprob` asked of a backend without logprobs.
    """
    if mode == "auto":
        return "logprob" if capabilities_of(model).logprobs else "generate"
    if mode == "logprob" and not capabilities_of(model).logprobs:
        raise CriticError("the critic's 'logprob' mode needs a backend that returns token "
                          "logprobs; use 'generate' or 'auto'")
    return mode


class Verdict(BaseModel):
    """Whether the title describes one item, with the critic's reason first."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=80, description="At most ten words on why or why not.")
    fits: bool = Field(description="True if the title describes this item.")


class Critique(BaseModel):
    """A critic's verdict on every item, in item order."""

    fits: list[bool]
    reasons: list[str]
    probabilities: list[float] | None = None

    @property
    def covered(self) -> list[int]:
        """1-based numbers of the items the title describes."""
        return [i for i, ok in enumerate(self.fits, 1) if ok]

    @property
    def coverage(self) -> float:
        return sum(self.fits) / len(self.fits) if self.fits else 0.0


@lru_cache(maxsize=32)
def critique_schema(n_items: int) -> type[BaseModel]:
    """`{"item_1": Verdict, ..., "item_n": Verdict}`, one field per item.

    Example:
        >>> list(critique_schema(2).model_fields)
        ['item_1', 'item_2']
    """
    fields = {f"item_{i}": (Verdict, Field(description=f"Item {i}."))
              for i in range(1, n_items + 1)}
    return create_model(f"Critique{n_items}", __config__=ConfigDict(extra="forbid"),  # type: ignore[call-overload,no-any-return]
                        **fields)


@lru_cache(maxsize=32)
def judge_schema(n_items: int) -> type[BaseModel]:
    """`{"item_1": bool, ..., "item_n": bool}`."""
    fields = {f"item_{i}": (bool, Field(description=f"Item {i}."))
              for i in range(1, n_items + 1)}
    return create_model(f"Coverage{n_items}", __config__=ConfigDict(extra="forbid"),  # type: ignore[call-overload,no-any-return]
                        **fields)


RELEVANCE_CRITIC: Role[BaseModel] = Role(
    "relevance_critic", "carts/relevance_critic.j2", None,
    max_tokens=lambda schema: 24 + 56 * len(schema.model_fields), temperature=0.0)

RELEVANCE_CRITIC_LOGPROB = ChoiceRole("relevance_critic", "carts/relevance_critic_logprob.j2",
                                      ("Yes", "No"))

COVERAGE_JUDGE = ChoiceRole("coverage_judge", "carts/coverage_judge.j2", ("Yes", "No"))

COVERAGE_JUDGE_GENERATE: Role[BaseModel] = Role(
    "coverage_judge", "carts/coverage_judge_generate.j2", None,
    max_tokens=lambda schema: 8 + 10 * len(schema.model_fields), temperature=0.0)


async def _yes_probabilities(role: ChoiceRole, model: BaseChatModel, title: str,
                             items: Sequence[str], domain: Domain | None) -> list[float]:
    out = []
    for i, item in enumerate(items, 1):  # in turn: a local server decodes one at a time
        probs, k = await role.probabilities(model, domain=domain, title=title, item=item)
        if probs is None:
            raise CriticError(f"no Yes/No among the top {k} first tokens for item {i}")
        out.append(probs["Yes"])
    return out


async def critique_title(model: BaseChatModel, title: str, items: Sequence[str], *,
                         mode: CriticMode = "generate", domain: Domain | None = None
                         ) -> Critique:
    """The critic's verdict on each item for `title`.

    Raises:
        StructuredOutputError: generate mode's answer did not validate after the repair
            turn.
        CriticError: logprob mode found no Yes/No signal for an item.
    """
    if mode == "logprob":
        probs = await _yes_probabilities(RELEVANCE_CRITIC_LOGPROB, model, title, items, domain)
        return Critique(fits=[p >= 0.5 for p in probs],
                        reasons=[f"P(the title describes it) = {p:.2f}" for p in probs],
                        probabilities=probs)
    answer = await RELEVANCE_CRITIC.ask(model, domain=domain, schema=critique_schema(len(items)),
                                        title=title, items=list(items))
    verdicts = [getattr(answer.value, f"item_{i}") for i in range(1, len(items) + 1)]
    return Critique(fits=[v.fits for v in verdicts], reasons=[v.reason.strip() for v in verdicts])


async def judge_coverage(model: BaseChatModel, title: str, items: Sequence[str], *,
                         mode: CriticMode = "logprob", domain: Domain | None = None
                         ) -> tuple[list[bool], list[float] | None]:
    """The coverage judge's verdict per item for `title` (the eval's LLM judge), and in
    logprob mode P(Yes) per item.

    Raises:
        StructuredOutputError: generate mode's answer did not validate.
        CriticError: logprob mode found no Yes/No signal for an item.
    """
    if mode == "logprob":
        probs = await _yes_probabilities(COVERAGE_JUDGE, model, title, items, domain)
        return [p >= 0.5 for p in probs], probs
    answer = await COVERAGE_JUDGE_GENERATE.ask(model, domain=domain,
                                               schema=judge_schema(len(items)), title=title,
                                               items=list(items))
    return [bool(getattr(answer.value, f"item_{i}")) for i in range(1, len(items) + 1)], None
