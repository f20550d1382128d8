"""What every CARTS agent shares: how item titles are shown to a model."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["MAX_ITEM_CHARS", "TITLE_MAX_CHARS", "shown_items"]

MAX_ITEM_CHARS = 200
"""The most characters of one item title a prompt shows (Amazon titles run to 748; the
part a carousel title could use comes first). Longer titles are cut at a word boundary
and end with an ellipsis."""

TITLE_MAX_CHARS = 80
"""The longest title an answer schema accepts: a bound that ends a looping answer (or a
copied 200-character product title) and the longest limit `LengthLimit` allows. The
limit itself is checked by code (`check_length`)."""


def shown_items(items: Sequence[str], max_chars: int = MAX_ITEM_CHARS) -> list[str]:
    """The item titles as prompts show them: single-spaced and cut to `max_chars`.

    Example:
        >>> shown_items(["Wool   socks", "x" * 10 + " yyyy"], max_chars=12)
        ['Wool socks', 'xxxxxxxxxx…']
    """
    out = []
    for title in items:
        text = re.sub(r"\s+", " ", title).strip()
        if len(text) > max_chars:
            cut = text[:max_chars - 1]
            space = cut.rfind(" ")
            text = (cut[:space] if space > max_chars // 2 else cut).rstrip() + "\u2026"
        out.append(text)
    return out
