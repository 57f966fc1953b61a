"""``MLPClassifier`` and ``MLPRegressor``: what they learn (the digits as NCHW images to
>= 0.97 on every backend, XOR), consistent probabilities, GLU-gated hidden layers, and
activations given by name, as objects or as custom classes.

Elsewhere, by feature: scikit-learn's numbers and meanings ``tests/test_sklearn_parity.py``
and ``tests/test_sklearn_seed.py``, its protocol ``tests/test_sklearn_compat.py``; inputs
``tests/test_fit_inputs.py``, targets ``tests/test_targets.py``, precision
``tests/test_dtypes.py``, libraries and devices ``tests/test_devices.py``; early stopping,
warm starts and ``partial_fit``, callbacks, sample weights, failed fits, parameter checks
and model files each in the test file of that name.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

import backendnn
import backendnn as bn
from backendnn import MLPClassifier, MLPRegressor, _backend
from tests._helpers import X40, Y40, Cube, assert_on, binary, blobs3, digits_split, xor
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

# ---------------------------------------------------------------------------- what they learn


def test_digits_nchw_reaches_097_on_every_backend(backend):
    X_train, X_test, y_train, y_test = digits_split()
    assert X_train.shape[1:] == (1, 8, 8) and 0.0 <= X_train.min() and X_train.max() <= 1.0
    clf = MLPClassifier(hidden_layer_sizes=(64,), random_state=0)
    clf.fit(backend.asarray(X_train, "float32"), backend.asarray(y_train, "int64"))
    assert clf.n_features_in_ == 64 and clf.image_shape_ == (1, 8, 8)
    pred = clf.predict(backend.asarray(X_test, "float32"))
    assert_on(pred, backend)
    accuracy = float((_backend.to_numpy(pred) == y_test).mean())
    assert accuracy >= 0.97, accuracy
    # the same model on NumPy input: NumPy out, same labels
    pred_np = clf.predict(X_test.astype(np.float32))
    assert isinstance(pred_np, np.ndarray)
    np.testing.assert_array_equal(pred_np, _backend.to_numpy(pred))
    assert clf.score(X_test.astype(np.float32), y_test) == pytest.approx(accuracy)


def test_mlp_learns_xor():
    X, y = xor()
    clf = MLPClassifier((8,), activation="tanh", solver="lbfgs", random_state=1).fit(X, y)
    assert clf.score(X, y) == 1.0


def test_probabilities_are_consistent(backend):
    for X, y in (binary(), blobs3()):
        Xb = backend.asarray(X, "float64")
        clf = MLPClassifier((6,), max_iter=30, random_state=0)
        clf.fit(Xb, backend.asarray(y, "int64"))
        p = _backend.to_numpy(clf.predict_proba(Xb))
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
        assert (p >= 0).all() and (p <= 1).all()
        np.testing.assert_allclose(
            _backend.to_numpy(clf.predict_log_proba(Xb)), np.log(p), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_array_equal(_backend.to_numpy(clf.predict(Xb)), p.argmax(axis=1))


# ---------------------------------------------------------------------------- activations


@pytest.mark.parametrize("activation", ["glu", "reglu", "geglu", "swiglu"])
def test_glu_hidden_layers_have_doubled_fan_out(activation):
    X, y = blobs3()
    clf = MLPClassifier((6, 4), activation=activation, max_iter=20, random_state=0).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(5, 12), (6, 8), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(12,), (8,), (3,)]
    assert clf.n_layers_ == 4
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    reg = MLPRegressor(hidden_layer_sizes=(3,), activation=activation, max_iter=3,
            random_state=0).fit(X, X[:, 0])
    assert reg.coefs_[0].shape == (5, 6) and reg.coefs_[1].shape == (3, 1)


def test_activation_object_and_registry_names():
    X, y = blobs3()
    act = backendnn.activations.get("swish", beta=1.5)
    clf = MLPClassifier((5,), activation=act, max_iter=5, random_state=0).fit(X, y)
    assert clf.predict(X).shape == (90,)
    assert clone(clf).activation == act
    for name in ("gelu", "gelu_tanh", "silu", "softplus", "sigmoid"):
        MLPClassifier((3,), activation=name, max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="nope").fit(X, y)


def test_custom_activation_objects_train_everywhere(backend):
    """On a22ab53, MLPRegressor(activation=Cube()) raised "unknown activation 'cube'"."""
    Xb, Yb = backend.asarray(X40), backend.asarray(Y40)
    ours = bn.MLPRegressor(hidden_layer_sizes=(4,), activation=Cube(), solver="lbfgs",
            max_iter=5, random_state=0)
    ref = bn.MLPRegressor(hidden_layer_sizes=(4,), activation=Cube(), solver="lbfgs", max_iter=5,
            random_state=0)
    ours.fit(Xb, Yb)
    ref.fit(X40, Y40)
    assert_close(ours.predict(Xb), ref.predict(X40), backend=backend, dtype="float64", rtol=1e-8)
    clf = bn.MLPClassifier((4,), activation=Cube(), max_iter=3, random_state=0)
    clf.fit(Xb, backend.asarray((Y40 > 0).astype(np.int64)))
    assert clf.predict_proba(Xb).shape == (40, 2)
