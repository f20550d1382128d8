"""Any fitted recommender as LangChain tools an agent can call.

`recommender_tools(model)` returns two `StructuredTool`s that any LangChain or
LangGraph agent can bind (`chat_model.bind_tools(tools)`, a `ToolNode`):

- `recommend_items(history, k)`: the top `k` catalog items for a user's history.
- `score_items(history, candidate_ids)`: a score for each candidate, best first.

A recommender that explains itself (`ExplainingRecommender`: GRACE) adds to each item
its `reasoning`, the attribute path it generates before the item's code, with the
probability of each step, so an agent can say why an item was recommended.

Their pydantic argument schemas and descriptions are what the model reads. Every result
is one JSON object (a string) with `"status": "ok"` or `"status": "error"`.

Errors are tool results, not exceptions: a graph keeps running, and the model reads
what went wrong and how to fix it.

- Arguments that break the schema (`k` out of range, an empty history, a missing
  field) come back as `{"status": "error", "error": "invalid_arguments", ...}`, through
  LangChain's `handle_validation_error`.
- Ids the model does not know: a history or candidate list with some unknown ids is
  answered from the known ones, and the result names the unknown ids
  (`ignored_history_ids`, `unknown_ids`); when none is known the result is an error
  (`"error": "unknown_ids"`) naming them, through `ToolException` and
  `handle_tool_error`. An unknown id that is exactly a title (any case) gets a hint
  with that title's id.

In a LangChain `ToolMessage` an error also sets `status="error"`. Bugs (anything but
the recommender's own input errors) still raise.

Example:
    >>> import json
    >>> from aisle.tools.recommenders import Popularity, recommender_tools
    >>> model = Popularity().fit([["a", "b"], ["b", "c"], ["b", "a"]])
    >>> recommend, score = recommender_tools(model, titles={"a": "Apple", "b": "Banana"})
    >>> json.loads(recommend.invoke({"history": ["c"], "k": 1}))["items"]
    [{'rank': 1, 'item_id': 'b', 'title': 'Banana', 'score': 3.0}]
    >>> json.loads(recommend.invoke({"history": ["zz"], "k": 1}))["error"]
    'unknown_ids'
    >>> json.loads(recommend.invoke({"history": ["c"], "k": 0}))["error"]
    'invalid_arguments'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from aisle.prompts._render import data
from aisle.tools.recommenders.base import (
    ExplainingRecommender,
    Recommender,
    RecommenderInputError,
    UnknownItemError,
)

__all__ = ["RecommenderToolError", "recommender_tools"]

TITLE_LIMIT = 200
"""The most characters of a title a tool result shows (titles are catalog text: they go
through the prompts' `data` filter first)."""

ItemId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

_HISTORY = ("The user's item ids (ids, not titles), oldest first: the items they bought, "
            "rated or viewed.")


class _Args(BaseModel):
    # Numeric ids written as JSON numbers (12, not "12") are still ids.
    model_config = ConfigDict(coerce_numbers_to_str=True, extra="ignore")


class RecommenderToolError(ToolException):
    """A recommender tool's input it cannot answer; `result` is the error result the
    agent reads (a JSON object with `status: "error"`)."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = {"status": "error", **result}
        super().__init__(str(result.get("message", "recommender tool error")))


def recommender_tools(model: Recommender, *, titles: Mapping[str, str] | None = None,
                      max_k: int = 50, max_candidates: int = 100) -> list[BaseTool]:
    """`recommend_items` and `score_items` over a fitted recommender.

    Args:
        model: any fitted `Recommender` (popularity, item-kNN, SASRec, ...).
        titles: item id -> title, shown beside ids in results (and used to hint at the
            id when an agent passes a title instead); ids without a title get none.
        max_k: the most items `recommend_items` returns in one call.
        max_candidates: the most candidate ids `score_items` takes in one call.

    Returns:
        `[recommend_items, score_items]`, `StructuredTool`s returning a JSON object
        as a string; errors come back as results (see the module docstring).

    Raises:
        RecommenderInputError: `model` is not fitted, or a limit is below 1.
    """
    if not model.items:
        raise RecommenderInputError(f"the {model.kind} model is not fitted; fit or load it "
                                    "before making tools from it")
    if max_k < 1 or max_candidates < 1:
        raise RecommenderInputError(f"max_k and max_candidates must be at least 1, got "
                                    f"{max_k} and {max_candidates}")
    core = _Tools(model, titles or {})
    reasoning = (", reasoning (the attributes the recommender inferred first, with their "
                 "probabilities: why it chose the item)"
                 if isinstance(model, ExplainingRecommender) else "")

    class RecommendItemsInput(_Args):
        history: list[ItemId] = Field(min_length=1, description=_HISTORY)
        k: int = Field(min(10, max_k), ge=1, le=max_k,
                       description=f"How many items to recommend, 1 to {max_k}.")

    class ScoreItemsInput(_Args):
        history: list[ItemId] = Field(min_length=1, description=_HISTORY)
        candidate_ids: list[ItemId] = Field(
            min_length=1, max_length=max_candidates,
            description=f"The item ids to score (1 to {max_candidates}).")

    recommend = StructuredTool.from_function(
        func=core.recommend_items,
        name="recommend_items",
        description=(
            "Recommend catalog items for a user from the items they interacted with. "
            f"Give `history` (the user's item ids, oldest first) and `k` (1 to {max_k}). "
            f"Returns JSON: `items`, a list of {{rank, item_id, title (when known), "
            f"score{reasoning}}}, best first (higher score is better; items already in the "
            "history are never recommended). If `status` is \"error\", `message` says "
            "what to change."),
        args_schema=RecommendItemsInput,
        handle_tool_error=_error_result,
        handle_validation_error=_invalid_arguments_result,
    )
    score = StructuredTool.from_function(
        func=core.score_items,
        name="score_items",
        description=(
            "Score candidate items for a user, to rank or compare them. Give `history` "
            "(the user's item ids, oldest first) and `candidate_ids` (the item ids to "
            "score). Returns JSON: `items`, a list of {rank, item_id, title (when known), "
            f"score{reasoning}}} sorted best first (higher score is better; compare "
            "scores within one result only); candidate ids the recommender does not "
            "know are listed in `unknown_ids`. If "
            "`status` is \"error\", `message` says what to change."),
        args_schema=ScoreItemsInput,
        handle_tool_error=_error_result,
        handle_validation_error=_invalid_arguments_result,
    )
    return [recommend, score]


class _Tools:
    """The tools' bodies, closing over the model and the titles."""

    def __init__(self, model: Recommender, titles: Mapping[str, str]) -> None:
        self.model = model
        self.titles = titles
        self.catalog = frozenset(model.items)
        # For hints: an agent that passes a title where an id belongs.
        self.by_title: dict[str, str] = {}
        for item_id, title in titles.items():
            if item_id in self.catalog:
                self.by_title.setdefault(title.strip().casefold(), item_id)

    def recommend_items(self, history: list[str], k: int) -> str:
        known, ignored = self._known_history(history)
        try:
            ranked = self.model.recommend(known, k)
        except UnknownItemError as e:  # pragma: no cover - known ids were checked
            raise self._unknown(e.unknown, "history") from e
        except RecommenderInputError as e:
            raise RecommenderToolError({"error": "invalid_input", "message": str(e)}) from e
        result: dict[str, Any] = {"status": "ok", "items": [
            self._item(rank, item_id, s) for rank, (item_id, s) in enumerate(ranked, 1)]}
        self._add_reasoning(known, result["items"])
        if ignored:
            result["ignored_history_ids"] = ignored
            result["message"] = (f"{len(ignored)} history id(s) are not in the catalog and "
                                 "were left out; the items are recommended from the rest")
            hints = self._hints(ignored)
            if hints:
                result["hints"] = hints
        if len(ranked) < k:
            result.setdefault("message", f"only {len(ranked)} items could be recommended "
                                         "(the rest of the catalog is in the history)")
        return _dumps(result)

    def score_items(self, history: list[str], candidate_ids: list[str]) -> str:
        known, ignored = self._known_history(history)
        candidates = list(dict.fromkeys(candidate_ids))
        unknown = [c for c in candidates if c not in self.catalog]
        scorable = [c for c in candidates if c in self.catalog]
        if not scorable:
            raise self._unknown(unknown, "candidate_ids")
        try:
            scores = self.model.score(known, scorable)
        except RecommenderInputError as e:
            raise RecommenderToolError({"error": "invalid_input", "message": str(e)}) from e
        # Best first; ties keep the order given.
        order = sorted(range(len(scorable)), key=lambda i: -_finite(scores[i]))
        result: dict[str, Any] = {"status": "ok", "items": [
            self._item(rank, scorable[i], scores[i]) for rank, i in enumerate(order, 1)]}
        self._add_reasoning(known, result["items"])
        notes = []
        if unknown:
            result["unknown_ids"] = unknown
            notes.append(f"{len(unknown)} candidate id(s) are not in the catalog and were not "
                         "scored")
        if ignored:
            result["ignored_history_ids"] = ignored
            notes.append(f"{len(ignored)} history id(s) are not in the catalog and were left "
                         "out")
        if notes:
            result["message"] = "; ".join(notes)
            hints = self._hints(unknown + ignored)
            if hints:
                result["hints"] = hints
        return _dumps(result)

    def _add_reasoning(self, history: Sequence[str], items: list[dict[str, Any]]) -> None:
        """A generative recommender's attribute path for each item, as `reasoning`:
        `[{attribute, probability}]`, coarse to fine (its chain of thought)."""
        if not isinstance(self.model, ExplainingRecommender) or not items:
            return
        paths = self.model.reasoning(history, [i["item_id"] for i in items])
        for item, steps in zip(items, paths, strict=True):
            item["reasoning"] = [{"attribute": data(step.attribute, limit=TITLE_LIMIT),
                                  "probability": round(step.probability, 4)}
                                 for step in steps]

    def _known_history(self, history: Sequence[str]) -> tuple[list[str], list[str]]:
        """The history's catalog ids, and the unknown ones; an error when none is known."""
        known = [h for h in history if h in self.catalog]
        ignored = list(dict.fromkeys(h for h in history if h not in self.catalog))
        if not known:
            raise self._unknown(ignored, "history")
        return known, ignored

    def _unknown(self, ids: Sequence[str], field: str) -> RecommenderToolError:
        shown = list(dict.fromkeys(ids))[:20]
        result: dict[str, Any] = {
            "error": "unknown_ids",
            "message": (f"none of the ids in `{field}` is in the catalog: "
                        f"{', '.join(repr(i) for i in shown[:5])}"
                        f"{' and more' if len(shown) > 5 else ''}. Pass item ids (not titles) "
                        "from the conversation or from an earlier recommend_items result."),
            "unknown_ids": shown,
        }
        hints = self._hints(shown)
        if hints:
            result["hints"] = hints
        return RecommenderToolError(result)

    def _hints(self, ids: Sequence[str]) -> dict[str, str]:
        """Unknown ids that are titles -> the id of that title."""
        out = {}
        for i in ids:
            found = self.by_title.get(i.strip().casefold())
            if found is not None:
                out[i] = f"this is a title; its item id is {found!r}"
        return out

    def _item(self, rank: int, item_id: str, score: float) -> dict[str, Any]:
        out: dict[str, Any] = {"rank": rank, "item_id": item_id}
        title = self.titles.get(item_id)
        if title:
            out["title"] = data(title, limit=TITLE_LIMIT)
        out["score"] = round(score, 4) if math.isfinite(score) else None
        return out


def _finite(score: float) -> float:
    return score if math.isfinite(score) else -math.inf


def _dumps(result: Mapping[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False, allow_nan=False)


def _error_result(error: ToolException) -> str:
    """`handle_tool_error`: the error as a result the agent reads."""
    if isinstance(error, RecommenderToolError):
        return _dumps(error.result)
    return _dumps({"status": "error", "error": "tool_error", "message": str(error)})


def _invalid_arguments_result(error: Exception) -> str:
    """`handle_validation_error`: each schema violation, named by argument."""
    if not isinstance(error, ValidationError):
        return _dumps({"status": "error", "error": "invalid_arguments",
                       "message": f"{error}; check the tool's argument schema"})
    problems = []
    for e in error.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"]) or "arguments"
        got = e.get("input")
        shown = f" (got {got!r})" if isinstance(got, int | float | str) else ""
        problems.append(f"{where}: {e['msg']}{shown}")
    return _dumps({"status": "error", "error": "invalid_arguments",
                   "message": "; ".join(problems) + ". Fix these arguments and call again."})
