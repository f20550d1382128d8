"""SASRec's network (Kang & McAuley, ICDM 2018), as RecBole builds it: item plus
learned position embeddings, layer norm and dropout, a causal post-norm transformer
encoder (GELU feed-forward), and scores as dot products with the same item embedding
table (shared input/output embeddings).

Sequences are right-padded with item 0; positions count from each sequence's start.
Under the causal mask a real position never sees the padding after it, so no padding
mask is needed.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SASRecNet", "init_weights"]


def init_weights(module: nn.Module) -> None:
    """RecBole's initialisation: N(0, 0.02) weights, zero biases, unit layer norms (any
    parameter named `norm` is left as built)."""
    for name, param in module.named_parameters():
        if "norm" in name:
            continue
        if param.dim() > 1:
            nn.init.normal_(param, 0.0, 0.02)
        else:
            nn.init.zeros_(param)


class SASRecNet(nn.Module):
    """The encoder; `hidden_states` gives one vector per position."""

    def __init__(self, n_items: int, *, hidden: int, layers: int, heads: int, inner: int,
                 dropout: float, max_len: int) -> None:
        super().__init__()
        self.item = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.position = nn.Embedding(max_len, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(hidden, heads, inner, dropout, activation="gelu",
                                           batch_first=True, layer_norm_eps=1e-12)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self._init_weights()

    def _init_weights(self) -> None:
        init_weights(self)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def hidden_states(self, seqs: torch.Tensor) -> torch.Tensor:
        """`(batch, length)` item indices -> `(batch, length, hidden)`."""
        length = seqs.size(1)
        positions = torch.arange(length, device=seqs.device)
        x = self.item(seqs) + self.position(positions)[None, :, :]
        x = self.dropout(self.norm(x))
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=seqs.device)
        out: torch.Tensor = self.encoder(x, mask=mask, is_causal=True)
        return out

    def item_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Dot products of `(..., hidden)` vectors with every item embedding (padding
        included at column 0)."""
        return hidden @ self.item.weight.T
