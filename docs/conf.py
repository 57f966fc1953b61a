"""Sphinx configuration of backendnn's documentation site: ``nox -s docs`` builds it with
warnings as errors and nitpicky references (``sphinx-build -W -n``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # _gallery.py
sys.path.insert(0, str(DOCS / "_ext"))  # testref.py: the :test: role
sys.path.insert(0, str(DOCS.parent))  # backendnn from this checkout

import backendnn  # noqa: E402

project = "backendnn"
author = "the backendnn developers"
copyright = "2026, the backendnn developers"
release = version = backendnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx-mathjax-offline",  # MathJax served from the site itself: no CDN needed
    "testref",  # :test:`tests/FILE.py::test_name` links to the test's source
]

nitpicky = True
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# numpydoc writes the types; signatures without annotations keep nitpicky quiet about
# library types (no intersphinx: these machines cannot fetch inventories).
autodoc_typehints = "none"
autodoc_default_options = {"members": False}
autosummary_generate = True
autosummary_imported_members = True
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

html_theme = "pydata_sphinx_theme"
html_title = f"backendnn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
# the theme's light/dark switch starts from the reader's system setting (without a default
# the first visit logs an error in the browser's console)
html_context = {"default_mode": "auto"}

from _gallery import finish_example_page, sphinx_gallery_conf  # noqa: E402

# the environment variable lets the browser test build quickly without the gallery
if os.environ.get("BACKENDNN_DOCS_GALLERY") == "0":
    sphinx_gallery_conf["plot_gallery"] = "False"


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """scikit-learn's metadata-routing methods (``set_fit_request``, ...) are documented by
    scikit-learn; their docstrings point into its site."""
    if name == "get_metadata_routing" or (name.startswith("set_") and name.endswith("_request")):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
    app.connect("source-read", finish_example_page)
