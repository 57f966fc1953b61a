"""Convolution layers (``backendnn.layers.conv``) on every backend: ``Conv2d`` forward values
and hand-written gradients against torch autograd (float64, 1e-10), the native convolution
against the portable im2col path (torch and JAX, 1e-12), float32, ``check_gradients`` and
``jax.jit`` on a small CNN, argument checks and reprs.

The references are torch.nn.functional's conv2d with its gradients from autograd: never
backendnn code. Images stay small (the file runs on four backends on a 2-core CI machine).
Pooling layers are in ``tests/test_layers_pool.py``, Conv2d's initialisation in
``tests/test_init.py``, the image layouts of ``backendnn.tensors`` in ``tests/test_tensors.py``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import backendnn
from backendnn import _backend
from backendnn.layers import Conv2d
from backendnn.layers.conv import output_size
from tests._helpers import close_to_scale as _close
from tests._helpers import optional_import, small_cnn
from tests.conftest import assert_close

torch = optional_import("torch")

# (n, in, out, (H, W), kernel, stride, padding, bias): kernels 1, 3, 5 and a rectangle,
# strides 1 and 2 (and mixed), paddings 0, 1, 2 (and mixed), non-square images, and a
# kernel smaller than its stride (pixels that no window reaches)
CONV_CASES = [
    (2, 1, 2, (5, 6), 1, 1, 0, True),
    (2, 3, 2, (7, 6), 3, 1, 1, True),
    (2, 2, 3, (8, 7), 3, 2, 0, False),
    (1, 2, 4, (9, 8), 5, 2, 2, True),
    (2, 3, 2, (6, 7), (3, 2), (2, 1), (1, 2), True),
    (2, 2, 2, (5, 6), 1, 2, 1, True),
]


def _case_id(case):
    n, c, o, (h, w), k, s, p, bias = case
    return f"{c}to{o}-{h}x{w}-k{k}-s{s}-p{p}" + ("" if bias else "-nobias")


def _need_torch():
    if torch is None:
        pytest.skip("torch is not installed (the reference)")


# ---------------------------------------------------------------------------- references


@functools.cache
def _conv_data(case):
    n, c, o, (h, w), k, s, p, bias = case
    layer = Conv2d(c, o, k, stride=s, padding=p, bias=bias)
    rng = np.random.default_rng(sum(map(ord, _case_id(case))))
    params = tuple(rng.normal(size=shape) for shape in layer.param_shapes())
    x = rng.normal(size=(n, c, h, w))
    return layer, params, x


def _conv_dy(case):
    """dL/dy for the case: N(0, 1) draws of y's shape."""
    layer, _, x = _conv_data(case)
    oh, ow = output_size(x.shape[2:], layer.kernel_size, layer.stride, layer.padding)
    return np.random.default_rng(7).normal(size=(x.shape[0], layer.out_channels, oh, ow))


@functools.cache
def _conv_reference(case):
    """y, dy and (dx, dW[, db]) of sum(y * dy) from torch autograd."""
    _need_torch()
    layer, params, x = _conv_data(case)
    tx = torch.tensor(x, requires_grad=True)
    tp = [torch.tensor(a, requires_grad=True) for a in params]
    y = torch.nn.functional.conv2d(
        tx, tp[0], tp[1] if layer.bias else None, layer.stride, layer.padding
    )
    dy = _conv_dy(case)
    (y * torch.tensor(dy)).sum().backward()
    grads = (tx.grad.numpy(), *(a.grad.numpy() for a in tp))
    return y.detach().numpy(), dy, grads


# ---------------------------------------------------------------------------- gradients


def _run_conv(backend, case):
    layer, params, x = _conv_data(case)
    ps = tuple(backend.asarray(a, dtype="float64") for a in params)
    y, cache = layer.forward(ps, backend.asarray(x, dtype="float64"))
    _, dy, _ = _conv_reference(case)
    dx, grads = layer.backward(ps, cache, backend.asarray(dy, dtype="float64"))
    return y, dx, grads


@pytest.mark.parametrize("case", CONV_CASES, ids=_case_id)
def test_conv2d_matches_torch_autograd(backend, case):
    y, dx, grads = _run_conv(backend, case)
    ref_y, _, (ref_dx, *ref_grads) = _conv_reference(case)
    _close(y, ref_y, backend)
    _close(dx, ref_dx, backend)
    assert len(grads) == len(ref_grads) == 1 + case[-1]  # (dW, db) or (dW,)
    for g, r in zip(grads, ref_grads):
        _close(g, r, backend)


def test_conv2d_first_layer_skips_dx(backend):
    layer, params, x = _conv_data(CONV_CASES[1])
    ps = tuple(backend.asarray(a, dtype="float64") for a in params)
    y, cache = layer.forward(ps, backend.asarray(x, dtype="float64"))
    dx, grads = layer.backward(ps, cache, y, need_dx=False)
    assert dx is None and len(grads) == 2


# ---------------------------------------------------------------------------- native path


def _portable(monkeypatch):
    """Inside the test: no native convolution (the im2col path everywhere)."""
    for name in ("native_conv2d", "native_conv2d_input_grad", "native_conv2d_weight_grad"):
        monkeypatch.setattr(_backend, name, lambda *args: None)


@pytest.mark.parametrize("case", [CONV_CASES[i] for i in (1, 3, 4)], ids=_case_id)
def test_native_convolution_equals_portable_path(backend, case, monkeypatch):
    if backend.name not in ("torch", "jax"):
        layer, params, x = _conv_data(case)
        xb = backend.asarray(x, dtype="float64")
        assert _backend.native_conv2d(xb, xb, layer.stride, layer.padding) is None
        pytest.skip(f"{backend.name} has no native convolution")
    layer, params, x = _conv_data(case)
    xb = backend.asarray(x, dtype="float64")
    ps = tuple(backend.asarray(a, dtype="float64") for a in params)
    dy = backend.asarray(_conv_dy(case), dtype="float64")
    args = (layer.stride, layer.padding)
    native = [_backend.native_conv2d(xb, ps[0], *args)]
    native.append(_backend.native_conv2d_input_grad(dy, ps[0], xb.shape, *args))
    native.append(_backend.native_conv2d_weight_grad(xb, dy, ps[0].shape, *args))
    assert all(a is not None for a in native)
    y, cache = layer.forward(ps, xb)
    assert cache[1] is None  # the native path keeps no patches
    dx, grads = layer.backward(ps, cache, dy)
    _portable(monkeypatch)
    y_p, cache_p = layer.forward(ps, xb)
    assert cache_p[1] is not None
    dx_p, grads_p = layer.backward(ps, cache_p, dy)
    for a, b in [(y, y_p), (dx, dx_p), *zip(grads, grads_p)]:
        _close(a, _backend.to_numpy(b), backend, tol=1e-12)
    expected_y = _backend.to_numpy(y_p)
    if layer.bias:
        expected_y = expected_y - params[1][:, None, None]
    _close(native[0], expected_y, backend, tol=1e-12)
    _close(native[1], _backend.to_numpy(dx_p), backend, tol=1e-12)
    _close(native[2], _backend.to_numpy(grads_p[0]), backend, tol=1e-12)


def test_float32_stays_float32(backend):
    layer, params, x = _conv_data(CONV_CASES[1])
    ps = tuple(backend.asarray(a, dtype="float32") for a in params)
    y, cache = layer.forward(ps, backend.asarray(x, dtype="float32"))
    dx, (dW, db) = layer.backward(ps, cache, y)
    for a in (y, dx, dW, db):
        assert a.dtype == backend.xp.float32
    ref_y = _conv_reference(CONV_CASES[1])[0]
    assert_close(y, ref_y, backend=backend, dtype="float32", rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- in a network


def _cnn_data(backend):
    rng = np.random.default_rng(5)
    X = backend.asarray(rng.normal(size=(3, 1, 8, 8)), dtype="float64")
    return X, backend.asarray(np.array([0, 2, 1]))


def test_check_gradients_on_a_small_cnn(backend):
    net = small_cnn()
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X, y = _cnn_data(backend)
    # every entry of the convolution, 18 of the dense weights: two losses each (eager JAX)
    errors = backendnn.check_gradients(
        net, params, X, y, "softmax_cross_entropy", alpha=0.1, max_checks=18
    )
    assert list(errors) == net.param_names()
    assert max(errors.values()) < 1e-6, errors


def test_small_cnn_under_jit_equals_eager(backend):
    if backend.name != "jax":
        pytest.skip("jax.jit applies to the jax backend only")
    import jax

    net = small_cnn()
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X, y = _cnn_data(backend)

    def loss(p, X, y):
        return net.loss_and_grad(p, X, y, "softmax_cross_entropy")

    def compiled():  # a new function each time: jax caches traces by function
        return jax.jit(lambda p, X, y: loss(p, X, y))

    with pytest.MonkeyPatch.context() as mp:
        _portable(mp)
        reference = loss(params, X, y)  # the im2col path, eager
        results = [compiled()(params, X, y)]  # ... and compiled
    results += [loss(params, X, y), compiled()(params, X, y)]  # native: eager, compiled
    for value, grads in results:
        _close(value, _backend.to_numpy(reference[0]), backend, tol=1e-12)
        for g, r in zip(_flat(grads), _flat(reference[1])):
            _close(g, _backend.to_numpy(r), backend, tol=1e-12)


def _flat(grads):
    return [a for p in grads for a in p]


# ---------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv2d(0, 2, 3),
        lambda: Conv2d(1, 2.0, 3),
        lambda: Conv2d(1, 2, 0),
        lambda: Conv2d(1, 2, (3,)),
        lambda: Conv2d(1, 2, True),
        lambda: Conv2d(1, 2, 3, stride=1.5),
        lambda: Conv2d(1, 2, 3, padding=-1),
    ],
)
def test_bad_constructor_arguments_raise(make):
    with pytest.raises(ValueError, match="must be a"):
        make()


def test_wrong_input_shapes_raise_naming_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(n_samples, 3, height, width\)"):
        Conv2d(3, 2, 3).forward((np.ones((2, 3, 3, 3)),), np.ones((4, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"\(n_samples, 3, height, width\).*5, 5, 3\)"):
        Conv2d(3, 2, 3).forward((np.ones((2, 3, 3, 3)),), np.ones((5, 5, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2d(1, 1, 5, padding=1).forward((np.ones((1, 1, 5, 5)),), np.ones((1, 1, 2, 8)))


def test_reprs():
    assert repr(Conv2d(1, 16, 3, padding=1)) == "Conv2d(1, 16, kernel_size=3, padding=1)"
    assert (
        repr(Conv2d(2, 4, (3, 1), stride=(2, 1), bias=False))
        == "Conv2d(2, 4, kernel_size=(3, 1), stride=(2, 1), bias=False)"
    )
