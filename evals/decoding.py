"""How eval suites load their models: deterministic decoding by default.

Two things make the embedded llama.cpp server answer the same request differently from
run to run at temperature 0, both measured with `evals/repeatability.py` (README
"Reproducible evals"): several slots batch concurrent requests together, and the
floating-point result of a request depends on what it was batched with; and the prompt
cache reuses the key-value state a slot kept from an earlier request with a shared prefix,
which is computed in different batch shapes than a fresh prompt (llama.cpp's server
documentation says `cache_prompt` "can cause nondeterministic results"), so the answer
depends on which request came before it. Deterministic mode gives the embedded server one
slot, lets one request reach the backend at a time, and turns the prompt cache off for
each request (`cache_prompt: false`), so every request is decoded alone and from scratch.
Hosted APIs and vLLM make no such promise; for them the mode only serialises requests.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from aisle.llm import load_chat_model, parse_spec
from aisle.settings import get_settings

__all__ = ["DETERMINISTIC", "decoding_key", "load_model"]

# What the answer key records for deterministic mode. (The first version of the mode kept
# the prompt cache, "one-request-at-a-time", and was not reproducible; no kept run used it.)
DETERMINISTIC = "one-request-at-a-time, no prompt cache"


def load_model(spec: str, *, deterministic: bool) -> BaseChatModel:
    """The chat model for an eval: when deterministic, one slot, one request in flight,
    and (on the embedded server) no prompt-cache reuse."""
    if not deterministic:
        return load_chat_model(spec)
    settings = get_settings().model_copy(update={"local_parallel": 1})
    extra: dict[str, Any] = {}
    if parse_spec(spec)[0] == "local":
        extra["extra_body"] = {"cache_prompt": False}
    return load_chat_model(spec, settings=settings, max_concurrency=1, **extra)


def decoding_key(deterministic: bool) -> dict[str, Any]:
    """What an answer key records about decoding. Runs before the mode existed batched
    requests and have no such entry, so their keys (and folders) are unchanged.

    Example:
        >>> decoding_key(True), decoding_key(False)
        ({'decoding': 'one-request-at-a-time, no prompt cache'}, {})
    """
    return {"decoding": DETERMINISTIC} if deterministic else {}
