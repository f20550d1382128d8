"""The length check of a carousel title: deterministic code, never an LLM.

A limit is a number of words, of characters, or both. Words are whitespace-separated
tokens, every one of them counted (a lone `&` or `-` is a word too: the strict reading
of a hard limit); characters are Unicode code points of the cleaned title. A title is
checked as `clean_title` leaves it, and that cleaned text is what the graph returns,
so the check holds on the returned title itself.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["LengthCheck", "LengthLimit", "check_length", "clean_title", "count_words"]

_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"
_SPACE = re.compile(r"\s+")


class LengthLimit(BaseModel):
    """A title's hard length limit: at most `max_words` words and/or `max_chars`
    characters (at least one of them; at most 20 words and 80 characters, the longest
    title the agents' answer schemas accept).

    Example:
        >>> LengthLimit(max_words=5).describe()
        'at most 5 words'
        >>> LengthLimit(max_words=4, max_chars=30).describe()
        'at most 4 words and 30 characters'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_words: int | None = Field(None, ge=1, le=20)
    max_chars: int | None = Field(None, ge=1, le=80)

    @model_validator(mode="after")
    def _one_of(self) -> LengthLimit:
        if self.max_words is None and self.max_chars is None:
            raise ValueError("a length limit needs max_words or max_chars (or both)")
        return self

    def describe(self) -> str:
        """The limit in words, as the prompts state it."""
        parts = []
        if self.max_words is not None:
            parts.append(f"{self.max_words} word{'s' if self.max_words != 1 else ''}")
        if self.max_chars is not None:
            parts.append(f"{self.max_chars} character{'s' if self.max_chars != 1 else ''}")
        return "at most " + " and ".join(parts)


class LengthCheck(BaseModel):
    """The outcome of checking one title against a limit.

    Attributes:
        words: its word count.
        chars: its character count.
        ok: within every part of the limit (and not empty).
        feedback: what to change, in words a refiner reads ("" when ok).
    """

    model_config = ConfigDict(frozen=True)

    words: int
    chars: int
    ok: bool
    feedback: str


def clean_title(text: str) -> str:
    """A model's title as shown and checked: one line, single spaces, without wrapping
    quotes, a `Title:` label or a trailing full stop.

    Example:
        >>> clean_title('  "Title: Cozy   Winter Knits."\\n')
        'Cozy Winter Knits'
    """
    title = _SPACE.sub(" ", text).strip()
    for _ in range(2):  # `"Title: x"` and `Title: "x"` alike
        title = title.strip(_QUOTES + " ")
        title = re.sub(r"^(carousel\s+)?title\s*:\s*", "", title, flags=re.IGNORECASE)
    return title[:-1].rstrip() if title.endswith(".") and not title.endswith("..") else title


def count_words(title: str) -> int:
    """Whitespace-separated tokens.

    Example:
        >>> count_words("Rock & Roll  Tees")
        4
    """
    return len(title.split())


def check_length(title: str, limit: LengthLimit) -> LengthCheck:
    """Check a (cleaned) title against `limit`.

    Example:
        >>> check_length("Warm wool socks for hiking", LengthLimit(max_words=3)).feedback
        'The title has 5 words; the limit is 3: remove at least 2 words.'
        >>> check_length("Hiking socks", LengthLimit(max_words=3, max_chars=20)).ok
        True
    """
    words, chars = count_words(title), len(title)
    notes = []
    if not title:
        notes.append("The title is empty.")
    if limit.max_words is not None and words > limit.max_words:
        over = words - limit.max_words
        notes.append(f"The title has {words} words; the limit is {limit.max_words}: "
                     f"remove at least {over} word{'s' if over != 1 else ''}.")
    if limit.max_chars is not None and chars > limit.max_chars:
        over = chars - limit.max_chars
        notes.append(f"The title has {chars} characters; the limit is {limit.max_chars}: "
                     f"cut at least {over} character{'s' if over != 1 else ''}.")
    return LengthCheck(words=words, chars=chars, ok=not notes, feedback=" ".join(notes))
