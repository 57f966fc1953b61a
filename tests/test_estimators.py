"""Estimators (issue 5): ``Perceptron``, ``MLPClassifier``, ``MLPRegressor``.

- digits as NCHW images reach >= 0.97 test accuracy on every backend (the one heavy test);
- arrays in, same arrays out (library and device) on every backend; NumPy string labels;
  a model fitted on one backend predicts on NumPy input; Python lists;
- probabilities, ``partial_fit``, ``warm_start`` and early stopping, with scikit-learn's
  meanings of the fitted attributes checked against scikit-learn on the same data;
- GLU-gated hidden layers, NCHW shape checks, the perceptron's separable/XOR contrast;
- ``callbacks``, divergence (``ConvergenceError``) leaving the estimator as it was;
- scikit-learn compatibility on NumPy: ``check_estimator`` (with a documented list of
  expected failures), ``clone``, ``Pipeline``, ``GridSearchCV``, pickling.
"""

from __future__ import annotations

import functools
import math
import pickle
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sknn
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import backendnn
from backendnn import (
    ConvergenceError,
    MLPClassifier,
    MLPRegressor,
    NotFittedError,
    Perceptron,
    _backend,
)
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


def _lib(a) -> str:
    return _backend.namespace_name(_backend.array_namespace(a))


def _assert_on(a, backend) -> None:
    """``a`` is an array of ``backend``'s library, on its device."""
    assert _lib(a) == backend.name, (_lib(a), backend.name)
    if backend.name != "jax":
        assert _backend.device(a) == backend.device


@functools.cache
def _blobs3() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(
        90,
        5,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )


@functools.cache
def _binary() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(80, 4, n_informative=3, n_redundant=0, random_state=1)


# ====================================================================== digits, every backend


@functools.cache
def _digits_split():
    d = load_digits()
    X = (d.images / 16.0)[:, None, :, :]  # NCHW (N, 1, 8, 8) in [0, 1]
    return train_test_split(X, d.target, test_size=0.25, stratify=d.target, random_state=0)


# ====================================================================== arrays in, arrays out


@pytest.mark.parametrize("n_classes", [2, 3])
def test_arrays_in_same_arrays_out(backend, n_classes):
    X, y = _binary() if n_classes == 2 else _blobs3()
    Xb, yb = backend.asarray(X, "float64"), backend.asarray(y, "int64")
    clf = MLPClassifier((6,), max_iter=20, random_state=0).fit(Xb, yb)
    for a in clf.coefs_ + clf.intercepts_:
        _assert_on(a, backend)
    pred = clf.predict(Xb)
    _assert_on(pred, backend)
    assert pred.dtype == backend.dtype("int64") and tuple(pred.shape) == (X.shape[0],)
    proba = clf.predict_proba(Xb)
    _assert_on(proba, backend)
    assert proba.dtype == backend.dtype("float64")
    assert tuple(proba.shape) == (X.shape[0], n_classes)
    log_proba = clf.predict_log_proba(Xb)
    _assert_on(log_proba, backend)
    np.testing.assert_array_equal(_backend.to_numpy(clf.classes_), np.arange(n_classes))

    # fitted here, predicting on NumPy input: NumPy out, the same values
    pred_np, proba_np = clf.predict(X), clf.predict_proba(X)
    assert isinstance(pred_np, np.ndarray) and isinstance(proba_np, np.ndarray)
    np.testing.assert_array_equal(pred_np, _backend.to_numpy(pred))
    assert_close(proba, proba_np, backend=backend, rtol=1e-12, atol=1e-15)
    assert clf.score(X, y) == clf.score(Xb, yb)


def test_regressor_arrays_in_same_arrays_out(backend):
    X, y = make_regression(60, 4, noise=1.0, random_state=0)
    y = y / y.std()
    Xb = backend.asarray(X, "float64")
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=20, random_state=0).fit(Xb,
            backend.asarray(y, "float64"))
    pred = reg.predict(Xb)
    _assert_on(pred, backend)
    assert pred.dtype == backend.dtype("float64") and tuple(pred.shape) == (60,)
    assert_close(pred, reg.predict(X), backend=backend, rtol=1e-12, atol=1e-14)
    Y2 = np.stack([y, -y], axis=1)
    reg2 = MLPRegressor(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(Xb,
            backend.asarray(Y2, "float64"))
    assert tuple(reg2.predict(Xb).shape) == (60, 2) and reg2.n_outputs_ == 2


def test_float32_input_computes_in_float32(backend):
    X, y = _blobs3()
    Xb = backend.asarray(X, "float32")
    clf = MLPClassifier((6,), max_iter=5, random_state=0).fit(Xb, backend.asarray(y, "int64"))
    assert clf.coefs_[0].dtype == backend.dtype("float32")
    assert clf.predict_proba(Xb).dtype == backend.dtype("float32")


def test_string_labels_on_numpy():
    X, y = _blobs3()
    names = np.array(["emu", "cat", "dog"])[y]
    clf = MLPClassifier((8,), max_iter=200, random_state=0).fit(X, names)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "emu"])
    pred = clf.predict(X)
    assert isinstance(pred, np.ndarray) and pred.dtype.kind == "U"
    assert set(pred) <= {"cat", "dog", "emu"}
    # chance is 1/3; scikit-learn's MLPClassifier from this seed (the same draws) scores 0.744
    assert clf.score(X, names) > 0.7
    # predict_proba's columns follow classes_
    np.testing.assert_array_equal(clf.classes_[clf.predict_proba(X).argmax(axis=1)], pred)
    binary = MLPClassifier((4,), max_iter=50, random_state=0)
    binary.fit(X, np.where(y == 0, "yes", "no"))
    assert set(binary.predict(X)) <= {"yes", "no"}
    assert tuple(binary.predict_proba(X).shape) == (90, 2)


def test_string_labels_and_other_backends(backend):
    """String labels are a NumPy feature: a model fitted on them predicts strings for NumPy
    input and raises a TypeError that says why for another library's input; labels on the
    host train with X on any library (the README's "Choosing a backend")."""
    X, y = _blobs3()
    names = np.array(["emu", "cat", "dog"])[y]
    clf = MLPClassifier((6,), max_iter=5, random_state=0).fit(X, names)
    if backend.name == "numpy":
        return
    with pytest.raises(TypeError, match="NumPy"):
        clf.predict(backend.asarray(X, "float64"))
    proba = clf.predict_proba(backend.asarray(X, "float64"))  # numbers: fine anywhere
    _assert_on(proba, backend)
    # labels kept on the host go with X anywhere: the same model as with X on the host
    on_device = MLPClassifier((6,), max_iter=5, random_state=0, dtype="float64")
    on_device.fit(backend.asarray(X, "float64"), names)
    np.testing.assert_allclose(on_device.loss_curve_, clf.loss_curve_, rtol=1e-9)
    np.testing.assert_array_equal(on_device.classes_, clf.classes_)


def test_lists_are_accepted():
    X, y = _blobs3()
    a = MLPClassifier((6,), max_iter=10, random_state=0).fit(X.tolist(), y.tolist())
    b = MLPClassifier((6,), max_iter=10, random_state=0).fit(X, y)
    pred = a.predict(X.tolist())
    assert isinstance(pred, np.ndarray)
    np.testing.assert_array_equal(pred, b.predict(X))
    np.testing.assert_allclose(a.predict_proba(X.tolist()), b.predict_proba(X), rtol=1e-12)
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X.tolist(), X[:,
            0].tolist())
    assert isinstance(reg.predict(X.tolist()), np.ndarray)
    p = Perceptron().fit(X.tolist(), y.tolist())
    assert isinstance(p.predict(X.tolist()), np.ndarray)


# ====================================================================== scikit-learn's meanings


def _problems():
    X, y3 = _blobs3()
    return {
        "binary": (X, (y3 == 0).astype(int)),
        "multiclass": (X, y3),
        "multilabel": (X, np.stack([y3 == 0, y3 == 1, y3 != 1], axis=1).astype(int)),
        "regression": (X, X @ np.array([1.0, -2.0, 0.5, 0.0, 1.0])),
        "regression-2d": (X, np.stack([X[:, 0], X[:, 1] - X[:, 2]], axis=1)),
    }


@pytest.mark.parametrize("problem", list(_problems()))
@pytest.mark.parametrize("solver", ["sgd", "adam", "gd"])
def test_fitted_attributes_match_sklearn(problem, solver):
    X, y = _problems()[problem]
    regression = problem.startswith("regression")
    Sk = sknn.MLPRegressor if regression else sknn.MLPClassifier
    Ours = MLPRegressor if regression else MLPClassifier
    params = dict(hidden_layer_sizes=(5, 4), max_iter=3, random_state=0, batch_size=32)
    sk_solver = dict(solver="sgd", batch_size=X.shape[0]) if solver == "gd" else dict(solver=solver)
    sk = Sk(**dict(params, **sk_solver)).fit(X, y)
    ours = Ours(**dict(params, solver=solver)).fit(X, y)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_", "t_", "n_iter_"):
        assert getattr(ours, name) == getattr(sk, name), name
    assert hasattr(ours, "classes_") == hasattr(sk, "classes_")
    if hasattr(sk, "classes_"):
        np.testing.assert_array_equal(ours.classes_, sk.classes_)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in sk.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in sk.intercepts_]
    assert len(ours.loss_curve_) == len(sk.loss_curve_) == 3
    assert ours.best_loss_ == min(ours.loss_curve_) and ours.loss_ == ours.loss_curve_[-1]
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None
    assert ours.predict(X).shape == sk.predict(X).shape
    if not regression:
        assert ours.predict_proba(X).shape == sk.predict_proba(X).shape


def test_lbfgs_t_matches_sklearn():
    X, y = _blobs3()
    sk = sknn.MLPClassifier((5,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    ours = MLPClassifier((5,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    assert ours.n_iter_ == sk.n_iter_ and ours.n_layers_ == sk.n_layers_
    assert ours.t_ == sk.t_


_SGD = dict(
    hidden_layer_sizes=(5,),
    solver="sgd",
    batch_size=16,
    shuffle=False,
    learning_rate_init=0.05,
    alpha=1e-3,
    random_state=0,
)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_may_change_precision(backend, solver):
    """A partial_fit in float32 after one in float64 (and back) trains in the new precision:
    the optimiser's state (velocity, Adam moments) is cast with the weights."""
    if not _backend.has_64bit(backend.xp):
        pytest.skip("needs float64 (JAX_ENABLE_X64)")
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    reg = MLPRegressor(**dict(_SGD, solver=solver))
    for dtype in ("float64", "float32", "float64"):
        reg.partial_fit(backend.asarray(X, dtype), backend.asarray(y / 100, dtype))
        assert all(str(a.dtype).endswith(dtype) for a in reg.coefs_ + reg.intercepts_)
        assert reg.predict(backend.asarray(X, dtype)).dtype == backend.asarray(X, dtype).dtype
    assert reg.t_ == 3 * X.shape[0] and np.all(np.isfinite(reg.loss_curve_))


# ====================================================================== early stopping


# ====================================================================== GLU, activations, images


def test_image_shape_is_remembered_and_checked(backend):
    X_train, X_test, y_train, _ = _digits_split()
    Xb = backend.asarray(X_train[:200], "float64")
    clf = MLPClassifier((8,), max_iter=5, random_state=0).fit(Xb, backend.asarray(y_train[:200]))
    assert clf.n_features_in_ == 64 and clf.image_shape_ == (1, 8, 8)
    Xt = X_test[:20]
    flat = clf.predict_proba(backend.asarray(Xt.reshape(20, 64), "float64"))
    assert_close(
        clf.predict_proba(backend.asarray(Xt, "float64")),
        _backend.to_numpy(flat),
        backend=backend,
        rtol=1e-12,
    )
    for shape in ((20, 1, 4, 16), (20, 4, 4, 4), (20, 1, 8, 9)):
        with pytest.raises(ValueError, match="shape|features"):
            clf.predict(backend.asarray(np.zeros(shape), "float64"))
    with pytest.raises(ValueError, match="features"):
        clf.predict(backend.asarray(np.zeros((3, 65)), "float64"))


# ====================================================================== perceptron


# ====================================================================== callbacks


# ====================================================================== divergence


# n_iter_no_change: a growing loss must not stop training (on tol) before it overflows
_DIVERGE = dict(solver="sgd", learning_rate_init=1e6, max_iter=50, n_iter_no_change=100)


def _diverging(Est, **kw):
    return Est(hidden_layer_sizes=(5,), random_state=0, **_DIVERGE, **kw)


def _fitted_state(est) -> dict:
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


def _assert_same_state(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        other = after[key]
        if isinstance(value, list) and value and hasattr(value[0], "shape"):
            assert len(value) == len(other)
            for a, b in zip(value, other):
                np.testing.assert_array_equal(_backend.to_numpy(a), _backend.to_numpy(b))
        elif hasattr(value, "shape"):
            np.testing.assert_array_equal(_backend.to_numpy(value), _backend.to_numpy(other))
        else:
            assert value == other, key


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow being tested
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_divergence_raises_and_keeps_an_unfitted_estimator_unfitted(backend, kind):
    X, y = _blobs3()
    Est = MLPClassifier if kind == "classifier" else MLPRegressor
    target = y if kind == "classifier" else X[:, 0] * 1e3
    est = _diverging(Est)
    with pytest.raises(ConvergenceError) as info:
        est.fit(backend.asarray(X * 1e3, "float64"), backend.asarray(target))
    assert isinstance(info.value, ArithmeticError)
    assert "learning_rate_init" in str(info.value)  # says what to do
    assert info.value.params is not None  # the last finite weights
    for p in info.value.params:
        for a in p:
            assert np.isfinite(_backend.to_numpy(a)).all()
    assert not hasattr(est, "coefs_") and not hasattr(est, "n_features_in_")
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_divergence_keeps_the_previous_fit(kind):
    X, y = _blobs3()
    Est = MLPClassifier if kind == "classifier" else MLPRegressor
    target = y if kind == "classifier" else X[:, 0]
    est = Est(hidden_layer_sizes=(5,), solver="sgd", max_iter=5, random_state=0).fit(X, target)
    before, pred = _fitted_state(est), est.predict(X)
    est.set_params(**_DIVERGE)
    with pytest.raises(ConvergenceError):
        est.fit(X * 1e3, target * (1 if kind == "classifier" else 1e3))
    _assert_same_state(before, _fitted_state(est))
    np.testing.assert_array_equal(est.predict(X), pred)
    # warm_start divergence, too
    est.set_params(warm_start=True)
    with pytest.raises(ConvergenceError):
        est.fit(X * 1e3, target * (1 if kind == "classifier" else 1e3))
    _assert_same_state(before, _fitted_state(est))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_failed_fit_leaves_no_private_state_behind():
    """Not even private attributes: the failed fit leaves ``__dict__`` exactly as it was."""
    X, y = _blobs3()
    est = _diverging(MLPClassifier)
    before = dict(vars(est))
    with pytest.raises(ConvergenceError):
        est.fit(X * 1e3, y)
    assert vars(est) == before


# ====================================================================== scikit-learn compatibility

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
    [Perceptron(), MLPClassifier(), MLPRegressor()],
    expected_failed_checks=_expected_failures,
    xfail_strict=True,
)


@_CHECKS
def test_sklearn_check_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", backendnn.ConvergenceWarning)
        check(estimator)


def test_clone_pipeline_gridsearch_pickle():
    X, y = _blobs3()
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
        np.testing.assert_array_equal(again.predict(X), est.predict(X))
    assert repr(MLPClassifier(alpha=0.5)) == "MLPClassifier(alpha=0.5)"


def test_pickle_round_trip_on_backend(backend):
    X, y = _blobs3()
    Xb = backend.asarray(X, "float64")
    clf = MLPClassifier((5,), max_iter=10, random_state=0).fit(Xb, backend.asarray(y, "int64"))
    clf.predict(Xb)  # fills the cache, which pickling must drop
    again = pickle.loads(pickle.dumps(clf))
    assert "_cache" not in vars(again) or not vars(again)["_cache"]
    np.testing.assert_array_equal(
        _backend.to_numpy(again.predict(Xb)), _backend.to_numpy(clf.predict(Xb))
    )


def test_set_params_validation():
    X, y = _blobs3()
    with pytest.raises(ValueError, match="invalid parameter"):
        MLPClassifier().set_params(nonsense=1)
    for bad in (
        dict(solver="newton"),
        dict(alpha=-1.0),
        dict(hidden_layer_sizes=(0,)),
        dict(batch_size=0),
        dict(learning_rate="fast"),
        dict(momentum=2.0),
    ):
        with pytest.raises(ValueError):
            MLPClassifier(max_iter=1, **bad).fit(X, y)
    assert math.isclose(MLPClassifier().get_params()["alpha"], 1e-4)
