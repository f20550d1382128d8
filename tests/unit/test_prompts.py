"""Prompt templates load from package data and render strictly."""

from __future__ import annotations

import jinja2
import pytest

from aisle.prompts import load_template, render


def test_missing_variable_is_an_error() -> None:
    with pytest.raises(jinja2.UndefinedError, match="json_schema"):
        render("chat/system.j2")


def test_unknown_template() -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.j2"):
        load_template("nope.j2")


@pytest.mark.parametrize(("flag", "expected"), [(True, True), (False, False)])
def test_chat_system_prompt(flag: bool, expected: bool) -> None:
    assert ("JSON object" in render("chat/system.j2", json_schema=flag)) is expected
