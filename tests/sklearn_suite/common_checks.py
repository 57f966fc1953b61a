"""The MLP and Perceptron part of scikit-learn's common tests, on backendnn's estimators.

Mirrors scikit-learn's ``sklearn/tests/test_common.py`` for these three estimators
(that file cannot run on ours: it discovers estimators with ``all_estimators()``, which
keeps ``BaseEstimator`` subclasses only, and keys its settings on scikit-learn's
classes). The settings are scikit-learn's own, read from the installed
``sklearn.utils._test_common.instance_generator`` by class name (with the 1.9 values as
a fallback should that private module move):

- ``INIT_PARAMS``: the small instances it tests (MLP ``max_iter=100``, Perceptron
  ``max_iter=5``);
- ``PER_ESTIMATOR_CHECK_PARAMS``: the extra settings some checks run with (the MLPs'
  sample-weight equivalence with ``solver="lbfgs"``/``"sgd"``);
- ``PER_ESTIMATOR_XFAIL_CHECKS``: the checks scikit-learn expects to fail on its own
  estimator (Perceptron's sample-weight equivalence), marked non-strict as it does.

Not collected by the repository's test run (the name does not start with ``test_``): the
``sklearn_suite`` session passes it explicitly, with ``plugin.py`` (see there).
"""

from __future__ import annotations

import re
import warnings

import pytest
from scipy.linalg import LinAlgWarning
from sklearn import config_context
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import (
    check_all_zero_sample_weights_error,
    check_dataframe_column_names_consistency,
    check_param_validation,
    estimator_checks_generator,
)
from sklearn.utils.validation import has_fit_parameter

import backendnn

ESTIMATORS = (backendnn.MLPClassifier, backendnn.MLPRegressor, backendnn.Perceptron)

# scikit-learn 1.9.1's values, used only if its private tables cannot be imported.
_FALLBACK_INIT_PARAMS = {
    "MLPClassifier": dict(max_iter=100),
    "MLPRegressor": dict(max_iter=100),
    "Perceptron": dict(max_iter=5),
}
_FALLBACK_CHECK_PARAMS = {
    "MLPClassifier": {"check_sample_weight_equivalence_on_dense_data": [dict(solver="lbfgs")]},
    "MLPRegressor": {
        "check_sample_weight_equivalence_on_dense_data": [
            dict(solver="sgd", tol=1e-2, random_state=42)
        ]
    },
}
_REPEATING = "sample_weight is not equivalent to removing/repeating samples."
_FALLBACK_XFAIL = {
    "Perceptron": {
        "check_sample_weight_equivalence_on_dense_data": _REPEATING,
        "check_sample_weight_equivalence_on_sparse_data": _REPEATING,
    }
}


def _by_name(table: dict) -> dict:
    # Keyed by class in scikit-learn; by name here (after the plugin's substitution the
    # keys may be scikit-learn's classes or ours, depending on import order).
    return {cls.__name__: value for cls, value in table.items() if isinstance(cls, type)}


try:
    from sklearn.utils._test_common import instance_generator as _ig

    INIT_PARAMS = _by_name(_ig.INIT_PARAMS)
    CHECK_PARAMS = _by_name(_ig.PER_ESTIMATOR_CHECK_PARAMS)
    SKLEARN_XFAIL = _by_name(_ig.PER_ESTIMATOR_XFAIL_CHECKS)
except (ImportError, AttributeError):  # pragma: no cover - a future scikit-learn
    INIT_PARAMS, CHECK_PARAMS, SKLEARN_XFAIL = (
        _FALLBACK_INIT_PARAMS,
        _FALLBACK_CHECK_PARAMS,
        _FALLBACK_XFAIL,
    )


def _instances() -> list:
    out = []
    for cls in ESTIMATORS:
        params = INIT_PARAMS.get(cls.__name__, {})
        for p in params if isinstance(params, list) else [params]:
            out.append(cls(**p))
    return out


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


def _instances_for_check(check_name: str, estimator) -> list:
    """scikit-learn's ``_yield_instances_for_check``, keyed by name."""
    param_sets = CHECK_PARAMS.get(type(estimator).__name__, {}).get(check_name)
    if param_sets is None:
        return [estimator]
    if isinstance(param_sets, dict):
        param_sets = [param_sets]
    return [clone(estimator).set_params(**p) for p in param_sets]


def _id(obj) -> str:
    """scikit-learn's ``_get_check_estimator_ids``: the estimator's repr without blanks,
    a check's name (with its keyword arguments, after the estimator's name)."""
    if hasattr(obj, "get_params"):
        with config_context(print_changed_only=True):
            return re.sub(r"\s", "", repr(obj))
    func = getattr(obj, "func", obj)
    extra = {k: v for k, v in getattr(obj, "keywords", {}).items()}
    if extra:
        return "{}({})".format(func.__name__, ",".join(f"{k}={v}" for k, v in extra.items()))
    return func.__name__


def _marks(estimator, check_name: str) -> list:
    reason = SKLEARN_XFAIL.get(type(estimator).__name__, {}).get(check_name)
    if reason is None:
        return []
    return [pytest.mark.xfail(reason=f"scikit-learn's own: {reason}", strict=False)]


def _all_checks() -> list:
    params = []
    with warnings.catch_warnings():  # "does not inherit from BaseEstimator": by design
        warnings.simplefilter("ignore", UserWarning)
        for estimator in _instances():
            for est, check in estimator_checks_generator(estimator, legacy=True):
                name = _check_name(check)
                for instance in _instances_for_check(name, est):
                    params.append(
                        pytest.param(
                            instance,
                            check,
                            marks=_marks(est, name),
                            id=f"{_id(instance)}-{_id(check)}",
                        )
                    )
    return params


_IGNORED = (FutureWarning, ConvergenceWarning, UserWarning, LinAlgWarning)


@pytest.mark.parametrize("estimator, check", _all_checks())
def test_estimators(estimator, check):
    # as scikit-learn's: its check_estimator checks, warnings of these kinds ignored
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _IGNORED)
        check(estimator)


@pytest.mark.parametrize("estimator_orig", _instances(), ids=_id)
def test_pandas_column_name_consistency(estimator_orig):
    pytest.importorskip("pandas")
    name = "check_dataframe_column_names_consistency"
    if name in SKLEARN_XFAIL.get(type(estimator_orig).__name__, {}):
        pytest.skip("Estimator does not support check_dataframe_column_names_consistency")
    for estimator in _instances_for_check(name, estimator_orig):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("ignore", FutureWarning)
            check_dataframe_column_names_consistency(type(estimator).__name__, estimator)
        for warning in record:
            assert "was fitted without feature names" not in str(warning.message)


@pytest.mark.parametrize("estimator", _instances(), ids=_id)
def test_check_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", _instances(), ids=_id)
def test_check_all_zero_sample_weights_error(estimator):
    # scikit-learn runs this for the estimators whose fit takes sample_weight
    if not has_fit_parameter(estimator, "sample_weight"):
        pytest.fail(f"{type(estimator).__name__}.fit does not take sample_weight")
    check_all_zero_sample_weights_error(type(estimator).__name__, estimator)
