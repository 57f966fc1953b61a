"""The backend layer's shape: one object per array library, the only package that names them.

Read from the source with ``ast`` (imports inside functions and ``importlib.import_module``
of a literal name included): no module of backendnn outside ``_backend/`` imports an array
library but NumPy (dask in ``data/dask.py``, and the benchmark, which measures the
libraries themselves, excepted); ``_backend`` imports nothing from the rest of backendnn,
its modules import each other without a circle and without going through the package's
``__init__``; every name other modules take from ``_backend`` exists. Then the library
objects: each array type and namespace finds its library's object, once.
"""

from __future__ import annotations

import ast
import pathlib
import types

import numpy as np
import pytest

from backendnn import _backend
from tests.conftest import assert_close

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "backendnn"

# libraries (top-level modules) only _backend may import; array_api_compat is the layer
# that tells them apart, scipy.special the native ndtr
ARRAY_LIBRARIES = {"jax", "jaxlib", "torch", "cupy", "cupyx", "array_api_strict", "dask"}
ARRAY_LIBRARIES |= {"array_api_compat", "scipy"}
# module (relative to backendnn/) -> the array libraries it may name anyway
ALLOWED = {
    "data/dask.py": {"dask"},  # the dask data source: dask is what it streams
}
# the benchmark CLI measures the libraries themselves (peer engines written in torch and
# JAX, device memory and precision probes, the JAX mesh it shards over)
ALLOWED_PACKAGES = ("bench/",)


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> list[tuple[str, bool]]:
    """(absolute module name, inside a function) of every import in ``path``: import
    statements at any depth (relative ones resolved) and ``importlib.import_module`` of a
    literal name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if node.level and not node.module:  # from . import a, b: submodules or names
                found.extend((f"{module}.{alias.name}", in_function) for alias in node.names)
            else:
                found.append((module, in_function))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((node.args[0].value, in_function))
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def _modules(under: pathlib.Path) -> list[pathlib.Path]:
    return sorted(under.rglob("*.py"))


def test_no_module_outside_backend_names_an_array_library():
    wrong = []
    for path in _modules(PACKAGE):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("_backend/") or rel.startswith(ALLOWED_PACKAGES):
            continue
        for module, _ in _imports(path):
            top = module.split(".")[0]
            if top in ARRAY_LIBRARIES and top not in ALLOWED.get(rel, set()):
                wrong.append(f"backendnn/{rel} imports {module}")
    assert not wrong, (
        "array libraries are named in backendnn/_backend/ only (add a function there): "
        + "; ".join(wrong)
    )


def test_backend_imports_nothing_of_backendnn_outside_it():
    wrong = []
    for path in _modules(PACKAGE / "_backend"):
        for module, in_function in _imports(path):
            if module.split(".")[0] == "backendnn" and not module.startswith("backendnn._backend"):
                wrong.append(f"{_module_name(path)} imports {module}")
            elif in_function and module.startswith("backendnn"):
                wrong.append(f"{_module_name(path)} imports {module} inside a function")
    assert not wrong, "_backend is the ground floor: " + "; ".join(wrong)


def test_backend_modules_import_each_other_in_one_order():
    """No circle inside ``_backend``, and no submodule imports the package itself (its
    ``__init__`` re-exports the submodules: importing it back is the circle that was)."""
    paths = {_module_name(p): p for p in _modules(PACKAGE / "_backend")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        edges = set()
        for module, _ in _imports(path):
            if not module.startswith("backendnn._backend"):
                continue
            # "from . import name": the submodule if there is one, else the package
            while module not in paths:
                module = module.rsplit(".", 1)[0]
            if module != name:
                edges.add(module)
        graph[name] = edges
    package = "backendnn._backend"
    into_package = sorted(n for n, edges in graph.items() if package in edges)
    assert not into_package, f"these modules import backendnn._backend itself: {into_package}"
    order: list[str] = []
    while len(order) < len(graph):
        ready = [n for n in graph if n not in order and graph[n] <= set(order)]
        assert ready, f"import circle among {sorted(set(graph) - set(order))}"
        order.extend(sorted(ready))
    assert order[-1] == package  # the public functions sit on top of the library objects


def _names_taken_from_backend() -> set[str]:
    """Every name other code imports from ``backendnn._backend`` or reads off it."""
    names: set[str] = set()
    for folder in ("backendnn", "tests", "examples", "benchmarks"):
        for path in _modules(ROOT / folder):
            if path.is_relative_to(PACKAGE / "_backend"):
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("_backend"):
                    names.update(alias.name for alias in node.names)
                elif (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "_backend"
                ):
                    names.add(node.attr)
    return names


def test_every_name_taken_from_backend_exists():
    missing = sorted(n for n in _names_taken_from_backend() if not hasattr(_backend, n))
    assert not missing, f"backendnn._backend lost {missing}"


# --------------------------------------------------------------------------- library objects


def test_every_backend_has_one_library_object():
    assert tuple(_backend.LIBRARIES) == _backend.BACKENDS
    for name, lib in _backend.LIBRARIES.items():
        assert lib.name == name and _backend.library(name) is lib
        assert isinstance(lib, _backend.ArrayLibrary)
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        _backend.library("tensorflow")


def test_arrays_and_namespaces_find_their_library_object(backend):
    x = backend.asarray([1.0, 2.0])
    lib = _backend.library(backend.name)
    assert _backend.library_of(x) is lib
    assert _backend.library_for(backend.xp) is lib
    assert _backend.library_for(_backend.array_namespace(x)) is lib
    assert _backend.namespace_name(backend.xp) == backend.name


def test_library_of_decides_once_per_array_type(backend, monkeypatch):
    """The lookup on the hot path reads a dict: a second array of a known type never asks
    the library objects again."""
    x = backend.asarray([1.0, 2.0])
    lib = _backend.library_of(x)
    for other in _backend.LIBRARIES.values():
        monkeypatch.setattr(other, "owns", lambda a: pytest.fail("asked again"))
    assert _backend.library_of(backend.asarray([3.0])) is lib
    assert _backend.device(x) == _backend.library_of(x).device(x)


class _ForeignArray:
    """An array type of a library backendnn does not know (it only has a namespace)."""

    __module__ = "foreignlib.core"

    def __init__(self, namespace: types.ModuleType):
        self._namespace = namespace

    def __array_namespace__(self, api_version=None):
        return self._namespace


def test_an_unknown_library_gets_the_portable_behaviour():
    xp = types.ModuleType("foreignlib")
    lib = _backend.library_of(_ForeignArray(xp))
    assert type(lib) is _backend.ArrayLibrary and lib.name == "foreignlib"
    portable = _backend.library_for(xp)
    assert type(portable) is _backend.ArrayLibrary and portable.name == "foreignlib"

    def fn(a):
        return a

    assert _backend.jit(fn, xp) is fn and _backend.has_64bit(xp)
    assert _backend.step_scalar(0.5, _ForeignArray(xp)) == 0.5
    rows = np.arange(6.0).reshape(3, 2)
    total = _backend.scan(lambda c, b: c + b[0].sum() * b[1], 0.0, (rows, [1.0, 2.0, 3.0]), xp)
    np.testing.assert_allclose(total, 1.0 + 2.0 * 5.0 + 3.0 * 9.0, rtol=0)


def test_from_numpy_may_share_a_host_buffer(backend):
    """``copy=None``: the same values, dtype and device; on NumPy, the same memory."""
    a = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    x = _backend.from_numpy(a, xp=backend.xp, device=backend.device, copy=None)
    assert_close(x, a, backend=backend, rtol=0, dtype="float64")
    if backend.name == "numpy":
        assert np.shares_memory(x, a)
