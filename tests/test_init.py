"""``backendnn.init`` through ``Network.init``: each scheme draws what it says (Glorot
uniform, He normal, the notes' N(0, 0.01^2)) at each layer's fans, Conv2d's in PyTorch's
layout, Dense layers W then b; and the draws are bitwise the same on every backend (made on
the host by NumPy, then moved).

That the estimators draw scikit-learn's initial weights from the same ``random_state`` is
tested in ``tests/test_sklearn_seed.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backendnn import Network, _backend
from backendnn import init as bn_init
from backendnn.layers import Conv2d, Dense, Flatten
from tests._helpers import HIDDEN, INIT_SEED, N_IN, N_OUT, host_params, small_cnn
from tests.conftest import assert_close

# ---------------------------------------------------------------------------- the MLP's layers


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scheme", bn_init.names())
@pytest.mark.parametrize("act", ["relu", "swiglu"])
def test_init_is_bitwise_identical_across_backends(backend, act, scheme, dtype):
    net = Network.mlp(N_IN, HIDDEN, N_OUT, activation=act)
    expected = host_params(net, dtype=np.dtype(dtype), scheme=scheme)
    params = net.init(
        INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.dtype(dtype), scheme=scheme
    )
    assert len(params) == len(expected)
    for p, e, layer in zip(params, expected, net.layers):
        assert len(p) == len(e) == len(layer.param_shapes())
        for a, b, shape in zip(p, e, layer.param_shapes()):
            assert b.dtype == np.dtype(dtype) and b.shape == shape
            # exact: the same host draws, moved bit for bit (no arithmetic on the device)
            assert_close(a, b, backend=backend, dtype=dtype, rtol=0.0)
            np.testing.assert_array_equal(_backend.to_numpy(a), b, strict=True)


def test_init_schemes_draw_what_they_say():
    net = Network.mlp(40, (30,), 20)
    for scheme in bn_init.names():
        params = host_params(net, scheme=scheme)
        W, b = params[0]
        assert W.shape == (40, 30) and b.shape == (30,)
        if scheme == "he_normal":
            assert np.all(b == 0.0)
            assert 0.5 * math.sqrt(2 / 40) < W.std() < 1.5 * math.sqrt(2 / 40)
        elif scheme == "glorot_uniform":
            assert np.max(np.abs(W)) <= math.sqrt(6 / 70)
        elif scheme == "normal":
            assert 0.005 < W.std() < 0.015
    # the same seed twice, the same draws: exact (one computation repeated)
    a = host_params(net)
    b = host_params(net)
    for p, q in zip(a, b):
        for x, z in zip(p, q):
            np.testing.assert_array_equal(x, z)


# ---------------------------------------------------------------------------- convolutions


def test_conv_init_uses_the_fans_and_pytorch_layout():
    """W^T is drawn as a (C kh kw, O) matrix at the fans (C kh kw, O kh kw), then
    reshaped to (O, C, kh, kw); the Dense layer after it draws exactly as before."""
    net = Network([Conv2d(3, 4, 5), Flatten(), Dense(16, 2)])
    assert net.layers[0].fans() == (75, 100)
    params = net.init(0, xp=np, dtype=np.float64)
    (W, b), (), (W2, b2) = params
    assert W.shape == (4, 3, 5, 5) and b.shape == (4,)
    rng = np.random.default_rng(0)
    bound = math.sqrt(6 / (75 + 100))
    M = rng.uniform(-bound, bound, (75, 4))
    np.testing.assert_array_equal(W, M.T.reshape(4, 3, 5, 5))
    np.testing.assert_array_equal(b, rng.uniform(-bound, bound, 4))
    # Dense: (fan_in, fan_out) = W's shape, drawn as before this change
    bound = math.sqrt(6 / (16 + 2))
    np.testing.assert_array_equal(W2, rng.uniform(-bound, bound, (16, 2)))
    np.testing.assert_array_equal(b2, rng.uniform(-bound, bound, 2))
    assert 0.9 * math.sqrt(6 / 175) < np.max(np.abs(W)) <= math.sqrt(6 / 175)
    # He: std sqrt(2 / fan_in), b = 0; the notes' N(0, 0.01^2)
    net = Network([Conv2d(8, 16, 3)])
    W, b = net.init(0, xp=np, dtype=np.float64, scheme="he_normal")[0]
    assert 0.9 * math.sqrt(2 / 72) < W.std() < 1.1 * math.sqrt(2 / 72) and not np.any(b)
    W, b = net.init(0, xp=np, dtype=np.float64, scheme="normal")[0]
    assert W.shape == (16, 8, 3, 3) and 0.009 < W.std() < 0.011 and b.shape == (16,)


def test_dense_init_draws_are_unchanged():
    """Dense layers draw W then b at fans (n_in, n_out), as before Conv2d (and as
    scikit-learn's MLP: tests/test_sklearn_parity.py)."""
    net = Network.mlp(5, (4,), 3)
    params = net.init(3, xp=np, dtype=np.float64)
    rng = np.random.default_rng(3)
    for (W, b), (n_in, n_out) in zip((params[0], params[2]), ((5, 4), (4, 3))):
        bound = math.sqrt(6 / (n_in + n_out))
        np.testing.assert_array_equal(W, rng.uniform(-bound, bound, (n_in, n_out)))
        np.testing.assert_array_equal(b, rng.uniform(-bound, bound, n_out))


def test_conv_init_is_bitwise_identical_across_backends(backend):
    net = small_cnn()
    expected = net.init(0, xp=np, dtype=np.float32)
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float32)
    for p, e in zip(params, expected):
        for a, b in zip(p, e):
            # exact: drawn on the host by NumPy, moved bit for bit
            assert_close(a, b, backend=backend, dtype="float32", rtol=0.0)
