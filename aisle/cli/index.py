"""`aisle index build`: catalog indexes for retrieval."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aisle.cli._common import (
    JSON_OPTION,
    aisle_errors,
    check_output_dir,
    check_text_file,
    console,
    fail,
    item_progress,
    json_stdout,
    resumable,
)
from aisle.settings import get_settings

if TYPE_CHECKING:
    from aisle.tools.retrieval import CatalogIndex

app = typer.Typer(help="Catalog indexes (chromadb, all-MiniLM-L6-v2) for retrieval.",
                  no_args_is_help=True)


ITEM_FILE = "an item file (item_id<TAB>title per line)"


def read_item_file(path: Path, option: str = "--items") -> dict[str, str]:
    """`item_id<TAB>title` lines; an LLMRank header line (`item_id:token ...`) is skipped."""
    if not path.is_file():
        fail(f"item file not found: {path}; pass an existing {option} file "
             "(item_id<TAB>title per line)")
    check_text_file(path, option, ITEM_FILE)
    items: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or (lineno == 1 and ":token" in line):
            continue
        item_id, sep, title = line.partition("\t")
        if not sep:
            fail(f"{path}:{lineno}: expected 'item_id<TAB>title', got {line[:80]!r}")
        items[item_id.strip()] = title.strip()
    if not items:
        fail(f"no items in {path}; pass {ITEM_FILE}")
    return items


def default_index_dir(item_file: Path) -> Path:
    """Where an item file's index goes by default: under AISLE_HOME, named by content."""
    digest = hashlib.sha256(item_file.read_bytes()).hexdigest()[:12]
    return get_settings().home / "index" / f"{item_file.stem}-{digest}"


def open_index(item_file: Path, index_dir: Path | None = None) -> CatalogIndex:
    """The catalog index for an item file, built or brought in step with the file when
    its content fingerprint differs (new, retitled or removed items): progress on stderr
    (a bar, or a line every 1000 items when stderr is not a terminal) and, timestamped,
    in `<index>/build.log`. Ctrl-C keeps the
    items embedded so far; the next call embeds the rest."""
    from aisle.tools.retrieval import CatalogIndex

    items = read_item_file(item_file)
    index = CatalogIndex(index_dir or default_index_dir(item_file))
    if not index.in_sync(items):
        with resumable(f"the embedded items of {item_file.name} (in {index.path})"), \
                item_progress(f"embedding {item_file.name}", len(items), "items",
                              every=1000, log=index.path / "build.log") as update:
            index.sync(items, progress=lambda done, todo: update(len(items) - todo + done))
    return index


@app.command("build")
def build(
    items: Path = typer.Option(..., "--items", help="Item file: item_id<TAB>title per line."),
    out: Path | None = typer.Option(None, "--out", show_default=False,
                                    help="Index folder; default under AISLE_HOME/index, "
                                         "named by the item file's content."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Build (or complete) a catalog index of an item file's title embeddings;
    resumable (Ctrl-C keeps what is embedded; rerun to continue)."""
    if out is not None:
        check_output_dir(out)
    with aisle_errors(), json_stdout(as_json) as emit:
        index = open_index(items, out)
        if as_json:
            emit({"path": str(index.path), "items": index.count()})
            return
    console.print(f"[green]index ready[/] {index.path} ({index.count()} items)")
