"""The ``>>>`` examples in the package's docstrings run, so they cannot drift from the code.

Every module of the package is imported and its docstrings are collected with
:mod:`doctest`; each module with examples is one test.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import llama_index_gemini_embed

#: Modules not imported for doctests: ``__main__`` modules run a program when imported.
SKIP_SUFFIXES = (".__main__",)


def package_modules() -> list[str]:
    names = [llama_index_gemini_embed.__name__]
    for info in pkgutil.walk_packages(
        llama_index_gemini_embed.__path__, prefix=f"{llama_index_gemini_embed.__name__}."
    ):
        if not info.name.endswith(SKIP_SUFFIXES):
            names.append(info.name)
    return sorted(names)


def examples_in(module: ModuleType) -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [test for test in finder.find(module, module.__name__) if test.examples]


MODULES = package_modules()
WITH_EXAMPLES = [name for name in MODULES if examples_in(importlib.import_module(name))]


def test_the_examples_are_found() -> None:
    assert len(MODULES) > 40
    assert len(WITH_EXAMPLES) >= 15, WITH_EXAMPLES


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in examples_in(module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (above)"


def test_docstrings_point_only_inside_the_repository() -> None:
    """References like ``shared/docs/...`` name files a reader of the package cannot open."""
    root = Path(llama_index_gemini_embed.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "shared/docs" in line or "/work/" in line
    ]
    assert offenders == []
