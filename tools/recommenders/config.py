"""The models' names and configs (no torch import: the CLI reads them at start)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CLASSIC_MODELS", "GRACEConfig", "ItemKNNConfig", "ModelConfigs", "ModelKind",
           "SASRecConfig"]


class ModelKind(StrEnum):
    """The recommenders aisle trains (`--model`)."""

    sasrec = "sasrec"
    itemknn = "itemknn"
    pop = "pop"
    grace = "grace"


CLASSIC_MODELS: tuple[ModelKind, ...] = (ModelKind.sasrec, ModelKind.itemknn, ModelKind.pop)
"""What `aisle rec eval` runs without `--model`: GRACE trains for an hour, so it runs
only when asked for."""


def _check_heads(hidden: int, heads: int) -> None:
    if hidden % heads:
        raise ValueError(f"heads ({heads}) must divide hidden ({hidden})")


class SASRecConfig(BaseModel):
    """SASRec's architecture and training knobs (all part of its checkpoint key).

    The architecture is RecBole's SASRec default (hidden 64, 2 layers, 2 heads,
    feed-forward 256, the last 50 items). The training knobs were tuned on Beauty's
    validation split (never its test items; `evals/rec_tune.py`, the curves in
    `evals/results/rec-tuning/`): 512-token batches instead of 2,048 (four times the
    updates per epoch for about the same compute), lr 2e-3 instead of RecBole's 1e-3,
    dropout 0.3 instead of 0.5. After 6 epochs RecBole's lr and dropout reach
    validation NDCG@10 0.0539, these 0.0640. `max_minutes` 30 keeps a training within
    half an hour of a 2-core CPU.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: int = Field(64, ge=1, description="Embedding and hidden size.")
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    inner: int = Field(256, ge=1, description="Feed-forward size.")
    dropout: float = Field(0.3, ge=0, lt=1)
    max_len: int = Field(50, ge=1, description="Most recent items a history keeps.")
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_tokens: int = Field(512, ge=1, description="Token budget of one batch "
                                                      "(sequences x longest).")
    bucketing: bool = Field(True, description="Batch sequences of like length together.")
    max_epochs: int = Field(100, ge=1)
    patience: int = Field(5, ge=1, description="Epochs without a better validation "
                                               "NDCG@10 before stopping.")
    max_minutes: float | None = Field(
        30.0, gt=0, description="Wall-clock budget of the training (training and "
                                "validation, summed over resumed runs): no epoch starts "
                                "that the last epoch's time says would end past it. None: "
                                "no budget.")
    seed: int = 2023

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> Self:
        _check_heads(self.hidden, self.heads)
        return self


class GRACEConfig(BaseModel):
    """The GRACE-style generative recommender's knobs (all part of its checkpoint key).

    Items become token paths: up to `attribute_tokens` attribute tokens (the hybrid
    chain of thought; 0 for the ablation without them), then `code_levels` semantic-ID
    codes from residual k-means with `codebook` centroids per level, then one
    collision-breaking code. A decoder-only transformer reads the history's paths and
    generates the next item's path; `attention` is `jsa` (journey-aware sparse
    attention: own item, `window` previous items, compressed summaries of older items,
    the start token) or `dense` (causal attention over every token). `max_minutes` 60 is
    the 2-core CPU budget; `GRACEConfig.gpu()` is the full budget for a GPU.

    The size (hidden 128, feed-forward 512, 2 layers) was chosen on Beauty's validation
    split (`evals/rec_tune.py --model grace`, `evals/results/rec-tuning/beauty-grace-*`,
    test targets never scored): after 9 epochs SASRec's size (hidden 64, feed-forward
    256; the v1 results) reaches validation NDCG@10 0.0298, hidden 128 0.0372; hidden
    256 learned more slowly per epoch at 2.6 times the time; 4 layers reached 0.0345 at
    1.7 times the time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attribute_tokens: int = Field(2, ge=0, le=8, description="Attribute tokens before "
                                  "the semantic ID (0: the ablation without them).")
    code_levels: int = Field(3, ge=1, le=6, description="Residual k-means levels.")
    codebook: int = Field(256, ge=2, description="Centroids per level.")
    embedding_dim: int = Field(64, ge=2, description="Per part (attributes, "
                               "co-occurrence) of the item embedding quantized when "
                               "items have no titles.")
    attention: Literal["jsa", "dense"] = "jsa"
    window: int = Field(2, ge=0, description="JSA: previous items seen token by token.")
    hidden: int = Field(128, ge=1)
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    inner: int = Field(512, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    max_len: int = Field(50, ge=1, description="Most recent items a history keeps.")
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_tokens: int = Field(4096, ge=1, description="Token budget of one batch.")
    beam: int = Field(20, ge=1, description="Beam width of constrained decoding (the "
                                            "items a full ranking scores).")
    valid_users: int | None = Field(4096, ge=1, description="Validation users beam-"
                                    "searched after each epoch (a seeded sample; None: all).")
    max_epochs: int = Field(100, ge=1)
    patience: int = Field(5, ge=1, description="Epochs without a better validation "
                          "NDCG@10 before training stops (SASRec's 5: at 3, the 4,096-user "
                          "validation's noise stopped the JSA run of Beauty at epoch 12 while "
                          "the dense run, on the same curve, went on to epoch 20).")
    max_minutes: float | None = Field(60.0, gt=0, description="Wall-clock budget of the "
                                      "training, as SASRec's.")
    seed: int = 2023

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> Self:
        _check_heads(self.hidden, self.heads)
        return self

    @classmethod
    def gpu(cls, **changes: Any) -> GRACEConfig:
        """The full budget for a GPU: TIGER-sized (hidden 128, 4 layers, feed-forward
        1,024; TIGER's 6 heads would not divide 128, so 4), the whole validation set, no
        time limit."""
        full: dict[str, Any] = {"hidden": 128, "layers": 4, "heads": 4, "inner": 1024,
                                "batch_tokens": 32768, "valid_users": None,
                                "max_minutes": None}
        return cls(**{**full, **changes})


class ItemKNNConfig(BaseModel):
    """Item-kNN's knobs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    neighbors: int = Field(100, ge=1, description="Most similar items kept per item.")


class ModelConfigs(BaseModel):
    """Every model's config (the ones without knobs have none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sasrec: SASRecConfig = Field(default_factory=SASRecConfig)
    itemknn: ItemKNNConfig = Field(default_factory=ItemKNNConfig)
    grace: GRACEConfig = Field(default_factory=GRACEConfig)

    def of(self, kind: ModelKind) -> dict[str, Any]:
        """`kind`'s config as JSON (`{}` for a model without knobs)."""
        config = getattr(self, kind.value, None)
        return config.model_dump(mode="json") if isinstance(config, BaseModel) else {}
