"""Layers given operands of two dtypes promote them as the standard does, on every backend.

A float32 input with float64 weights (or the reverse) gives float64 outputs and
gradients, ``result_type(x, W)``, as NumPy's and JAX's products do: torch's ``@``, its
native convolution and its max-pool backward refuse mixed dtypes, so each layer casts its
operands first. The references are NumPy float64 computations written here (einsum over
sliding windows), never backendnn code; the float32 operands are exactly representable in
float64, so the results agree to float64 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from backendnn.layers import AvgPool2d, Conv2d, Dense, GatedDense, MaxPool2d
from tests.conftest import assert_close

# (x dtype, weight dtype): each side promotes the other
DTYPES = [("float32", "float64"), ("float64", "float32")]
TOL = dict(rtol=1e-12, atol=1e-12)


def _windows(x, kernel, stride, padding=(0, 0)):
    """The (N, C, H', W', kh, kw) windows of zero-padded ``x``, and the padded shape."""
    (ph, pw), (sh, sw) = padding, stride
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return sliding_window_view(padded, kernel, axis=(2, 3))[:, :, ::sh, ::sw], padded.shape


def _scatter_windows(dwin, padded_shape, stride, padding):
    """The adjoint of :func:`_windows`: window entries added back onto their pixels."""
    (ph, pw), (sh, sw) = padding, stride
    _, _, oh, ow, kh, kw = dwin.shape
    out = np.zeros(padded_shape)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += dwin[..., i, j]
    return out[:, :, ph : padded_shape[2] - ph, pw : padded_shape[3] - pw]


def _cast(backend, arrays, dtype):
    return tuple(backend.asarray(a, dtype) for a in arrays)


@pytest.mark.parametrize(("x_dtype", "w_dtype"), DTYPES)
def test_conv2d_promotes_mixed_dtypes(backend, x_dtype, w_dtype):
    rng = np.random.default_rng(0)
    layer = Conv2d(3, 4, 3, stride=2, padding=1)
    x = rng.normal(size=(2, 3, 7, 6)).astype(x_dtype)
    W = rng.normal(size=(4, 3, 3, 3)).astype(w_dtype)
    b = rng.normal(size=4).astype(w_dtype)
    (xb,), params = _cast(backend, [x], x_dtype), _cast(backend, [W, b], w_dtype)

    y, cache = layer.forward(params, xb)
    win, padded_shape = _windows(x.astype(np.float64), (3, 3), (2, 2), (1, 1))
    W64 = W.astype(np.float64)
    expected = np.einsum("nchwij,ocij->nohw", win, W64) + b.astype(np.float64)[:, None, None]
    assert_close(y, expected, backend=backend, dtype="float64", **TOL)

    dy = rng.normal(size=expected.shape)
    dx, (dW, db) = layer.backward(params, cache, backend.asarray(dy, "float64"))
    dwin = np.einsum("nohw,ocij->nchwij", dy, W64)
    assert_close(dx, _scatter_windows(dwin, padded_shape, (2, 2), (1, 1)), backend=backend,
                 dtype="float64", **TOL)  # fmt: skip
    assert_close(dW, np.einsum("nchwij,nohw->ocij", win, dy), backend=backend, dtype="float64",
                 **TOL)  # fmt: skip
    assert_close(db, dy.sum(axis=(0, 2, 3)), backend=backend, dtype="float64", **TOL)


@pytest.mark.parametrize(("x_dtype", "w_dtype"), DTYPES)
@pytest.mark.parametrize("gated", [False, True], ids=["Dense", "GatedDense"])
def test_dense_layers_promote_mixed_dtypes(backend, x_dtype, w_dtype, gated):
    rng = np.random.default_rng(1)
    layer = GatedDense(3, 2, "glu") if gated else Dense(3, 4)
    x = rng.normal(size=(5, 3)).astype(x_dtype)
    W = rng.normal(size=(3, 4)).astype(w_dtype)
    c = rng.normal(size=4).astype(w_dtype)
    (xb,), params = _cast(backend, [x], x_dtype), _cast(backend, [W, c], w_dtype)

    y, cache = layer.forward(params, xb)
    x64 = x.astype(np.float64)
    p = x64 @ W.astype(np.float64) + c.astype(np.float64)
    if gated:  # GLU: y = sigmoid(a) * b with [a, b] = p
        s = 1.0 / (1.0 + np.exp(-p[:, :2]))
        expected = s * p[:, 2:]
    else:
        expected = p
    assert_close(y, expected, backend=backend, dtype="float64", **TOL)

    dy = rng.normal(size=expected.shape)
    dx, (dW, dc) = layer.backward(params, cache, backend.asarray(dy, "float64"))
    dp = np.concatenate([dy * s * (1 - s) * p[:, 2:], dy * s], axis=1) if gated else dy
    assert_close(dx, dp @ W.astype(np.float64).T, backend=backend, dtype="float64", **TOL)
    assert_close(dW, x64.T @ dp, backend=backend, dtype="float64", **TOL)
    assert_close(dc, dp.sum(axis=0), backend=backend, dtype="float64", **TOL)


@pytest.mark.parametrize("pool", [MaxPool2d(2), MaxPool2d(3, stride=2), AvgPool2d(2)], ids=repr)
def test_pools_take_a_gradient_of_another_dtype(backend, pool):
    """A float32 pool input with a float64 gradient (a float64 layer above it): dx is
    float64, dy's dtype, as the portable path's (torch's own max-pool backward refuses)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 7, 6)).astype(np.float32)
    y, cache = pool.forward((), backend.asarray(x, "float32"))
    win, shape = _windows(x.astype(np.float64), pool.kernel_size, pool.stride)
    flat = win.reshape(win.shape[:4] + (-1,))
    dy = rng.normal(size=tuple(y.shape))
    dx, _ = pool.backward((), cache, backend.asarray(dy, "float64"))
    if isinstance(pool, MaxPool2d):  # dy goes to each window's (first) maximum
        assert_close(y, flat.max(axis=-1), backend=backend, dtype="float32", rtol=0)
        picked = np.arange(flat.shape[-1]) == flat.argmax(axis=-1)[..., None]
        dwin = (picked * dy[..., None]).reshape(win.shape)
    else:  # spread evenly over the window
        dwin = np.broadcast_to((dy / win[0, 0, 0, 0].size)[..., None, None], win.shape)
    expected = _scatter_windows(dwin, shape, pool.stride, (0, 0))
    assert_close(dx, expected, backend=backend, dtype="float64", **TOL)
