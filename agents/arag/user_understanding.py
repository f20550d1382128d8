"""User Understanding Agent: long-term and session preferences from the history."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from aisle.agents._role import Domain, Role

__all__ = ["USER_UNDERSTANDING", "UserProfile", "understand_user"]


class UserProfile(BaseModel):
    """What a shopper likes, inferred from their history."""

    long_term: str = Field(max_length=300,
                           description="Lasting preferences across the whole history.")
    session: str = Field(max_length=200,
                         description="What the most recent items suggest they want next.")

    def text(self) -> str:
        return f"Long-term: {self.long_term}\nRight now: {self.session}"


# Budget a token per character of both strings at their maximum length (a small model
# looping on digits spends about that), so the schema, not max_tokens, ends them: a
# truncated string is invalid JSON.
USER_UNDERSTANDING: Role[UserProfile] = Role(
    "user_understanding", "arag/user_understanding.j2", UserProfile, max_tokens=600)


async def understand_user(model: BaseChatModel, history: Sequence[str], *,
                          domain: Domain | None = None) -> UserProfile:
    """Summarise a shopper's preferences from their item titles (oldest first).

    Raises:
        StructuredOutputError: the model's answer did not validate after a repair turn.
    """
    answer = await USER_UNDERSTANDING.ask(model, domain=domain, history=list(history))
    return answer.value
