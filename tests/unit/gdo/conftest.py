"""Fixtures for the GDO tests: a deterministic text embedding and a row-aware fake."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from aisle.testing.embeddings import trigram_embed


@pytest.fixture
def embed() -> Callable[[Sequence[str]], np.ndarray]:
    return trigram_embed


def tagged(prompt: str, tag: str) -> str:
    """The text between <tag> and </tag> in a prompt."""
    m = re.search(rf"<{tag}>(.*?)</{tag}>", prompt, re.DOTALL)
    assert m, f"no <{tag}> in {prompt!r}"
    return m.group(1)


def prompt_of(messages: Sequence[Any]) -> str:
    """The UDP's rendered prompt among a call's messages (a fake without constrained
    decoding gets aisle's JSON instruction as a last message after it)."""
    texts = [str(m.content) for m in messages if m.type == "human"]
    return next(t for t in reversed(texts)
                if not t.startswith(("Respond with only a JSON", "Your answer is not valid")))


def reply(fn: Callable[[str], Any]) -> Callable[..., str]:
    """A FakeChatModel reply computed from the call's prompt."""
    def answer(messages: list[Any], kwargs: dict[str, Any]) -> str:
        value = fn(prompt_of(messages))
        return value if isinstance(value, str) else json.dumps(value)
    return answer
