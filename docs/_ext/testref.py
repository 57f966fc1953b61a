"""The ``:test:`` role: ``:test:`tests/test_losses.py::test_perceptron_criterion``` links to a
page that shows that test's source, so a claim on a page links to the test that checks it.

A target is ``PATH::FUNCTION`` or ``PATH::CLASS::METHOD``, PATH relative to the repository
root (the folder above ``docs/``); ``:test:`title <target>``` sets the link text (by default
the test's name). A file or a test that does not exist is a build warning (an error under
``sphinx-build -W``).

At ``builder-inited`` the role's targets are collected from every ``.rst`` source and one
page per test is written to ``docs/_tests/`` (ignored by git; pages no longer referenced
are removed), marked ``:orphan:`` so that no toctree needs to list them. Each page shows
the test with ``literalinclude`` and ``:pyobject:``, decorators included.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxRole
from sphinx.util.nodes import split_explicit_title

logger = logging.getLogger(__name__)

PAGES = "_tests"  # the folder of the generated pages, under the source folder
_ROLE = re.compile(r":test:`([^`]+)`")


def _split(target: str) -> tuple[str, str]:
    """(path, qualified name) of ``PATH::NAME`` or ``PATH::CLASS::METHOD``."""
    path, _, name = target.strip().partition("::")
    return path, name.replace("::", ".")


def problem(root: Path, target: str) -> str | None:
    """Why ``target`` names no test under ``root`` (None when it names one)."""
    path, name = _split(target)
    if not path.endswith(".py") or not name:
        return f"test target {target!r} is not 'tests/FILE.py::FUNCTION' (or ::CLASS::METHOD)"
    file = root / path
    if not file.is_file():
        return f"test target {target!r}: no file {path} in the repository"
    scope: list[ast.stmt] = ast.parse(file.read_text(encoding="utf-8")).body
    *owners, leaf = name.split(".")
    for owner in owners:
        found = [n for n in scope if isinstance(n, ast.ClassDef) and n.name == owner]
        if not found:
            return f"test target {target!r}: no class {owner} in {path}"
        scope = found[0].body
    defs = (ast.FunctionDef, ast.AsyncFunctionDef)
    if not any(isinstance(n, defs) and n.name == leaf for n in scope):
        return f"test target {target!r}: no function {leaf} in {path}"
    if not leaf.startswith("test"):
        return f"test target {target!r}: {leaf} is not a test (its name must start with 'test')"
    return None


def page_name(target: str) -> str:
    """The generated page's name: ``test_losses--test_perceptron_criterion``."""
    path, name = _split(target)
    return path.removesuffix(".py").replace("/", "-").removeprefix("tests-") + "--" + name


def _page(target: str) -> str:
    path, name = _split(target)
    title = f"``{name}``"
    return (
        f":orphan:\n\n{title}\n{'=' * len(title)}\n\n"
        f"The test ``{name}`` of ``{path}``, which :doc:`/notes` cites.\n\n"
        f".. literalinclude:: ../../{path}\n"
        f"   :pyobject: {name}\n"
        "   :language: python\n"
        "   :lineno-match:\n"
    )


def _targets(srcdir: Path) -> set[str]:
    """Every ``:test:`` target in the ``.rst`` sources (generated pages and builds left out)."""
    found = set()
    for file in srcdir.rglob("*.rst"):
        if {PAGES, "_build"} & set(file.relative_to(srcdir).parts):
            continue
        for text in _ROLE.findall(file.read_text(encoding="utf-8")):
            found.add(split_explicit_title(text)[2].strip())
    return found


def write_pages(app) -> None:
    """One page per referenced test that exists; stale pages removed; unchanged pages kept
    as they are (Sphinx then does not reread them)."""
    srcdir = Path(app.srcdir)
    root = srcdir.parent
    folder = srcdir / PAGES
    folder.mkdir(exist_ok=True)
    wanted = {}
    for target in _targets(srcdir):
        if problem(root, target) is None:  # the role reports the others, with their place
            wanted[page_name(target) + ".rst"] = _page(target)
    for file in folder.glob("*.rst"):
        if file.name not in wanted:
            file.unlink()
    for name, text in wanted.items():
        file = folder / name
        if not file.is_file() or file.read_text(encoding="utf-8") != text:
            file.write_text(text, encoding="utf-8")


class TestRole(SphinxRole):
    """A link to the page of the test named by the role's target."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        has_title, title, target = split_explicit_title(self.text)
        target = target.strip()
        shown = title if has_title else _split(target)[1]
        why = problem(Path(self.env.srcdir).parent, target)
        if why is not None:
            logger.warning(why, location=self.get_location(), type="testref")
            return [nodes.literal(self.rawtext, shown)], []
        ref = addnodes.pending_xref(
            self.rawtext,
            refdomain="std",
            reftype="doc",
            reftarget=f"/{PAGES}/{page_name(target)}",
            refexplicit=True,
            refwarn=True,
        )
        ref += nodes.literal(self.rawtext, shown, classes=["xref", "test"])
        return [ref], []


def setup(app):
    app.add_role("test", TestRole())
    app.connect("builder-inited", write_pages)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
