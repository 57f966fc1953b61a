"""Dropout (``backendnn.layers.dropout``) on every backend: the mask's fraction, the same
mask on every library for one key, backward with the forward's mask, inference as the
identity, p = 0 and p = 1; gradients through a network with a fixed mask against torch
autograd given that mask, and central differences through BatchNorm1d and Dropout.

The references are NumPy (the mask rule) and torch autograd: never backendnn code.
"""

from __future__ import annotations

import numpy as np
import pytest

from backendnn import Network, _backend, _random, check_gradients
from backendnn.layers import Activation, BatchNorm1d, Dense, Dropout
from backendnn.layers.base import Context
from tests._helpers import optional_import
from tests.conftest import assert_close

torch = optional_import("torch")


def _key(backend, seed=7, step=3):
    return _random.new_key(seed, step, backend.xp, backend.device)


def _train(backend, layer, x, key):
    return layer.forward((), backend.asarray(x), Context(training=True, key=key))


def test_mask_fraction_and_scale(backend):
    """About p of 20,000 values are zeroed; the others are x / (1 - p)."""
    p = 0.3
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=(200, 100))
    y, _ = _train(backend, Dropout(p), x, _key(backend))
    y = _backend.to_numpy(y)
    dropped = y == 0
    assert abs(dropped.mean() - p) < 0.02
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - p), rtol=1e-15)


def test_the_mask_is_the_same_on_every_library(backend):
    """One key gives the mask of NumPy run on that key, bit for bit, in float32 and
    float64; another step gives another mask."""
    x = np.ones((6, 5, 4))
    y_np, _ = Dropout(0.4).forward((), x, Context(True, key=_random.new_key(7, 3, np)))
    for dtype in ("float32", "float64"):
        y, _ = Dropout(0.4).forward(
            (), backend.asarray(x, dtype=dtype), Context(True, key=_key(backend))
        )
        assert_close(y, y_np, backend=backend, dtype=dtype, rtol=1e-7)
    other, _ = _train(backend, Dropout(0.4), x, _key(backend, step=4))
    assert not np.array_equal(_backend.to_numpy(other), y_np)


def test_backward_uses_the_forward_mask(backend):
    rng = np.random.default_rng(1)
    x, dy = rng.uniform(1.0, 2.0, size=(8, 6)), rng.standard_normal((8, 6))
    layer = Dropout(0.25)
    y, cache = _train(backend, layer, x, _key(backend))
    dx, grads = layer.backward((), cache, backend.asarray(dy))
    assert grads == ()
    assert_close(dx, dy * _backend.to_numpy(y) / x, backend=backend, rtol=1e-14)
    assert layer.backward((), cache, backend.asarray(dy), need_dx=False)[0] is None


def test_inference_is_the_identity(backend):
    x = np.random.default_rng(2).standard_normal((3, 4))
    layer = Dropout(0.9)
    for ctx in (Context(), Context(training=False, key=_key(backend))):
        y, cache = layer.forward((), backend.asarray(x), ctx)
        assert_close(y, x, backend=backend)
        assert_close(layer.backward((), cache, backend.asarray(x))[0], x, backend=backend)


def test_p_zero_keeps_everything_and_p_one_drops_everything(backend):
    x = np.random.default_rng(3).standard_normal((4, 5))
    y, cache = _train(backend, Dropout(0.0), x, _key(backend))
    assert_close(y, x, backend=backend)
    y, cache = _train(backend, Dropout(1.0), x, _key(backend))
    assert_close(y, np.zeros_like(x), backend=backend)  # zeros, no NaN from 1 / (1 - p)
    dx, _ = Dropout(1.0).backward((), cache, backend.asarray(x))
    assert_close(dx, np.zeros_like(x), backend=backend)


def test_training_needs_a_key(backend):
    with pytest.raises(ValueError, match="random key"):
        Dropout(0.5).forward((), backend.asarray(np.ones((2, 2))), Context(training=True))


def test_declarations_and_arguments():
    layer = Dropout(0.2)
    assert layer.random and layer.uses_mode
    assert layer.parameters() == () and layer.buffers() == ()
    assert layer.output_shape((3, 4, 5)) == (3, 4, 5)
    assert layer.config() == {"p": 0.2} and layer == Dropout(p=0.2) and layer != Dropout()
    assert hash(layer) == hash(Dropout(0.2)) and repr(Dropout()) == "Dropout(p=0.5)"
    assert Dropout(1).p == 1.0
    for bad in (-0.1, 1.5, float("nan"), "0.5", True, None):
        with pytest.raises(ValueError, match="p must be"):
            Dropout(bad)


def test_network_gradient_with_a_fixed_mask_equals_torch(backend):
    """Dense -> tanh -> Dropout -> Dense: the gradients of every parameter equal torch
    autograd's with the same mask given explicitly (layer 2's mask, from
    ``fold_in(key, 2)``)."""
    if torch is None:
        pytest.skip("torch is not installed (the reference)")
    p = 0.4
    net = Network([Dense(4, 6), Activation("tanh"), Dropout(p), Dense(6, 2)])
    params = net.init(seed=0, xp=np, dtype=np.float64)
    rng = np.random.default_rng(4)
    X, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    key = _random.new_key(11, 2, np)
    mask = _random.uniform(_random.fold_in(key, 2), (5, 6), np.float64) >= p
    P = [tuple(backend.asarray(a) for a in layer) for layer in params]
    h, caches = net.forward_train(P, backend.asarray(X), key=_key(backend, 11, 2))
    grads = net.backward(P, caches, backend.asarray(dout))

    (W1, b1), _, _, (W2, b2) = [[torch.tensor(a, requires_grad=True) for a in p] for p in params]
    hidden = torch.tanh(torch.from_numpy(X) @ W1 + b1) * torch.from_numpy(mask) / (1 - p)
    out = hidden @ W2 + b2
    (out * torch.from_numpy(dout)).sum().backward()
    assert_close(h, out.detach().numpy(), backend=backend, rtol=1e-12, atol=1e-14)
    for g, t in zip((*grads[0], *grads[3]), (W1, b1, W2, b2)):
        assert_close(g, t.grad.numpy(), backend=backend, rtol=1e-10, atol=1e-12)


def test_check_gradients_through_batch_norm_and_dropout(backend):
    """Central differences of the training loss (batch statistics, a fixed dropout mask)
    agree with backpropagation to 1e-6 in float64. (The first Dense has no bias: batch
    norm cancels it, its gradient is 0 and the relative error of rounding noise.)"""
    layers = [Dense(3, 4, bias=False), BatchNorm1d(4), Activation("tanh"), Dropout(0.3)]
    net = Network([*layers, Dense(4, 2)])
    f64 = backend.dtype("float64")
    params = net.init(seed=0, xp=backend.xp, device=backend.device, dtype=f64)
    state = net.init_state(xp=backend.xp, device=backend.device, dtype=f64)
    rng = np.random.default_rng(5)
    X = backend.asarray(rng.standard_normal((6, 3)))
    y = backend.asarray(rng.standard_normal((6, 2)))
    errors = check_gradients(net, params, X, y, state=state, key=_key(backend), alpha=1e-2)
    assert set(errors) == set(net.param_names())
    assert max(errors.values()) < 1e-6, errors
