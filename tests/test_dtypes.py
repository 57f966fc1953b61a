"""The precision an estimator computes in: float32 input in float32; float16, torch's
bfloat16, integer and boolean X converted to float32; ``dtype="float16"`` refused; a value
that overflows the cast named; float64 requested on JAX without 64-bit mode warns once; a
``partial_fit`` in another precision casts the optimiser's state with the weights.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import make_regression

import backendnn as bn
from backendnn import MLPClassifier, MLPRegressor, _backend
from tests._helpers import (
    ESTIMATORS,
    TARGETS,
    UNSHUFFLED_SGD,
    X30,
    X_OK,
    Y_OK_REG,
    blobs3,
    each_kind,
    fit_small,
)

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

RNG = np.random.default_rng(0)  # shapes and dtypes are what these tests check, not values
def test_float32_input_computes_in_float32(backend):
    X, y = blobs3()
    Xb = backend.asarray(X, "float32")
    clf = MLPClassifier((6,), max_iter=5, random_state=0).fit(Xb, backend.asarray(y, "int64"))
    assert clf.coefs_[0].dtype == backend.dtype("float32")
    assert clf.predict_proba(Xb).dtype == backend.dtype("float32")


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
@each_kind
def test_integer_and_bool_X_are_converted(backend, kind, dtype):
    X = (RNG.normal(size=(12, 3)) * 3).astype(dtype)
    model = fit_small(backend, kind, X)
    out = model.predict(backend.asarray(X))
    assert _backend.namespace_name(_backend.array_namespace(out)) == backend.name
    weights = model.coef_ if kind == "perceptron" else model.coefs_[0]
    assert weights.dtype == backend.xp.float32


@each_kind
def test_float16_is_computed_in_float32(kind):
    model = ESTIMATORS[kind]().fit(X_OK.astype(np.float16), TARGETS[kind])
    weights = model.coef_ if kind == "perceptron" else model.coefs_[0]
    assert weights.dtype == np.float32
    reference = ESTIMATORS[kind]().fit(X_OK.astype(np.float16).astype(np.float32), TARGETS[kind])
    # exact: after the cast both fits are one computation (the same float32 data and code)
    np.testing.assert_array_equal(model.predict(X_OK), reference.predict(X_OK))
    with pytest.raises(ValueError, match="dtype must be"):
        ESTIMATORS[kind](dtype="float16").fit(X_OK, TARGETS[kind])


def test_torch_bfloat16_is_computed_in_float32():
    torch = pytest.importorskip("torch")
    X = torch.tensor(X_OK, dtype=torch.bfloat16)
    model = bn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3).fit(X, torch.tensor(Y_OK_REG))
    assert model.coefs_[0].dtype == torch.float32


def test_overflow_on_cast_is_named(backend):
    Xb = backend.asarray(X30 * 1e300)
    with pytest.raises(ValueError, match="X is finite but overflows float32"):
        bn.MLPRegressor(hidden_layer_sizes=(3,), dtype="float32").fit(
            Xb, backend.asarray(X30[:, 0])
        )
    with pytest.raises(ValueError, match="y is finite but overflows float32"):
        bn.MLPRegressor(hidden_layer_sizes=(3,), dtype="float32").fit(
            backend.asarray(X30), backend.asarray(X30[:, 0] * 1e300)
        )
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        bn.MLPRegressor(hidden_layer_sizes=(3,)).fit(backend.asarray(X30 * np.inf),
                backend.asarray(X30[:, 0]))


def test_requested_float64_on_jax_without_x64_warns_once():
    pytest.importorskip("jax")
    code = (
        "import warnings, numpy as np, jax.numpy as jnp, backendnn as bn\n"
        "warnings.simplefilter('always')\n"
        "X = jnp.asarray(np.random.default_rng(0).normal(size=(20, 3)), dtype=jnp.float32)\n"
        "y = jnp.arange(20) % 2\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    m = bn.MLPClassifier((3,), max_iter=1, dtype='float64').fit(X, y)\n"
        "    bn.MLPClassifier((3,), max_iter=1, dtype='float64').fit(X, y)\n"
        "msgs = [str(x.message) for x in w if 'JAX_ENABLE_X64' in str(x.message)]\n"
        "print(len(msgs), m.coefs_[0].dtype)\n"
    )
    env = {**os.environ, "JAX_ENABLE_X64": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "float32"]


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_may_change_precision(backend, solver):
    """A partial_fit in float32 after one in float64 (and back) trains in the new precision:
    the optimiser's state (velocity, Adam moments) is cast with the weights."""
    if not _backend.has_64bit(backend.xp):
        pytest.skip("needs float64 (JAX_ENABLE_X64)")
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    reg = MLPRegressor(**dict(UNSHUFFLED_SGD, solver=solver))
    for dtype in ("float64", "float32", "float64"):
        reg.partial_fit(backend.asarray(X, dtype), backend.asarray(y / 100, dtype))
        assert all(str(a.dtype).endswith(dtype) for a in reg.coefs_ + reg.intercepts_)
        assert reg.predict(backend.asarray(X, dtype)).dtype == backend.asarray(X, dtype).dtype
    assert reg.t_ == 3 * X.shape[0] and np.all(np.isfinite(reg.loss_curve_))
