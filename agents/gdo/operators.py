"""The LLM-GDO operators: a UDP applied over a table, row by row (or cell by cell, pair
by pair, group by group), with the answers folded back into a table.

Each operator is a frozen pydantic model (so a YAML pipeline file declares it and it
round-trips) that knows which columns it needs (`check`), the tasks a table gives it
(`plan`: one set of template variables per row, cell, candidate pair or group) and how
the answers become the output table (`apply`). `agents.gdo.runner.run_operator` does the
rest for every operator: checks, cascade, rendering, the engine, the ensemble, usage.

A task whose answer failed (invalid after the repair turn, a server error, not run
because the budget ran out) keeps its row, with the reason in the step's error column
`<step>_error`; no operator drops a row silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aisle.agents.gdo.udp import UDP, ColumnType
from aisle.errors import ConfigurationError

__all__ = [
    "OPERATORS",
    "AggregateOp",
    "CascadeSpec",
    "ClassifyOp",
    "DetectErrorsOp",
    "EnsembleSpec",
    "ExtractOp",
    "FilterOp",
    "ImputeOp",
    "MapOp",
    "MatchOp",
    "Operator",
    "Plan",
    "ResolveOp",
    "Variant",
    "is_missing",
]

SCORES = ("embedding", "frequency")


def is_missing(value: Any) -> bool:
    """An empty cell: None, NaN or a blank string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _plain(value: Any) -> Any:
    return None if is_missing(value) and not isinstance(value, str) else value


def obj_column(values: Sequence[Any], table: pd.DataFrame) -> pd.Series:
    """A new column as Python objects (None stays None, not NaN)."""
    return pd.Series(list(values), index=table.index, dtype=object)


def frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A new table whose cells stay Python objects."""
    return pd.DataFrame(list(rows), columns=list(columns), dtype=object)


def row_dict(table: pd.DataFrame, position: int) -> dict[str, Any]:
    """One row's cells by column (NaN as None)."""
    return {str(k): _plain(v) for k, v in table.iloc[position].items()}


def _row_vars(table: pd.DataFrame, position: int, **extra: Any) -> dict[str, Any]:
    row = row_dict(table, position)
    return {**row, "row": row, **extra}


class CascadeSpec(BaseModel):
    """Cheap first: a score decides confident tasks, the LLM the band between.

    Attributes:
        score: `embedding` (match, resolve: the pair's cosine similarity),
            `frequency` (detect_errors: how rare the cell's value is in its column,
            1 / count), or `column:NAME` (a numeric column of the table, higher = yes).
        low, high: the thresholds (`agents.gdo.cascade`); fitted from validation rows
            with `fit_cascade` in Python, or given here.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    score: str
    low: float | None = None
    high: float | None = None

    @field_validator("score")
    @classmethod
    def _score(cls, v: str) -> str:
        if v not in SCORES and not (v.startswith("column:") and len(v) > 7):
            raise ValueError(f"unknown cascade score {v!r}: use 'embedding', 'frequency' or "
                             "'column:NAME'")
        return v


class Variant(BaseModel):
    """One member of an ensemble: the operator's UDP with some fields replaced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    prompt: str | None = None
    prompt_file: str | None = None
    model: str | None = None

    def apply(self, udp: UDP) -> UDP:
        changes: dict[str, Any] = {}
        if self.prompt is not None or self.prompt_file is not None:
            changes.update(prompt=self.prompt, prompt_file=self.prompt_file)
        if self.model is not None:
            changes["model"] = self.model
        return UDP.model_validate({**udp.model_dump(), **changes})


class EnsembleSpec(BaseModel):
    """Several UDP variants (prompts or models) vote; `tools.aggregation.aggregate`
    weighs them (`iwmv`: learned per-variant weights; `ds`: Dawid-Skene; `mv`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variants: list[Variant] = Field(min_length=2)
    method: Literal["mv", "iwmv", "ds"] = "iwmv"

    @model_validator(mode="after")
    def _unique(self) -> EnsembleSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"ensemble variant names repeat: {names}")
        return self


@dataclass
class Plan:
    """An operator's tasks over one table.

    Attributes:
        variables: the template variables of each task.
        keys: what each task stands for (a row position, a (row, column) cell, a
            (left, right) pair, a group key), for `apply`.
        scores: each task's cascade score, when the operator has a cascade.
        extra: whatever `apply` needs besides (the right table, pair scores).
    """

    variables: list[dict[str, Any]]
    keys: list[Any]
    scores: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Operator(BaseModel):
    """What every operator shares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: str
    name: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,47}$",
                             description="The step's name (columns, stats); default: op.")
    udp: UDP
    cascade: CascadeSpec | None = None
    ensemble: EnsembleSpec | None = None

    decide: Literal["json", "logprob"] = Field(
        "json", description="How a yes/no operator (filter, detect_errors, match, resolve) "
        "gets its decision: a generated JSON answer, or P(Yes) of a one-token Yes/No answer "
        "compared with `threshold` (a backend with logprobs; the template asks for Yes/No).")
    threshold: float = Field(0.5, ge=0.0, le=1.0,
                             description="decide: logprob: yes when P(Yes) >= threshold.")

    decision: ClassVar[str | None] = None
    """The answer field a cascade or an ensemble decides (None: neither applies)."""
    yes_no: ClassVar[bool] = False
    """Whether the decision is a boolean (decide: logprob is possible)."""
    cascade_scores: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _options(self) -> Operator:
        if self.cascade is not None:
            kind = self.cascade.score.split(":")[0]
            # a cascade decides yes or no: only operators whose decision is a boolean
            allowed = (*self.cascade_scores, "column") if self.yes_no else ()
            if kind not in allowed:
                raise ValueError(f"{self.op}: no cascade on score {self.cascade.score!r} "
                                 f"(this operator takes: {', '.join(allowed) or 'none'})")
            if (self.cascade.low is None) != (self.cascade.high is None):
                raise ValueError("a cascade needs both thresholds, or neither (fitted)")
        if self.decide == "logprob" and not self.yes_no:
            raise ValueError(f"{self.op}: decide: logprob needs a yes/no operator (filter, "
                             "detect_errors, match, resolve)")
        if self.ensemble is not None and self.decision is None:
            raise ValueError(f"{self.op}: an ensemble needs an operator with one decision "
                             "(filter, classify, impute, detect_errors, match, resolve)")
        self.udp.json_schema(self.default_output())  # the contract must be usable
        return self

    @property
    def step(self) -> str:
        return self.name or self.op

    @property
    def error_column(self) -> str:
        return f"{self.step}_error"

    def default_output(self) -> dict[str, Any] | None:
        """The answer's schema when the UDP gives none."""
        return None

    def answer_schema(self) -> dict[str, Any]:
        """The UDP's answer schema (the operator's default when the UDP gives none),
        with the operator's decision field."""
        schema = self.udp.json_schema(self.default_output())
        if self.decision is not None and self.decision not in schema["properties"]:
            raise ConfigurationError(f"step {self.step!r}: its output must have a "
                                     f"{self.decision!r} field")
        return schema

    def needed_columns(self) -> list[str]:
        """Columns the options name (beyond the template's variables)."""
        return []

    def reserved(self) -> set[str]:
        """Template variables that are not columns (`row`: the whole row as a dict, for
        templates that list every cell)."""
        return {"row"}

    def check(self, table: pd.DataFrame, allow_empty: bool = False) -> None:
        """Raise `ConfigurationError` for an unusable table (before any model call). An
        empty table is an error unless `allow_empty` (a later step of a pipeline whose
        filter kept nothing: it passes through with no tasks)."""
        if table.empty and not allow_empty:
            raise ConfigurationError(f"step {self.step!r}: the table is empty")
        missing = [c for c in self.needed_columns() if c not in table.columns]
        if missing:
            raise ConfigurationError(f"step {self.step!r}: no column {missing[0]!r} in the "
                                     f"table (columns: {', '.join(map(str, table.columns))})")

    def plan(self, table: pd.DataFrame, context: Mapping[str, Any]) -> Plan:
        """Default: one task per row, the row's cells as variables, and `row`."""
        return Plan([_row_vars(table, i) for i in range(len(table))], list(range(len(table))))

    def apply(self, table: pd.DataFrame, plan: Plan, values: Sequence[Any],
              errors: Sequence[str | None]) -> pd.DataFrame:
        """Default: the answer's fields as new columns, and the error column."""
        out = table.copy()
        props = list(self.answer_schema()["properties"])
        for prop in props:
            col: list[Any] = [None] * len(out)
            for key, value in zip(plan.keys, values, strict=True):
                if isinstance(value, dict):
                    col[key] = value.get(prop)
            out[prop] = obj_column(col, out)
        return _with_errors(out, self.error_column, plan.keys, errors)


def _with_errors(out: pd.DataFrame, column: str, keys: Sequence[int],
                 errors: Sequence[str | None]) -> pd.DataFrame:
    col: list[str | None] = [None] * len(out)
    for key, error in zip(keys, errors, strict=True):
        if error is not None:
            col[key] = error
    out[column] = obj_column(col, out)
    return out


class MapOp(Operator):
    """New columns from each row (the UDP's output fields)."""

    op: Literal["map"] = "map"


class ExtractOp(Operator):
    """Attribute values from text: one nullable column per attribute (null when the
    text does not say)."""

    op: Literal["extract"] = "extract"
    attributes: dict[str, ColumnType] = Field(min_length=1)

    def default_output(self) -> dict[str, Any]:
        props = {a: {"type": [t, "null"]} for a, t in self.attributes.items()}
        return {"type": "object", "properties": props, "required": list(props),
                "additionalProperties": False}


class ClassifyOp(Operator):
    """One label per row from a closed set, in `column`."""

    op: Literal["classify"] = "classify"
    labels: list[str] = Field(min_length=2)
    column: str = "label"
    decision: ClassVar[str | None] = "label"
    cascade_scores: ClassVar[tuple[str, ...]] = ()

    def default_output(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"label": {"enum": list(self.labels)}},
                "required": ["label"], "additionalProperties": False}

    def apply(self, table: pd.DataFrame, plan: Plan, values: Sequence[Any],
              errors: Sequence[str | None]) -> pd.DataFrame:
        out = super().apply(table, plan, values, errors)
        if self.column != "label":
            out = out.rename(columns={"label": self.column})
        return out


class FilterOp(Operator):
    """Keep the rows the UDP says to keep, with its reason in `<step>_reason`. A row
    whose answer failed is kept, marked in the error column."""

    op: Literal["filter"] = "filter"
    decision: ClassVar[str | None] = "keep"
    yes_no: ClassVar[bool] = True
    cascade_scores: ClassVar[tuple[str, ...]] = ()

    def default_output(self) -> dict[str, Any]:
        return {"type": "object", "properties": {
            "reason": {"type": "string", "maxLength": 300}, "keep": {"type": "boolean"}},
            "required": ["reason", "keep"], "additionalProperties": False}

    def apply(self, table: pd.DataFrame, plan: Plan, values: Sequence[Any],
              errors: Sequence[str | None]) -> pd.DataFrame:
        out = table.copy()
        keep = [True] * len(out)
        reason: list[str | None] = [None] * len(out)
        for key, value in zip(plan.keys, values, strict=True):
            if isinstance(value, dict):
                keep[key] = bool(value.get("keep"))
                reason[key] = value.get("reason")
        out[f"{self.step}_reason"] = obj_column(reason, out)
        out = _with_errors(out, self.error_column, plan.keys, errors)
        return out[keep].reset_index(drop=True)


class ImputeOp(Operator):
    """Fill the empty cells of `column`; `<column>_imputed` marks the filled ones. The
    template sees the row's cells, `row`, and `column` (the imputed column's name)."""

    op: Literal["impute"] = "impute"
    column: str
    type: ColumnType = "string"
    decision: ClassVar[str | None] = "value"

    def default_output(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"value": {"type": self.type}},
                "required": ["value"], "additionalProperties": False}

    def needed_columns(self) -> list[str]:
        return [self.column]

    def reserved(self) -> set[str]:
        return {"row", "column"}

    def plan(self, table: pd.DataFrame, context: Mapping[str, Any]) -> Plan:
        keys = [i for i, v in enumerate(table[self.column]) if is_missing(v)]
        return Plan([_row_vars(table, i, column=self.column) for i in keys], keys)

    def apply(self, table: pd.DataFrame, plan: Plan, values: Sequence[Any],
              errors: Sequence[str | None]) -> pd.DataFrame:
        out = table.copy()
        filled = list(out[self.column].astype(object))
        imputed = [False] * len(out)
        for key, value in zip(plan.keys, values, strict=True):
            if isinstance(value, dict) and value.get("value") is not None:
                filled[key] = value["value"]
                imputed[key] = True
        out[self.column] = obj_column(filled, out)
        out[f"{self.column}_imputed"] = obj_column(imputed, out)
        return _with_errors(out, self.error_column, plan.keys, errors)


class DetectErrorsOp(Operator):
    """Cell-level error detection: one task per (row, column); `<column>_is_error`
    per checked column (None where the answer failed). The template sees the row's
    cells plus `column` (the checked column's name) and `value` (its cell)."""

    op: Literal["detect_errors"] = "detect_errors"
    columns: list[str] | None = None
    decision: ClassVar[str | None] = "is_error"
    yes_no: ClassVar[bool] = True
    cascade_scores: ClassVar[tuple[str, ...]] = ("frequency",)

    def default_output(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"is_error": {"type": "boolean"}},
                "required": ["is_error"], "additionalProperties": False}

    def needed_columns(self) -> list[str]:
        return list(self.columns or [])

    def reserved(self) -> set[str]:
        return {"row", "column", "value"}

    def checked(self, table: pd.DataFrame) -> list[str]:
        return list(self.columns) if self.columns else [str(c) for c in table.columns]

    def plan(self, table: pd.DataFrame, context: Mapping[str, Any]) -> Plan:
        columns = self.checked(table)
        cells: list[tuple[int, str]] = list(context.get("cells") or
                                            [(i, c) for i in range(len(table)) for c in columns])
        rows = [row_dict(table, i) for i in range(len(table))]
        variables = [{**rows[i], "row": rows[i], "column": c, "value": rows[i].get(c)}
                     for i, c in cells]
        scores = None
        if self.cascade is not None and self.cascade.score == "frequency":
            counts = {c: table[c].astype(str).value_counts().to_dict() for c in columns}
            scores = [1.0 / max(1, counts[c].get(str(table.iloc[i][c]), 0)) for i, c in cells]
        return Plan(variables, cells, scores)

    def apply(self, table: pd.DataFrame, plan: Plan, values: Sequence[Any],
              errors: Sequence[str | None]) -> pd.DataFrame:
        out = table.copy()
        flags: dict[str, list[bool | None]] = {c: [None] * len(out) for c in self.checked(table)}
        failures: list[str | None] = [None] * len(out)
        for (i, c), value, error in zip(plan.keys, values, errors, strict=True):
            if isinstance(value, dict) and error is None:
                flags[c][i] = bool(value.get("is_error"))
            if error is not None:
                note = f"{c}: {error}"
                failures[i] = note if failures[i] is None else f"{failures[i]}; {note}"
        for c, col in flags.items():
            out[f"{c}_is_error"] = obj_column(col, out)
        out[self.error_column] = obj_column(failures, out)
        return out


class MatchOp(Operator):
    """Entity matching between two tables: embedding blocking proposes candidate pairs
    (`tools.blocking.block`, k nearest neighbours both ways), the UDP decides each
    pair. The output is the pair table: `left_id`, `right_id`, `score` (cosine),
    `match`, the UDP's other fields, and the error column. The template sees `left`
    and `right` (each record's cells: `{{ left.title }}`) and `score`.

    Attributes:
        right: the right table's file (YAML); from Python, pass the table itself.
        left_id, right_id: id columns (default: the row position).
        columns: the columns blocking compares (default: all but the id).
        blocking: `hybrid` (embedding and TF-IDF neighbours, united), `embedding`
            (MiniLM) or `tfidf` (character n-grams); `tools.blocking`.
        k: neighbours per record, direction and blocking method (5: on Abt-Buy,
            hybrid blocking at k=5 keeps 99.8% of the true matches in 114x fewer pairs
            than the cross product; `benchmarks/bench_gdo.py`).
        min_score: drop candidate pairs below this score.
    """

    op: Literal["match"] = "match"
    right: str | None = None
    left_id: str | None = None
    right_id: str | None = None
    columns: list[str] | None = None
    blocking: Literal["hybrid", "embedding", "tfidf"] = "hybrid"
    k: int = Field(5, ge=1, le=1000)
    min_score: float | None = None
    decision: ClassVar[str | None] = "match"
    yes_no: ClassVar[bool] = True
    cascade_scores: ClassVar[tuple[str, ...]] = ("embedding",)

    def default_output(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"match": {"type": "boolean"}},
                "required": ["match"], "additionalProperties": False}

    def needed_columns(self) -> list[str]:
        return [c for c in (self.left_id,) if c]

    def reserved(self) -> set[str]:
        return {"left", "right", "score"}

    def _texts(self, table: pd.DataFrame, id_column: str | None) -> list[str]:
        from aisle.tools.blocking import record_text

        columns = self.columns or [str(c) for c in table.columns if c != id_column]
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ConfigurationError(f"step {self.step!r}: no column {missing[0]!r} to block "
                                     "on")
        return [record_text(row_dict(table, i), columns) for i in range(len(table))]

    def _ids(self, table: pd.DataFrame, column: str | None) -> list[Any]:
        return list(table[column]) if column else list(range(len(table)))

    def plan(self, table: pd.DataFrame, context: Mapping[str, Any]) -> Plan:
        right = context.get("right")
        if right is None:
            raise ConfigurationError(f"step {self.step!r}: match needs the right table "
                                     "('right: FILE' in the pipeline, or right= in Python)")
        if right.empty:
            raise ConfigurationError(f"step {self.step!r}: the right table is empty")
        if self.right_id and self.right_id not in right.columns:
            raise ConfigurationError(f"step {self.step!r}: no column {self.right_id!r} in "
                                     "the right table")
        pairs, scores = self._pairs(table, right, context)
        lefts = [row_dict(table, i) for i in range(len(table))]
        rights = [row_dict(right, j) for j in range(len(right))]
        variables = [{"left": lefts[i], "right": rights[j], "score": s}
                     for (i, j), s in zip(pairs, scores, strict=True)]
        return Plan(variables, pairs, scores if self.cascade else None,
                    {"right": right, "pair_scores": scores})

    def _pairs(self, table: pd.DataFrame, right: pd.DataFrame | None,
               context: Mapping[str, Any]) -> tuple[list[tuple[int, int]], list[float]]:
        from aisle.tools.blocking import block, cosine_pairs

        embed = context.get("embed")
        given = context.get("pairs")
        left_texts = self._texts(table, self.left_id)
        right_texts = None if right is None else self._texts(right, self.right_id)
        if given is not None:  # explicit candidate pairs (an eval's labelled pairs)
            pairs = [(int(i), int(j)) for i, j in given]
            other = right_texts if right_texts is not None else left_texts
            if embed is None:
                raise ConfigurationError(f"step {self.step!r}: scoring given pairs needs an "
                                         "embedding")
            return pairs, cosine_pairs([left_texts[i] for i, _ in pairs],
                                       [other[j] for _, j in pairs], embed)
        result = block(left_texts, right_texts, embed, k=self.k, method=self.blocking,
                       min_score=self.min_score)
        context.get("blocking", {}).update(pairs=len(result.pairs),
                                           cross_product=result.cross_product)
        return result.pairs, result.scores

    def apply(self, table: pd.DataFrame, plan: Plan, values: Sequence[Any],
              errors: Sequence[str | None]) -> pd.DataFrame:
        right = plan.extra["right"]
        left_ids, right_ids = self._ids(table, self.left_id), self._ids(right, self.right_id)
        props = [p for p in self.answer_schema()["properties"] if p != "match"]
        rows = []
        for (i, j), score, value, error in zip(plan.keys, plan.extra["pair_scores"], values,
                                               errors, strict=True):
            answer = value if isinstance(value, dict) else {}
            rows.append({"left_id": left_ids[i], "right_id": right_ids[j], "score": score,
                         "match": answer.get("match") if error is None else None,
                         **{p: answer.get(p) for p in props}, self.error_column: error})
        columns = ["left_id", "right_id", "score", "match", *props, self.error_column]
        return frame(rows, columns)


class ResolveOp(MatchOp):
    """Deduplication: match within one table, then records joined by matched pairs
    (directly or through others) share an `entity_id` (the first record's id). A pair
    whose answer failed joins nothing and is named in its rows' error column."""

    op: Literal["resolve"] = "resolve"  # type: ignore[assignment]

    def plan(self, table: pd.DataFrame, context: Mapping[str, Any]) -> Plan:
        if len(table) < 2:  # nothing to pair: every record is its own entity
            return Plan([], [], [] if self.cascade else None, {"pair_scores": []})
        pairs, scores = self._pairs(table, None, context)
        rows = [row_dict(table, i) for i in range(len(table))]
        variables = [{"left": rows[i], "right": rows[j], "score": s}
                     for (i, j), s in zip(pairs, scores, strict=True)]
        return Plan(variables, pairs, scores if self.cascade else None,
                    {"pair_scores": scores})

    def apply(self, table: pd.DataFrame, plan: Plan, values: Sequence[Any],
              errors: Sequence[str | None]) -> pd.DataFrame:
        from aisle.tools.blocking import connected_components

        edges = [pair for pair, value, error in zip(plan.keys, values, errors, strict=True)
                 if error is None and isinstance(value, dict) and value.get("match")]
        roots = connected_components(len(table), edges)
        ids = self._ids(table, self.left_id)
        out = table.copy()
        out["entity_id"] = obj_column([ids[r] for r in roots], out)
        failures: list[str | None] = [None] * len(out)
        for (i, j), error in zip(plan.keys, errors, strict=True):
            if error is not None:
                for a, b in ((i, j), (j, i)):
                    note = f"pair with {ids[b]}: {error}"
                    failures[a] = note if failures[a] is None else f"{failures[a]}; {note}"
        out[self.error_column] = obj_column(failures, out)
        return out


class AggregateOp(Operator):
    """Reduce groups of rows: one task per group of `group_by` values; the template
    sees the group's key columns and `rows` (a list of the group's rows, each a dict of
    cells). The output has one row per group: the keys and the UDP's fields."""

    op: Literal["aggregate"] = "aggregate"
    group_by: list[str] = Field(min_length=1)
    max_rows: int = Field(50, ge=1, le=1000, description="Rows of a group shown at most.")

    def needed_columns(self) -> list[str]:
        return list(self.group_by)

    def reserved(self) -> set[str]:
        return {"rows"}

    def plan(self, table: pd.DataFrame, context: Mapping[str, Any]) -> Plan:
        groups = table.groupby(self.group_by, sort=True, dropna=False).indices
        keys, variables = [], []
        for key, positions in groups.items():
            key_t = key if isinstance(key, tuple) else (key,)
            rows = [row_dict(table, int(p)) for p in positions[:self.max_rows]]
            variables.append({**dict(zip(self.group_by, key_t, strict=True)), "rows": rows,
                              "n_rows": len(positions)})
            keys.append(key_t)
        return Plan(variables, keys)

    def apply(self, table: pd.DataFrame, plan: Plan, values: Sequence[Any],
              errors: Sequence[str | None]) -> pd.DataFrame:
        props = list(self.answer_schema()["properties"])
        rows = []
        for key, value, error in zip(plan.keys, values, errors, strict=True):
            answer = value if isinstance(value, dict) else {}
            rows.append({**dict(zip(self.group_by, key, strict=True)),
                         **{p: answer.get(p) for p in props}, self.error_column: error})
        return frame(rows, [*self.group_by, *props, self.error_column])


OPERATORS: dict[str, type[Operator]] = {
    cls.model_fields["op"].default: cls
    for cls in (MapOp, FilterOp, ExtractOp, ClassifyOp, ImputeOp, DetectErrorsOp, MatchOp,
                ResolveOp, AggregateOp)
}
"""Every operator by its `op` name."""
