"""What every graph context shares: models given as spec strings and loaded on first
use, so a context is plain JSON (the LangGraph server and Studio pass it that way) and
Python callers may still hand in a `BaseChatModel`."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, PrivateAttr, WithJsonSchema

from aisle.llm import load_chat_model

__all__ = ["GraphContext", "ModelRef"]

ModelRef = Annotated[
    str | BaseChatModel,
    WithJsonSchema({"type": "string", "description": "A model spec, 'provider:model' "
                    "(e.g. 'local:qwen2.5-coder-0.5b', 'openai:gpt-4o-mini')."}),
]
"""A model as a spec string (serialisable) or, from Python, a LangChain chat model."""


class GraphContext(BaseModel):
    """Base of every graph's context: strict (an unknown key is an error, not ignored)
    and able to turn model references into chat models, once each per context."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", frozen=True)

    _models: dict[str, BaseChatModel] = PrivateAttr(default_factory=dict)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    def load_model(self, ref: str | BaseChatModel | None) -> BaseChatModel:
        """The chat model for a reference; None means the settings' default model.

        Loading may start a server and wait for it (blocking): from async code use
        `aload_model`.
        """
        if isinstance(ref, BaseChatModel):
            return ref
        key = ref or ""
        with self._lock:
            model = self._models.get(key)
            if model is None:
                model = self._models[key] = load_chat_model(ref)
            return model

    async def aload_model(self, ref: str | BaseChatModel | None) -> BaseChatModel:
        """`load_model` off the event loop (a first load may start a model server)."""
        if isinstance(ref, BaseChatModel):
            return ref
        model = self._models.get(ref or "")
        return model if model is not None else await asyncio.to_thread(self.load_model, ref)
