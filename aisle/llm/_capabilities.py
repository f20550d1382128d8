"""What a backend can do, recorded as flags that agents consult."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

__all__ = ["Capabilities", "capabilities_of"]


@dataclass(frozen=True)
class Capabilities:
    """Features of a chat backend that change how an agent should call it.

    Attributes:
        json_schema: constrained decoding to a JSON schema (`response_format`).
        logprobs: per-token log-probabilities (`logprobs`, `top_logprobs`).
        tool_calls: native tool / function calling.
        max_top_logprobs: the largest `top_logprobs` the backend accepts.
        refused_schema_keywords: JSON Schema keywords the backend rejects in
            `response_format` (an HTTP 400); they are left out of the schema sent for
            decoding, and the answer is still validated against the whole schema.
    """

    json_schema: bool = False
    logprobs: bool = False
    tool_calls: bool = False
    max_top_logprobs: int = 0
    refused_schema_keywords: tuple[str, ...] = ()


# A chat model that aisle did not build (a user's own `BaseChatModel`): assume the
# least, so agents fall back to prompted JSON and generated scores.
_UNKNOWN = Capabilities()


def capabilities_of(model: BaseChatModel) -> Capabilities:
    """The capabilities of any chat model.

    Models built by `load_chat_model` carry their backend's flags; any other
    LangChain chat model gets conservative defaults (no constrained decoding,
    no logprobs), which every agent supports.

    Example:
        >>> from aisle.llm import FakeChatModel
        >>> capabilities_of(FakeChatModel(responses=["hi"])).json_schema
        False
    """
    caps = getattr(model, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else _UNKNOWN
