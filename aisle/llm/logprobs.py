"""Read token log-probabilities from a chat model's answer.

Scoring by the probability of a one-token answer (Yes/No) gives small models a
usable signal where a generated 0-1 score does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.messages import BaseMessage

__all__ = ["TokenLogprob", "choice_probabilities", "token_logprobs"]


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


def token_logprobs(message: BaseMessage) -> list[TokenLogprob]:
    """The per-token logprobs of an answer (empty if the backend returned none).

    The model must have been called with `logprobs=True` (and `top_logprobs=k`).
    """
    content = (message.response_metadata.get("logprobs") or {}).get("content") or []
    out = []
    for item in content:
        top = tuple((t["token"], float(t["logprob"])) for t in item.get("top_logprobs") or [])
        out.append(TokenLogprob(item["token"], float(item["logprob"]), top))
    return out


def choice_probabilities(message: BaseMessage, choices: Sequence[str]) -> dict[str, float] | None:
    """Probability of each choice as the first answer token, renormalised over `choices`.

    Token variants that differ only by case or leading space (" yes", "YES") count
    toward the same choice. Returns None when no choice appears among the first
    token's alternatives (ask for more `top_logprobs`, or fall back to the text).

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> m = AIMessage(content="Yes", response_metadata={"logprobs": {"content": [
        ...     {"token": "Yes", "logprob": -0.1, "top_logprobs": [
        ...         {"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]}]}})
        >>> round(choice_probabilities(m, ["Yes", "No"])["Yes"], 3)
        0.909
    """
    tokens = token_logprobs(message)
    if not tokens:
        return None
    first = tokens[0]
    alternatives = first.top or ((first.token, first.logprob),)
    keys = {c.strip().casefold(): c for c in choices}
    mass = dict.fromkeys(choices, 0.0)
    for token, logprob in alternatives:
        choice = keys.get(token.strip().casefold())
        if choice is not None:
            mass[choice] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0.0:
        return None
    return {c: p / total for c, p in mass.items()}
