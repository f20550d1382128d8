"""NLI Agent: does a candidate's text support the shopper's inferred intent?

Two scoring modes:

- `logprob`: a one-token Yes/No answer; score = P(Yes) / (P(Yes) + P(No)) from the
  token log-probabilities. Small models give a usable signal this way.
- `generate`: the model writes a rationale and a 0-10 score as structured output
  (an integer because llama.cpp's grammar enforces integer bounds, not float bounds),
  rescaled to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from aisle.errors import AisleError
from aisle.llm import ainvoke_structured, capabilities_of, choice_probabilities
from aisle.prompts import render

__all__ = ["NLIError", "NLIJudgement", "NLIMode", "judge_item", "resolve_mode"]

NLIMode = Literal["generate", "logprob"]


class NLIError(AisleError):
    """The model gave no usable Yes/No signal for an item."""


class NLIJudgement(BaseModel):
    """The NLI agent's verdict on one candidate."""

    item_id: str
    score: float = Field(ge=0.0, le=1.0, description="Support for the user's intent.")
    rationale: str | None = None
    mode: NLIMode


class _Generated(BaseModel):
    """What the model writes in `generate` mode."""

    rationale: str = Field(max_length=200, description="One sentence: why it fits or not.")
    score: int = Field(ge=0, le=10, description="0 = unrelated, 10 = clearly what they want.")


def resolve_mode(model: BaseChatModel, mode: NLIMode | Literal["auto"]) -> NLIMode:
    """`auto` means `logprob` where the backend returns logprobs, else `generate`."""
    if mode == "auto":
        return "logprob" if capabilities_of(model).logprobs else "generate"
    if mode == "logprob" and not capabilities_of(model).logprobs:
        raise AisleError("NLI mode 'logprob' needs a backend that returns token logprobs; "
                         "use mode='generate' or 'auto'")
    return mode


async def judge_item(model: BaseChatModel, history: Sequence[str], item_id: str,
                     item_title: str, *, mode: NLIMode) -> NLIJudgement:
    """Score one candidate against the shopper's history (shared prefix first, item last).

    Raises:
        NLIError: logprob mode found neither Yes nor No among the top tokens.
        StructuredOutputError: generate mode's answer did not validate.
    """
    if mode == "logprob":
        prompt = render("arag/nli_logprob.j2", history=list(history), item=item_title)
        k = max(1, min(20, capabilities_of(model).max_top_logprobs or 20))
        message = await model.ainvoke(
            [HumanMessage(prompt)], config={"metadata": {"aisle_agent": "nli"}},
            logprobs=True, top_logprobs=k, max_tokens=1, temperature=0.0)
        probs = choice_probabilities(message, ["Yes", "No"])
        if probs is None:
            raise NLIError(f"no Yes/No among the top {k} first tokens for item {item_id}")
        return NLIJudgement(item_id=item_id, score=probs["Yes"], mode="logprob")
    prompt = render("arag/nli_generate.j2", history=list(history), item=item_title)
    answer = await ainvoke_structured(model, [HumanMessage(prompt)], _Generated, agent="nli",
                                      max_tokens=256)
    return NLIJudgement(item_id=item_id, score=answer.value.score / 10.0,
                        rationale=answer.value.rationale, mode="generate")
