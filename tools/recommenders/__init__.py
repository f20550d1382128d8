"""Recommenders agents and evals call: one interface (`Recommender`), four models.

- `SASRec`: the self-attentive sequential recommender (PyTorch; full-softmax
  cross-entropy over the catalog; length-bucketed batches; early stopping on
  validation NDCG@10; resumable per-epoch checkpoints).
- `ItemKNN`: co-occurrence item-kNN (cosine over users).
- `Popularity`: the most interacted-with items.
- `GRACE`: a generative recommender (semantic IDs, hybrid attribute tokens, journey-
  aware sparse attention, trie-constrained beam search; `grace`), which also explains
  its recommendations (`ExplainingRecommender`).

Data: `load_s3rec` reads the S3-Rec sequence format (amazon-seq: Beauty, Sports);
`leave_one_out` splits it (last item test, second-to-last validation).
`train_model` trains once per dataset and config under `AISLE_HOME/rec/` and loads the
result afterwards. The LLMRank Games loader lives with the evals
(`aisle.evals.rec_data`), beside the Games protocol it reuses.

`recommender_tools(model)` turns any fitted recommender into the LangChain tools
`recommend_items` and `score_items`, whose errors come back as results an agent reads.

`SASRec` and `GRACE` are imported on first use (they import torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aisle.tools.recommenders.agent_tools import RecommenderToolError, recommender_tools
from aisle.tools.recommenders.base import (
    CatalogRecommender,
    EpochLog,
    ExplainingRecommender,
    FitProgress,
    Recommender,
    RecommenderInputError,
    ScoredItem,
    TrainingRecord,
    UnknownItemError,
)
from aisle.tools.recommenders.config import (
    CLASSIC_MODELS,
    GRACEConfig,
    ItemKNNConfig,
    ModelConfigs,
    ModelKind,
    SASRecConfig,
)
from aisle.tools.recommenders.data import (
    RecDataError,
    SequenceDataset,
    Split,
    SplitConfig,
    leave_one_out,
    load_s3rec,
)
from aisle.tools.recommenders.itemknn import ItemKNN
from aisle.tools.recommenders.popularity import Popularity
from aisle.tools.recommenders.training import (
    TrainedModel,
    checkpoint_dir,
    load_model,
    make_model,
    train_model,
)

if TYPE_CHECKING:
    from aisle.tools.recommenders.grace import GRACE, ItemSide
    from aisle.tools.recommenders.sasrec import SASRec

__all__ = [
    "CLASSIC_MODELS",
    "GRACE",
    "CatalogRecommender",
    "EpochLog",
    "ExplainingRecommender",
    "FitProgress",
    "GRACEConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "ItemSide",
    "ModelConfigs",
    "ModelKind",
    "Popularity",
    "RecDataError",
    "Recommender",
    "RecommenderInputError",
    "RecommenderToolError",
    "SASRec",
    "SASRecConfig",
    "ScoredItem",
    "SequenceDataset",
    "Split",
    "SplitConfig",
    "TrainedModel",
    "TrainingRecord",
    "UnknownItemError",
    "checkpoint_dir",
    "leave_one_out",
    "load_model",
    "load_s3rec",
    "make_model",
    "recommender_tools",
    "train_model",
]


def __getattr__(name: str) -> Any:
    if name == "SASRec":
        from aisle.tools.recommenders.sasrec import SASRec

        return SASRec
    if name in ("GRACE", "ItemSide"):
        from aisle.tools.recommenders import grace

        return getattr(grace, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
