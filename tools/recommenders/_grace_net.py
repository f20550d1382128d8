"""GRACE's network: a decoder-only transformer over item token paths, with dense or
journey-aware sparse attention (JSA).

A history of `n` items is one token sequence: the start token, then each item's path
of `depth` tokens (attribute tokens, then semantic-ID codes). Segment 0 is the start
token; segment `s + 1` is the `s`-th item. Each token's embedding is its token's, plus
its segment's position, plus its slot within the path (pre-norm blocks, GELU
feed-forward, output scores tied to the token embeddings).

**JSA** (`jsa_attention`), for a token of item segment `s`:

- the start token (the journey's context) always;
- the tokens of its own segment up to itself (causal);
- every token of the `window` segments before it;
- one compressed summary of each older segment (`s' < s - window`): the mean of that
  segment's keys and values.

`jsa_pattern` writes the same rule as a boolean matrix over the tokens plus one column
per summary; `masked_attention` applies any such matrix (the reference the tests hold
the fast path to). When `window` covers every earlier segment no summary is used and JSA
equals dense causal attention. `attention_pairs` counts query-key pairs analytically;
`attention_flops` turns them into FLOPs.

Decoding (`GraceNet.context`, `GraceNet.decode`) reads the history once and keeps, per
layer, the keys and values the next item's tokens may attend to (under JSA: the start
token, the window's tokens and the summaries; dense: every history token), so beams
and candidates share one history pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from aisle.tools.recommenders._sasrec_net import init_weights

__all__ = ["DecodeContext", "GraceNet", "attention_flops", "attention_pairs",
           "jsa_attention", "jsa_pattern", "masked_attention"]

Attention = Literal["jsa", "dense"]


def jsa_pattern(n_items: int, depth: int, window: int) -> torch.Tensor:
    """`(L, L + n_items)` booleans, `L = 1 + n_items * depth`: which tokens (first `L`
    columns) and which segment summaries (last `n_items` columns) each token attends.

    Example (two items of two tokens, window 0: the second item's tokens see the start
    token, their own segment causally, and the first item's summary):
        >>> jsa_pattern(2, 2, 0).int().tolist()
        [[1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0], [1, 0, 0, 1, 0, 1, 0], [1, 0, 0, 1, 1, 1, 0]]
    """  # noqa: E501
    length = 1 + n_items * depth
    out = torch.zeros(length, length + n_items, dtype=torch.bool)
    out[:, 0] = True
    for s in range(n_items):
        for e in range(depth):
            row = 1 + s * depth + e
            first = max(0, s - window)
            out[row, 1 + first * depth: row + 1] = True
            out[row, length: length + max(0, s - window)] = True
    return out


def _summaries(k: torch.Tensor, v: torch.Tensor, depth: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    b, h, length, dh = k.shape
    n = (length - 1) // depth
    ks = k[:, :, 1:].reshape(b, h, n, depth, dh).mean(3)
    vs = v[:, :, 1:].reshape(b, h, n, depth, dh).mean(3)
    return ks, vs


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     pattern: torch.Tensor, depth: int) -> torch.Tensor:
    """Attention of `(B, H, L, dh)` queries over the tokens plus the segment summaries,
    restricted to `pattern` (`jsa_pattern`'s layout): the reference JSA is held to."""
    ks, vs = _summaries(k, v, depth)
    keys, values = torch.cat([k, ks], dim=2), torch.cat([v, vs], dim=2)
    scores = q @ keys.transpose(-1, -2) * q.shape[-1] ** -0.5
    scores = scores.masked_fill(~pattern, float("-inf"))
    return torch.softmax(scores, dim=-1) @ values


BLOCK_SEGMENTS = 16
"""Item segments whose queries `jsa_attention` handles in one block."""


def _block_mask(first: int, stop: int, lo: int, n_summaries: int, depth: int, window: int,
                device: torch.device) -> torch.Tensor:
    """`(rows, 1 + tokens + summaries)` for the queries of segments `first..stop-1` over
    the start token, the tokens of segments `lo..stop-1` and summaries `0..n-1`."""
    q_seg = torch.arange(first, stop, device=device).repeat_interleave(depth)[:, None]
    q_off = torch.arange(depth, device=device).repeat(stop - first)[:, None]
    k_seg = torch.arange(lo, stop, device=device).repeat_interleave(depth)[None, :]
    k_off = torch.arange(depth, device=device).repeat(stop - lo)[None, :]
    tokens = (k_seg >= q_seg - window) & ((k_seg < q_seg) | ((k_seg == q_seg) & (k_off <= q_off)))
    summaries = torch.arange(n_summaries, device=device)[None, :] < q_seg - window
    start = torch.ones(len(q_seg), 1, dtype=torch.bool, device=device)
    return torch.cat([start, tokens, summaries], dim=1)


def jsa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, depth: int,
                  window: int) -> torch.Tensor:
    """Journey-aware sparse attention (see the module docstring) of `(B, H, L, dh)`
    tensors, `L = 1 + n * depth`, computing only what it uses: queries go in blocks of
    `BLOCK_SEGMENTS` item segments, each over the start token, the tokens from `window`
    segments before the block to its end, and the summaries older than that (a
    triangle: a block never scores the summaries no query of it may see)."""
    length, dh = q.shape[2], q.shape[3]
    n = (length - 1) // depth
    if n == 0:
        return v.clone()
    scale = dh ** -0.5
    k_sum, v_sum = _summaries(k, v, depth)
    out = [v[:, :, :1]]  # the start token sees only itself
    for first in range(0, n, BLOCK_SEGMENTS):
        stop = min(n, first + BLOCK_SEGMENTS)
        lo = max(0, first - window)
        n_summaries = max(0, stop - 1 - window)
        rows = slice(1 + first * depth, 1 + stop * depth)
        cols = slice(1 + lo * depth, 1 + stop * depth)
        keys = torch.cat([k[:, :, :1], k[:, :, cols], k_sum[:, :, :n_summaries]], dim=2)
        values = torch.cat([v[:, :, :1], v[:, :, cols], v_sum[:, :, :n_summaries]], dim=2)
        mask = _block_mask(first, stop, lo, n_summaries, depth, window, q.device)
        scores = (q[:, :, rows] @ keys.transpose(-1, -2)) * scale
        scores.masked_fill_(~mask, float("-inf"))
        out.append(torch.softmax(scores, dim=-1) @ values)
    return torch.cat(out, dim=2)


def attention_pairs(n_items: int, depth: int, window: int, mode: Attention) -> int:
    """Query-key pairs one head attends over a history of `n_items` items (summaries
    count as keys).

    Example:
        >>> attention_pairs(2, 2, 0, "dense"), attention_pairs(2, 2, 0, "jsa")
        (15, 13)
    """
    length = 1 + n_items * depth
    if mode == "dense":
        return length * (length + 1) // 2
    total = 1  # the start token sees itself
    for s in range(n_items):
        seen_before = min(s, window) * depth
        summaries = max(0, s - window)
        for e in range(depth):
            total += 1 + seen_before + (e + 1) + summaries
    return total


def attention_flops(n_items: int, depth: int, window: int, hidden: int, layers: int,
                    mode: Attention) -> int:
    """Attention FLOPs of one forward pass: 2 multiply-adds per pair and dimension for
    the scores and again for the weighted values (`4 * hidden` per pair, all heads),
    plus, for JSA, the summaries' means (`2 * hidden` per history token).

    Example:
        >>> attention_flops(2, 2, 0, 8, 1, "dense"), attention_flops(2, 2, 0, 8, 1, "jsa")
        (480, 480)
    """
    pairs = attention_pairs(n_items, depth, window, mode)
    summaries = 2 * hidden * n_items * depth if mode == "jsa" else 0
    return layers * (4 * hidden * pairs + summaries)


@dataclass
class DecodeContext:
    """What the next item's tokens may attend to, per layer: keys and values
    `(B, H, C, dh)` with a validity mask `(B, C)`, and each row's next segment index."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    mask: torch.Tensor
    next_segment: torch.Tensor
    last_hidden: torch.Tensor


class _Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, mode: Attention, window: int,
                 depth: int) -> None:
        super().__init__()
        self.heads, self.mode, self.window, self.depth = heads, mode, window, depth
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        *lead, hidden = x.shape
        q, k, v = self.qkv(x).reshape(*lead, 3, self.heads, hidden // self.heads).unbind(-3)
        return q, k, v  # (..., H, dh)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, length, hidden = x.shape
        q, k, v = (t.transpose(1, 2) for t in self._split(x))  # (B, H, L, dh)
        if self.mode == "dense":
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            o = jsa_attention(q, k, v, self.depth, self.window)
        return self.out(o.transpose(1, 2).reshape(b, length, hidden)), k, v

    def decode(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
        """New tokens `(B, R, t, hidden)` over the context plus their own earlier
        tokens (each of the `R` rows is one path)."""
        b, r, t, hidden = x.shape
        q, k, v = (z.permute(0, 3, 1, 2, 4) for z in self._split(x))  # (B, H, R, t, dh)
        dh = q.shape[-1]
        s_ctx = (q.reshape(b, self.heads, r * t, dh) @ keys.transpose(-1, -2)).reshape(
            b, self.heads, r, t, -1)
        s_ctx = s_ctx.masked_fill(~mask[:, None, None, None, :], float("-inf"))
        s_own = q @ k.transpose(-1, -2)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        s_own = s_own.masked_fill(~causal, float("-inf"))
        p = torch.softmax(torch.cat([s_ctx, s_own], dim=-1) * dh ** -0.5, dim=-1)
        c = keys.shape[2]
        o = ((p[..., :c].reshape(b, self.heads, r * t, c) @ values).reshape(
            b, self.heads, r, t, dh) + p[..., c:] @ v)
        out: torch.Tensor = self.out(o.permute(0, 2, 3, 1, 4).reshape(b, r, t, hidden))
        return out


class _Block(nn.Module):
    def __init__(self, hidden: int, heads: int, inner: int, dropout: float,
                 mode: Attention, window: int, depth: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attn = _Attention(hidden, heads, mode, window, depth)
        self.norm2 = nn.LayerNorm(hidden)
        self.ff = nn.Sequential(nn.Linear(hidden, inner), nn.GELU(), nn.Linear(inner, hidden))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, k, v = self.attn(self.norm1(x))
        x = x + self.drop(a)
        return x + self.drop(self.ff(self.norm2(x))), k, v

    def decode(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn.decode(self.norm1(x), keys, values, mask))
        out: torch.Tensor = x + self.drop(self.ff(self.norm2(x)))
        return out


class GraceNet(nn.Module):
    """The decoder (see the module docstring)."""

    def __init__(self, vocab: int, *, depth: int, max_len: int, hidden: int, layers: int,
                 heads: int, inner: int, dropout: float, attention: Attention,
                 window: int) -> None:
        super().__init__()
        self.depth, self.window, self.mode = depth, window, attention
        self.token = nn.Embedding(vocab, hidden, padding_idx=0)
        self.segment = nn.Embedding(max_len + 2, hidden)
        self.slot = nn.Embedding(depth + 1, hidden)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(hidden, heads, inner, dropout, attention, window,
                                           depth) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        init_weights(self)

    def _positions(self, length: int, device: torch.device) -> tuple[torch.Tensor,
                                                                     torch.Tensor]:
        j = torch.arange(length, device=device)
        segment = torch.where(j == 0, 0, 1 + (j - 1) // self.depth)
        slot = torch.where(j == 0, self.depth, (j - 1) % self.depth)
        return segment, slot

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(B, 1 + n * depth)` tokens (start token first, right-padded with whole
        padding segments) -> hidden states `(B, L, hidden)`."""
        return self._run(tokens)[0]

    def _run(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor,
                                                                           torch.Tensor]]]:
        segment, slot = self._positions(tokens.shape[1], tokens.device)
        x = self.drop(self.token(tokens) + self.segment(segment) + self.slot(slot))
        kv = []
        for block in self.blocks:
            x, k, v = block(x)
            kv.append((k, v))
        return self.norm(x), kv

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over the vocabulary (tied to the token embeddings)."""
        return hidden @ self.token.weight.T

    def context(self, tokens: torch.Tensor, n_items: torch.Tensor) -> DecodeContext:
        """Read histories (`tokens` as for `forward`; row `b` holds `n_items[b] >= 1`
        items) and keep what the next item's tokens attend to."""
        hidden, kv = self._run(tokens)
        b = tokens.shape[0]
        rows = torch.arange(b, device=tokens.device)
        last = hidden[rows, n_items * self.depth]
        length = tokens.shape[1]
        n = (length - 1) // self.depth
        keys, values = [], []
        if self.mode == "dense":
            mask = torch.arange(length, device=tokens.device)[None, :] <= \
                (n_items * self.depth)[:, None]
            for k, v in kv:
                keys.append(k)
                values.append(v)
        else:
            w = self.window
            seg = n_items[:, None] - w + torch.arange(w, device=tokens.device)[None, :]
            seg_ok = seg >= 0
            seg = seg.clamp(min=0)
            tok_ok = seg_ok[:, :, None].expand(b, w, self.depth).reshape(b, w * self.depth)
            older = torch.arange(n, device=tokens.device)[None, :] < (n_items - w)[:, None]
            mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=tokens.device),
                              tok_ok, older], dim=1)
            for k, v in kv:
                h, dh = k.shape[1], k.shape[-1]
                parts_k, parts_v = [k[:, :, :1]], [v[:, :, :1]]
                ks = k[:, :, 1:].reshape(b, h, n, self.depth, dh)
                vs = v[:, :, 1:].reshape(b, h, n, self.depth, dh)
                gather = seg[:, None, :, None, None].expand(b, h, w, self.depth, dh)
                parts_k.append(ks.gather(2, gather).reshape(b, h, w * self.depth, dh))
                parts_v.append(vs.gather(2, gather).reshape(b, h, w * self.depth, dh))
                parts_k.append(ks.mean(3))
                parts_v.append(vs.mean(3))
                keys.append(torch.cat(parts_k, dim=2))
                values.append(torch.cat(parts_v, dim=2))
        return DecodeContext(keys, values, mask, n_items + 1, last)

    def decode(self, ctx: DecodeContext, tokens: torch.Tensor) -> torch.Tensor:
        """Hidden states `(B, R, t, hidden)` of `R` partial paths `(B, R, t)` of the
        next item, each over its row's history."""
        t = tokens.shape[-1]
        x = (self.token(tokens) + self.segment(ctx.next_segment)[:, None, None, :]
             + self.slot(torch.arange(t, device=tokens.device))[None, None])
        x = self.drop(x)
        for block, k, v in zip(self.blocks, ctx.keys, ctx.values, strict=True):
            x = block.decode(x, k, v, ctx.mask)  # type: ignore[operator]
        out: torch.Tensor = self.norm(x)
        return out
