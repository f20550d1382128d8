"""The models' names and configs (no torch import: the CLI reads them at start)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ItemKNNConfig", "ModelConfigs", "ModelKind", "SASRecConfig"]


class ModelKind(StrEnum):
    """The recommenders aisle trains (`--model`)."""

    sasrec = "sasrec"
    itemknn = "itemknn"
    pop = "pop"


class SASRecConfig(BaseModel):
    """SASRec's architecture and training knobs (all part of its checkpoint key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: int = Field(64, ge=1, description="Embedding and hidden size.")
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    inner: int = Field(256, ge=1, description="Feed-forward size.")
    dropout: float = Field(0.5, ge=0, lt=1)
    max_len: int = Field(50, ge=1, description="Most recent items a history keeps.")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_tokens: int = Field(2048, ge=1, description="Token budget of one batch "
                                                      "(sequences x longest).")
    bucketing: bool = Field(True, description="Batch sequences of like length together.")
    max_epochs: int = Field(100, ge=1)
    patience: int = Field(5, ge=1, description="Epochs without a better validation "
                                               "NDCG@10 before stopping.")
    seed: int = 2023

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> Self:
        if self.hidden % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        return self




class ItemKNNConfig(BaseModel):
    """Item-kNN's knobs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    neighbors: int = Field(100, ge=1, description="Most similar items kept per item.")


class ModelConfigs(BaseModel):
    """Every model's config (the ones without knobs have none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sasrec: SASRecConfig = Field(default_factory=SASRecConfig)
    itemknn: ItemKNNConfig = Field(default_factory=ItemKNNConfig)

    def of(self, kind: ModelKind) -> dict[str, Any]:
        """`kind`'s config as JSON (`{}` for a model without knobs)."""
        config = getattr(self, kind.value, None)
        return config.model_dump(mode="json") if isinstance(config, BaseModel) else {}
