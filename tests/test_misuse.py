"""Nothing silently wrong (issue 15): an honest gradient checker, model files that cannot
change what a model is, hyper-parameters that survive a file, and errors that name the
problem. Each case runs on the ``backend`` fixture's backends where it involves arrays.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import backendnn as bn
from backendnn import activations

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 3))
Y = (X[:, 0] > 0).astype(np.int64)


def _fitted_state(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


# ---------------------------------------------------------------------- the gradient checker


# ---------------------------------------------------------------------- inputs and parameters


def test_overflow_on_cast_is_named(backend):
    Xb = backend.asarray(X * 1e300)
    with pytest.raises(ValueError, match="X is finite but overflows float32"):
        bn.MLPRegressor(hidden_layer_sizes=(3,), dtype="float32").fit(Xb, backend.asarray(X[:, 0]))
    with pytest.raises(ValueError, match="y is finite but overflows float32"):
        bn.MLPRegressor(hidden_layer_sizes=(3,), dtype="float32").fit(
            backend.asarray(X), backend.asarray(X[:, 0] * 1e300)
        )
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        bn.MLPRegressor(hidden_layer_sizes=(3,)).fit(backend.asarray(X * np.inf),
                backend.asarray(X[:, 0]))


def test_object_labels_with_nan_or_none():
    for missing in (np.nan, None):
        y = np.array([0, 1, missing] * 10, dtype=object)
        with pytest.raises(ValueError, match="missing labels"):
            bn.MLPClassifier((3,), max_iter=2).fit(X, y)


@pytest.mark.parametrize(
    ("param", "value"),
    [("hidden_layer_sizes", None), ("hidden_layer_sizes", 1e9), ("hidden_layer_sizes", "4"),
     ("max_iter", 1.5), ("max_iter", float("inf")), ("max_iter", 1e9), ("epsilon", 0.0),
     ("alpha", float("nan")), ("n_iter_no_change", 0), ("shuffle", "yes")],
)  # fmt: skip
def test_invalid_parameters_named_and_model_unchanged(backend, param, value):
    model = bn.MLPClassifier((3,), max_iter=2, random_state=0)
    model.fit(backend.asarray(X), backend.asarray(Y))
    before = _fitted_state(model)
    with pytest.raises(ValueError, match=f"^{param} must be"):
        model.set_params(**{param: value}).fit(backend.asarray(X), backend.asarray(Y))
    after = _fitted_state(model)
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] is before[key], key  # the very same objects: nothing committed


# ---------------------------------------------------------------------- model files


# ---------------------------------------------------------------------- hostile metadata values


# ---------------------------------------------------------------------- JAX without 64-bit


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


# ---------------------------------------------------------------------- review findings


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))


@pytest.mark.parametrize(
    ("params", "ok"),
    [({"hidden_layer_sizes": (h for h in (3,))}, False), ({"verbose": 1}, True),
     ({"verbose": -1}, False), ({"solver": np.str_("sgd")}, True),
     ({"dtype": "notfloat64"}, False)],
)  # fmt: skip
def test_parameter_kinds_as_scikit_learn_has_them(params, ok):
    model = bn.MLPClassifier((3,), max_iter=1).set_params(**params)
    if ok:
        model.fit(X, Y)
    else:
        with pytest.raises(ValueError, match=f"^{next(iter(params))} must be"):
            model.fit(X, Y)


