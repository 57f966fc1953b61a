"""Array libraries and devices: arrays in, the same library's arrays out, on the input's
device (weights, labels, probabilities), and a model fitted on one library predicting on
NumPy input; targets of another library than X's or arrays on two devices are refused with
the fix (the README's "Choosing a backend" snippet: ``tests/test_readme.py``).

Moving fitted weights between libraries is in ``tests/test_cache.py``, the ``backend=``
parameter in ``tests/test_sklearn_parity.py``, labels on the host in ``tests/test_targets.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_regression

import backendnn as bn
from backendnn import MLPClassifier, MLPRegressor, _backend, losses
from tests._helpers import ESTIMATORS, TARGETS, X_OK, Y_OK_REG, assert_on, binary, blobs3, each_kind
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_arrays_in_same_arrays_out(backend, n_classes):
    X, y = binary() if n_classes == 2 else blobs3()
    Xb, yb = backend.asarray(X, "float64"), backend.asarray(y, "int64")
    clf = MLPClassifier((6,), max_iter=20, random_state=0).fit(Xb, yb)
    for a in clf.coefs_ + clf.intercepts_:
        assert_on(a, backend)
    pred = clf.predict(Xb)
    assert_on(pred, backend)
    assert pred.dtype == backend.dtype("int64") and tuple(pred.shape) == (X.shape[0],)
    proba = clf.predict_proba(Xb)
    assert_on(proba, backend)
    assert proba.dtype == backend.dtype("float64")
    assert tuple(proba.shape) == (X.shape[0], n_classes)
    log_proba = clf.predict_log_proba(Xb)
    assert_on(log_proba, backend)
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
    assert_on(pred, backend)
    assert pred.dtype == backend.dtype("float64") and tuple(pred.shape) == (60,)
    assert_close(pred, reg.predict(X), backend=backend, rtol=1e-12, atol=1e-14)
    Y2 = np.stack([y, -y], axis=1)
    reg2 = MLPRegressor(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(Xb,
            backend.asarray(Y2, "float64"))
    assert tuple(reg2.predict(Xb).shape) == (60, 2) and reg2.n_outputs_ == 2


@each_kind
def test_two_libraries_in_one_call(backend, kind):
    """Targets on the host go with X anywhere; a target *array* of another library than
    X's is refused with the call that moves it."""
    if backend.name == "numpy":
        pytest.skip("needs a second library")
    ESTIMATORS[kind]().fit(backend.asarray(X_OK), TARGETS[kind])  # host y: fine
    with pytest.raises(TypeError, match=r"two libraries.*to_backend\(y, 'numpy'"):
        ESTIMATORS[kind]().fit(X_OK, backend.asarray(TARGETS[kind]))


def test_two_devices_in_one_call():
    strict = pytest.importorskip("array_api_strict")
    a = strict.asarray(X_OK, device=strict.Device("CPU_DEVICE"))
    b = strict.asarray(Y_OK_REG, device=strict.Device("device1"))
    with pytest.raises(TypeError, match="two devices"):
        bn.MLPRegressor().fit(a, b)
    with pytest.raises(TypeError, match="two devices"):
        losses.squared_error(b, strict.asarray(Y_OK_REG, device=strict.Device("CPU_DEVICE")))
