"""A deterministic text embedding for tests: no model, similar strings get similar
vectors."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["trigram_embed"]


def trigram_embed(texts: Sequence[str], dim: int = 256) -> npt.NDArray[np.float32]:
    """Hashed character trigrams of the lower-cased text, L2-normalised.

    Example:
        >>> v = trigram_embed(["sony a7", "sony a7 ii", "lego"])
        >>> bool(v[0] @ v[1] > v[0] @ v[2])
        True
    """
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        t = f"  {text.lower()}  "
        for k in range(len(t) - 2):
            h = int(hashlib.md5(t[k:k + 3].encode()).hexdigest()[:8], 16)
            out[i, h % dim] += 1.0
        n = np.linalg.norm(out[i])
        if n:
            out[i] /= n
    return out
