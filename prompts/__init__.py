"""Prompt templates as files, one per agent role, rendered strictly with Jinja2."""

from aisle.prompts._render import fingerprint, load_template, render

__all__ = ["fingerprint", "load_template", "render"]
