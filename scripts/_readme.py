"""The README blocks the table scripts rebuild: the text between `<!-- NAME: ... -->`
and `<!-- /NAME -->`, its opening marker naming the command that wrote it."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def replace_block(name: str, command: str, text: str) -> None:
    """Put `text` between the `name` markers of the README, the opening one naming
    `command`."""
    body = README.read_text()
    start = body.index(f"<!-- {name}:")
    end = body.index(f"<!-- /{name} -->")
    README.write_text(f"{body[:start]}<!-- {name}: {command} -->\n{text}{body[end:]}")
