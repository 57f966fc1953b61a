"""scikit-learn's estimator protocol on NumPy: every ``check_estimator`` check (with a
documented list of expected failures), ``clone``, ``Pipeline``, ``GridSearchCV``, pickling
(on every backend too), ``NotFittedError`` before fit, feature names from data frames.

The same numbers as scikit-learn are in ``tests/test_sklearn_parity.py`` (the same start)
and ``tests/test_sklearn_seed.py`` (the same ``random_state``); parameter checks in
``tests/test_parameter_validation.py``; metadata routing in ``tests/test_sample_weight.py``.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import backendnn
import backendnn as bn
from backendnn import (
    MLPClassifier,
    MLPRegressor,
    NeuralNetClassifier,
    NeuralNetRegressor,
    Perceptron,
    _backend,
)
from backendnn.layers import Activation, BatchNorm1d, Dense, LayerNorm
from tests._helpers import ESTIMATORS, X_CLS, X_OK, Y_CLS, blobs3, each_kind

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


# ---------------------------------------------------------------------------- check_estimator

# Every scikit-learn estimator check passes; a check that starts failing is a regression.
# The exceptions are scikit-learn's own for the same estimator: its online Perceptron's
# sample weights scale updates, which is not the same as repeating samples.
_CHECKS_EXPECTED_TO_FAIL: dict[str, dict[str, str]] = {
    "Perceptron": {
        f"check_sample_weight_equivalence_on_{kind}_data": (
            "sample_weight is not equivalent to removing/repeating samples (online "
            "updates; scikit-learn expects this failure of its own Perceptron)"
        )
        for kind in ("dense", "sparse")
    },
}


def _expected_failures(estimator) -> dict:
    return _CHECKS_EXPECTED_TO_FAIL.get(type(estimator).__name__, {})


_CHECKS = parametrize_with_checks(
    [
        Perceptron(),
        MLPClassifier(),
        MLPRegressor(),
        # input widths inferred from the data, batch statistics weighted as frequencies
        NeuralNetClassifier([Dense(8), BatchNorm1d(8), Activation("relu")]),
        NeuralNetRegressor([Dense(8), LayerNorm(8), Activation("tanh")]),
    ],
    expected_failed_checks=_expected_failures,
    xfail_strict=True,
)


@_CHECKS
def test_sklearn_check_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", backendnn.ConvergenceWarning)
        check(estimator)


# ----------------------------------------------------------------------- clone, pipelines, pickling


def test_clone_pipeline_gridsearch_pickle():
    X, y = blobs3()
    X = X * 10 + 3
    clf = MLPClassifier((8,), max_iter=60, alpha=1e-3, random_state=0, learning_rate_init=0.01)
    cloned = clone(clf)
    assert cloned is not clf and cloned.get_params() == clf.get_params()
    assert not hasattr(cloned, "coefs_")
    clf.fit(X, y)
    assert not hasattr(clone(clf), "coefs_")

    pipe = make_pipeline(StandardScaler(), clone(cloned)).fit(X, y)
    assert pipe.score(X, y) > 0.8
    assert pipe.predict_proba(X).shape == (90, 3)

    grid = GridSearchCV(
        make_pipeline(StandardScaler(), clone(cloned)),
        {"mlpclassifier__alpha": [1e-4, 1e-1]},
        cv=3,
    ).fit(X, y)
    assert grid.best_params_["mlpclassifier__alpha"] in (1e-4, 1e-1)
    assert len(grid.cv_results_["mean_test_score"]) == 2
    assert grid.score(X, y) > 0.8

    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0).fit(X, X[:, 0])
    perc = Perceptron().fit(X, y)
    for est in (clf, pipe, reg, perc):
        again = pickle.loads(pickle.dumps(est))
        # exact: the same weights (pickled bit for bit), the same library and call
        np.testing.assert_array_equal(again.predict(X), est.predict(X))
    assert repr(MLPClassifier(alpha=0.5)) == "MLPClassifier(alpha=0.5)"


def test_pickle_round_trip_on_backend(backend):
    X, y = blobs3()
    Xb = backend.asarray(X, "float64")
    clf = MLPClassifier((5,), max_iter=10, random_state=0).fit(Xb, backend.asarray(y, "int64"))
    clf.predict(Xb)  # fills the cache, which pickling must drop
    again = pickle.loads(pickle.dumps(clf))
    assert "_cache" not in vars(again) or not vars(again)["_cache"]
    np.testing.assert_array_equal(
        _backend.to_numpy(again.predict(Xb)), _backend.to_numpy(clf.predict(Xb))
    )


@each_kind
def test_predict_before_fit(kind):
    model = ESTIMATORS[kind]()
    with pytest.raises(bn.NotFittedError, match="not fitted"):
        model.predict(X_OK)
    assert issubclass(bn.NotFittedError, ValueError)
    assert issubclass(bn.NotFittedError, AttributeError)


# ---------------------------------------------------------------------------- feature names


def test_feature_names_from_dataframes():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_CLS, columns=["a", "b", "c", "d"])
    model = bn.MLPClassifier((4,), max_iter=5, random_state=0).fit(frame, Y_CLS)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    assert model.feature_names_in_.dtype == object
    np.testing.assert_array_equal(model.predict(frame), model.predict(X_CLS))  # the same X
    with pytest.raises(ValueError, match="same order"):
        model.predict(frame[["b", "a", "c", "d"]])  # the same names reordered
    with pytest.raises(ValueError, match="unseen at fit time:\n- e"):
        model.predict(frame.rename(columns={"d": "e"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        model.predict(X_CLS)
    plain = bn.MLPClassifier((4,), max_iter=5, random_state=0).fit(X_CLS, Y_CLS)
    assert not hasattr(plain, "feature_names_in_")
    with pytest.warns(UserWarning, match="fitted without feature names"):
        plain.predict(frame)
    with pytest.raises(TypeError, match="string names"):
        bn.MLPClassifier((4,), max_iter=5).fit(pd.DataFrame(X_CLS, columns=["a", 1, "c", 2]),
                                               Y_CLS)  # fmt: skip
