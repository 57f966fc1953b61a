"""The site's code runs as written: each page of the user guide (and the landing page) runs
its python blocks in order, in one namespace, in a scratch folder; a ``text`` block right
after a python block is that block's output, numbers compared to the digits shown (as
doctest's NUMBER). A block after an rst comment starting ``.. not run`` (it starts
processes) is shown, not run.

A block that needs an optional library this environment lacks (jax, torch, onnx, dask)
or a JAX mesh of several devices (forced with ``XLA_FLAGS``) skips the rest of its page
here; the ``docs`` session, which installs them all and forces 4 CPU devices, sets
``BACKENDNN_DOCS_STRICT=1`` and such a block fails there instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import textwrap
import warnings
from pathlib import Path

import pytest

import backendnn as bn

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = [DOCS / "index.rst", *sorted((DOCS / "guide").glob("*.rst"))]
OPTIONAL = {"jax", "torch", "onnx", "onnxruntime", "dask", "distributed"}
STRICT = os.environ.get("BACKENDNN_DOCS_STRICT") == "1"
_BACKENDS = os.environ.get("BACKENDNN_BACKENDS")
pytestmark = pytest.mark.skipif(
    _BACKENDS is not None and "numpy" not in _BACKENDS.split(","),
    reason="the guide's code runs in the numpy and docs sessions",
)


def blocks(page: Path) -> list[tuple[str, str, int, bool]]:
    """``(language, code, line, run)`` of each ``.. code-block::`` of the page, in order."""
    lines = page.read_text().splitlines()
    found, shown_only, i = [], False, 0
    while i < len(lines):
        shown_only = shown_only or lines[i].startswith(".. not run")
        match = re.match(r"^(\s*)\.\. code-block:: (\w+)", lines[i])
        i += 1
        if not match:
            continue
        indent, body = len(match.group(1)), []
        while i < len(lines) and lines[i].strip().startswith(":"):  # the block's options
            i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            body.append(lines[i])
            i += 1
        code = textwrap.dedent("\n".join(body)).strip("\n")
        found.append((match.group(2), code, i - len(body), not shown_only))
        shown_only = False
    return found


NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def same_output(printed: str, shown: str) -> bool:
    """The printed text equals the shown one, numbers equal to the digits the page shows
    (half a unit in the last digit written)."""
    printed_words, shown_words = printed.split(), shown.split()
    if len(printed_words) != len(shown_words):
        return False
    for got, want in zip(printed_words, shown_words):
        got_numbers, want_numbers = NUMBER.findall(got), NUMBER.findall(want)
        if NUMBER.sub("#", got) != NUMBER.sub("#", want) or len(got_numbers) != len(want_numbers):
            return False
        for g, w in zip(got_numbers, want_numbers):
            mantissa = re.split(r"[eE]", w)[0]
            digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
            exponent = int(re.split(r"[eE]", w)[1]) if re.search(r"[eE]", w) else 0
            if abs(float(g) - float(w)) > 0.5 * 10.0 ** (exponent - digits) * (1 + 1e-9):
                return False
    return True


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_code_runs_as_written(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for registry in (bn.activations, bn.losses):  # what a page registers is undone after it
        monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    namespace: dict = {"__name__": "__main__"}
    printed = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        for language, code, line, run in blocks(page):
            where = f"{page.relative_to(DOCS)}:{line}"
            if language == "text" and printed is not None:
                assert same_output(printed, code), f"{where}: printed\n{printed}\nshown\n{code}"
            printed = None
            if language != "python" or not run:
                continue
            if (
                "Mesh(" in code
                and not STRICT
                and "device_count" not in os.environ.get("XLA_FLAGS", "")
            ):
                pytest.skip(f"{where} and after: a mesh of several devices (XLA_FLAGS)")
            stdout = io.StringIO()
            try:
                with contextlib.redirect_stdout(stdout):
                    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the page's code
            except ModuleNotFoundError as error:
                if STRICT or error.name is None or error.name.split(".")[0] not in OPTIONAL:
                    raise
                pytest.skip(f"{where} and after: needs {error.name}")
            printed = stdout.getvalue()


def test_output_comparison_is_to_the_digits_shown():
    assert same_output("loss 0.123456 at epoch 3", "loss 0.1235 at epoch 3")
    assert not same_output("loss 0.1237 at epoch 3", "loss 0.1235 at epoch 3")
    assert not same_output("loss 0.1235 at epoch 4", "loss 0.1235 at epoch 3")
    assert same_output("[1.5e-10, True]", "[1.5e-10, True]")
    assert not same_output("[1.5e-09, True]", "[1.5e-10, True]")
    assert not same_output("a b", "a b c")
