"""X as ``fit`` and ``predict`` take it, on every backend that can represent it: 2-D or
NCHW images (the image shape remembered and checked at predict), Python lists; and refused,
with a ValueError or TypeError that names the problem: NaN or infinity (sparse too), no
samples or no features, other numbers of dimensions, samples or features, strings,
objects, complex numbers. (pandas frames, complex and sparse y and weights:
``tests/test_pandas_complex_sparse_inputs.py``; y: ``tests/test_targets.py``; dtypes:
``tests/test_dtypes.py``; two libraries or devices: ``tests/test_devices.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest

from backendnn import MLPClassifier, MLPRegressor, Perceptron, _backend
from tests._helpers import ESTIMATORS, TARGETS, X_OK, blobs3, digits_split, each_kind, fit_small
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

RNG = np.random.default_rng(0)  # shapes and dtypes are what these tests check, not values


# ---------------------------------------------------------------------------- accepted


def test_lists_are_accepted():
    X, y = blobs3()
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


def test_image_shape_is_remembered_and_checked(backend):
    X_train, X_test, y_train, _ = digits_split()
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


# ---------------------------------------------------------------------------- refused


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@each_kind
def test_non_finite_X(backend, kind, bad):
    X = X_OK.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        fit_small(backend, "regressor" if kind == "regressor" else kind, X)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@each_kind
def test_non_finite_sparse_X(kind, bad):
    sparse = pytest.importorskip("scipy.sparse")  # sparse input is accepted: test_sparse.py
    X = X_OK.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        ESTIMATORS[kind]().fit(sparse.csr_matrix(X), TARGETS[kind])


@each_kind
def test_empty_X(backend, kind):
    with pytest.raises(ValueError, match="0 sample"):
        fit_small(backend, kind, np.zeros((0, 3)), TARGETS[kind][:0])


@each_kind
def test_zero_features(backend, kind):
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        fit_small(backend, kind, np.zeros((12, 0)))


@pytest.mark.parametrize("shape", [(12,), (12, 3, 2)])
@each_kind
def test_wrong_ndim(backend, kind, shape):
    with pytest.raises(ValueError, match="must be 2-D"):
        fit_small(backend, kind, RNG.normal(size=shape))


@each_kind
def test_length_mismatch(backend, kind):
    with pytest.raises(ValueError, match="different numbers of samples"):
        fit_small(backend, kind, X_OK, TARGETS[kind][:-1])


@each_kind
def test_feature_count_at_predict(backend, kind):
    model = fit_small(backend, kind, X_OK)
    with pytest.raises(ValueError, match="4 features, but .* expecting 3"):
        model.predict(backend.asarray(RNG.normal(size=(2, 4))))


@each_kind
def test_image_shape_at_predict(backend, kind):
    images = RNG.normal(size=(12, 1, 2, 3))
    model = fit_small(backend, kind, images)
    assert model.n_features_in_ == 6
    with pytest.raises(ValueError, match="image shape"):
        model.predict(backend.asarray(RNG.normal(size=(2, 1, 3, 2))))


@each_kind
def test_strings_and_objects_in_X(kind):
    with pytest.raises((TypeError, ValueError), match="dtype|number|float"):
        ESTIMATORS[kind]().fit(np.array([["a", "b"]] * 6), TARGETS[kind][:6])
    X = X_OK.astype(object)
    X[0, 0] = {"not": "a number"}
    with pytest.raises(TypeError, match="number"):
        ESTIMATORS[kind]().fit(X, TARGETS[kind])


@each_kind
def test_complex_X(backend, kind):
    if backend.name == "array_api_strict" and backend.strictest:
        pytest.skip("covered by the non-strictest run")
    X = X_OK.astype(np.complex128)
    with pytest.raises(ValueError, match="Complex data not supported"):
        fit_small(backend, kind, X)
