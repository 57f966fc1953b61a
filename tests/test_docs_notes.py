"""``docs/notes.rst``, the notes mapped to the code, read as text (no Sphinx build): every
equation of the notes has a labelled section that shows it and links the code that
computes it and a test that checks it; every linked test exists; every linked name
imports; every ``:ref:`notes-...``` in a docstring has its label on the page.

The notes themselves (``reference/neural-networks-notes.txt`` of the project's shared
folder) are not in the repository: where a ``shared/reference`` folder sits beside or
above the checkout (or ``BACKENDNN_NOTES`` names the file), their equation tags are
parsed and must be the ones the page covers; elsewhere that one test skips.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "notes.rst"
NOTES_NAME = "neural-networks-notes.txt"

#: the notes' numbered equations: (1) to (36)
EQUATIONS = range(1, 37)
#: the named formulas without a number, each a labelled section of the page
NAMED = (
    "notes-neuron", "notes-tensor", "notes-gelu", "notes-gelu-tanh", "notes-silu",
    "notes-glu", "notes-output", "notes-mse", "notes-cross-entropy", "notes-cost",
    "notes-algorithm", "notes-sgd", "notes-gradient-checking", "notes-lbfgs",
)  # fmt: skip

_LABEL = re.compile(r"^\.\. _(notes[\w-]*):\s*$")
_TEST = re.compile(r":test:`([^`]+)`")
_CODE = re.compile(r":(?:func|class|meth|mod|data|attr|exc):`([^`]+)`")


def _target(text: str) -> str:
    """The target of a role's text: ``title <target>`` or ``~target`` or ``target``."""
    match = re.fullmatch(r"(?s).*<(.+)>", text)
    return (match.group(1) if match else text).strip().lstrip("~")


def _sections() -> dict[str, str]:
    """Each label of the page with the text that follows it, up to the next label
    (labels stacked before one heading share its section)."""
    blocks: list[tuple[list[str], list[str]]] = []  # (labels, lines)
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        label = _LABEL.match(line)
        if label and (not blocks or blocks[-1][1]):
            blocks.append(([label.group(1)], []))
        elif label:
            blocks[-1][0].append(label.group(1))
        elif blocks and (line.strip() or blocks[-1][1]):
            blocks[-1][1].append(line)
    return {name: "\n".join(lines) for names, lines in blocks for name in names}


SECTIONS = _sections()


def _notes_file() -> Path | None:
    given = os.environ.get("BACKENDNN_NOTES")
    if given:
        return Path(given)
    for folder in (ROOT, *ROOT.parents):
        candidate = folder / "shared" / "reference" / NOTES_NAME
        if candidate.is_file():
            return candidate
    return None


def notes_equation_tags(text: str) -> list[int]:
    r"""The equation numbers of the notes' text: ``\tag{N}``, or ``(N)`` ending a line
    (after the closing ``$$`` or inside it)."""
    tags = [int(n) for n in re.findall(r"\\tag\{(\d+)\}", text)]
    for line in text.splitlines():
        match = re.search(r"\((\d+)\)\s*(?:\$\$)?\s*$", line)
        if match:
            tags.append(int(match.group(1)))
    return tags


def test_the_page_covers_the_notes_equations():
    notes = _notes_file()
    if notes is None:
        pytest.skip("the notes are not here: set BACKENDNN_NOTES to their file")
    tags = notes_equation_tags(notes.read_text(encoding="utf-8"))
    assert sorted(tags) == list(EQUATIONS), "update EQUATIONS and docs/notes.rst to the notes"


@pytest.mark.parametrize("n", EQUATIONS)
def test_every_equation_has_a_labelled_section_that_shows_it(n):
    section = SECTIONS.get(f"notes-eq-{n}")
    assert section is not None, f"docs/notes.rst has no label .. _notes-eq-{n}:"
    assert f"\\tag{{{n}}}" in section, f"the section of notes-eq-{n} does not show eq. ({n})"


@pytest.mark.parametrize("label", [f"notes-eq-{n}" for n in EQUATIONS] + list(NAMED))
def test_every_section_links_code_and_a_test(label):
    section = SECTIONS.get(label)
    assert section is not None, f"docs/notes.rst has no label .. _{label}:"
    assert _TEST.search(section), f"{label}: no :test: link"
    assert any(_target(t).startswith("backendnn") for t in _CODE.findall(section)), (
        f"{label}: no :func:, :class: or :meth: link to backendnn"
    )


def _test_exists(target: str) -> bool:
    path, _, name = target.partition("::")
    file = ROOT / path
    if not file.is_file():
        return False
    scope: list[ast.stmt] = ast.parse(file.read_text(encoding="utf-8")).body
    *owners, leaf = name.split("::")
    for owner in owners:
        classes = [s for s in scope if isinstance(s, ast.ClassDef) and s.name == owner]
        if not classes:
            return False
        scope = classes[0].body
    return leaf.startswith("test") and any(
        isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == leaf for s in scope
    )


TESTS = sorted({_target(t) for t in _TEST.findall(PAGE.read_text(encoding="utf-8"))})


@pytest.mark.parametrize("target", TESTS)
def test_linked_tests_exist(target):
    assert _test_exists(target), f"docs/notes.rst links {target}, which is not a test function"


def _resolve(dotted: str) -> object:
    """The object a dotted name stands for: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


CODE = sorted({_target(t) for t in _CODE.findall(PAGE.read_text(encoding="utf-8"))})


@pytest.mark.parametrize("dotted", CODE)
def test_linked_code_imports(dotted):
    assert dotted.startswith("backendnn"), f"{dotted}: write the full name, backendnn...."
    _resolve(dotted)


def test_docstring_links_to_the_notes_have_their_label():
    labels = set(SECTIONS)
    for file in sorted((ROOT / "backendnn").rglob("*.py")):
        for label in re.findall(r":ref:`(?:[^`<]*<)?(notes[\w-]*)>?`", file.read_text("utf-8")):
            where = file.relative_to(ROOT)
            assert label in labels, f"{where} links :ref:`{label}`, which is not on the page"
