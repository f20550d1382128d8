"""Title generator: n candidate titles from the items' features (Generation-Augmented
Generation: the generator sees what the feature extractor found, not the product titles,
which a small model otherwise copies; it sees the titles only when no feature was found)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, create_model

from aisle.agents._role import Domain, Role
from aisle.agents.carts._common import TITLE_MAX_CHARS
from aisle.agents.carts.features import ItemFeatures
from aisle.agents.carts.length import LengthLimit, clean_title

__all__ = ["TITLE_GENERATOR", "generate_titles", "titles_schema"]


@lru_cache(maxsize=16)
def titles_schema(n: int) -> type[BaseModel]:
    """`{"title_1": str, ..., "title_n": str}`: one field per title, so constrained
    decoding writes exactly n (a list's length is not enforced by every backend).

    Example:
        >>> list(titles_schema(2).model_fields)
        ['title_1', 'title_2']
    """
    fields = {f"title_{i}": (str, Field(max_length=TITLE_MAX_CHARS,
                                        description=f"Candidate title {i}."))
              for i in range(1, n + 1)}
    return create_model(f"Titles{n}", __config__=ConfigDict(extra="forbid"),  # type: ignore[call-overload,no-any-return]
                        **fields)


TITLE_GENERATOR: Role[BaseModel] = Role(
    "title_generator", "carts/title_generator.j2", None,
    max_tokens=lambda schema: 16 + 40 * len(schema.model_fields), temperature=0.0)


async def generate_titles(model: BaseChatModel, items: Sequence[str],
                          features: ItemFeatures, limit: LengthLimit, n: int, *,
                          domain: Domain | None = None) -> list[str]:
    """Up to n distinct, cleaned, non-empty candidate titles (duplicates dropped,
    ignoring case)."""
    answer = await TITLE_GENERATOR.ask(
        model, domain=domain, schema=titles_schema(n), items=list(items),
        shared=features.shared, distinguishing=features.distinguishing, n=n,
        n_items=len(items), limit=limit.describe())
    seen: set[str] = set()
    out = []
    for raw in answer.value.model_dump().values():
        title = clean_title(str(raw))
        if title and title.lower() not in seen:
            seen.add(title.lower())
            out.append(title)
    return out
