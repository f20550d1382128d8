"""Model backends: one way to get a chat model, one way to ask it for a validated answer.

Backends are providers in a registry (`providers()`); `register_provider` adds one.

Example:
    >>> from aisle.llm import load_chat_model
    >>> model = load_chat_model("fake", responses=["ok"])
    >>> model.invoke("hi").content
    'ok'
"""

from aisle.llm._capabilities import Capabilities, capabilities_of
from aisle.llm._chat import AisleChatModel
from aisle.llm._loader import get_cache, load_chat_model, parse_spec
from aisle.llm._retry import ConcurrencyLimiter, RetryPolicy, RetryStats
from aisle.llm.cache import SQLiteCache
from aisle.llm.fake import FakeChatModel
from aisle.llm.logprobs import TokenLogprob, choice_probabilities, token_logprobs
from aisle.llm.providers import (
    FakeProvider,
    LocalProvider,
    ModelOptions,
    OpenAICompatibleProvider,
    OpenAIProvider,
    Provider,
    VLLMProvider,
    get_provider,
    providers,
    register_provider,
    unregister_provider,
)
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
    "REGISTRY",
    "AgentUsage",
    "AisleChatModel",
    "CallRecord",
    "Capabilities",
    "ConcurrencyLimiter",
    "FakeChatModel",
    "FakeProvider",
    "LocalModel",
    "LocalProvider",
    "ModelOptions",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "Provider",
    "RetryPolicy",
    "RetryStats",
    "SQLiteCache",
    "StructuredAnswer",
    "TokenLogprob",
    "UsageTracker",
    "VLLMProvider",
    "VLLMServer",
    "VLLMServerConfig",
    "ainvoke_structured",
    "capabilities_of",
    "choice_probabilities",
    "get_cache",
    "get_model",
    "get_provider",
    "invoke_structured",
    "load_chat_model",
    "parse_spec",
    "parse_structured",
    "providers",
    "register_provider",
    "token_logprobs",
    "track_usage",
    "unregister_provider",
]
