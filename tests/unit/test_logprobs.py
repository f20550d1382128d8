"""Reading token logprobs and one-token choice probabilities."""

from __future__ import annotations

import math

import pytest
from langchain_core.messages import AIMessage

from aisle.llm import choice_probabilities, token_logprobs


def _msg(top: list[tuple[str, float]]) -> AIMessage:
    first = top[0]
    return AIMessage(content=first[0], response_metadata={"logprobs": {"content": [{
        "token": first[0], "logprob": first[1],
        "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}]}})


def test_yes_no_probability_renormalised() -> None:
    m = _msg([("Yes", math.log(0.6)), ("No", math.log(0.2)), ("Maybe", math.log(0.2))])
    probs = choice_probabilities(m, ["Yes", "No"])
    assert probs == pytest.approx({"Yes": 0.75, "No": 0.25})


def test_case_and_space_variants_add_up() -> None:
    m = _msg([("No", math.log(0.3)), (" yes", math.log(0.3)), ("YES", math.log(0.1)),
              ("no", math.log(0.1))])
    probs = choice_probabilities(m, ["Yes", "No"])
    assert probs == pytest.approx({"Yes": 0.5, "No": 0.5})


def test_no_choice_among_alternatives_gives_none() -> None:
    assert choice_probabilities(_msg([("The", -0.1), ("A", -2.0)]), ["Yes", "No"]) is None


def test_no_logprobs_gives_none_and_empty() -> None:
    m = AIMessage(content="Yes")
    assert token_logprobs(m) == []
    assert choice_probabilities(m, ["Yes", "No"]) is None


def test_token_logprobs_parsed() -> None:
    (tok,) = token_logprobs(_msg([("Yes", -0.5), ("No", -1.5)]))
    assert tok.token == "Yes"
    assert tok.top == (("Yes", -0.5), ("No", -1.5))
