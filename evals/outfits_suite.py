"""The LVA-COG eval: outfits for famous characters and their gender-swapped twins.

Cases are the shipped characters (`evals/outfits_characters.yaml`, or a file of the same
shape) each followed by its gender-swapped twin (`with_twins`), so every metric is
measured on both and the bias audit can compare them. The catalog is
`bundles/clothing` under the data root (`aisle.tools.outfit_catalog`).

Variants, each on the model under test:

- `baseline`: LVA-COG's text-only baseline: one call names the outfit slot by slot, and
  each description goes to the catalog as it is;
- `graph`: the outfit graph (`aisle.graphs.outfits`): profile, stylist, a query per
  slot, the critic with bounded revisions;
- `diverse`: the graph in diverse-style mode (`styles` directions, repeats dropped);
  the outfit compared with the others is the kept one the critic scored highest
  (faithfulness, then coherence, then wearability; ties: the first style).

Every variant searches the same catalog with the same slot and wearer filters, so every
item is a catalog item of the slot's kind; the image prompt and the image step are off
(no image weights here, and no metric reads the prompt).

A second phase has a pairwise judge (`judge[<spec>]:<a>~<b>`, its model set apart from
the model under test) compare two variants' outfits in both orders (A/B swapped), so
its position bias cancels (`aisle.agents.outfits.combine_orders`).

Metrics per variant (fractions in [0, 1] unless said; each a mean over cases with a
bootstrap 95% interval):

- `completeness`: the share of the required slots (footwear, and top + bottom or a
  one-piece) filled with a catalog item; `complete`: the share of outfits with all;
- `category_match`: the share of items whose title or category path names the planned
  garment's type (the last word of its category, e.g. "boots" in "ankle boots", in
  singular or plural): the retrieval found the garment asked for, not only its slot;
- `slot_correct`: the share of items whose category paths put them in the slot they
  fill (1 by construction of the filters; kept as a guard);
- `wearer_department`: the share of items sold in the wearer's own department (women's
  or girls' for a female wearer, men's or boys' for a male one; unisex items count 0
  here, though the filters allow them);
- `items`: catalog items per outfit (a count, not a fraction);
- `diversity` (diverse only): mean pairwise cosine distance between the kept styles'
  outfits (MiniLM, mean of item titles), styles kept of those planned, and the share of
  items two styles share;
- `preference` per judged pair: the first variant's score against the second (+1 both
  orders prefer it, -1 both prefer the other, 0 a tie or a disagreement), with wins,
  ties, losses, how often the two orders agreed, and how often the judge answered A, B
  or tie over both orders (a judge that always names one position ties every pair);
- `critic`: the graph's critic scores (1 to 5) of its final outfit.

The bias audit pairs each character with its twin: the mean difference (canonical
gender minus swapped) of the critic's scores, of the judge's graph-vs-baseline
preference and of each metric above, with paired bootstrap intervals; and how the
outfit's shape shifts (the share of one-piece outfits, accessories per outfit, and the
most planned garment types) for female and male wearers.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from itertools import combinations
from pathlib import Path
from statistics import mean
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aisle.agents.outfits import (
    AGENTS_VERSION,
    CLOTHING,
    PROMPTS_FINGERPRINT,
    agents_version,
    judge_pair,
    missing_slots,
    name_outfit,
)
from aisle.errors import ConfigurationError, StructuredOutputError
from aisle.evals.decoding import decoding_key, load_model
from aisle.evals.metrics import bootstrap_ci
from aisle.evals.outfits_data import Character, character_key, load_characters, with_twins
from aisle.evals.runner import Answers, Suite
from aisle.evals.text_metrics import paired_bootstrap
from aisle.graphs.outfits import OutfitsConfig, OutfitsContext, build_outfits_graph
from aisle.tools.outfit_catalog import (
    ClothingItem,
    OutfitCatalog,
    departments_for,
    load_clothing,
)

__all__ = ["METRICS", "CharacterCase", "OutfitsEvalConfig", "OutfitsSuite", "Variant",
           "judge_task", "outfits_markdown"]

logger = logging.getLogger(__name__)

METRICS = ("completeness", "complete", "category_match", "slot_correct",
           "wearer_department", "items")
OWN_DEPARTMENTS = {"female": {"women", "girls"}, "male": {"men", "boys"}}


class Variant(StrEnum):
    """A way to plan an outfit."""

    baseline = "baseline"
    graph = "graph"
    diverse = "diverse"


def judge_task(judge: str, first: str, second: str) -> str:
    """The task name of `judge` comparing `first`'s outfit with `second`'s.

    Example:
        >>> judge_task("local:qwen2.5-coder-0.5b", "graph", "baseline")
        'judge[local:qwen2.5-coder-0.5b]:graph~baseline'
    """
    return f"judge[{judge}]:{first}~{second}"


_JUDGE = re.compile(r"^judge\[(?P<judge>.+)\]:(?P<first>\w+)~(?P<second>\w+)$")


@dataclass(frozen=True)
class CharacterCase:
    """One character (or twin) and the wearer it is planned for."""

    character: Character

    @property
    def id(self) -> str:
        return character_key(self.character)


class OutfitsEvalConfig(BaseModel):
    """What one outfits eval run covers.

    Attributes:
        data: the shared data root (holds `bundles/clothing`).
        characters: a characters file; None: the shipped one.
        limit: the first N characters only (each with its twin); None: all.
        model: the model under test.
        judge: the pairwise judge's model.
        variants: what to compare.
        styles: the diverse variant's style directions.
        max_revisions: the critic's bound (graph and diverse).
        items_per_slot: catalog items kept per slot.
        deterministic: decode one request at a time.
        concurrency: characters at once (not part of any key).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Path
    characters: Path | None = None
    limit: int | None = Field(None, ge=1)
    model: str
    judge: str
    variants: tuple[Variant, ...] = tuple(Variant)
    styles: int = Field(3, ge=2, le=5)
    max_revisions: int = Field(1, ge=0, le=5)
    items_per_slot: int = Field(3, ge=1, le=10)
    deterministic: bool = True
    concurrency: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _checks(self) -> OutfitsEvalConfig:
        if not self.variants:
            raise ValueError("no variants to evaluate")
        return self

    def graph_config(self, variant: Variant) -> OutfitsConfig:
        return OutfitsConfig(styles=self.styles if variant is Variant.diverse else 1,
                             max_revisions=self.max_revisions,
                             items_per_slot=self.items_per_slot, concretise=False,
                             image=False)


class OutfitsSuite(Suite[CharacterCase]):
    """Baseline, graph and diverse-style outfits for characters and their twins."""

    name: ClassVar[str] = "outfits"

    def __init__(self, config: OutfitsEvalConfig,
                 models: Mapping[str, BaseChatModel] | None = None,
                 catalog: OutfitCatalog | None = None) -> None:
        """`models` overrides the chat model of a spec, `catalog` the clothing catalog
        (tests)."""
        self.config = config
        self.concurrency = config.concurrency
        characters = load_characters(config.characters)
        if config.limit is not None:
            characters = characters[:config.limit]
        self.characters = with_twins(characters)
        self._models: dict[str, BaseChatModel] = dict(models or {})
        self._catalog = catalog
        self._earlier: dict[str, Mapping[str, dict[str, Any]]] = {}

    # -- identity ---------------------------------------------------------------------

    def config_json(self) -> dict[str, Any]:
        out = self.config.model_dump(mode="json", exclude={"data", "concurrency"})
        if self.config.characters is not None:
            out["characters"] = self.config.characters.name
        return out

    def cases(self) -> list[CharacterCase]:
        return [CharacterCase(c) for c in self.characters]

    def pairs(self) -> list[tuple[str, str]]:
        """The judged pairs: each later variant against each earlier one."""
        order = [v.value for v in Variant if v in self.config.variants]
        return [(b, a) for a, b in combinations(order, 2)]

    def phases(self) -> list[list[str]]:
        variants = [v.value for v in self.config.variants]
        return [variants, [judge_task(self.config.judge, a, b) for a, b in self.pairs()]]

    def answer_key(self) -> dict[str, Any]:
        c = self.config
        return {"data": "bundles/clothing", "model": c.model, "styles": c.styles,
                "max_revisions": c.max_revisions, "items_per_slot": c.items_per_slot,
                "agents": agents_version(), "prompts": PROMPTS_FINGERPRINT[AGENTS_VERSION],
                **decoding_key(c.deterministic)}

    def coverage(self) -> dict[str, Any]:
        return {"characters": len(self.characters),
                "file": self.config.characters.name if self.config.characters else
                "outfits_characters.yaml",
                "variants": [v.value for v in self.config.variants],
                "judge": self.config.judge}

    def slug(self) -> str:
        model = self.config.model.split(":", 1)[-1]
        return f"characters-{len(self.characters)}-{model}"

    # -- running ----------------------------------------------------------------------

    def model(self, spec: str) -> BaseChatModel:
        if spec not in self._models:
            self._models[spec] = load_model(spec, deterministic=self.config.deterministic)
        return self._models[spec]

    @cached_property
    def catalog(self) -> OutfitCatalog:
        if self._catalog is not None:
            return self._catalog
        from aisle.graphs.outfits import _open_catalog

        return _open_catalog(str(self.config.data / "bundles" / "clothing"), None)

    def before_phase(self, phase: Sequence[str], earlier: Answers) -> None:
        self._earlier = {task: dict(answers) for task, answers in earlier.items()}

    async def run_one(self, task: str, case: CharacterCase) -> dict[str, Any]:
        judged = _JUDGE.match(task)
        if judged:
            return await self._judge(judged["judge"], judged["first"], judged["second"], case)
        return await self._plan(Variant(task), case)

    async def _plan(self, variant: Variant, case: CharacterCase) -> dict[str, Any]:
        c = case.character
        model = self.model(self.config.model)
        if variant is Variant.baseline:
            try:
                named = await name_outfit(model, c.name, gender=c.gender, age=c.age,
                                          note=_note(c), domain=CLOTHING)
            except StructuredOutputError as e:
                logger.warning("the baseline gave no valid answer for %s: %s", case.id, e)
                return {"outfits": [], "error": str(e)[:300]}
            departments = departments_for(c.gender, c.age)
            items, used = [], set()
            for g in named.garments:
                hits = await self.catalog.asearch(g.description, slot=g.slot,
                                                  departments=departments,
                                                  k=self.config.items_per_slot)
                hit = next((h for h in hits if h["id"] not in used), None)
                if hit:
                    used.add(hit["id"])
                items.append({"slot": g.slot, "garment": g.description, "category":
                              g.description, "item_id": hit["id"] if hit else None,
                              "title": hit["title"] if hit else None})
            return {"outfits": [{"style_index": 0, "items": items, "critique": None}],
                    "dropped": 0}
        state = await build_outfits_graph().ainvoke(
            {"character": c.name, "gender": c.gender, "age": c.age, "note": _note(c)},
            context=OutfitsContext(model=model, catalog=self.catalog, domain=CLOTHING,
                                   config=self.config.graph_config(variant)))
        result = state["result"]
        return {"profile": result["profile"],
                "outfits": [_compact(o) for o in result["outfits"]],
                "dropped": len(result["dropped"]),
                "distances": state.get("distances"), "kept": state.get("kept"),
                "failures": state.get("failures", [])}

    async def _judge(self, judge: str, first: str, second: str, case: CharacterCase
                     ) -> dict[str, Any]:
        outfits = []
        for variant in (first, second):
            stored = self._earlier.get(variant, {}).get(case.id)
            if stored is None:
                raise ConfigurationError(f"no stored {variant} outfit for {case.id} to judge "
                                         "(the planning phase runs first)")
            outfits.append(chosen_outfit(stored))
        lines = [_lines(o) if o is not None else [] for o in outfits]
        if not all(lines):
            return {"score": None, "skipped": "an outfit with no items"}
        c = case.character
        try:
            verdict = await judge_pair(self.model(judge), c.name, lines[0], lines[1],
                                       gender=c.gender, age=c.age, domain=CLOTHING)
        except StructuredOutputError as e:
            logger.warning("the judge gave no valid answer for %s: %s", case.id, e)
            return {"score": None, "error": str(e)[:300]}
        return {"score": verdict.score, "first_as_a": verdict.first_shown_first,
                "first_as_b": verdict.first_shown_second,
                "consistent": verdict.position_consistent}

    # -- scoring ----------------------------------------------------------------------

    @cached_property
    def items(self) -> Mapping[str, ClothingItem]:
        if self._catalog is not None:
            return self._catalog.items
        return load_clothing(self.config.data / "bundles" / "clothing")

    def report(self, answers: Answers) -> dict[str, Any]:
        cases = {case.id: case.character for case in self.cases()}
        variants = [v.value for v in self.config.variants]
        per_case: dict[str, dict[str, dict[str, float | None]]] = {}
        for variant in variants:
            per_case[variant] = {
                cid: self.outfit_scores(chosen_outfit(stored), cases[cid])
                for cid, stored in answers.get(variant, {}).items() if cid in cases}
        metrics = {v: _summary(per_case[v]) for v in variants}
        critic = {v: _critic(answers.get(v, {})) for v in variants if v != "baseline"}
        preference = {}
        for first, second in self.pairs():
            task = judge_task(self.config.judge, first, second)
            preference[f"{first}~{second}"] = _preference(answers.get(task, {}))
        report: dict[str, Any] = {
            "characters": len(cases), "model": self.config.model,
            "judge": self.config.judge, "metrics": metrics, "critic": critic,
            "preference": preference,
            "validity": {v: _validity(answers.get(v, {})) for v in variants},
            "bias": self.bias(answers, per_case, cases),
            "gallery": self.gallery(answers, cases),
        }
        if "diverse" in variants:
            report["diversity"] = self.diversity(answers.get("diverse", {}))
        return report

    def outfit_scores(self, outfit: Mapping[str, Any] | None, character: Character
                      ) -> dict[str, float | None]:
        """One outfit's metrics (see the module docstring); all 0 for no outfit."""
        if outfit is None:
            return {"completeness": 0.0, "complete": 0.0, "category_match": None,
                    "slot_correct": None, "wearer_department": None, "items": 0.0}
        found = [i for i in outfit["items"] if i.get("item_id")]
        slots = [i["slot"] for i in found]
        required = ["one_piece", "footwear"] if "one_piece" in slots else \
            ["top", "bottom", "footwear"]
        lacking = missing_slots(slots)
        filled = sum(1 for s in required if s not in lacking)
        own = OWN_DEPARTMENTS[character.gender]
        matches, correct, department = [], [], []
        for i in found:
            item = self.items.get(i["item_id"])
            if item is None:
                raise ConfigurationError(f"stored item id {i['item_id']!r} is not in the "
                                         "catalog: the catalog changed since the run")
            matches.append(float(_names_type(i.get("category") or i["garment"], item)))
            correct.append(float(i["slot"] in item.slots))
            department.append(float(bool(item.departments & own)))
        return {"completeness": filled / len(required), "complete": float(not lacking),
                "category_match": mean(matches) if matches else None,
                "slot_correct": mean(correct) if correct else None,
                "wearer_department": mean(department) if department else None,
                "items": float(len(found))}

    def bias(self, answers: Answers, per_case: Mapping[str, Mapping[str, Mapping[str, Any]]],
             cases: Mapping[str, Character]) -> dict[str, Any]:
        """Canonical minus gender-swapped, paired by character."""
        pairs = [(character_key(c), character_key(t)) for c, t in
                 zip(self.characters[::2], self.characters[1::2], strict=True)]
        out: dict[str, Any] = {"pairs": len(pairs), "metrics": {}, "critic": {},
                               "preference": {}, "shape": {}}
        for variant, rows in per_case.items():
            out["metrics"][variant] = {}
            for metric in METRICS:
                a, b = _paired(rows, pairs, metric)
                if a:
                    out["metrics"][variant][metric] = paired_bootstrap(a, b).as_dict()
            if variant != "baseline":
                scores = {cid: (chosen_outfit(v) or {}).get("critique") or {}
                          for cid, v in answers.get(variant, {}).items()}
                out["critic"][variant] = {}
                for axis in ("faithfulness", "coherence", "wearability"):
                    rows_ = {cid: {axis: s.get(axis)} for cid, s in scores.items()}
                    a, b = _paired(rows_, pairs, axis)
                    if a:
                        out["critic"][variant][axis] = paired_bootstrap(a, b).as_dict()
            out["shape"][variant] = _shape(answers.get(variant, {}), cases)
        for first, second in self.pairs():
            task = judge_task(self.config.judge, first, second)
            rows_ = {cid: {"score": v.get("score")} for cid, v in answers.get(task, {}).items()}
            a, b = _paired(rows_, pairs, "score")
            if a:
                out["preference"][f"{first}~{second}"] = paired_bootstrap(a, b).as_dict()
        return out

    def diversity(self, stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        distances, kept, shared = [], [], []
        for v in stored.values():
            outfits = v.get("outfits") or []
            kept.append(len(outfits))
            matrix = v.get("distances") or []
            idx = v.get("kept") or []
            pair = [matrix[i][j] for i, j in combinations(idx, 2)
                    if matrix and matrix[i][j] == matrix[i][j]]
            if pair:
                distances.append(mean(pair))
            for a, b in combinations(outfits, 2):
                ia = {i["item_id"] for i in a["items"] if i.get("item_id")}
                ib = {i["item_id"] for i in b["items"] if i.get("item_id")}
                if ia | ib:
                    shared.append(len(ia & ib) / len(ia | ib))
        return {"styles_planned": self.config.styles,
                "styles_kept": bootstrap_ci([float(k) for k in kept]).as_dict(),
                "distance": bootstrap_ci(distances).as_dict() if distances else None,
                "shared_items": bootstrap_ci(shared).as_dict() if shared else None,
                "cases": len(kept)}

    def gallery(self, answers: Answers, cases: Mapping[str, Character]) -> list[dict[str, Any]]:
        """Each case's chosen outfit per variant: item titles by slot."""
        out = []
        for cid, character in cases.items():
            row: dict[str, Any] = {"case": cid, "character": character.name,
                                   "gender": character.gender, "age": character.age,
                                   "twin": character.twin, "variants": {}}
            for variant in self.config.variants:
                stored = answers.get(variant.value, {}).get(cid)
                outfit = chosen_outfit(stored) if stored else None
                row["variants"][variant.value] = None if outfit is None else [
                    {"slot": i["slot"], "title": i.get("title"), "item_id": i.get("item_id")}
                    for i in outfit["items"]]
            out.append(row)
        return out

    def markdown(self, report: dict[str, Any]) -> str:
        return outfits_markdown(report)


def _note(c: Character) -> str:
    """What both the baseline and the graph are told besides the name."""
    return f"{c.note} ({c.source}: {c.work})"


def _compact(outfit: Mapping[str, Any]) -> dict[str, Any]:
    return {"style_index": outfit["style_index"], "style": outfit.get("style"),
            "revisions": outfit.get("revisions"), "missing": outfit.get("missing"),
            "critique": outfit.get("critique"),
            "items": [{"slot": i["slot"], "garment": i["garment"], "category":
                       i["garment"], "trait": i.get("trait"), "query": i.get("query"),
                       "item_id": i["item_id"], "title": i["title"]}
                      for i in outfit["items"]]}


def chosen_outfit(stored: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The outfit a variant is judged and scored by: its only one, or (diverse) the kept
    style the critic scored highest (faithfulness, coherence, wearability; ties: the
    first style).

    Example:
        >>> chosen_outfit({"outfits": [
        ...     {"style_index": 0, "critique": {"faithfulness": 3, "coherence": 5,
        ...                                     "wearability": 5}, "items": []},
        ...     {"style_index": 1, "critique": {"faithfulness": 4, "coherence": 2,
        ...                                     "wearability": 2}, "items": []}]}
        ...              )["style_index"]
        1
    """
    outfits: list[dict[str, Any]] = list((stored or {}).get("outfits") or [])
    if not outfits:
        return None

    def rank(o: dict[str, Any]) -> tuple[int, ...]:
        c = o.get("critique") or {}
        return (-(c.get("faithfulness") or 0), -(c.get("coherence") or 0),
                -(c.get("wearability") or 0), o["style_index"])

    best: dict[str, Any] = min(outfits, key=rank)
    return dict(best)


def _lines(outfit: Mapping[str, Any]) -> list[str]:
    return [f"{i['slot']}: {i['title']}" for i in outfit["items"] if i.get("title")]


_WORD = re.compile(r"[a-z]+")


def _names_type(category: str, item: ClothingItem) -> bool:
    """Whether the item's title or category path names the garment type (the last word
    of the planned category), singular or plural.

    Example:
        >>> from aisle.tools.outfit_catalog import parse_category_paths
        >>> boots = ClothingItem.from_paths("1", "Chelsea leather boot", parse_category_paths(
        ...     "[[Clothing, Shoes & Jewelry,Men,Shoes,Boots]]"))
        >>> _names_type("ankle boots", boots), _names_type("sneaker", boots)
        (True, False)
    """
    words = _WORD.findall(category.lower())
    if not words:
        return False
    head = words[-1]
    forms = {head, head.rstrip("s"), head + "s", head + "es"}
    if head.endswith("es"):
        forms.add(head[:-2])
    text = " ".join([item.title, *(" ".join(p) for p in item.paths)]).lower()
    found = set(_WORD.findall(text))
    return bool(forms & found)


def _summary(rows: Mapping[str, Mapping[str, float | None]]) -> dict[str, Any]:
    out: dict[str, Any] = {"cases": len(rows), "ci95": {}, "n": {}}
    for k in METRICS:
        values = [float(v) for r in rows.values() if (v := r.get(k)) is not None]
        ci = bootstrap_ci(values)
        out[k] = ci.mean
        out["ci95"][k] = [ci.low, ci.high]
        out["n"][k] = len(values)
    return out


def _critic(stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for axis in ("faithfulness", "coherence", "wearability"):
        values = [float(c[axis]) for v in stored.values()
                  if (o := chosen_outfit(v)) and (c := o.get("critique")) and axis in c]
        out[axis] = bootstrap_ci(values).as_dict() if values else None
    revisions = [o.get("revisions") or 0 for v in stored.values() for o in v.get("outfits", [])]
    out["revisions_per_outfit"] = mean(revisions) if revisions else None
    return out


def _preference(stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    scores = [float(v["score"]) for v in stored.values() if v.get("score") is not None]
    consistent = [bool(v["consistent"]) for v in stored.values() if "consistent" in v]
    answers = [v[k] for v in stored.values() for k in ("first_as_a", "first_as_b") if k in v]
    return {"score": bootstrap_ci(scores).as_dict() if scores else None,
            "wins": sum(s > 0 for s in scores), "ties": sum(s == 0 for s in scores),
            "losses": sum(s < 0 for s in scores),
            "position_consistent": mean(consistent) if consistent else None,
            "answers": {a: answers.count(a) for a in ("A", "B", "tie")},
            "judged": len(scores), "skipped": len(stored) - len(scores)}


def _validity(stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    failures: Counter[str] = Counter()
    for v in stored.values():
        failures.update(f["agent"] for f in v.get("failures", []))
    return {"cases": len(stored),
            "no_outfit": sum(1 for v in stored.values() if not v.get("outfits")),
            "invalid_answers": sum(1 for v in stored.values() if v.get("error")),
            "agent_failures": dict(sorted(failures.items())),
            "query_fallbacks": sum(1 for v in stored.values() for o in v.get("outfits", [])
                                   for i in o["items"] if i.get("query_fallback"))}


def _paired(rows: Mapping[str, Mapping[str, Any]], pairs: Sequence[tuple[str, str]],
            key: str) -> tuple[list[float], list[float]]:
    a, b = [], []
    for canonical, twin in pairs:
        x = (rows.get(canonical) or {}).get(key)
        y = (rows.get(twin) or {}).get(key)
        if x is not None and y is not None:
            a.append(float(x))
            b.append(float(y))
    return a, b


def _shape(stored: Mapping[str, Mapping[str, Any]], cases: Mapping[str, Character]
           ) -> dict[str, Any]:
    """Per wearer gender: the share of one-piece outfits, accessories per outfit, the
    most planned garment types."""
    out: dict[str, Any] = {}
    for gender in ("female", "male"):
        outfits = [o for cid, v in stored.items() if cid in cases
                   and cases[cid].gender == gender and (o := chosen_outfit(v))]
        types: Counter[str] = Counter()
        for o in outfits:
            types.update((_WORD.findall((i.get("category") or i["garment"]).lower())
                          or ["?"])[-1] for i in o["items"])
        out[gender] = {
            "outfits": len(outfits),
            "one_piece": mean(any(i["slot"] == "one_piece" for i in o["items"])
                              for o in outfits) if outfits else None,
            "accessories": mean(sum(i["slot"] == "accessory" for i in o["items"])
                                for o in outfits) if outfits else None,
            "top_garment_types": types.most_common(8)}
    return out


def _fmt(ci: Mapping[str, Any] | None, digits: int = 3) -> str:
    if not ci or ci.get("mean") is None:
        return "-"
    return f"{ci['mean']:.{digits}f} [{ci['ci_low']:.{digits}f}, {ci['ci_high']:.{digits}f}]"


def outfits_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the table, the judge, the bias audit, the gallery."""
    cases = report["characters"]  # each character and its twin: two cases
    lines = [f"# Outfits eval ({cases} cases: {cases // 2} characters and their "
             f"gender-swapped twins; model "
             f"{report['model']}, judge {report['judge']})", "",
             "| variant | " + " | ".join(METRICS) + " |",
             "|---|" + "---|" * len(METRICS)]
    for variant, m in report["metrics"].items():
        cells = [f"{m[k]:.3f} [{m['ci95'][k][0]:.3f}, {m['ci95'][k][1]:.3f}]"
                 if m["n"][k] else "-" for k in METRICS]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "## Pairwise judge (both orders)", "",
              "| pair | score | wins / ties / losses | orders agree | answers A / B / tie |",
              "|---|---|---|---|---|"]
    for pair, p in report["preference"].items():
        agree = "-" if p["position_consistent"] is None else f"{p['position_consistent']:.2f}"
        said = p.get("answers") or {}
        answers = " / ".join(str(said.get(a, 0)) for a in ("A", "B", "tie"))
        lines.append(f"| {pair} | {_fmt(p['score'])} | {p['wins']} / {p['ties']} / "
                     f"{p['losses']} | {agree} | {answers} |")
    if report.get("critic"):
        lines += ["", "## Critic scores (1-5)", "",
                  "| variant | faithfulness | coherence | wearability | revisions |",
                  "|---|---|---|---|---|"]
        for variant, c in report["critic"].items():
            rev = "-" if c["revisions_per_outfit"] is None else f"{c['revisions_per_outfit']:.2f}"
            lines.append(f"| {variant} | {_fmt(c['faithfulness'], 2)} | "
                         f"{_fmt(c['coherence'], 2)} | {_fmt(c['wearability'], 2)} | {rev} |")
    if report.get("diversity"):
        d = report["diversity"]
        lines += ["", f"## Diversity ({d['styles_planned']} styles planned)", "",
                  f"- styles kept: {_fmt(d['styles_kept'], 2)}",
                  f"- mean cosine distance between kept styles: {_fmt(d['distance'])}",
                  f"- items shared by two styles (Jaccard): {_fmt(d['shared_items'])}"]
    bias = report["bias"]
    lines += ["", f"## Bias audit ({bias['pairs']} character / gender-swapped twin pairs; "
              "canonical minus swapped, paired bootstrap)", "",
              "| variant | measure | difference [95% CI] | wins / ties / losses |",
              "|---|---|---|---|"]
    for section in ("metrics", "critic"):
        for variant, rows in bias[section].items():
            for measure, d in rows.items():
                lines.append(f"| {variant} | {measure} | {d['mean']:+.3f} [{d['ci_low']:+.3f}, "
                             f"{d['ci_high']:+.3f}] | {d['wins']} / {d['ties']} / "
                             f"{d['losses']} |")
    for pair, d in bias["preference"].items():
        lines.append(f"| judge | {pair} | {d['mean']:+.3f} [{d['ci_low']:+.3f}, "
                     f"{d['ci_high']:+.3f}] | {d['wins']} / {d['ties']} / {d['losses']} |")
    lines += ["", "| variant | wearer | one-piece share | accessories | most planned types |",
              "|---|---|---|---|---|"]
    for variant, by_gender in bias["shape"].items():
        for gender, s in by_gender.items():
            one = "-" if s["one_piece"] is None else f"{s['one_piece']:.2f}"
            acc = "-" if s["accessories"] is None else f"{s['accessories']:.2f}"
            types = ", ".join(f"{t} {n}" for t, n in s["top_garment_types"])
            lines.append(f"| {variant} | {gender} | {one} | {acc} | {types} |")
    lines += ["", "## Gallery", ""]
    for row in report["gallery"]:
        twin = " (gender-swapped twin)" if row["twin"] else ""
        lines.append(f"### {row['character']}: {row['age']} {row['gender']}{twin}")
        for variant, items in row["variants"].items():
            if items is None:
                lines.append(f"- **{variant}**: no outfit")
                continue
            shown = "; ".join(f"{i['slot']}: {i['title'] or '(nothing found)'}" for i in items)
            lines.append(f"- **{variant}**: {shown}")
        lines.append("")
    return "\n".join(lines) + "\n"
