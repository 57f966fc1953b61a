"""Run scikit-learn's own tests against backendnn's estimators (``nox -s sklearn_suite``).

scikit-learn's test files are not copied here: the session runs the ones in the
*installed* package, with this plugin loaded first. From the repository root::

    python -m tests.sklearn_suite [pytest options]      # what the nox session runs

which is (see ``__main__.py``)::

    SK=$(python -c "import sklearn, os; print(os.path.dirname(sklearn.__file__))")
    python -m pytest -p tests.sklearn_suite.plugin -c tests/sklearn_suite/pytest.ini \
        --confcutdir tests/sklearn_suite --rootdir <a folder above the repository and $SK> \
        $SK/neural_network/tests/test_mlp.py $SK/linear_model/tests/test_perceptron.py \
        tests/sklearn_suite/common_checks.py

``python -m`` puts the repository on ``sys.path`` so that ``-p`` finds this module;
``-c`` and ``--confcutdir`` keep the repository's pytest settings and
``tests/conftest.py`` out, while scikit-learn's own ``sklearn/conftest.py`` (fixtures such
as ``global_random_seed``) still loads, as in scikit-learn's CI.

- **Substitution.** In ``pytest_configure``, before any test module is imported,
  ``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` and
  ``sklearn.linear_model.Perceptron`` (and the same names in the private submodules that
  define them) are replaced by backendnn's classes, so ``from sklearn.neural_network import
  MLPClassifier`` in scikit-learn's test modules gets ours. After collection, every
  collected scikit-learn test module is checked to hold our classes (a usage error
  otherwise: a test silently run against scikit-learn would prove nothing).
- **Expected failures.** ``EXPECTED_FAILURES`` maps a pattern on
  ``<file name>::<test name>[<parameters>]`` (``*`` matches anything; the pattern does not
  depend on where scikit-learn is installed) to its reason; each matching test is marked
  ``xfail(strict=True)``, so a test that starts passing fails the session until its entry
  is removed (one entry, a test whose unseeded fit fails by chance, is not strict).
  Entries that match no test are listed at the end of the run. Issue 14's rule: in the
  end the only entries allowed are tests that read a scikit-learn *private* attribute
  (``PRIVATE_ATTRIBUTE``, each also naming the exception it must fail with).
  ``OPEN_IN_ISSUE_14`` lists the real differences still open, to be emptied entry by
  entry as they are fixed.
- scikit-learn's own expected failures for these estimators (its
  ``PER_ESTIMATOR_XFAIL_CHECKS``: Perceptron's sample-weight equivalence) are applied by
  ``common_checks.py`` itself, non-strict, as scikit-learn applies them.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import NamedTuple

import pytest


class Expect(NamedTuple):
    """An expected failure: why; the exception(s) it must fail with (None: any); strict
    (False only where the test passes or fails by chance: an unseeded fit)."""

    reason: str
    raises: type[BaseException] | tuple[type[BaseException], ...] | None = None
    strict: bool = True

# scikit-learn module -> names replaced there by backendnn's class of the same name.
SUBSTITUTED = {
    "sklearn.neural_network": ("MLPClassifier", "MLPRegressor"),
    "sklearn.neural_network._multilayer_perceptron": ("MLPClassifier", "MLPRegressor"),
    "sklearn.linear_model": ("Perceptron",),
    "sklearn.linear_model._perceptron": ("Perceptron",),
}

# Tests that read a scikit-learn private attribute: allowed to fail for good (issue 14).
# Each names the exception it must fail with: any other is a real failure.
PRIVATE_ATTRIBUTE: dict[str, Expect] = {
    "test_mlp.py::test_gradient": Expect(
        "calls scikit-learn's private _loss_grad_lbfgs(packed, X, Y, ...) with its private "
        "buffers; our gradients are checked by backendnn.check_gradients",
        raises=AttributeError,
    ),
    "test_mlp.py::test_learning_rate_warmstart": Expect(
        "reads _optimizer.learning_rate, scikit-learn's private optimizer object",
        raises=AttributeError,
    ),
    "test_mlp.py::test_adaptive_learning_rate": Expect(
        "reads _optimizer.learning_rate, scikit-learn's private optimizer object "
        "(its public assertion, n_iter_ < max_iter, passes first)",
        raises=AttributeError,
    ),
    "test_mlp.py::test_n_iter_no_change": Expect(
        "reads _no_improvement_count, a private counter of scikit-learn's fit loop",
        raises=AttributeError,
    ),
    "test_mlp.py::test_n_iter_no_change_inf": Expect(
        "reads _no_improvement_count, a private counter of scikit-learn's fit loop "
        "(n_iter_no_change=np.inf itself trains)",
        raises=AttributeError,
    ),
    "common_checks.py::test_check_param_validation[*]": Expect(
        "check_param_validation reads _parameter_constraints in scikit-learn's format "
        "(its Interval/StrOptions objects); ours is backendnn's own constraint table",
        raises=(TypeError, AttributeError, KeyError),
    ),
}

# Real differences still open in issue 14: remove each entry when its test passes
# (strict: a passing test fails the session until then). Grouped by theme.
OPEN_IN_ISSUE_14: dict[str, str | Expect] = {}

EXPECTED_FAILURES: dict[str, str | Expect] = {**PRIVATE_ATTRIBUTE, **OPEN_IN_ISSUE_14}

# scikit-learn's originals, kept for reference (e.g. to compare against them).
ORIGINALS: dict[tuple[str, str], type] = {}


def substitute() -> None:
    """Replace scikit-learn's classes by backendnn's (idempotent)."""
    import backendnn

    for module_name, names in SUBSTITUTED.items():
        module = importlib.import_module(module_name)
        for name in names:
            ours = getattr(backendnn, name)
            current = getattr(module, name)
            if current is not ours:
                ORIGINALS[module_name, name] = current
                setattr(module, name, ours)


def pytest_configure(config: pytest.Config) -> None:
    substitute()


def _matches(pattern: str, key: str) -> bool:
    """``*`` matches anything; everything else, brackets included, is literal."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), key) is not None


def _key(item: pytest.Item) -> str:
    return f"{Path(item.path).name}::{item.name}"


def _is_sklearn_test(item: pytest.Item) -> bool:
    return "sklearn" in Path(item.path).parts


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    import backendnn

    checked: set[object] = set()
    used: set[str] = set()
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and _is_sklearn_test(item) and module not in checked:
            checked.add(module)
            for names in SUBSTITUTED.values():
                for name in names:
                    got = getattr(module, name, None)
                    if got is not None and got is not getattr(backendnn, name):
                        raise pytest.UsageError(
                            f"{module.__name__}.{name} is {got!r}, not backendnn's: it was "
                            "imported before the substitution (load this plugin with -p)."
                        )
        key = _key(item)
        for pattern, entry in EXPECTED_FAILURES.items():
            if _matches(pattern, key):
                used.add(pattern)
                expect = entry if isinstance(entry, Expect) else Expect(entry)
                item.add_marker(
                    pytest.mark.xfail(
                        reason=expect.reason, raises=expect.raises, strict=expect.strict
                    )
                )
                break
    config.stash[_UNUSED] = sorted(set(EXPECTED_FAILURES) - used)


_UNUSED = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    unused = config.stash.get(_UNUSED, [])
    if unused:
        terminalreporter.write_sep("=", "expected-failure entries that matched no test")
        for pattern in unused:
            terminalreporter.write_line(f"{pattern}: remove it, or fix the pattern")
