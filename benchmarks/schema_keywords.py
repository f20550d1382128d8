"""Which JSON Schema keywords does each backend enforce while it decodes?

Each probe is a one-property schema with one keyword, and prompts written so that a small
model tends to break that keyword (a long product title against `maxLength: 12`, a
spider's 8 legs against `multipleOf: 7`, ...). Every prompt is sent twice, straight to the
model with `response_format` (aisle's validator and repair turn are not involved):

- constrained: the probe's full schema;
- control: the same schema without the keyword, to show the model does break it when
  decoding does not stop it.

Each raw output is then validated against the full schema (jsonschema, Draft 2020-12,
format checked); only complete JSON answers count (a small model that a grammar leaves
no way to finish runs to max_tokens). A keyword is enforced during decoding ("yes") when
the control breaks it and no constrained answer does; "partial" when constrained answers
break it less often than the control; "no" when as often; "not provoked" when even the
control never broke it (no evidence either way); "inconclusive" when no constrained
answer was complete; "rejected" when the backend refused the schema (HTTP 400).

Run (one model at a time on a shared machine):
    AISLE_HOME=$PWD/.aisle flock /tmp/aisle-model.lock \\
        .venv/bin/python benchmarks/schema_keywords.py --backends local,vllm

Prints a table and writes a new benchmarks/results/schema_keywords-<time>.json with the
table and every raw output.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import openai
from _results import new_result_path  # benchmarks/_results.py, beside this script
from jsonschema import Draft202012Validator
from langchain_core.language_models import BaseChatModel
from rich.console import Console
from rich.table import Table

from aisle.llm import load_chat_model
from aisle.settings import Settings

REPO = Path(__file__).resolve().parents[1]
# Per request; no retries, so a slow or failed answer is recorded once, as what it is.
TIMEOUT = 120.0
PRODUCTS = [
    "Nike Air Zoom Pegasus 40 men's road running shoes, black/white, size 10, wide fit",
    "Breville Barista Express BES870XL espresso machine with grinder, brushed stainless steel",
    "LEGO Technic 42115 Lamborghini Sian FKP 37 model car building kit for adults, 3696 pieces",
]


@dataclass(frozen=True)
class Probe:
    """One keyword on one property, and prompts that tempt the model to break it.

    `path` is where the keyword sits in `schema`; the control arm deletes it there, or
    sets it to `control` when deleting would not lift the constraint (a backend may treat
    a missing `additionalProperties` as false).
    """

    keyword: str
    label: str
    schema: dict[str, Any]
    path: tuple[str, ...]
    prompts: tuple[str, ...]
    control: Any = None


def _obj(name: str, prop: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {name: prop}, "required": [name], **extra}


def _ask(field: str, question: str) -> str:
    return f'{question}\nAnswer with a JSON object with the field "{field}".'


PROBES: tuple[Probe, ...] = (
    Probe("maxLength", "string, maxLength 12", _obj("title", {"type": "string", "maxLength": 12}),
          ("properties", "title", "maxLength"),
          tuple(_ask("title", f"Copy this product title exactly: {p}") for p in PRODUCTS)),
    Probe("minLength", "string, minLength 30", _obj("colour", {"type": "string", "minLength": 30}),
          ("properties", "colour", "minLength"),
          tuple(_ask("colour", f"{x} is {c}. In one word, what colour is {x.lower()}?")
                for x, c in (("A banana", "yellow"), ("Grass", "green"), ("A crow", "black")))),
    Probe("pattern", "string, pattern ^[A-Z]{3}-[0-9]{4}$",
          _obj("sku", {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}),
          ("properties", "sku", "pattern"),
          tuple(_ask("sku", f"The product code of {p} is '{c}'. What is its product code?")
                for p, c in zip(PRODUCTS, ("pg 40", "bes870xl", "lego 42115"), strict=True))),
    Probe("minimum", "integer, minimum 100", _obj("legs", {"type": "integer", "minimum": 100}),
          ("properties", "legs", "minimum"),
          tuple(_ask("legs", f"{x} has {n} legs. How many legs does {x.lower()} have?")
                for x, n in (("A dog", 4), ("A spider", 8), ("A chicken", 2)))),
    Probe("maximum", "integer, maximum 1900", _obj("year", {"type": "integer", "maximum": 1900}),
          ("properties", "year", "maximum"),
          tuple(_ask("year", f"{x} was released in {y}. In which year was {x} released?")
                for x, y in (("the iPhone 15", 2023), ("the PlayStation 5", 2020),
                             ("the Nintendo Switch", 2017)))),
    Probe("exclusiveMaximum", "integer, exclusiveMaximum 5",
          _obj("rating", {"type": "integer", "exclusiveMaximum": 5}),
          ("properties", "rating", "exclusiveMaximum"),
          tuple(_ask("rating", f"This product deserves {r} out of 10. Rate it from 1 to 10: {p}")
                for p, r in zip(PRODUCTS, (9, 8, 10), strict=True))),
    Probe("minimum", "number, minimum 500.5", _obj("price", {"type": "number", "minimum": 500.5}),
          ("properties", "price", "minimum"),
          tuple(_ask("price", f"{x} costs {c} US dollars. What does {x.lower()} cost in US "
                              "dollars?")
                for x, c in (("A pencil", 1.25), ("A cup of coffee", 3.5), ("A banana", 0.3)))),
    Probe("maximum", "number, maximum 2.5", _obj("price", {"type": "number", "maximum": 2.5}),
          ("properties", "price", "maximum"),
          tuple(_ask("price", f"{x} costs {c} US dollars. What does {x.lower()} cost in US "
                              "dollars?")
                for x, c in (("A new laptop", 999.99), ("A new car", 28500.0),
                             ("A television", 649.5)))),
    Probe("multipleOf", "integer, multipleOf 7",
          _obj("count", {"type": "integer", "multipleOf": 7}),
          ("properties", "count", "multipleOf"),
          tuple(_ask("count", q) for q in (
              "A spider has 8 legs. How many legs does a spider have?",
              "A year has 12 months. How many months are in a year?",
              "A bicycle has 2 wheels. How many wheels does a bicycle have?"))),
    Probe("enum", "string, enum red/green/blue",
          _obj("colour", {"type": "string", "enum": ["red", "green", "blue"]}),
          ("properties", "colour", "enum"),
          tuple(_ask("colour", f"{x} is {c}. What colour is {x.lower()}?")
                for x, c in (("A banana", "yellow"), ("A lemon", "yellow"), ("A crow", "black")))),
    Probe("const", "string, const EUR", _obj("currency", {"type": "string", "const": "EUR"}),
          ("properties", "currency", "const"),
          tuple(_ask("currency", f"Prices in {x} are in {c}. Which currency is used in {x}? "
                                 "Give its ISO code.")
                for x, c in (("the USA", "USD"), ("Japan", "JPY"), ("the UK", "GBP")))),
    Probe("minItems", "array, minItems 5",
          _obj("items", {"type": "array", "items": {"type": "string"}, "minItems": 5}),
          ("properties", "items", "minItems"),
          tuple(_ask("items", f"Name exactly one {x}: {y}.")
                for x, y in (("fruit", "apple"), ("colour", "red"), ("city", "Paris")))),
    Probe("maxItems", "array, maxItems 2",
          _obj("items", {"type": "array", "items": {"type": "string"}, "maxItems": 2}),
          ("properties", "items", "maxItems"),
          tuple(_ask("items", f"List these {x}: {y}.") for x, y in (
              ("fruits", "apple, banana, cherry, fig, grape, kiwi"),
              ("colours", "red, green, blue, black, white, pink"),
              ("cities", "Paris, Rome, Oslo, Lima, Cairo, Tokyo")))),
    Probe("uniqueItems", "array, uniqueItems",
          _obj("words", {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
          ("properties", "words", "uniqueItems"),
          tuple(f'Copy this JSON object exactly: {{"words": ["{w}", "{w}", "{v}"]}}'
                for w, v in (("red", "blue"), ("shoe", "boot"), ("yes", "no")))),
    Probe("format", "string, format date", _obj("released", {"type": "string",
                                                             "format": "date"}),
          ("properties", "released", "format"),
          tuple(f'Copy this JSON object exactly: {{"released": "{d}"}}'
                for d in ("22 Sept 2023", "Nov. 12th, 2020", "03/03/17"))),
    Probe("format", "string, format email", _obj("contact", {"type": "string",
                                                             "format": "email"}),
          ("properties", "contact", "format"),
          tuple(_ask("contact", f"Customer service for {x} is reached by phone at {t}. How do "
                                "I contact them?")
                for x, t in (("Nike", "800-344-6453"), ("Breville", "866-273-8455"),
                             ("LEGO", "800-422-5346")))),
    Probe("additionalProperties", "object, additionalProperties false",
          {"type": "object", "properties": {"name": {"type": "string"}},
           "additionalProperties": False},
          ("additionalProperties",),
          tuple(f"Copy this JSON object exactly: {j}" for j in (
              '{"name": "Pegasus 40", "brand": "Nike", "price": 129.99}',
              '{"name": "Barista Express", "brand": "Breville", "colour": "steel"}',
              '{"name": "Sian FKP 37", "brand": "LEGO", "pieces": 3696}')),
          control=True),
    Probe("required", "object, 3 required properties",
          {"type": "object", "properties": {"name": {"type": "string"},
                                            "brand": {"type": "string"},
                                            "price": {"type": "number"}},
           "required": ["name", "brand", "price"]},
          ("required",),
          tuple(f'Give only the name of this product, as a JSON object {{"name": ...}} and '
                f"nothing else: {p}" for p in PRODUCTS)),
)


def control_schema(probe: Probe) -> dict[str, Any]:
    """The probe's schema without its keyword (or with the keyword lifted)."""
    schema = copy.deepcopy(probe.schema)
    node = schema
    for key in probe.path[:-1]:
        node = node[key]
    if probe.control is None:
        del node[probe.path[-1]]
    else:
        node[probe.path[-1]] = probe.control
    return schema


def parse(text: str) -> tuple[Any, str | None]:
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        return json.loads(body), None
    except json.JSONDecodeError as e:
        return None, f"not JSON: {e}"


def check(probe: Probe, raw: str) -> dict[str, Any]:
    """The output's violations of the full schema: the probed keyword's, and others."""
    value, error = parse(raw)
    if error is not None:
        return {"json": False, "keyword_violations": [], "other_violations": [error]}
    validator = Draft202012Validator(probe.schema,
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    mine: list[str] = []
    other: list[str] = []
    for e in validator.iter_errors(value):
        (mine if e.validator == probe.keyword else other).append(f"{e.json_path}: {e.message}")
    return {"json": True, "keyword_violations": mine, "other_violations": other}


def ask(model: BaseChatModel, schema: dict[str, Any],
        prompt: str) -> tuple[str, str | None, bool]:
    """One raw answer under `response_format` (no validation, no repair); else the error,
    and whether it was the backend answering an HTTP error (refusing the schema) rather
    than a timeout or a dropped connection."""
    fmt = {"type": "json_schema", "json_schema": {"name": "Probe", "schema": schema}}
    try:
        return model.bind(response_format=fmt).invoke(prompt).text, None, False
    except Exception as e:
        chain: list[BaseException] = []
        cause: BaseException | None = e
        while cause is not None and len(chain) < 10:
            chain.append(cause)
            cause = cause.__cause__ or cause.__context__
        refused = any(isinstance(c, openai.APIStatusError) for c in chain)
        text = " <- ".join(f"{type(c).__name__}: {str(c).splitlines()[0][:300] if str(c) else ''}"
                           for c in chain)
        return "", text, refused


VERDICTS = {
    "yes": "control broke the keyword, constrained never did",
    "partial": "constrained broke it, less often than control",
    "no": "constrained broke it as often as control",
    "not provoked": "control never broke it either: no evidence",
    "inconclusive": "no constrained answer was complete JSON (all cut off at max_tokens)",
    "rejected": "the backend refused the schema (HTTP error)",
    "failed": "no answer (timeout or connection error)",
}


def verdict(constrained: int, control: int, rejected: int, failed: int, complete: int,
            n: int) -> str:
    """From the keyword violations among complete (JSON) answers of each arm."""
    if rejected == n:
        return "rejected"
    if rejected + failed == n:
        return "failed"
    if complete == 0:
        return "inconclusive"
    if constrained == 0:
        return "yes" if control > 0 else "not provoked"
    return "partial" if constrained < control else "no"


def cell(row: dict[str, Any]) -> str:
    """`yes (0/3 vs 3/3)`: complete answers breaking the keyword, constrained vs control,
    then what did not count (rejected, failed, cut off at max_tokens)."""
    text = (f"{row['verdict']} ({row['constrained_violations']}/{row['constrained_complete']}"
            f" vs {row['control_violations']}/{row['control_complete']})")
    notes = [f"{row[k]} {label}" for k, label in (
        ("rejected", "rejected"), ("failed", "failed"),
        ("constrained_not_json", "constrained cut off"),
        ("control_not_json", "control cut off")) if row[k]]
    return text + (", " + ", ".join(notes) if notes else "")


def run_backend(name: str, model: BaseChatModel, probes: list[Probe], prompts: int,
                rows: list[dict[str, Any]], runs: list[dict[str, Any]],
                save: Callable[[], None], console: Console) -> None:
    """Run every probe on one backend, appending to `rows` and `runs`; `save` after each."""
    for probe in probes:
        counts = {"constrained": 0, "control": 0}
        rejected = failed = 0
        not_json = {"constrained": 0, "control": 0}
        shown = probe.prompts[:prompts]
        for arm, schema in (("constrained", probe.schema), ("control", control_schema(probe))):
            for prompt in shown:
                t0 = time.perf_counter()
                raw, error, refused = ask(model, schema, prompt)
                seconds = time.perf_counter() - t0
                result = check(probe, raw) if error is None else {
                    "json": False, "keyword_violations": [], "other_violations": []}
                if error is not None and arm == "constrained":
                    rejected += refused
                    failed += not refused
                if error is None and not result["json"]:
                    not_json[arm] += 1
                counts[arm] += bool(result["keyword_violations"])
                runs.append({"backend": name, "keyword": probe.keyword, "probe": probe.label,
                             "arm": arm, "prompt": prompt, "raw": raw, "error": error,
                             "seconds": round(seconds, 2), "refused": refused, **result})
        n = len(shown)
        complete = {arm: n - not_json[arm] - (rejected + failed if arm == "constrained" else 0)
                    for arm in counts}
        row = {"backend": name, "keyword": probe.keyword, "probe": probe.label, "n": n,
               "constrained_violations": counts["constrained"],
               "constrained_complete": complete["constrained"],
               "control_violations": counts["control"], "control_complete": complete["control"],
               "constrained_not_json": not_json["constrained"],
               "control_not_json": not_json["control"], "rejected": rejected, "failed": failed,
               "verdict": verdict(counts["constrained"], counts["control"], rejected, failed,
                                  complete["constrained"], n)}
        rows.append(row)
        console.print(f"  {name} {probe.label}: {cell(row)}", highlight=False)
        save()


@contextlib.contextmanager
def local_model(max_tokens: int) -> Iterator[tuple[BaseChatModel, dict[str, Any]]]:
    settings = Settings(cache_enabled=False, request_timeout=TIMEOUT, max_retries=0)
    model = load_chat_model("local:smollm2-135m", settings=settings, max_tokens=max_tokens)
    yield model, {"spec": "local:smollm2-135m", "engine": "llama.cpp (xllamacpp)",
                  "xllamacpp": metadata.version("xllamacpp")}


@contextlib.contextmanager
def vllm_model(max_tokens: int, python: str,
               hf_model: str) -> Iterator[tuple[BaseChatModel, dict[str, Any]]]:
    from aisle.llm import VLLMServer, VLLMServerConfig

    # The same server the vLLM test tier starts (tests/conftest.py `vllm_server`).
    tmp = Path(os.environ.get("AISLE_HOME", REPO / ".aisle")) / "vllm-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "auto",
           "VLLM_HOST_IP": "127.0.0.1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TMPDIR": str(tmp)}
    config = VLLMServerConfig(
        model=hf_model, python=python, served_model_name="smollm2-135m", max_model_len=2048,
        dtype="float32", startup_timeout=600, extra_args=("--enforce-eager",),
        env=tuple(env.items()))
    version = subprocess.run([python, "-c", "import vllm; print(vllm.__version__)"],
                             capture_output=True, text=True, check=False).stdout.strip()
    server = VLLMServer(config)
    server.start()
    try:
        model = load_chat_model("vllm:smollm2-135m", base_url=server.base_url,
                                max_tokens=max_tokens,
                                settings=Settings(cache_enabled=False, request_timeout=TIMEOUT,
                                                  max_retries=0))
        yield model, {"spec": "vllm:smollm2-135m", "engine": "vLLM CPU build",
                      "vllm": version, "model_dir": hf_model,
                      "structured_outputs_backend": "auto (vLLM's default)"}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="local",
                        help="comma-separated: local (embedded llama.cpp), vllm (CPU build)")
    parser.add_argument("--prompts", type=int, default=3, help="prompts per probe (max 3)")
    parser.add_argument("--keywords", default="",
                        help="comma-separated keywords to probe (default: all)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    parser.add_argument("--vllm-model", default=str(REPO / ".aisle" / "hf" / "smollm2-135m"))
    args = parser.parse_args()
    console = Console(stderr=True)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for backend in backends:
        if backend not in {"local", "vllm"}:
            parser.error(f"unknown backend {backend!r}: use local or vllm")
    wanted = {k.strip() for k in args.keywords.split(",") if k.strip()}
    probes = [p for p in PROBES if not wanted or p.keyword in wanted]
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    path = new_result_path("schema_keywords")
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def save(complete: bool = False) -> None:
        # Rewritten after every probe, so an interrupted run still leaves its data.
        path.write_text(json.dumps({
            "benchmark": "schema_keywords",
            "command": "AISLE_HOME=$PWD/.aisle .venv/bin/python benchmarks/schema_keywords.py "
                       + " ".join(sys.argv[1:]),
            "started_utc": started,
            "complete": complete,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "settings": {"prompts_per_probe": args.prompts, "max_tokens": args.max_tokens,
                         "temperature": 0.0, "timeout_s": TIMEOUT, "retries": 0,
                         "validator": "jsonschema Draft202012Validator, format checked "
                                      f"(jsonschema {metadata.version('jsonschema')})"},
            "verdicts": VERDICTS,
            "backends": info,
            "table": rows,
            "runs": runs,
        }, indent=2) + "\n")

    for backend in backends:
        context = (local_model(args.max_tokens) if backend == "local" else
                   vllm_model(args.max_tokens, args.vllm_python, args.vllm_model))
        t0 = time.perf_counter()
        with context as (model, about):
            console.print(f"[bold]{about['spec']}[/]")
            info[about["spec"]] = about
            run_backend(about["spec"], model, probes, args.prompts, rows, runs, save, console)
        about["seconds"] = round(time.perf_counter() - t0, 1)
    save(complete=True)

    table = Table(title="JSON Schema keywords enforced during decoding "
                        "(complete answers breaking the keyword: constrained vs control)")
    table.add_column("keyword")
    table.add_column("probe")
    for spec in info:
        table.add_column(spec)
    for probe in probes:
        cells = []
        for spec in info:
            row = next(r for r in rows if r["backend"] == spec and r["probe"] == probe.label)
            cells.append(cell(row))
        table.add_row(probe.keyword, probe.label, *cells)
    Console().print(table)
    console.print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
