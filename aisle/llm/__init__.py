"""Model backends: one way to get a chat model, one way to ask it for a validated answer.

Example:
    >>> from aisle.llm import load_chat_model
    >>> model = load_chat_model("fake", responses=["ok"])
    >>> model.invoke("hi").content
    'ok'
"""

from aisle.llm._capabilities import Capabilities, capabilities_of
from aisle.llm._chat import AisleChatModel
from aisle.llm._loader import BACKENDS, get_cache, load_chat_model, parse_spec
from aisle.llm._retry import ConcurrencyLimiter, RetryPolicy, RetryStats
from aisle.llm.cache import SQLiteCache
from aisle.llm.fake import FakeChatModel
from aisle.llm.logprobs import TokenLogprob, choice_probabilities, token_logprobs
from aisle.llm.registry import REGISTRY, LocalModel, get_model
from aisle.llm.structured import (
    StructuredAnswer,
    ainvoke_structured,
    invoke_structured,
    parse_structured,
)
from aisle.llm.usage import AgentUsage, CallRecord, UsageTracker, track_usage
from aisle.llm.vllm import VLLMServer, VLLMServerConfig

__all__ = [
    "BACKENDS",
    "REGISTRY",
    "AgentUsage",
    "AisleChatModel",
    "CallRecord",
    "Capabilities",
    "ConcurrencyLimiter",
    "FakeChatModel",
    "LocalModel",
    "RetryPolicy",
    "RetryStats",
    "SQLiteCache",
    "StructuredAnswer",
    "TokenLogprob",
    "UsageTracker",
    "VLLMServer",
    "VLLMServerConfig",
    "ainvoke_structured",
    "capabilities_of",
    "choice_probabilities",
    "get_cache",
    "get_model",
    "invoke_structured",
    "load_chat_model",
    "parse_spec",
    "parse_structured",
    "token_logprobs",
    "track_usage",
]
