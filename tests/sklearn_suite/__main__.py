"""``python -m tests.sklearn_suite [pytest options]``, from the repository root: runs the
installed scikit-learn's MLP and Perceptron test modules and ``common_checks.py`` against
backendnn's estimators (see ``plugin.py``). ``nox -s sklearn_suite`` runs this."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import sklearn

HERE = Path(__file__).resolve().parent
SKLEARN = Path(sklearn.__file__).resolve().parent

# scikit-learn's own test modules, run from where scikit-learn is installed.
SKLEARN_MODULES = (
    "neural_network/tests/test_mlp.py",
    "linear_model/tests/test_perceptron.py",
)


def arguments(extra: list[str]) -> list[str]:
    files = [str(SKLEARN / m) for m in SKLEARN_MODULES] + [str(HERE / "common_checks.py")]
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise SystemExit(f"not found (is scikit-learn installed with its tests?): {missing}")
    return [
        "-p", "tests.sklearn_suite.plugin",
        # our settings only (not the repository's: no testpaths, no tests/conftest.py);
        # scikit-learn's sklearn/conftest.py still loads (global_random_seed, ...)
        "-c", str(HERE / "pytest.ini"),
        "--confcutdir", str(HERE),
        # a root above both trees, so every node id names its file (pytest leaves the
        # file out of the ids of tests outside the root)
        "--rootdir", os.path.commonpath([str(HERE.parents[1]), str(SKLEARN)]),
        *files,
        *extra,
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(pytest.main(arguments(sys.argv[1:])))
