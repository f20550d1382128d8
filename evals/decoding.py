"""How eval suites load their models: deterministic decoding by default.

A llama.cpp server with several slots batches concurrent requests together, and the
floating-point result of a request depends on what it was batched with, so the same
users at temperature 0 can get different answers from run to run (measured:
`evals/repeatability.py`, README "Reproducible evals"). Deterministic mode gives the
embedded server one slot and lets one request reach any backend at a time, so each
request is decoded alone. Hosted APIs make no such promise; for them the mode only
serialises the requests.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from aisle.llm import load_chat_model
from aisle.settings import get_settings

__all__ = ["decoding_key", "load_model"]


def load_model(spec: str, *, deterministic: bool) -> BaseChatModel:
    """The chat model for an eval: one slot, one request in flight when deterministic."""
    if not deterministic:
        return load_chat_model(spec)
    settings = get_settings().model_copy(update={"local_parallel": 1})
    return load_chat_model(spec, settings=settings, max_concurrency=1)


def decoding_key(deterministic: bool) -> dict[str, Any]:
    """What an answer key records about decoding. Runs before the mode existed batched
    requests and have no such entry, so their keys (and folders) are unchanged.

    Example:
        >>> decoding_key(True), decoding_key(False)
        ({'decoding': 'one-request-at-a-time'}, {})
    """
    return {"decoding": "one-request-at-a-time"} if deterministic else {}
