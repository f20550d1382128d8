"""LVA-COG (Forouzandehmehr et al., arXiv 2402.05941): character-based outfit planning as
a LangGraph state machine, with POAC's prompt concretisation (arXiv 2404.11589) for the
text-to-image hook.

```
START -> profile --(one Send per style)--> outfit -> select -> concretise -> image --> END
                                            ^                                   |
                                            \\---- vision: revise with notes ----/

outfit (a subgraph, one run per style):
START -> stylist --(one Send per garment)--> retrieve -> critic --(revise?)--> stylist
                                                                 \\--> finish -> END
```

- `profile`: the character profiler (era, setting, palette, materials, signature
  pieces, traits) for the character and the wearer's age group and gender.
- `outfit`, per style: the stylist fills the garment slots; one `retrieve` branch per
  garment writes a catalog query (query writer) and searches the clothing catalog with
  the slot's and the wearer's filters (`aisle.tools.outfit_catalog`: a footwear slot only
  returns footwear, a man's outfit only men's or unisex items), so every item is one the
  catalog holds; the critic scores faithfulness, coherence and wearability and says
  accept or revise; a revise verdict, or any score of 2 or lower, sends the outfit back
  to the stylist with the critic's feedback, at most `max_revisions` times (the count is
  in the state).
- `select`: in diverse-style mode (`styles` > 1, one style direction each from
  `STYLE_DIRECTIONS`), outfits whose embedding (the mean MiniLM embedding of their item
  titles) lies within cosine distance `min_distance` of an outfit already kept are
  dropped as repeats.
- `concretise`: the first kept outfit becomes a concrete text-to-image prompt.
- `image`: with an OpenAI-compatible image endpoint configured (`AISLE_IMAGE_BASE_URL`,
  or the context's `image`), the prompt is drawn; with a vision-language model too, it
  describes the garments in the picture, and ("vision-enhanced") the outfits are planned
  once more with that description (at most `vision_rounds` times). Without an endpoint
  the step is skipped and the result says so; an endpoint that is down is reported in
  the result, and the outfits stand.

Bad input (an empty or over-long character name, an age group or gender outside the
documented values) is a one-line `ConfigurationError` before any model call. A slot
the catalog has nothing for is listed under the outfit's `missing`, never filled with
an invented id. An agent whose answer stays invalid after the repair turn is recorded
under `failures`: a query writer falls back to the garment's own words; a critic's
failure accepts the outfit as it is; a stylist's failure leaves that style without an
outfit (`status: "failed"`).

Example:
    >>> from aisle.graphs.outfits import build_outfits_graph
    >>> sorted(build_outfits_graph().get_graph().nodes)
    ['__end__', '__start__', 'concretise', 'image', 'outfit', 'profile', 'result', 'select']
"""

from __future__ import annotations

import asyncio
import logging
import operator
import threading
from typing import Annotated, Any, Literal

import numpy as np
from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from typing_extensions import TypedDict

from aisle.agents import Domain
from aisle.agents.outfits import (
    CLOTHING,
    STYLE_DIRECTIONS,
    CharacterProfile,
    CriticSlot,
    Garment,
    concretise,
    critique_outfit,
    missing_slots,
    plan_outfit,
    profile_character,
    write_query,
)
from aisle.errors import ConfigurationError, StructuredOutputError
from aisle.graphs._context import GraphContext, ModelRef
from aisle.graphs._registry import GraphSpec, register_graph
from aisle.tools.images import (
    ImageEndpoint,
    ImageEndpointError,
    describe_image,
    generate_image,
    image_endpoint_from_env,
)
from aisle.tools.outfit_catalog import (
    AgeGroup,
    Gender,
    OutfitCatalog,
    departments_for,
    load_clothing,
)

__all__ = ["OutfitsAgent", "OutfitsConfig", "OutfitsContext", "OutfitsInput", "OutfitsState",
           "build_outfit_subgraph", "build_outfits_graph", "graph", "keep_distinct",
           "needs_revision", "validate_input"]

logger = logging.getLogger(__name__)

OutfitsAgent = Literal["profiler", "stylist", "query_writer", "critic", "concretiser"]
"""The agents a context may give their own model."""

GENDERS: tuple[str, ...] = ("female", "male")
AGE_GROUPS: tuple[str, ...] = ("child", "teen", "adult", "senior")
MAX_NAME_CHARS = 80

CatalogRef = Annotated[
    str | Any,
    WithJsonSchema({"type": "string", "description": "The clothing catalog's folder "
                    "(bundles/clothing: item_titles.csv, item_categories.csv)."}),
]
"""The catalog as its folder (serialisable) or, from Python, an `OutfitCatalog`."""


class OutfitsConfig(BaseModel):
    """Knobs of one run.

    Attributes:
        styles: outfits planned, each with its own style direction (1: one outfit, no
            direction; the diverse-style mode is 2 or more).
        max_revisions: the most times the critic can send an outfit back to the stylist.
        items_per_slot: catalog items kept per slot (the first not already in the
            outfit is chosen; the rest are alternatives).
        min_distance: in diverse-style mode, an outfit within this cosine distance of
            one already kept is dropped. 0.1 on the mean MiniLM embedding of the item
            titles: two outfits of the same garment types in other colours and
            materials lie about 0.1 to 0.2 apart, the same items 0.
        concretise: write the text-to-image prompt (the eval, which draws nothing, turns
            it off).
        image: call the image endpoint when one is configured.
        vision_rounds: with a vision-language model configured, how many times the
            outfits are planned again from its description of the picture.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    styles: int = Field(1, ge=1, le=len(STYLE_DIRECTIONS))
    max_revisions: int = Field(1, ge=0, le=5)
    items_per_slot: int = Field(3, ge=1, le=10)
    min_distance: float = Field(0.1, ge=0.0, le=2.0)
    concretise: bool = True
    image: bool = True
    vision_rounds: int = Field(1, ge=0, le=3)


class OutfitsContext(GraphContext):
    """Run-scoped dependencies, as JSON.

    Attributes:
        model: the model every agent uses; None uses `AISLE_MODEL`.
        agent_models: per-agent override; keys are `OutfitsAgent` names.
        domain: the shop, as the prompts name it.
        catalog: the clothing catalog's folder, or an `OutfitCatalog` (from Python);
            None: `bundles/clothing` under the data root (`AISLE_DATA`).
        index_dir: where the catalog's chromadb index lives (default
            `AISLE_HOME/indexes/outfits-<catalog fingerprint>`).
        image: the image endpoint; None reads `AISLE_IMAGE_*` / `AISLE_VLM_*` from the
            environment (and skips the image step when they are unset).
        config: styles, revisions, filters.
    """

    model: ModelRef | None = None
    agent_models: dict[OutfitsAgent, ModelRef] = Field(default_factory=dict)
    domain: Domain = CLOTHING
    catalog: CatalogRef | None = None
    index_dir: str | None = None
    image: ImageEndpoint | None = None
    config: OutfitsConfig = Field(default_factory=OutfitsConfig)

    async def amodel_for(self, agent: OutfitsAgent) -> BaseChatModel:
        return await self.aload_model(self.agent_models.get(agent, self.model))


class OutfitsInput(TypedDict, total=False):
    """The character and the wearer (`gender`: female|male; `age`: child|teen|adult|
    senior), an optional note (era, source), and `styles` to override the config's."""

    character: str
    gender: Gender
    age: AgeGroup
    note: str | None
    styles: int | None


class SlotPick(TypedDict):
    """One garment of an outfit and what the catalog gave for it."""

    index: int
    slot: str
    garment: str
    trait: str
    query: str
    query_fallback: bool
    candidates: list[dict[str, Any]]
    item: dict[str, Any] | None


class AgentFailure(TypedDict):
    agent: str
    style: int
    error: str


class OutfitState(TypedDict, total=False):
    """The subgraph's blackboard: one style's outfit, its revisions and critiques."""

    character: str
    gender: Gender
    age: AgeGroup
    profile: str
    style_index: int
    style: str | None
    image_notes: str | None
    round: int
    plan: list[dict[str, Any]] | None
    revision: int
    picks: Annotated[list[dict[str, Any]], operator.add]
    critiques: Annotated[list[dict[str, Any]], operator.add]
    failures: Annotated[list[AgentFailure], operator.add]
    outfits: list[dict[str, Any]]


class OutfitOutput(TypedDict):
    outfits: list[dict[str, Any]]
    failures: list[AgentFailure]


class OutfitsState(OutfitsInput, total=False):
    """The blackboard: the profile, every outfit of every round, what was kept, the
    image prompt, the image step's outcome, and the result."""

    profile: dict[str, Any] | None
    round: int
    image_notes: str | None
    outfits: Annotated[list[dict[str, Any]], operator.add]
    kept: list[int]
    distances: list[list[float]]
    image_prompt: dict[str, Any] | None
    image: dict[str, Any]
    failures: Annotated[list[AgentFailure], operator.add]
    result: dict[str, Any]


def _ctx(runtime: Runtime[OutfitsContext]) -> OutfitsContext:
    ctx = runtime.context
    if ctx is None:
        return OutfitsContext()
    return ctx if isinstance(ctx, OutfitsContext) else OutfitsContext.model_validate(ctx)


def _failure(agent: str, style: int, error: Exception) -> AgentFailure:
    return AgentFailure(agent=agent, style=style, error=str(error).splitlines()[0][:300])


def validate_input(state: OutfitsInput) -> tuple[str, Gender, AgeGroup]:
    """The character's name and the wearer, or a one-line error.

    Raises:
        ConfigurationError: an empty or over-long name, a gender or age group outside
            the documented values.

    Example:
        >>> validate_input({"character": " Indiana Jones ", "gender": "male", "age": "adult"})
        ('Indiana Jones', 'male', 'adult')
        >>> validate_input({"character": "Mario", "gender": "male", "age": "toddler"})
        Traceback (most recent call last):
        ...
        aisle.errors.ConfigurationError: age 'toddler' is not one of child, teen, adult, senior
    """
    name = " ".join(str(state.get("character") or "").split())
    if not name:
        raise ConfigurationError("no character: name a character (e.g. 'Sherlock Holmes')")
    if len(name) > MAX_NAME_CHARS:
        raise ConfigurationError(f"character name of {len(name)} characters: at most "
                                 f"{MAX_NAME_CHARS}")
    gender = state.get("gender")
    if gender not in GENDERS:
        raise ConfigurationError(f"gender {gender!r} is not one of {', '.join(GENDERS)}")
    age = state.get("age")
    if age not in AGE_GROUPS:
        raise ConfigurationError(f"age {age!r} is not one of {', '.join(AGE_GROUPS)}")
    return name, gender, age


# -- the catalog -------------------------------------------------------------------------
_catalogs: dict[tuple[str, str | None], OutfitCatalog] = {}
# A thread lock, not an asyncio one: the catalogs outlive any one event loop (the CLI,
# tests and the server each run their own).
_catalog_lock = threading.Lock()


def _open_catalog(folder: str, index_dir: str | None) -> OutfitCatalog:
    """The catalog in `folder`, its index synced (embedded on first use)."""
    from pathlib import Path

    from aisle.settings import get_settings
    from aisle.tools.retrieval import catalog_fingerprint

    items = load_clothing(Path(folder))
    if index_dir is None:
        key = catalog_fingerprint({i: c.title for i, c in items.items()})[:12]
        index_dir = str(get_settings().home / "indexes" / f"outfits-{key}")
    catalog = OutfitCatalog(index_dir, items)
    catalog.sync()
    return catalog


def _shared_catalog(folder: str, index_dir: str | None) -> OutfitCatalog:
    with _catalog_lock:
        key = (folder, index_dir)
        if key not in _catalogs:
            _catalogs[key] = _open_catalog(folder, index_dir)
        return _catalogs[key]


async def _catalog(ctx: OutfitsContext) -> OutfitCatalog:
    ref = ctx.catalog
    if ref is not None and not isinstance(ref, str):
        return ref  # type: ignore[no-any-return]
    if ref is None:
        from aisle.settings import get_settings

        ref = str(get_settings().data / "bundles" / "clothing")
    return await asyncio.to_thread(_shared_catalog, ref, ctx.index_dir)


# -- the outfit subgraph -----------------------------------------------------------------
async def stylist(state: OutfitState, runtime: Runtime[OutfitsContext]) -> dict[str, Any]:
    """The garment plan (with the critic's last feedback on a revision)."""
    ctx = _ctx(runtime)
    feedback = None
    if state.get("critiques"):
        last = state["critiques"][-1]
        feedback = (f"{last['feedback']} (faithfulness {last['faithfulness']}/5, coherence "
                    f"{last['coherence']}/5, wearability {last['wearability']}/5)")
        missing = last.get("missing") or []
        if missing:
            feedback += f" Nothing was found for: {', '.join(missing)}."
    revision = state.get("revision", -1) + 1
    try:
        plan = await plan_outfit(await ctx.amodel_for("stylist"), state["character"],
                                 state["profile"], gender=state["gender"], age=state["age"],
                                 style=state.get("style"), feedback=feedback,
                                 image_notes=state.get("image_notes"), domain=ctx.domain)
    except StructuredOutputError as e:
        logger.warning("the stylist failed (style %d): %s", state["style_index"], e)
        return {"plan": None, "revision": revision,
                "failures": [_failure("stylist", state["style_index"], e)]}
    if plan.dropped:
        logger.info("the stylist planned a one-piece and separates; dropped %s (style %d)",
                    ", ".join(plan.dropped), state["style_index"])
    return {"plan": [g.model_dump() for g in plan.garments], "revision": revision}


def fan_out_garments(state: OutfitState) -> list[Send] | Literal["finish"]:
    """One `retrieve` branch per planned garment; no plan, no branches."""
    plan = state.get("plan")
    if not plan:
        return "finish"
    return [Send("retrieve", {**state, "garment_index": i}) for i in range(len(plan))]


class _RetrieveTask(OutfitState, total=False):
    garment_index: int


async def retrieve(state: _RetrieveTask, runtime: Runtime[OutfitsContext]) -> dict[str, Any]:
    """A catalog query for one garment, and the items of its slot that match it."""
    ctx = _ctx(runtime)
    index = state["garment_index"]
    garment = Garment.model_validate((state.get("plan") or [])[index])
    failures: list[AgentFailure] = []
    fallback = False
    try:
        query = await write_query(await ctx.amodel_for("query_writer"), garment,
                                  gender=state["gender"], age=state["age"],
                                  image_notes=state.get("image_notes"), domain=ctx.domain)
    except StructuredOutputError as e:
        query, fallback = garment.describe(), True
        failures.append(_failure("query_writer", state["style_index"], e))
    catalog = await _catalog(ctx)
    hits = await catalog.asearch(query, slot=garment.slot,
                                 departments=departments_for(state["gender"], state["age"]),
                                 k=ctx.config.items_per_slot)
    pick = SlotPick(index=index, slot=garment.slot, garment=garment.describe(),
                    trait=garment.trait, query=query, query_fallback=fallback,
                    candidates=[dict(h) for h in hits], item=None)
    return {"picks": [{**pick, "revision": state.get("revision", 0)}], "failures": failures}


def _current(state: OutfitState) -> list[dict[str, Any]]:
    """This revision's picks, in plan order, each with a distinct item where it can."""
    revision = state.get("revision", 0)
    picks = sorted((p for p in state.get("picks", []) if p["revision"] == revision),
                   key=lambda p: p["index"])
    used: set[str] = set()
    out = []
    for p in picks:
        item = next((c for c in p["candidates"] if c["id"] not in used), None)
        if item is not None:
            used.add(item["id"])
        out.append({**p, "item": item})
    return out


def _missing(plan: list[dict[str, Any]] | None, picks: list[dict[str, Any]]) -> list[str]:
    planned = [g["slot"] for g in plan or []]
    empty = [f"{p['slot']} ({p['garment']})" for p in picks if p["item"] is None]
    return missing_slots(planned) + empty


async def critic(state: OutfitState, runtime: Runtime[OutfitsContext]) -> dict[str, Any]:
    """Faithfulness, coherence, wearability; accept or revise."""
    ctx = _ctx(runtime)
    picks = _current(state)
    missing = _missing(state.get("plan"), picks)
    slots = [CriticSlot(slot=p["slot"], planned=p["garment"],
                        found=p["item"]["title"] if p["item"] else "nothing")
             for p in picks]
    try:
        review = await critique_outfit(await ctx.amodel_for("critic"), state["character"],
                                       state["profile"], slots, gender=state["gender"],
                                       age=state["age"], missing=missing, domain=ctx.domain)
    except StructuredOutputError as e:
        logger.warning("the critic failed (style %d): %s", state["style_index"], e)
        return {"critiques": [{"verdict": "failed", "revision": state.get("revision", 0),
                               "missing": missing}],
                "failures": [_failure("critic", state["style_index"], e)]}
    return {"critiques": [{**review.model_dump(), "revision": state.get("revision", 0),
                           "missing": missing}]}


def needs_revision(critique: dict[str, Any]) -> bool:
    """The critic says revise, or scores any axis 2 or lower (a small model's verdict
    and scores can disagree: Qwen2.5-Coder-0.5B accepted outfits it scored 1/5).

    Example:
        >>> needs_revision({"verdict": "accept", "faithfulness": 5, "coherence": 2,
        ...                 "wearability": 5})
        True
        >>> needs_revision({"verdict": "failed"})
        False
    """
    if critique.get("verdict") == "revise":
        return True
    scores = [critique.get(k) for k in ("faithfulness", "coherence", "wearability")]
    return any(isinstance(v, int) and v <= 2 for v in scores)


def revise_or_finish(state: OutfitState, runtime: Runtime[OutfitsContext]
                     ) -> Literal["stylist", "finish"]:
    """Back to the stylist while the critic asks for it (`needs_revision`) and
    revisions are left."""
    last = (state.get("critiques") or [{}])[-1]
    if needs_revision(last) and state.get("revision", 0) < _ctx(runtime).config.max_revisions:
        return "stylist"
    return "finish"


def finish(state: OutfitState) -> dict[str, Any]:
    """The style's outfit: its items per slot, what is missing, the last critique."""
    base = {"style_index": state["style_index"], "style": state.get("style"),
            "round": state.get("round", 0), "revisions": max(0, state.get("revision", 0))}
    if not state.get("plan"):
        return {"outfits": [{**base, "status": "failed", "items": [], "missing": [],
                             "critique": None}]}
    picks = _current(state)
    critiques = [c for c in state.get("critiques", []) if c.get("verdict") != "failed"]
    return {"outfits": [{
        **base, "status": "ok",
        "items": [{"slot": p["slot"], "garment": p["garment"], "trait": p["trait"],
                   "query": p["query"], "query_fallback": p["query_fallback"],
                   "item_id": p["item"]["id"] if p["item"] else None,
                   "title": p["item"]["title"] if p["item"] else None,
                   "alternatives": [c["id"] for c in p["candidates"]
                                    if not p["item"] or c["id"] != p["item"]["id"]]}
                  for p in picks],
        "missing": _missing(state.get("plan"), picks),
        "critique": critiques[-1] if critiques else None}]}


def build_outfit_subgraph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """One style's outfit: stylist -> retrieve (per garment) -> critic -> revise/finish."""
    builder = StateGraph(OutfitState, context_schema=OutfitsContext,
                         output_schema=OutfitOutput)
    builder.add_node("stylist", stylist)
    builder.add_node("retrieve", retrieve)
    builder.add_node("critic", critic)
    builder.add_node("finish", finish)
    builder.add_edge(START, "stylist")
    builder.add_conditional_edges("stylist", fan_out_garments, ["retrieve", "finish"])
    builder.add_edge("retrieve", "critic")
    builder.add_conditional_edges("critic", revise_or_finish,
                                  {"stylist": "stylist", "finish": "finish"})
    builder.add_edge("finish", END)
    return builder.compile()


# -- the outer graph ---------------------------------------------------------------------
async def profile(state: OutfitsState, runtime: Runtime[OutfitsContext]) -> dict[str, Any]:
    """Check the input, then the character's look (None when it stays invalid: the
    stylist then works from the name alone)."""
    name, gender, age = validate_input(state)
    ctx = _ctx(runtime)
    styles = state.get("styles") or ctx.config.styles
    if not 1 <= styles <= len(STYLE_DIRECTIONS):
        raise ConfigurationError(f"styles={styles}: between 1 and {len(STYLE_DIRECTIONS)}")
    try:
        found = await profile_character(await ctx.amodel_for("profiler"), name,
                                        gender=gender, age=age, note=state.get("note"),
                                        domain=ctx.domain)
    except StructuredOutputError as e:
        logger.warning("the profiler failed: %s", e)
        return {"character": name, "profile": None, "round": 0, "styles": styles,
                "failures": [_failure("profiler", -1, e)]}
    return {"character": name, "profile": found.model_dump(), "round": 0, "styles": styles}


def _profile_text(state: OutfitsState) -> str:
    found = state.get("profile")
    if not found:
        return "(no profile: go by the character's name)"
    return CharacterProfile.model_validate(found).describe()


def plan_styles(state: OutfitsState) -> list[Send]:
    """One `outfit` run per style (a style direction each in diverse-style mode)."""
    n = state.get("styles") or 1
    return [Send("outfit", OutfitState(
        character=state["character"], gender=state["gender"], age=state["age"],
        profile=_profile_text(state), style_index=i,
        style=STYLE_DIRECTIONS[i] if n > 1 else None,
        image_notes=state.get("image_notes"), round=state.get("round", 0)))
        for i in range(n)]


def _latest(state: OutfitsState) -> list[dict[str, Any]]:
    round_ = state.get("round", 0)
    return sorted((o for o in state.get("outfits", []) if o["round"] == round_),
                  key=lambda o: o["style_index"])


def keep_distinct(vectors: list[np.ndarray | None], min_distance: float
                  ) -> tuple[list[int], list[list[float]]]:
    """Greedy: keep each outfit unless it lies within `min_distance` (cosine) of one
    already kept; outfits without a vector (no items) are dropped. Returns the kept
    indices and the pairwise distance matrix (NaN where a vector is missing).

    Example:
        >>> a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
        >>> keep_distinct([a, a * 2, b, None], 0.1)[0]
        [0, 2]
    """
    n = len(vectors)
    dist = [[float("nan")] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            u, v = vectors[i], vectors[j]
            if u is not None and v is not None:
                denom = float(np.linalg.norm(u) * np.linalg.norm(v)) or 1.0
                dist[i][j] = round(1.0 - float(np.dot(u, v)) / denom, 6)
    kept: list[int] = []
    for i in range(n):
        if vectors[i] is None:
            continue
        if all(dist[i][k] >= min_distance for k in kept):
            kept.append(i)
    return kept, dist


async def select(state: OutfitsState, runtime: Runtime[OutfitsContext]) -> dict[str, Any]:
    """Drop repeated styles (diverse-style mode); one style is kept as it is."""
    ctx = _ctx(runtime)
    outfits = _latest(state)
    titles = [[i["title"] for i in o["items"] if i["title"]] for o in outfits]
    if len(outfits) == 1:
        return {"kept": [0] if titles[0] else [], "distances": [[0.0]]}
    catalog = await _catalog(ctx)
    flat = [t for ts in titles for t in ts]
    embedded = await asyncio.to_thread(catalog.embedder.embed, flat) if flat else None
    vectors: list[np.ndarray | None] = []
    at = 0
    for ts in titles:
        if not ts or embedded is None:
            vectors.append(None)
            continue
        vectors.append(np.mean(embedded[at:at + len(ts)], axis=0))
        at += len(ts)
    kept, dist = keep_distinct(vectors, ctx.config.min_distance)
    return {"kept": kept, "distances": dist}


async def concretise_node(state: OutfitsState, runtime: Runtime[OutfitsContext]
                          ) -> dict[str, Any]:
    """POAC: the first kept outfit as a concrete text-to-image prompt."""
    ctx = _ctx(runtime)
    outfits = _latest(state)
    kept = state.get("kept") or []
    if not kept or not ctx.config.concretise:
        return {"image_prompt": None}
    chosen = outfits[kept[0]]
    garments = [i["title"] or i["garment"] for i in chosen["items"]]
    setting = (state.get("profile") or {}).get("setting")
    try:
        found = await concretise(await ctx.amodel_for("concretiser"), garments=garments,
                                 character=state["character"], setting=setting,
                                 gender=state["gender"], age=state["age"], domain=ctx.domain)
    except (StructuredOutputError, ConfigurationError) as e:
        logger.warning("the concretiser failed: %s", e)
        return {"image_prompt": None, "failures": [_failure("concretiser", kept[0], e)]}
    return {"image_prompt": found.model_dump()}


def _endpoint(ctx: OutfitsContext) -> ImageEndpoint | None:
    return ctx.image if ctx.image is not None else image_endpoint_from_env()


async def image(state: OutfitsState, runtime: Runtime[OutfitsContext]) -> dict[str, Any]:
    """Draw the prompt where an image endpoint is configured; with a vision-language
    model, describe the garments the picture shows."""
    ctx = _ctx(runtime)
    endpoint = _endpoint(ctx) if ctx.config.image else None
    prompt = (state.get("image_prompt") or {}).get("prompt")
    if endpoint is None:
        reason = ("the image step is off (config.image)" if not ctx.config.image else
                  "no image endpoint is configured (AISLE_IMAGE_BASE_URL or the context's "
                  "`image`): nothing was drawn")
        return {"image": {"status": "skipped", "reason": reason}}
    if not prompt:
        return {"image": {"status": "skipped", "reason": "no image prompt (no outfit kept, or "
                                                         "the concretiser failed)"}}
    try:
        picture = await generate_image(endpoint, prompt)
    except ImageEndpointError as e:
        logger.warning("the image endpoint failed: %s", e)
        return {"image": {"status": "failed", "reason": str(e)}}
    out: dict[str, Any] = {"status": "generated", "url": picture.url,
                           "bytes": len(picture.png) if picture.png else 0,
                           "revised_prompt": picture.revised_prompt}
    notes = None
    if endpoint.vlm_model and ctx.config.vision_rounds > state.get("round", 0):
        try:
            notes = await describe_image(
                endpoint, picture, "List each garment the person wears (top, bottom or "
                "one-piece, outerwear, footwear, accessories): one line each, with its "
                "colour and material.")
        except ImageEndpointError as e:
            out["description_error"] = str(e)
        out["description"] = notes
    update: dict[str, Any] = {"image": out}
    if notes:
        update["image_notes"] = notes
        update["round"] = state.get("round", 0) + 1
    return update


def after_image(state: OutfitsState) -> list[Send] | Literal["result"]:
    """Vision-enhanced: plan again with the picture's description (a new round)."""
    round_ = state.get("round", 0)
    if not any(o["round"] == round_ for o in state.get("outfits", [])):
        return plan_styles(state)
    return "result"


def result(state: OutfitsState) -> dict[str, Any]:
    """The kept outfits (diverse-style repeats listed apart), the prompt, the image."""
    outfits = _latest(state)
    kept = state.get("kept") or []
    return {"result": {
        "character": state["character"],
        "wearer": {"gender": state["gender"], "age": state["age"]},
        "profile": state.get("profile"),
        "outfits": [outfits[i] for i in kept],
        "dropped": [o for i, o in enumerate(outfits) if i not in kept],
        "image_prompt": state.get("image_prompt"),
        "image": state.get("image"),
        "rounds": state.get("round", 0) + 1,
    }}


def build_outfits_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the outfit planner (the `outfit` node is `build_outfit_subgraph()`)."""
    builder = StateGraph(OutfitsState, context_schema=OutfitsContext,
                         input_schema=OutfitsInput)
    builder.add_node("profile", profile)
    builder.add_node("outfit", build_outfit_subgraph())
    builder.add_node("select", select)
    builder.add_node("concretise", concretise_node)
    builder.add_node("image", image)
    builder.add_node("result", result)
    builder.add_edge(START, "profile")
    builder.add_conditional_edges("profile", plan_styles, ["outfit"])
    builder.add_edge("outfit", "select")
    builder.add_edge("select", "concretise")
    builder.add_edge("concretise", "image")
    builder.add_conditional_edges("image", after_image, ["outfit", "result"])
    builder.add_edge("result", END)
    return builder.compile()


graph = build_outfits_graph()

register_graph(GraphSpec(
    name="outfits",
    description="LVA-COG character-based outfit planning: profile, stylist, per-slot "
                "catalog retrieval, critic with bounded revisions, diverse styles, and a "
                "POAC text-to-image prompt (image endpoint optional).",
    build=build_outfits_graph, input_schema=OutfitsInput, context_schema=OutfitsContext,
    agents=OutfitsAgent, module="outfits"))
