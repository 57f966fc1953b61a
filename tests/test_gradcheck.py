"""``backendnn.check_gradients`` (``backendnn.gradcheck``), on every backend: small errors
for a correct network, large ones for a planted bug in a backward pass (the weight or the
bias gradient, float64 and float32), ``max_checks``; and nothing silently wrong (issue 15):
a NaN gradient is reported, not passed; NaN inputs and meaningless arguments are refused
by name.

The network's own gradients against central differences and autograd are in
``tests/test_network.py``; a small CNN's through ``check_gradients`` in
``tests/test_layers_conv.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import backendnn
import backendnn as bn
from backendnn import Network, _backend, activations
from backendnn.layers import Activation, Dense
from tests._helpers import INIT_SEED, N_IN, make_data

ALPHAS = (0.0, 0.3)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 3))

# ---------------------------------------------------------------------------- planted bugs


class _ScaledWeightGradDense(Dense):
    """A planted bug: the weight gradient is 1.1 times too large."""

    def backward(self, params, cache, dz, need_dx=True):
        dx, (dW, db) = super().backward(params, cache, dz, need_dx)
        return dx, (1.1 * dW, db)


class _NoBiasGradDense(Dense):
    """A planted bug: the bias gradient is dropped (zeros)."""

    def backward(self, params, cache, dz, need_dx=True):
        dx, (dW, db) = super().backward(params, cache, dz, need_dx)
        return dx, (dW, 0.0 * db)


def _layered_net(second_dense=Dense) -> Network:
    return Network(
        [Dense(N_IN, 4), Activation("tanh"), second_dense(4, 3), Activation("tanh"), Dense(3, 3)]
    )


def _gradcheck_data(backend, dtype="float64"):
    X, y = make_data("squared_error")
    return backend.asarray(X, dtype=dtype), backend.asarray(y, dtype=dtype)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_check_gradients_small_for_a_correct_network(backend, alpha):
    net = _layered_net()
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X, y = _gradcheck_data(backend)
    errors = backendnn.check_gradients(net, params, X, y, "squared_error", alpha=alpha)
    assert list(errors) == net.param_names()
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(
    "bad, flagged", [(_ScaledWeightGradDense, "layers[2].W"), (_NoBiasGradDense, "layers[2].b")]
)
def test_check_gradients_flags_a_broken_backward(backend, bad, flagged):
    net = _layered_net(bad)
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X, y = _gradcheck_data(backend)
    errors = backendnn.check_gradients(net, params, X, y, "squared_error", alpha=0.3)
    assert errors[flagged] > 1e-2, errors
    assert max(v for k, v in errors.items() if k != flagged) < 1e-6, errors


def test_check_gradients_float32_default_eps(backend):
    net = _layered_net()
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float32)
    X, y = _gradcheck_data(backend, "float32")
    errors = backendnn.check_gradients(net, params, X, y, "squared_error", alpha=0.3)
    assert max(errors.values()) < 1e-2, errors
    bad = _layered_net(_ScaledWeightGradDense)
    errors = backendnn.check_gradients(bad, params, X, y, "squared_error", alpha=0.3)
    assert errors["layers[2].W"] > 2e-2, errors


def test_check_gradients_max_checks(backend):
    net = _layered_net(_ScaledWeightGradDense)
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X, y = _gradcheck_data(backend)
    errors = backendnn.check_gradients(net, params, X, y, max_checks=3, seed=1)
    assert errors["layers[2].W"] > 1e-2
    assert errors["layers[0].W"] < 1e-6


# --------------------------------------------------------------------------- nothing silently wrong


class NaNDerivative(activations.Activation):
    """tanh with a backward pass that produces NaN: the checker must not pass it."""

    name = "nan_derivative"

    def forward(self, z):
        return _backend.array_namespace(z).tanh(z)

    def derivative(self, z, y=None):
        return z * float("nan")


def _net_and_data(backend, activation="tanh"):
    net = bn.Network.mlp(3, (4,), 2, activation)
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    return net, params, backend.asarray(X[:6]), backend.asarray(RNG.normal(size=(6, 2)))


def test_gradient_with_nan_is_reported_not_passed(backend):
    """On a22ab53 this reported layers[0].W: 9.1e-11 (max() dropped the NaN)."""
    net, params, Xb, Yb = _net_and_data(backend, NaNDerivative())
    errors = bn.check_gradients(net, params, Xb, Yb)
    assert np.isnan(errors["layers[0].W"]) and not errors["layers[0].W"] < 1e-4
    assert errors["layers[2].W"] < 1e-6  # the output layer's gradient is fine


def test_nan_in_X_is_refused(backend):
    net, params, _, Yb = _net_and_data(backend)
    bad = X[:6].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="loss at params is nan"):
        bn.check_gradients(net, params, backend.asarray(bad), Yb)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"eps": float("nan")}, "eps"), ({"eps": 0.0}, "eps"), ({"eps": -1e-6}, "eps"),
     ({"max_checks": 0}, "max_checks"), ({"max_checks": 1.5}, "max_checks"),
     ({"alpha": float("nan")}, "alpha")],
)  # fmt: skip
def test_meaningless_arguments_are_refused_by_name(backend, kwargs, name):
    net, params, Xb, Yb = _net_and_data(backend)
    with pytest.raises(ValueError, match=f"^{name} must be"):
        bn.check_gradients(net, params, Xb, Yb, **kwargs)


def test_lists_are_refused():
    net = bn.Network.mlp(3, (2,), 1)
    params = net.init(0, xp=_backend.namespace("numpy"), dtype=np.float64)
    with pytest.raises(TypeError, match="X must be an array"):
        bn.check_gradients(net, params, X.tolist(), X[:, :1])
