"""User Understanding Agent: long-term and session preferences from the history."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from aisle.llm import ainvoke_structured
from aisle.prompts import render

__all__ = ["UserProfile", "understand_user"]


class UserProfile(BaseModel):
    """What a shopper likes, inferred from their history."""

    long_term: str = Field(max_length=300,
                           description="Lasting preferences across the whole history.")
    session: str = Field(max_length=200,
                         description="What the most recent items suggest they want next.")

    def text(self) -> str:
        return f"Long-term: {self.long_term}\nRight now: {self.session}"


async def understand_user(model: BaseChatModel, history: Sequence[str]) -> UserProfile:
    """Summarise a shopper's preferences from their item titles (oldest first).

    Raises:
        StructuredOutputError: the model's answer did not validate after a repair turn.
    """
    prompt = render("arag/user_understanding.j2", history=list(history))
    # Budget a token per character of both strings at their maximum length (a small
    # model looping on digits spends about that), so the schema, not max_tokens, ends
    # them: a truncated string is invalid JSON.
    answer = await ainvoke_structured(model, [HumanMessage(prompt)], UserProfile,
                                      agent="user_understanding", max_tokens=600)
    return answer.value
