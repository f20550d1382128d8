"""A GDO pipeline: operators in order, a default model, a concurrency and a budget;
declared in Python or in a YAML file, and round-tripped between the two.

Example YAML:

    name: tidy-products
    model: local:qwen2.5-coder-0.5b
    concurrency: 4
    budget: {calls: 2000}
    steps:
      - op: map
        name: brand
        udp:
          prompt: "Brand of <title>{{ title }}</title>? Answer with the brand only."
          output: {brand: string}
      - op: filter
        name: games_only
        udp:
          prompt_file: prompts/is_game.j2

Relative `prompt_file`s and a match step's `right` file resolve against the YAML file's
folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aisle.agents.gdo.operators import (
    OPERATORS,
    AggregateOp,
    ClassifyOp,
    DetectErrorsOp,
    ExtractOp,
    FilterOp,
    ImputeOp,
    MapOp,
    MatchOp,
    ResolveOp,
)
from aisle.engines import Budget
from aisle.errors import ConfigurationError

__all__ = ["BudgetSpec", "Pipeline", "Step", "read_table", "write_table"]

Step = Annotated[MapOp | FilterOp | ExtractOp | ClassifyOp | ImputeOp | DetectErrorsOp
                 | MatchOp | ResolveOp | AggregateOp, Field(discriminator="op")]


class BudgetSpec(BaseModel):
    """The pipeline's cap: model calls and tokens (cached answers are free)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calls: int | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)

    def budget(self) -> Budget:
        return Budget(calls=self.calls, tokens=self.tokens)


class Pipeline(BaseModel):
    """Operators in order.

    Attributes:
        name: the pipeline's name (run folders, logs).
        model: the default model spec for UDPs that name none.
        concurrency: rows in flight per step.
        budget: stop when spent, keeping what finished.
        steps: the operators; step names are unique.
        base_dir: where relative files resolve (the YAML file's folder); not serialised.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("pipeline", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    model: str | None = None
    concurrency: int = Field(4, ge=1, le=256)
    budget: BudgetSpec | None = None
    steps: list[Step] = Field(min_length=1)
    base_dir: str | None = Field(None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _known_ops(cls, data: Any) -> Any:
        steps = data.get("steps") if isinstance(data, dict) else None
        if isinstance(steps, list):
            for i, step in enumerate(steps, 1):
                if not isinstance(step, dict):
                    continue
                op = step.get("op")
                if op is None:
                    raise ValueError(f"step {i}: no 'op' (one of {', '.join(OPERATORS)})")
                if op not in OPERATORS:
                    raise ValueError(f"step {i}: unknown operator {op!r}: use one of "
                                     f"{', '.join(OPERATORS)}")
        return data

    @model_validator(mode="after")
    def _unique(self) -> Pipeline:
        names = [s.step for s in self.steps]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"step names repeat: {', '.join(repeated)} (give each a 'name')")
        return self

    @classmethod
    def from_yaml(cls, source: str | Path) -> Pipeline:
        """A pipeline from a YAML file (a `Path`, or a string path ending in .yaml/.yml)
        or YAML text.

        Raises:
            ConfigurationError: the file is missing, not YAML, or not a valid pipeline
                (the message names the step and field).
        """
        base: Path | None = None
        text = source
        if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source
                                         and source.endswith((".yaml", ".yml"))):
            path = Path(source)
            if not path.is_file():
                raise ConfigurationError(f"pipeline file {path} not found")
            text, base = path.read_text(encoding="utf-8"), path.resolve().parent
        try:
            raw = yaml.safe_load(str(text))
        except yaml.YAMLError as e:
            raise ConfigurationError(f"pipeline is not valid YAML: {e}") from e
        if not isinstance(raw, dict):
            raise ConfigurationError("a pipeline file is a YAML mapping with 'steps'")
        if base is not None:
            raw.setdefault("base_dir", str(base))
        return cls.parse(raw)

    @classmethod
    def parse(cls, raw: Any) -> Pipeline:
        """Validate a pipeline from plain data, with errors that name the step."""
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            first = e.errors()[0]
            loc = list(first["loc"])
            where = ""
            if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
                where = f"step {loc[1] + 1}: "
                loc = loc[3:] if len(loc) > 2 and isinstance(loc[2], str) and loc[2] in OPERATORS \
                    else loc[2:]
            field = ".".join(str(x) for x in loc)
            message = str(first["msg"]).removeprefix("Value error, ")
            more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
            raise ConfigurationError(f"invalid pipeline: {where}{field + ': ' if field else ''}"
                                     f"{message}{more}") from e

    def to_yaml(self) -> str:
        """The pipeline as YAML (defaults left out); `from_yaml` reads it back equal."""
        data = self.model_dump(mode="json", exclude_defaults=True, exclude={"base_dir"})
        data["steps"] = [{"op": s.op, **s.model_dump(mode="json", exclude_defaults=True)}
                         for s in self.steps]
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    @property
    def base_path(self) -> Path | None:
        return Path(self.base_dir) if self.base_dir else None


_READERS = {".csv": "csv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}


def read_table(path: str | Path) -> pd.DataFrame:
    """A table from CSV (every cell as text, empty as missing), JSON Lines, a JSON array
    of objects, or Parquet, by extension.

    Raises:
        ConfigurationError: missing file, unknown extension, or a file that does not
            parse as its format says.
    """
    path = Path(path)
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise ConfigurationError(f"{path}: unknown table format {path.suffix!r}: use .csv, "
                                 ".jsonl, .json or .parquet")
    if not path.is_file():
        raise ConfigurationError(f"table file {path} not found")
    try:
        if kind == "csv":
            table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        elif kind == "jsonl":
            table = pd.read_json(path, lines=True, dtype=False)
        elif kind == "json":
            table = pd.read_json(path, orient="records", dtype=False)
        else:
            table = pd.read_parquet(path)
    except (ValueError, pd.errors.ParserError, OSError) as e:
        raise ConfigurationError(f"{path}: not a readable {kind} table: {e}") from e
    table.columns = [str(c) for c in table.columns]
    return table.astype(object).where(table.notna(), None)


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a table by extension (nested values as JSON text in CSV)."""
    path = Path(path)
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise ConfigurationError(f"{path}: unknown table format {path.suffix!r}: use .csv, "
                                 ".jsonl, .json or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        flat = table.copy()
        for c in flat.columns:
            flat[c] = [json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                       for v in flat[c]]
        flat.to_csv(path, index=False)
    elif kind == "jsonl":
        table.to_json(path, orient="records", lines=True, force_ascii=False)
    elif kind == "json":
        table.to_json(path, orient="records", force_ascii=False, indent=1)
    else:
        table.to_parquet(path, index=False)
    return path
