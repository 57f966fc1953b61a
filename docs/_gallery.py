"""sphinx-gallery's settings for ``examples/``: which scripts run, in which order, and the
scraper that puts the PNG files each example writes on its page.

The examples run in the Sphinx process, on NumPy, at their full default sizes (all of them
together take about 90 s on one core of a 2-core machine, so none needs a small-data
option here; the tests use ``examples/_small.py``'s sizes) with ``--out`` a new temporary
folder, removed after the example: nothing is written into the repository but the generated pages
(``docs/auto_examples``, ignored by git). The examples close their figures after saving
them, so matplotlib's scraper would find none: ``png_scraper`` collects the files instead.
The settings name these functions by their full name (``"_gallery.png_scraper"``), as
sphinx-gallery asks since Sphinx 7.3 caches the configuration: it imports them itself
(conf.py puts docs/ on ``sys.path``).
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sphinx_gallery.scrapers import figure_rst

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GALLERY = "auto_examples"
NOT_RUN = "distributed.py"  # starts processes and sets JAX's device flags before JAX loads


def _small_args() -> dict[str, list[str]]:
    """``examples/_small.py``'s table (examples/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("examples_small", EXAMPLES / "_small.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SMALL_ARGS


SMALL_ARGS = _small_args()
ORDER = [*SMALL_ARGS, NOT_RUN]  # the table's order, simple to involved, is the gallery's
_OUT: dict[str, Path] = {}  # the --out folder of the example running now, by file name


def reset_argv(gallery_conf: dict[str, Any], script_vars: dict[str, Any]) -> list[str]:
    """An example's command line: its defaults, and a new temporary ``--out`` folder."""
    name = Path(script_vars["src_file"]).name
    if name not in SMALL_ARGS:  # the tests would not run it either
        raise KeyError(f"examples/{name} has no small sizes: add it to examples/_small.py")
    _OUT[name] = Path(tempfile.mkdtemp(prefix=f"backendnn-gallery-{Path(name).stem}-"))
    return ["--out", str(_OUT[name])]


def png_scraper(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    """The PNG files the example wrote into its ``--out`` folder during this code block,
    moved to the page's image paths; the reST that shows them."""
    out = _OUT.get(Path(block_vars["src_file"]).name)
    images = []
    for png in sorted(out.glob("*.png")) if out else ():
        images.append(block_vars["image_path_iterator"].next())
        shutil.move(png, images[-1])
    return figure_rst(images, gallery_conf["src_dir"])


def remove_out(gallery_conf: dict[str, Any], fname: str | None, when: str) -> None:
    """After an example, remove its ``--out`` folder (model files, checkpoints, logs)."""
    if when == "after" and fname is not None:
        out = _OUT.pop(Path(fname).name, None)
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)


class ExampleOrder:
    """The gallery's order of the examples: ``ORDER``'s, then any other file by name
    (sphinx-gallery's sort key; it sorts the helper modules too, before ignoring them)."""

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self) -> str:
        return "ExampleOrder"


def _as_a_terminal_leaves_it(line: str) -> str:
    """A line of output redrawn after carriage returns (tqdm's progress bar): its last state,
    at the line's indentation."""
    if "\r" not in line.rstrip("\r"):
        return line.rstrip("\r")
    indent = line[: len(line) - len(line.lstrip(" "))]
    return indent + [part for part in line.split("\r") if part.strip()][-1].rstrip()


def finish_example_page(app: Any, docname: str, source: list[str]) -> None:
    """Sphinx's ``source-read`` for an example's page: under the title, a note of the command
    line the page comes from (or that the example is shown, not run); progress bars in the
    output as a terminal leaves them."""
    name = f"{docname.removeprefix(GALLERY + '/')}.py"
    if not docname.startswith(GALLERY + "/") or name not in ORDER:
        return
    if name == NOT_RUN:
        note = (
            "This example starts processes and sets JAX's device flags before JAX loads: "
            "this page shows it without running it."
        )
    elif not app.config.sphinx_gallery_conf["plot_gallery"]:  # BACKENDNN_DOCS_GALLERY=0
        note = "This build of the documentation did not run the examples."
    else:
        note = (
            f"This page ran ``python examples/{name} --out DIR`` (NumPy, the default "
            "sizes, DIR a temporary folder) while the documentation was built."
        )
    # Sphinx read "\r" as a line end: the page again, with the progress bars' redraws
    with open(app.env.doc2path(docname), encoding="utf-8", newline="") as page:
        lines = [_as_a_terminal_leaves_it(line) for line in page.read().split("\n")]
    # the title's underline: the first line of "=" after sphinx-gallery's label
    label = next(i for i, line in enumerate(lines) if line.startswith(".. _sphx_glr_"))
    below = next(i for i in range(label, len(lines)) if lines[i].startswith("===")) + 1
    lines[below:below] = ["", ".. note::", "", f"   {note}"]
    source[0] = "\n".join(lines)


sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": GALLERY,
    "filename_pattern": rf"/(?!{NOT_RUN.removesuffix('.py')}\b)[a-z_]+\.py$",
    "ignore_pattern": r"(^|/)_[a-z_]+\.py$",  # helpers (_common.py, _small.py); matched to the name
    "within_subsection_order": "_gallery.ExampleOrder",
    "reset_argv": "_gallery.reset_argv",
    "image_scrapers": ("_gallery.png_scraper",),
    "reset_modules": ("matplotlib", "_gallery.remove_out"),
    "reset_modules_order": "both",
    "notebook_extensions": set(),  # command-line scripts: a notebook would pass Jupyter's argv
    "download_all_examples": False,
    "remove_config_comments": True,
}
