"""The API reference covers the public API: every name in a public module's ``__all__`` has
an entry (autosummary line or ``.. auto*::`` directive) on that module's page in docs/api/,
every submodule ``backendnn.__all__`` exports has a page, and every public module (one
exported by ``backendnn.__all__`` or with a page on the API index) has an ``__all__``.

Read from the rst sources: no Sphinx build."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

import backendnn

API = Path(__file__).parents[1] / "docs" / "api"
_BLOCK = r"^\.\. {}::[^\n]*\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)"


def _block_lines(text: str, directive: str) -> list[str]:
    """The content lines of each ``.. directive::`` block, its ``:option:`` lines left out."""
    lines = []
    for block in re.findall(_BLOCK.format(directive), text, re.M):
        lines += [s for s in map(str.strip, block.splitlines()) if s and not s.startswith(":")]
    return lines


def _page(path: Path) -> tuple[str, set[str]]:
    """The module a page documents (its ``.. automodule::``) and the names it lists."""
    text = path.read_text()
    found = re.search(r"^\.\. automodule:: +(\S+)", text, re.M)
    assert found, f"{path.relative_to(API.parents[1])} has no '.. automodule::' line"
    module = found.group(1)
    names = _block_lines(text, "autosummary")
    names += re.findall(r"^\.\. auto(?!summary|module)\w+:: +(\S+)", text, re.M)
    return module, {name.lstrip("~").removeprefix(module + ".") for name in names}


PAGES = {}  # module name -> (page path, names on the page)
for _path in sorted(API.glob("*.rst")):
    if _path.name != "index.rst":
        _module, _names = _page(_path)
        PAGES[_module] = (_path, _names)

_INDEX = set(_block_lines((API / "index.rst").read_text(), "toctree"))
ON_INDEX = {module for module, (path, _) in PAGES.items() if path.stem in _INDEX}
_VALUES = [getattr(backendnn, name) for name in backendnn.__all__]
EXPORTED = {value.__name__ for value in _VALUES if isinstance(value, ModuleType)}
PUBLIC = sorted(EXPORTED | ON_INDEX | {"backendnn"})


def _where(module: str) -> str:
    return str(PAGES[module][0].relative_to(API.parents[1]))


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_exported_submodule_has_a_page(name):
    assert name in set(PAGES), (
        f"{name} is exported by backendnn.__all__ but has no API page: add "
        f"docs/api/{name.removeprefix('backendnn.')}.rst (an autosummary of its __all__) "
        "and list it in docs/api/index.rst"
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_public_module_has_all(name):
    assert hasattr(importlib.import_module(name), "__all__"), (
        f"the public module {name} has no __all__: list its public names in one"
    )


@pytest.mark.parametrize("name", sorted(set(PUBLIC) & set(PAGES)))
def test_public_names_are_on_their_page(name):
    module = importlib.import_module(name)
    listed = PAGES[name][1]
    exported = getattr(module, "__all__", listed)  # no __all__: test_public_module_has_all
    public = {n for n in exported if not isinstance(getattr(module, n), ModuleType)}
    missing, stale = sorted(public - listed), sorted(listed - public)
    assert not missing, (
        f"{name}.__all__ names {missing} but {_where(name)} does not list them: add each to "
        "its autosummary list (a constant as '.. autodata:: NAME' with ':no-value:')"
    )
    assert not stale, f"{_where(name)} lists {stale}, which {name}.__all__ does not export"
