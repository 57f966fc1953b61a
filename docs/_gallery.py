"""sphinx-gallery's settings for ``examples/``: which scripts run, with which small-data
arguments, and the scraper that collects the PNG files each example writes."""

from __future__ import annotations

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/(?!distributed)[a-z_]+\.py$",  # distributed.py: shown, not run
    "ignore_pattern": r"/_common\.py$",
    "download_all_examples": False,
    "remove_config_comments": True,
}
