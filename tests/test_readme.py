"""The README's code runs as written: the "Choosing a backend" snippet and every python
block of "A short tour", given the inputs they name (z, a, b, dout, X, y, t, X_images, x);
its list of nox sessions is the noxfile's; its links into docs/ lead to pages. (The site's
own code: tests/test_docs_guide.py.)"""

from __future__ import annotations

import ast
import itertools
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

import backendnn as bn

README = Path(__file__).parents[1] / "README.md"
NOXFILE = README.parent / "noxfile.py"


def _section(title: str) -> str:
    """The README's text from the heading ``## title`` to the next ``## `` heading."""
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_short_tour_runs_as_written(tmp_path, monkeypatch):
    """Each python block of "A short tour" in turn, in one namespace (later blocks use the
    earlier ones' imports), in a scratch folder (the tour saves a model file)."""
    pytest.importorskip("torch")  # the tour reloads its model with backend="torch"
    blocks = re.findall(r"```python\n(.*?)```", _section("A short tour"), re.S)
    assert len(blocks) >= 2, "the short tour lost its code blocks"
    rng = np.random.default_rng(0)
    X, y = load_digits(return_X_y=True)
    X, y = X[:120] / 16.0, y[:120]
    inputs = {
        "z": rng.normal(size=(5, 8)),
        "a": rng.normal(size=(5, 8)),
        "b": rng.normal(size=(5, 8)),
        "dout": rng.normal(size=(5, 8)),
        "X": X,
        "y": y,
        "t": X @ rng.normal(size=64),
        "X_images": X.reshape(-1, 1, 8, 8),
        "x": rng.normal(size=(2, 8, 8, 3)),
    }
    monkeypatch.chdir(tmp_path)
    namespace = dict(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        for code in blocks:
            exec(code, namespace)


CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def test_install_says_how_to_get_the_cpu_build_of_torch():
    """The torch extra alone brings PyPI's CUDA build (3 GB): the README's install section
    and the extra's comment in pyproject.toml give the CPU index, and the pin the noxfile
    installs."""
    pin = re.search(r'TORCH = "(torch==[\d.]+)"', NOXFILE.read_text()).group(1)
    install = _section("First five minutes")
    assert CPU_TORCH in install and f"pip install {pin}" in install
    lines = (README.parent / "pyproject.toml").read_text().splitlines()
    above = reversed(lines[: next(i for i, x in enumerate(lines) if x.startswith("torch = ["))])
    comment = " ".join(x.lstrip("# ") for x in itertools.takewhile(lambda x: x[:1] == "#", above))
    assert CPU_TORCH in comment and pin in comment


def _nox_sessions() -> list[str]:
    """``nox.options.sessions`` as noxfile.py assigns it (read with ast, nothing run)."""
    for node in ast.walk(ast.parse(NOXFILE.read_text())):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "nox.options.sessions":
            return ast.literal_eval(node.value)
    raise AssertionError("noxfile.py does not assign nox.options.sessions")


def test_readme_lists_every_nox_session():
    """One "- `name`: ..." line per session of noxfile.py, in its order."""
    listed = re.findall(r"^- `(\w+)`", _section("First five minutes"), re.M)
    assert listed == _nox_sessions()


def test_choosing_a_backend_snippet_runs_as_written():
    """The first code block of "Choosing a backend", with X_numpy and y defined, runs
    unchanged."""
    pytest.importorskip("jax")
    code = re.search(r"```python\n(.*?)```", _section("Choosing a backend"), re.S).group(1)
    X_numpy, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        exec(code, {"X_numpy": X_numpy[:300] / 16.0, "y": y[:300]})


def test_readme_links_lead_to_files():
    """Every relative link of the README names a file or folder of the checkout."""
    links = re.findall(r"\]\(([^)#:]+)\)", README.read_text())
    assert links, "the README lost its links into the documentation"
    missing = [link for link in links if not (README.parent / link).exists()]
    assert not missing, missing
