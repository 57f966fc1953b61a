"""The estimator core (``backendnn/estimators/_core.py``, ``_inputs.py``, ``_driver.py``):
``partial_fit`` and warm starts across libraries and devices, stacks whose first layer has
no parameters, callbacks, warnings that point at the caller, model files of formats 3
and 4, and scikit-learn's checks on the layer-stack estimators.

Each test here failed on the code before the estimator core became data (b677f2f).
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.utils.estimator_checks import parametrize_with_checks

import backendnn as bn
from backendnn import _backend
from backendnn.layers import Activation, Dense, Flatten
from tests._helpers import read_meta

DATA = pathlib.Path(__file__).parent / "data"


def _data():
    X, y = make_classification(60, 4, n_informative=3, n_redundant=0, random_state=0)
    return X, y


def _library(a) -> str:
    return _backend.namespace_name(_backend.array_namespace(a))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_follows_the_data_to_another_library(backend, solver):
    """A fit on NumPy continued by ``partial_fit`` on ``backend`` (and back): the weights
    and the optimiser's state move with the data, and the result equals the same calls
    made on NumPy throughout (to rounding)."""
    X, y = _data()
    kw = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=3, random_state=0)
    ref = bn.MLPClassifier(**kw).fit(X, y)
    ours = bn.MLPClassifier(**kw).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        for _ in range(2):
            ref.partial_fit(X, y)
            ours.partial_fit(backend.asarray(X, "float64"), backend.asarray(y, "int64"))
            assert _library(ours.coefs_[0]) == backend.name
            assert _backend.device(ours.coefs_[0]) == backend.device
        ours.partial_fit(X, y)  # and back to NumPy
        ref.partial_fit(X, y)
    assert _library(ours.coefs_[0]) == "numpy"
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(_backend.to_numpy(a), b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)


def test_warm_start_follows_the_data_to_another_library(backend):
    """A warm-start fit on another library trains there and leaves its weights there."""
    X, y = _data()
    est = bn.MLPClassifier((5,), max_iter=2, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        est.fit(X, y)
        est.fit(backend.asarray(X, "float64"), backend.asarray(y, "int64"))
    assert _library(est.coefs_[0]) == backend.name
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 4


@pytest.mark.parametrize(
    "layers",
    [[Flatten(), Dense(4, 3), Activation("relu")], [Activation("relu")], [Flatten()]],
    ids=["flatten-first", "activation-only", "flatten-only"],
)
def test_partial_fit_of_a_stack_whose_first_layer_has_no_parameters(layers):
    """The second ``partial_fit`` continues (it read the first layer's parameters)."""
    X, y = _data()
    est = bn.NeuralNetClassifier(layers, random_state=0, learning_rate_init=0.01)
    est.partial_fit(X, y, classes=[0, 1])
    first = [tuple(np.array(a) for a in p) for p in est.params_]
    est.partial_fit(X, y)
    assert est.t_ == 2 * len(X) and len(est.loss_curve_) == 2
    assert any(not np.allclose(a, b) for p, q in zip(first, est.params_) for a, b in zip(p, q))


@pytest.mark.parametrize("solver", ["sgd", "gd"])
def test_every_callback_sees_every_epoch(solver):
    """One callback stopping training does not hide the stopping epoch from the others."""
    X, y = _data()
    seen = []

    def stop_at_2(record):
        seen.append(("stop", record["epoch"]))
        return record["epoch"] == 2

    def watch(record):
        seen.append(("watch", record["epoch"]))
        return False

    bn.MLPClassifier((3,), solver=solver, max_iter=9).fit(X, y, callbacks=[stop_at_2, watch])
    assert seen == [("stop", 1), ("watch", 1), ("stop", 2), ("watch", 2)]


def test_input_warnings_point_at_the_callers_line():
    """A column-vector y and feature names on one side only: scikit-learn's warnings, at
    the line that called fit or predict (they named library lines before)."""
    pd = pytest.importorskip("pandas")
    X, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        est = bn.MLPClassifier((3,), max_iter=2).fit(X, y[:, None])  # column y
        est.predict(pd.DataFrame(X, columns=list("abcd")))  # names at predict only
    kinds = {w.category.__name__ for w in caught}
    assert {"DataConversionWarning", "UserWarning"} <= kinds, kinds
    assert all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]


@pytest.mark.parametrize(
    "make",
    [
        lambda: bn.MLPClassifier((3,), max_iter=2),
        lambda: bn.MLPClassifier((3,), solver="lbfgs", max_iter=2),
        lambda: bn.Perceptron(max_iter=1),
    ],
    ids=["adam", "lbfgs", "perceptron"],
)
def test_convergence_warning_points_at_the_callers_line(make):
    X, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make().fit(X, y)  # the line the warning must name
    found = [w for w in caught if issubclass(w.category, bn.ConvergenceWarning)]
    assert found, [str(w.message) for w in caught]
    assert all(w.filename == __file__ for w in found), [(w.filename, w.lineno) for w in found]


def test_perceptron_coef_init_is_an_argument_of_the_call():
    """``coef_init`` seeds this fit only and leaves no trace on the estimator."""
    X, y = _data()
    start = np.full((1, 4), 0.5)
    est = bn.Perceptron(max_iter=1, shuffle=False, tol=None)
    before = set(vars(est))
    est.fit(X, y, coef_init=start)
    assert not {k for k in set(vars(est)) - before if "start" in k or "init" in k}
    from sklearn.linear_model import Perceptron as SkPerceptron

    sk = SkPerceptron(max_iter=1, shuffle=False, tol=None).fit(X, y, coef_init=start)
    np.testing.assert_allclose(_backend.to_numpy(est.coef_), sk.coef_, rtol=1e-12)


# ---------------------------------------------------------------------- model files


#: each older format's files and what they predicted when saved (``make.py`` beside them)
EXPECTED = {
    version: json.loads((DATA / f"format{version}" / "expected.json").read_text())
    for version in (3, 4, 5)
}


def _output(model, X):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    if hasattr(model, "decision_function"):
        return model.decision_function(X)
    return model.predict(X)


@pytest.mark.parametrize(
    "version, name",
    [(version, name) for version in EXPECTED for name in sorted(EXPECTED[version]["predictions"])],
)
def test_older_format_files_load_with_the_same_predictions(version, name, tmp_path):
    """Files saved by the last code to write format 3 (b677f2f), format 4 (af563d1) and
    format 5 (c56bb14), by ``tests/data/format{3,4,5}/make.py``, load with the predictions
    they were saved with, and save again in today's format and load back equal."""
    expected = EXPECTED[version]["predictions"][name]
    X = np.array(EXPECTED[version]["images" if name.startswith("cnn") else "X"])
    model = bn.load(DATA / f"format{version}" / f"{name}.safetensors")
    out = _output(model, X)
    np.testing.assert_allclose(out, expected["output"], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(model.predict(X), expected["predict"])
    path = tmp_path / "again.safetensors"
    bn.save(model, path)
    assert read_meta(path)["version"] == bn.io.FORMAT_VERSION
    again = bn.load(path)
    assert type(again) is type(model) and again.get_params() == model.get_params()
    np.testing.assert_array_equal(_output(again, X), out)
    np.testing.assert_array_equal(again.predict(X), expected["predict"])


# ---------------------------------------------------------------------- scikit-learn


@parametrize_with_checks(
    [
        # stacks that fix no input width: the output layer is sized from the data
        bn.NeuralNetClassifier([Flatten(), Activation("tanh")], learning_rate_init=0.01),
        bn.NeuralNetRegressor([Flatten(), Activation("tanh")], learning_rate_init=0.01),
    ],
    xfail_strict=True,
)
def test_sklearn_check_estimator_on_layer_stacks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        check(estimator)


def test_a_stack_fitted_on_rows_refuses_images():
    """Rows given again as (N, 1, 1, F) images were broadcast by Dense into (N, 1, k)
    outputs and wrong labels, silently; now a ValueError names the shape."""
    X, y = _data()
    est = bn.NeuralNetClassifier([Dense(4, 3), Activation("relu")], max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        est.fit(X, y)
    with pytest.raises(ValueError, match="fitted on rows of 4 features"):
        est.predict(X.reshape(len(X), 1, 1, 4))
