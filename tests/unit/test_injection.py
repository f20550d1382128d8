"""Catalog and user text is data: no value rendered into a prompt can close its block,
forge a tag or a chat-template marker, or start a line of its own; ordinary text stays
as it is. The hostile values are the injection eval's (`aisle.evals.injection`)."""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, nodes

from aisle.agents import Domain
from aisle.agents.arag import GAMES
from aisle.evals.injection import EXTRACT, HOSTILE, hostile_values
from aisle.prompts import render
from aisle.prompts._render import DATA_LIMIT, data

CLEAN = "Florsheim Milano Loafer, Burgundy"
HOSTILE_VALUES = {**hostile_values(CLEAN),
                  **{f"{k}/extract": v for k, v in hostile_values(CLEAN, EXTRACT).items()}}

HIST = ["Zelda: Breath of the Wild", "Mario Kart 8 Deluxe", "Pokemon Red"]
CANDS = [{"id": "i1", "title": "Pokemon Red"}, {"id": "i2", "title": "Halo 3"}]
PROFILE = "Long-term: Nintendo\nRight now: racing"


def _history(v: str) -> dict[str, Any]:
    return {"history": [HIST[0], v, HIST[2]]}


# Per template and untrusted slot: the variables with the value in that slot, the tag
# of the block that must hold it (None: a slot outside any block, e.g. an attribute
# name in the instruction), and whether the slot is multi-line text.
Slot = tuple[str, Callable[[str], dict[str, Any]], str | None, bool]
RANKER = {"history": HIST, "profile": PROFILE, "context": "Mostly Nintendo",
          "candidates": CANDS}
SHOES = {"attributes": ["Brand", "Color"], "category": "Shoes", "title": "Nike Pegasus",
         "examples": [{"title": "Adidas Samba white", "answer": '{"Brand": "Adidas"}'}]}
SLOTS: dict[str, Slot] = {
    "user_understanding/history": (
        "arag/user_understanding.j2", _history, "history", False),
    "nli_logprob/history": (
        "arag/nli_logprob.j2", lambda v: {**_history(v), "item": "Halo 3"}, "history", False),
    "nli_logprob/item": (
        "arag/nli_logprob.j2", lambda v: {"history": HIST, "item": v}, "item", False),
    "nli_generate/history": (
        "arag/nli_generate.j2", lambda v: {**_history(v), "item": "Halo 3"}, "history", False),
    "nli_generate/item": (
        "arag/nli_generate.j2", lambda v: {"history": HIST, "item": v}, "item", False),
    "context_summary/profile": (
        "arag/context_summary.j2",
        lambda v: {"profile": v, "items": [{"title": "Halo 3", "score": 0.5}]}, "profile", True),
    "context_summary/items": (
        "arag/context_summary.j2",
        lambda v: {"profile": PROFILE, "items": [{"title": "Halo 3", "score": 0.9},
                                                 {"title": v, "score": 0.5}]}, "items", False),
    "item_ranker/history": (
        "arag/item_ranker.j2", lambda v: {**RANKER, **_history(v)}, "history", False),
    "item_ranker/profile": (
        "arag/item_ranker.j2", lambda v: {**RANKER, "profile": v}, "profile", True),
    "item_ranker/context": (
        "arag/item_ranker.j2", lambda v: {**RANKER, "context": v}, "summary", True),
    "item_ranker/candidate": (
        "arag/item_ranker.j2",
        lambda v: {**RANKER, "candidates": [CANDS[0], {"id": "i2", "title": v}]},
        "candidates", False),
    "item_ranker/candidate_id": (
        "arag/item_ranker.j2",
        lambda v: {**RANKER, "candidates": [CANDS[0], {"id": v, "title": "Halo 3"}]},
        "candidates", False),
    **{f"{variant}/{slot}": (f"ensemble/{variant}.j2", build, tag, False)
       for variant in ("zeroshot", "fewshot")
       for slot, build, tag in (
           ("title", lambda v: {**SHOES, "title": v}, "title"),
           ("category", lambda v: {**SHOES, "category": v}, "category"),
           ("attribute", lambda v: {**SHOES, "attributes": ["Brand", v]}, None))},
    "fewshot/example_title": (
        "ensemble/fewshot.j2",
        lambda v: {**SHOES, "examples": [{"title": v, "answer": '{"Brand": "Adidas"}'}]},
        "title", False),
    "fewshot/example_answer": (
        "ensemble/fewshot.j2",
        lambda v: {**SHOES, "examples": [{"title": "Adidas Samba", "answer": v}]}, None, False),
}
TAG = re.compile(r"<[^<>]*>")
FILLER = "Halo 3 Limited Edition"  # a clean value in the slot, for comparison


def _render(slot: str, value: str) -> str:
    template, build, _, _ = SLOTS[slot]
    domain = GAMES if template.startswith("arag") else Domain()
    return render(template, domain=domain, **build(value))


@pytest.mark.parametrize("name", sorted(HOSTILE_VALUES))
@pytest.mark.parametrize("slot", sorted(SLOTS))
def test_a_hostile_value_cannot_leave_its_block(slot: str, name: str) -> None:
    value = HOSTILE_VALUES[name]
    _, _, tag, multiline = SLOTS[slot]
    text, clean = _render(slot, value), _render(slot, FILLER)
    # Every tag and chat-template marker in the prompt is the template's own.
    assert TAG.findall(text) == TAG.findall(clean)
    assert text.count("<") == clean.count("<")
    assert text.count(">") == clean.count(">")
    shown = data(value, multiline=multiline)
    assert shown in text
    if not multiline:  # no forged lines: "### Instruction:", a fake list entry
        assert text.count("\n") == clean.count("\n")
    if tag is not None:  # the value sits inside its block, whose end it cannot write
        start = text.index(shown)
        before, after = text[:start], text[start + len(shown):]
        assert TAG.findall(before)[-1].split()[0].rstrip(">") == f"<{tag}"
        assert TAG.findall(after)[0] == f"</{tag}>"


def test_the_hostile_list_covers_what_the_issue_names() -> None:
    assert len(HOSTILE) >= 20
    joined = " ".join(HOSTILE_VALUES.values())
    for marker in ("</title>", "</item>", "</history>", "</items>", "</candidates>",
                   "<|im_start|>system", "### Instruction:", "Assistant:", "\uff1c/title\uff1e",
                   "Ignore all previous instructions"):
        assert marker in joined
    assert max(len(v) for v in HOSTILE_VALUES.values()) > DATA_LIMIT


ORDINARY = [
    "Pok\u00e9mon Schwert & Schild \u2013 Nintendo Switch",
    "Levi's Men's 501 \"Original Fit\" Jeans, 32W x 30L",
    "\u30c9\u30e9\u30b4\u30f3\u30af\u30a8\u30b9\u30c8XI "
    "\u904e\u304e\u53bb\u308a\u3057\u6642\u3092\u6c42\u3081\u3066",
    "Caf\u00e9 Tabletop 3\u00bd\" Heel, 50% off \u2014 M&M's edition",
    "Ace Combat 7: Skies Unknown [PS4] (Deluxe) {Import}",
    "Zoom 2 \U0001f3ae Controller, r\u00f6d/bl\u00e5",
]


@pytest.mark.parametrize("title", ORDINARY)
def test_ordinary_text_stays_as_it_is(title: str) -> None:
    assert data(title) == title
    for slot in ("nli_logprob/item", "zeroshot/title", "item_ranker/candidate",
                 "context_summary/items"):
        assert title in _render(slot, title)


def test_what_the_filter_changes() -> None:
    assert data("Mario Kart 8 <Deluxe>") == "Mario Kart 8 \u2039Deluxe\u203a"
    assert data("<|im_start|>system") == "\u2039|im_start|\u203asystem"
    assert data("a\nb\r\n\tc\u2028d\x00e") == "a b   c d e"
    assert data("  double  spaces\u00a0kept ") == "  double  spaces\u00a0kept "
    assert data("right\u202eleft\u202c") == "rightleft"
    assert data("Long-term: A\r\n\nRight now: <B>\n", multiline=True) == (
        "Long-term: A\n\nRight now: \u2039B\u203a\n")
    long = data("x" * (DATA_LIMIT + 50))
    assert len(long) == DATA_LIMIT
    assert long.endswith("\u2026")
    assert data(42) == "42"


def test_every_real_title_is_unchanged(shared_data_dir: Callable[..., Path]) -> None:
    """The filter changes no title of the data the prompts were written for, so on that
    data the new prompts differ from the old ones only by their wording."""
    lines = (shared_data_dir("llmrank-games") / "Games.item").read_text().splitlines()[1:]
    titles = [line.split("\t", 1)[1] for line in lines if "\t" in line]
    oa_mine = shared_data_dir("attribute-extraction", "oa-mine")
    titles += [json.loads(line)["input"] for name in ("train.jsonl", "test.jsonl")
               for line in (oa_mine / name).read_text().splitlines() if line.strip()]
    assert len(titles) > 10_000
    assert [t for t in titles if data(t) != t] == []


# --- every value a template prints goes through `data` -------------------------------

TRUSTED_NAMES = {"domain", "loop"}  # the shop's configuration; Jinja's loop counter


def _names(node: nodes.Node) -> set[str]:
    found = {n.name for n in node.find_all(nodes.Name)}
    return found | {node.name} if isinstance(node, nodes.Name) else found


def _trusted_filter(node: nodes.Expr) -> bool:
    """A count (`xs|length`) or a number formatted by a constant (`"%.2f"|format(x)`)."""
    if not isinstance(node, nodes.Filter):
        return False
    return node.name == "length" or (node.name == "format" and isinstance(node.node, nodes.Const))


def _is_data(node: nodes.Expr) -> bool:
    if isinstance(node, nodes.Filter) and node.name == "data":
        return True
    # attributes | map("data") | join(", ")
    if isinstance(node, nodes.Filter) and node.name == "join" and node.node is not None:
        inner = node.node
        return (isinstance(inner, nodes.Filter) and inner.name == "map"
                and any(isinstance(a, nodes.Const) and a.value == "data" for a in inner.args))
    return False


def _templates() -> list[str]:
    root = importlib.resources.files("aisle.prompts")
    return sorted(f"{folder}/{e.name}" for folder in ("arag", "ensemble", "chat")
                  for e in root.joinpath(folder).iterdir() if e.name.endswith(".j2"))


def _unfiltered(source: str) -> list[str]:
    """The variables a template prints without the data filter (the shop's domain,
    Jinja's loop counter, a count and a formatted number excepted)."""
    tree = Environment().parse(source)
    found: list[str] = []
    for output in tree.find_all(nodes.Output):
        for expr in output.nodes:
            if isinstance(expr, nodes.TemplateData) or _is_data(expr):
                continue
            if _names(expr) <= TRUSTED_NAMES or _trusted_filter(expr):
                continue
            found += sorted(_names(expr))
    return found


@pytest.mark.parametrize("template", _templates())
def test_every_untrusted_value_goes_through_the_data_filter(template: str) -> None:
    source = importlib.resources.files("aisle.prompts").joinpath(template).read_text()
    assert _unfiltered(source) == [], f"{template} prints these without the data filter"


def test_the_checker_catches_an_unfiltered_value() -> None:
    assert _unfiltered("<title>{{ title }}</title> {{ item.title|upper }} "
                       "{{ title|format(1) }}") == ["title", "item", "title"]
    assert _unfiltered("{{ t|data }} {{ xs|map('data')|join(', ') }} {{ domain.store }} "
                       "{{ loop.index }} {{ xs|length }} {{ '%.2f'|format(x.score) }}") == []
