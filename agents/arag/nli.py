"""NLI Agent: does a candidate's text support the shopper's inferred intent?

Two scoring modes, one role each:

- `logprob` (`NLI_LOGPROB`): a one-token Yes/No answer; score = P(Yes) / (P(Yes) +
  P(No)) from the token log-probabilities. Small models give a usable signal this way.
- `generate` (`NLI_GENERATE`): the model writes a rationale and a 0-10 score as
  structured output (an integer because llama.cpp's grammar enforces integer bounds,
  not float bounds), rescaled to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from aisle.agents._role import ChoiceRole, Domain, Role
from aisle.errors import AisleError
from aisle.llm import capabilities_of

__all__ = ["NLI_GENERATE", "NLI_LOGPROB", "NLIError", "NLIJudgement", "NLIMode",
           "NLIScore", "judge_item", "resolve_mode"]

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


# Public name; the class keeps the name it had when the stored agents-v4 answers were
# made, because the name (and the schema's title) travel in the constrained-decoding
# request, so the requests stay byte-identical.
NLIScore = _Generated

NLI_LOGPROB = ChoiceRole("nli", "arag/nli_logprob.j2", ("Yes", "No"))
NLI_GENERATE: Role[NLIScore] = Role("nli", "arag/nli_generate.j2", NLIScore, max_tokens=256)


def resolve_mode(model: BaseChatModel, mode: NLIMode | Literal["auto"]) -> NLIMode:
    """`auto` means `logprob` where the backend returns logprobs, else `generate`."""
    if mode == "auto":
        return "logprob" if capabilities_of(model).logprobs else "generate"
    if mode == "logprob" and not capabilities_of(model).logprobs:
        raise AisleError("NLI mode 'logprob' needs a backend that returns token logprobs; "
                         "use mode='generate' or 'auto'")
    return mode


async def judge_item(model: BaseChatModel, history: Sequence[str], item_id: str,
                     item_title: str, *, mode: NLIMode,
                     domain: Domain | None = None, rec_rank: int | None = None,
                     rec_total: int | None = None) -> NLIJudgement:
    """Score one candidate against the shopper's history (shared prefix first, item last).

    `rec_rank` of `rec_total`: where a trained recommender ranks the item among the
    candidates, shown to the model after the item when given.

    Raises:
        NLIError: logprob mode found neither Yes nor No among the top tokens.
        StructuredOutputError: generate mode's answer did not validate.
    """
    if mode == "logprob":
        probs, k = await NLI_LOGPROB.probabilities(model, domain=domain, history=list(history),
                                                   item=item_title, rec_rank=rec_rank,
                                                   rec_total=rec_total)
        if probs is None:
            raise NLIError(f"no Yes/No among the top {k} first tokens for item {item_id}")
        return NLIJudgement(item_id=item_id, score=probs["Yes"], mode="logprob")
    answer = await NLI_GENERATE.ask(model, domain=domain, history=list(history), item=item_title,
                                    rec_rank=rec_rank, rec_total=rec_total)
    return NLIJudgement(item_id=item_id, score=answer.value.score / 10.0,
                        rationale=answer.value.rationale, mode="generate")
