"""Convolution layers (``backendnn.layers.conv``) on every backend: ``Conv2d`` forward values
and hand-written gradients against torch autograd (float64, 1e-10) for strided, padded
("same" and "valid" included), dilated, grouped and depthwise convolutions, the native
convolution against the portable im2col path (torch and JAX, 1e-12), float32,
``check_gradients`` and ``jax.jit`` on a small CNN, weight shapes and fans against
torch.nn.Conv2d's, argument checks and reprs.

The references are torch.nn.functional's conv2d with its gradients from autograd: never
backendnn code. Images stay small (the file runs on four backends on a 2-core CI machine).
Conv1d is in ``tests/test_layers_conv1d.py``, pooling layers in ``tests/test_layers_pool.py``,
Conv2d's initialisation in ``tests/test_init.py``, the image layouts of ``backendnn.tensors``
in ``tests/test_tensors.py``.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import backendnn
from backendnn import _backend
from backendnn.layers import Conv2d
from tests._helpers import close_to_scale as _close
from tests._helpers import optional_import, small_cnn
from tests.conftest import assert_close

torch = optional_import("torch")

# (layer, input shape): kernels 1, 3, 5 and rectangles, strides 1, 2 and mixed, paddings
# 0, 1, 2, mixed, "same" (odd and even windows: the odd zero at the bottom and right) and
# "valid", a kernel smaller than its stride (pixels that no window reaches), dilations,
# groups and depthwise (groups = in_channels) convolutions
CONV_CASES = [
    (Conv2d(1, 2, 1), (2, 1, 5, 6)),
    (Conv2d(3, 2, 3, padding=1), (2, 3, 7, 6)),
    (Conv2d(2, 3, 3, stride=2, bias=False), (2, 2, 8, 7)),
    (Conv2d(2, 4, 5, stride=2, padding=2), (1, 2, 9, 8)),
    (Conv2d(3, 2, (3, 2), stride=(2, 1), padding=(1, 2)), (2, 3, 6, 7)),
    (Conv2d(2, 2, 1, stride=2, padding=1), (2, 2, 5, 6)),
    (Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 6, 5)),
    (Conv2d(3, 6, 3, padding="same", groups=3), (2, 3, 5, 6)),
    (Conv2d(2, 3, 3, dilation=2, padding=1), (2, 2, 7, 8)),
    (Conv2d(2, 2, (2, 3), stride=(2, 3), dilation=(2, 1), padding="valid"), (1, 2, 8, 9)),
    (Conv2d(2, 3, (4, 2), padding="same", dilation=(1, 3), bias=False), (2, 2, 6, 7)),
    (Conv2d(4, 4, 3, stride=2, padding=2, dilation=2, groups=4), (1, 4, 9, 8)),
]
NATIVE_CASES = [CONV_CASES[i] for i in (4, 6, 10, 11)]


def _case_id(case):
    layer, shape = case
    return f"{layer!r}-{'x'.join(map(str, shape[2:]))}"


def _need_torch():
    if torch is None:
        pytest.skip("torch is not installed (the reference)")


# ---------------------------------------------------------------------------- references


@functools.cache
def _conv_data(case):
    layer, shape = case
    rng = np.random.default_rng(sum(map(ord, _case_id(case))))
    params = tuple(rng.normal(size=shape) for shape in layer.param_shapes())
    return layer, params, rng.normal(size=shape)


def _conv_dy(case):
    """dL/dy for the case: N(0, 1) draws of y's shape."""
    layer, _, x = _conv_data(case)
    return np.random.default_rng(7).normal(size=(x.shape[0], *layer.output_shape(x.shape[1:])))


@functools.cache
def _conv_reference(case):
    """y, dy and (dx, dW[, db]) of sum(y * dy) from torch autograd."""
    _need_torch()
    layer, params, x = _conv_data(case)
    tx = torch.tensor(x, requires_grad=True)
    tp = [torch.tensor(a, requires_grad=True) for a in params]
    args = (layer.stride, layer.padding, layer.dilation, layer.groups)
    with warnings.catch_warnings():  # "same" with an even window: torch pads a copy
        warnings.simplefilter("ignore", UserWarning)
        y = torch.nn.functional.conv2d(tx, tp[0], tp[1] if layer.bias else None, *args)
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
    assert tuple(y.shape[1:]) == case[0].output_shape(case[1][1:])
    _close(y, ref_y, backend)
    _close(dx, ref_dx, backend)
    assert len(grads) == len(ref_grads) == 1 + case[0].bias  # (dW, db) or (dW,)
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


@pytest.mark.parametrize("case", NATIVE_CASES, ids=_case_id)
def test_native_convolution_equals_portable_path(backend, case, monkeypatch):
    layer, params, x = _conv_data(case)
    xb = backend.asarray(x, dtype="float64")
    ps = tuple(backend.asarray(a, dtype="float64") for a in params)
    args = (layer.stride, layer._sides, layer.dilation, layer.groups)
    if backend.name not in ("torch", "jax"):
        assert _backend.native_conv2d(xb, ps[0], *args) is None
        pytest.skip(f"{backend.name} has no native convolution")
    dy = backend.asarray(_conv_dy(case), dtype="float64")
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


# ---------------------------------------------------------------------------- declarations


@pytest.mark.parametrize("case", CONV_CASES, ids=_case_id)
def test_weight_shape_and_fans_are_torchs(case):
    _need_torch()
    layer, (_, c, h, w) = case
    ref = torch.nn.Conv2d(
        c, layer.out_channels, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
        layer.groups, layer.bias,
    )  # fmt: skip
    assert layer.param_shapes() == tuple(tuple(p.shape) for p in ref.parameters())
    assert layer.fans() == torch.nn.init._calculate_fan_in_and_fan_out(ref.weight)
    assert layer.output_shape((c, h, w)) == tuple(ref(torch.zeros(1, c, h, w)).shape[1:])


def test_config_rebuilds_an_equal_layer():
    layer = Conv2d(4, 8, (3, 2), stride=1, padding="same", dilation=(2, 1), groups=4)
    again = Conv2d(**layer.config())
    assert again == layer and hash(again) == hash(layer) and repr(again) == repr(layer)
    assert layer != Conv2d(4, 8, (3, 2), padding="same", dilation=(2, 1), groups=2)
    assert Conv2d(2, 2, 3, padding="valid") != Conv2d(2, 2, 3)  # torch keeps the string too


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
        lambda: Conv2d(1, 2, 3, padding="full"),
        lambda: Conv2d(1, 2, 3, dilation=0),
        lambda: Conv2d(1, 2, 3, dilation=(1, 2, 1)),
        lambda: Conv2d(2, 2, 3, groups=0),
        lambda: Conv2d(2, 2, 3, groups=1.0),
    ],
)
def test_bad_constructor_arguments_raise(make):
    with pytest.raises(ValueError, match="Conv2d: .* must be"):
        make()


def test_groups_must_divide_the_channels_and_same_takes_no_stride():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        Conv2d(1, 1, 3, stride=(1, 2), padding="same")


def test_wrong_input_shapes_raise_naming_the_layer_and_the_expected_shape():
    layer = Conv2d(3, 2, 3)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 2, .*\(n_samples, 3, height, width\)"):
        layer.forward((np.ones((2, 3, 3, 3)),), np.ones((4, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"\(n_samples, 3, height, width\).*5, 5, 3\)"):
        layer.forward((np.ones((2, 3, 3, 3)),), np.ones((5, 5, 3)))
    with pytest.raises(ValueError, match=r"\(n_samples, 3, height, width\).*\(4, 5, 5\)"):
        layer.output_shape((4, 5, 5))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2d(1, 1, 5, padding=1).forward((np.ones((1, 1, 5, 5)),), np.ones((1, 1, 2, 8)))
    with pytest.raises(ValueError, match=r"Conv2d\(.*a window of 5x5 does not fit .* 4x8"):
        Conv2d(1, 1, 3, dilation=2).output_shape((1, 4, 8))


def test_reprs():
    assert repr(Conv2d(1, 16, 3, padding=1)) == "Conv2d(1, 16, kernel_size=3, padding=1)"
    assert (
        repr(Conv2d(2, 4, (3, 1), stride=(2, 1), bias=False))
        == "Conv2d(2, 4, kernel_size=(3, 1), stride=(2, 1), bias=False)"
    )
    assert (
        repr(Conv2d(4, 4, 3, padding="same", dilation=(2, 1), groups=4))
        == "Conv2d(4, 4, kernel_size=3, padding='same', dilation=(2, 1), groups=4)"
    )
