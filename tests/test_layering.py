"""The package's layering: no import circle, and no module imports from a layer above its
own (the order is ``backendnn._architecture.LAYERS``; docs/guide/layout.rst shows it).

Every import counts, those inside functions included; only imports under
``typing.TYPE_CHECKING`` (types) are exempt.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

from backendnn._architecture import LAYERS

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "backendnn"


def _modules() -> dict[str, pathlib.Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of import nodes under ``if TYPE_CHECKING:``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skip.update(id(n) for n in ast.walk(inner))
    return skip


def imports(name: str) -> set[str]:
    """The backendnn modules that module ``name`` imports (in functions too)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


def layer_of(name: str) -> int:
    """The index in LAYERS of module ``name`` (0 is the top)."""
    parts = name.split(".")
    key = "backendnn" if len(parts) == 1 else parts[1]
    for i, layer in enumerate(LAYERS):
        if key in layer:
            return i
    raise AssertionError(f"{name} is in no layer of backendnn._architecture.LAYERS")


def test_every_module_has_a_layer():
    for name in MODULES:
        layer_of(name)
    listed = {n for layer in LAYERS for n in layer} - {"backendnn"}
    present = {name.split(".")[1] for name in MODULES if "." in name}
    assert listed == present, f"LAYERS lists {sorted(listed - present)} that do not exist"


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{name} (layer {layer_of(name)}) imports {dep} (layer {layer_of(dep)})"
        for name in sorted(MODULES)
        for dep in sorted(imports(name))
        if layer_of(dep) < layer_of(name)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    graph = {name: imports(name) for name in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                circle = stack[stack.index(dep) :] + [dep]
                pytest.fail("import circle: " + " -> ".join(circle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_the_reader_sees_every_kind_of_import():
    """The reader of imports is not blind: absolute, relative, `from pkg import module`,
    and lazy imports inside functions; type-only imports are skipped."""
    assert "backendnn.estimators" in imports("backendnn.io")  # from .estimators import ...
    assert "backendnn.activations" in imports("backendnn.network")  # from . import activations
    assert "backendnn.data.dask" in imports("backendnn.estimators._dask")  # in a function
    assert "backendnn.data" not in imports("backendnn.train")  # under TYPE_CHECKING


def test_layout_table_follows_the_layers():
    """The site's table of modules (docs/guide/layout.rst) lists the layers in LAYERS'
    order, top to bottom."""
    rows = re.findall(r"^   \* - (.*)$", (ROOT / "docs/guide/layout.rst").read_text(), re.M)[1:]
    firsts = [re.findall(r"``([\w.]+?)(?:/|\.py)?``", row) for row in rows]
    order = [layer_of(f"backendnn.{names[0]}" if names[0] != "backendnn" else "backendnn")
             for names in firsts]
    assert order == sorted(order) and len(set(order)) == len(LAYERS), firsts
