"""Convolution and pooling layers on every backend: forward values and hand-written
gradients against torch autograd (float64, 1e-10), the native convolution against the
portable im2col path (torch and JAX, 1e-12), max-pool ties, ``check_gradients`` on a small
CNN, ``Network.init``'s fans for Conv2d, argument checks, and the image layouts of
``backendnn.tensors``.

The references are torch.nn.functional's conv2d, max_pool2d, avg_pool2d and mean, with
their gradients from autograd: never backendnn code. Images stay small (the file runs on
four backends on a 2-core CI machine).
"""

from __future__ import annotations

import functools
import importlib
import math

import numpy as np
import pytest

import backendnn
from backendnn import Network, _backend, tensors
from backendnn.layers import (
    Activation,
    AvgPool2d,
    Conv2d,
    Dense,
    Flatten,
    GlobalAvgPool2d,
    MaxPool2d,
)
from backendnn.layers.conv import output_size
from tests.conftest import assert_close


def _optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


torch = _optional("torch")

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
POOL_CASES = [
    (MaxPool2d(2), (2, 3, 6, 7)),
    (MaxPool2d(3, stride=2), (2, 2, 7, 8)),
    (MaxPool2d((2, 3), stride=(1, 2)), (1, 2, 5, 7)),
    (AvgPool2d(2), (2, 3, 6, 7)),
    (AvgPool2d(3, stride=2), (2, 2, 7, 8)),
    (AvgPool2d((2, 3), stride=(1, 2)), (1, 2, 5, 7)),
    (GlobalAvgPool2d(), (2, 3, 5, 4)),
]
TOL = 1e-10


def _case_id(case):
    n, c, o, (h, w), k, s, p, bias = case
    return f"{c}to{o}-{h}x{w}-k{k}-s{s}-p{p}" + ("" if bias else "-nobias")


def _close(actual, expected, backend, tol=TOL):
    """Relative to the largest entry: sums of products cancel to ~0 in places."""
    expected = np.asarray(expected)
    atol = tol * float(np.max(np.abs(expected)))
    assert_close(actual, expected, backend=backend, dtype="float64", rtol=tol, atol=atol)


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


def _torch_pool(layer, x):
    F = torch.nn.functional
    if isinstance(layer, MaxPool2d):
        return F.max_pool2d(x, layer.kernel_size, layer.stride)
    if isinstance(layer, AvgPool2d):
        return F.avg_pool2d(x, layer.kernel_size, layer.stride)
    return x.mean(dim=(2, 3))


@functools.cache
def _pool_reference(index):
    _need_torch()
    layer, shape = POOL_CASES[index]
    x = np.random.default_rng(index).normal(size=shape)
    tx = torch.tensor(x, requires_grad=True)
    y = _torch_pool(layer, tx)
    dy = np.random.default_rng(100 + index).normal(size=tuple(y.shape))
    (y * torch.tensor(dy)).sum().backward()
    return x, y.detach().numpy(), dy, tx.grad.numpy()


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


@pytest.mark.parametrize("index", range(len(POOL_CASES)), ids=lambda i: repr(POOL_CASES[i][0]))
def test_pools_match_torch_autograd(backend, index):
    layer, _ = POOL_CASES[index]
    x, ref_y, dy, ref_dx = _pool_reference(index)
    y, cache = layer.forward((), backend.asarray(x, dtype="float64"))
    _close(y, ref_y, backend)
    dx, grads = layer.backward((), cache, backend.asarray(dy, dtype="float64"))
    assert grads == () and layer.param_shapes() == ()
    _close(dx, ref_dx, backend)


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


# ---------------------------------------------------------------------------- max-pool ties


def test_max_pool_ties_go_to_one_element(backend):
    """Every window sends its gradient to exactly one pixel: the first maximum in
    row-major order within the window."""
    x = np.array([[[[5.0, 5.0, 1.0, 2.0], [5.0, 1.0, 2.0, 2.0], [0.0, 0.0, 3.0, 1.0],
                    [0.0, 0.0, 3.0, 3.0]]]])  # fmt: skip
    layer = MaxPool2d(2)
    y, cache = layer.forward((), backend.asarray(x))
    assert_close(y, [[[[5.0, 2.0], [0.0, 3.0]]]], backend=backend, rtol=0.0)
    dx, _ = layer.backward((), cache, backend.asarray(np.array([[[[1.0, 2.0], [3.0, 4.0]]]])))
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 0, 0], expected[0, 0, 0, 3], expected[0, 0, 2, 0] = 1.0, 2.0, 3.0
    expected[0, 0, 2, 2] = 4.0
    assert_close(dx, expected, backend=backend, rtol=0.0)
    # overlapping windows of a constant image: each sends its 1 to its own top-left pixel
    layer = MaxPool2d(2, stride=1)
    y, cache = layer.forward((), backend.asarray(np.full((2, 3, 3, 4), 7.0)))
    dx, _ = layer.backward((), cache, backend.asarray(np.ones((2, 3, 2, 3))))
    expected = np.zeros((2, 3, 3, 4))
    expected[:, :, :2, :3] = 1.0
    assert_close(dx, expected, backend=backend, rtol=0.0)


# ---------------------------------------------------------------------------- in a network


def _small_cnn():
    return Network(
        [
            Conv2d(1, 2, 3, padding=1),
            Activation("relu"),
            MaxPool2d(2),
            Flatten(),
            Dense(2 * 4 * 4, 3),
        ]
    )


def _cnn_data(backend):
    rng = np.random.default_rng(5)
    X = backend.asarray(rng.normal(size=(3, 1, 8, 8)), dtype="float64")
    return X, backend.asarray(np.array([0, 2, 1]))


def test_check_gradients_on_a_small_cnn(backend):
    net = _small_cnn()
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

    net = _small_cnn()
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


# ---------------------------------------------------------------------------- initialisation


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
    net = _small_cnn()
    expected = net.init(0, xp=np, dtype=np.float32)
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float32)
    for p, e in zip(params, expected):
        for a, b in zip(p, e):
            assert_close(a, b, backend=backend, dtype="float32", rtol=0.0)


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
        lambda: MaxPool2d(0),
        lambda: MaxPool2d(2, stride=(1, 0)),
        lambda: AvgPool2d((2, 2, 2)),
    ],
)
def test_bad_constructor_arguments_raise(make):
    with pytest.raises(ValueError, match="must be a"):
        make()


def test_wrong_input_shapes_raise_naming_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(n_samples, 3, height, width\)"):
        Conv2d(3, 2, 3).forward((np.ones((2, 3, 3, 3)),), np.ones((4, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"\(n_samples, 3, height, width\).*\(5, 5, 3\)"):
        Conv2d(3, 2, 3).forward((np.ones((2, 3, 3, 3)),), np.ones((5, 5, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2d(1, 1, 5, padding=1).forward((np.ones((1, 1, 5, 5)),), np.ones((1, 1, 2, 8)))
    for layer in (MaxPool2d(2), AvgPool2d(2), GlobalAvgPool2d()):
        with pytest.raises(ValueError, match=r"\(n_samples, C, height, width\)"):
            layer.forward((), np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        MaxPool2d(3).forward((), np.ones((1, 1, 2, 4)))


def test_reprs():
    assert repr(Conv2d(1, 16, 3, padding=1)) == "Conv2d(1, 16, kernel_size=3, padding=1)"
    assert (
        repr(Conv2d(2, 4, (3, 1), stride=(2, 1), bias=False))
        == "Conv2d(2, 4, kernel_size=(3, 1), stride=(2, 1), bias=False)"
    )
    assert (
        repr(MaxPool2d(2)) == "MaxPool2d(2)" and repr(MaxPool2d(3, 2)) == "MaxPool2d(3, stride=2)"
    )
    assert repr(AvgPool2d((2, 3))) == "AvgPool2d((2, 3))"
    assert repr(GlobalAvgPool2d()) == "GlobalAvgPool2d()"


# ---------------------------------------------------------------------------- tensors


def test_layouts_round_trip(backend):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5))  # NCHW, H = 4 != W = 5
    xb = backend.asarray(x, dtype="float64")
    nhwc, nwhc = tensors.from_nchw(xb), tensors.from_nchw(xb, "NWHC")
    assert_close(nhwc, np.transpose(x, (0, 2, 3, 1)), backend=backend, rtol=0.0)
    assert_close(nwhc, np.transpose(x, (0, 3, 2, 1)), backend=backend, rtol=0.0)  # (N, W, H, C)
    assert_close(tensors.to_nchw(nhwc), x, backend=backend, rtol=0.0)
    assert_close(tensors.to_nchw(nwhc, "NWHC"), x, backend=backend, rtol=0.0)
    assert_close(tensors.convert(nwhc, "NWHC", "NHWC"), _backend.to_numpy(nhwc), backend=backend)
    assert tensors.convert(xb, "NCHW", "NCHW") is xb
    for bad in (backend.asarray(np.zeros((2, 3, 4))), backend.asarray(np.zeros((1, 2, 3, 4, 5)))):
        with pytest.raises(ValueError, match="4 axes"):
            tensors.to_nchw(bad)
        with pytest.raises(ValueError, match="4 axes"):
            tensors.from_nchw(bad, "NWHC")
    with pytest.raises(ValueError, match="layout"):
        tensors.to_nchw(xb, "HWCN")


def test_native_max_pool_equals_portable_path(backend, monkeypatch):
    """torch's own max-pool (forward and backward) against the portable path, float64,
    overlapping windows and ties included; other libraries have none."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(2, 3, 7, 6)).astype(np.float64)  # many ties
    xb = backend.asarray(x)
    if _backend.native_max_pool2d(xb, (2, 2), (2, 2)) is None:
        pytest.skip(f"{backend.name} has no native max-pool")
    for layer in (MaxPool2d(2), MaxPool2d(3, stride=1), MaxPool2d((2, 3), stride=(1, 2))):
        y, cache = layer.forward((), xb)
        assert cache[2] is not None  # the native path ran
        dy = backend.asarray(rng.normal(size=tuple(y.shape)))
        dx, _ = layer.backward((), cache, dy)
        with monkeypatch.context() as m:
            m.setattr(_backend, "native_max_pool2d", lambda *args: None)
            y_p, cache_p = layer.forward((), xb)
            dx_p, _ = layer.backward((), cache_p, dy)
        assert cache_p[2] is None
        _close(y, _backend.to_numpy(y_p), backend, tol=0.0)
        _close(dx, _backend.to_numpy(dx_p), backend, tol=1e-12)
