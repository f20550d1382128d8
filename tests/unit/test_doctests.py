"""Every docstring example in the package runs (examples no test runs go stale)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

# The root folders are mapped into the namespace (an editable install finds them
# through its own finder), so each is walked from its own package.
ROOTS = ("aisle", "aisle.agents", "aisle.graphs", "aisle.prompts", "aisle.tools", "aisle.evals")


def _modules() -> list[str]:
    names = set(ROOTS)
    for root in ROOTS:
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, f"{root}."):
            if not info.name.endswith("__main__"):  # running it is its whole point
                names.add(info.name)
    return sorted(names)


MODULES = _modules()


def test_every_mapped_folder_is_walked() -> None:
    for name in ("aisle.agents.arag.item_ranker", "aisle.graphs.arag", "aisle.evals.metrics",
                 "aisle.tools.retrieval", "aisle.prompts._render", "aisle.llm.structured"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
