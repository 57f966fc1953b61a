"""``Conv1d`` (``backendnn.layers.conv``) on every backend: forward values and hand-written
gradients against torch autograd (float64, 1e-10) for strided, padded ("same" and
"valid"), dilated, grouped and depthwise convolutions of NCL sequences, the native
convolution against the portable path, ``check_gradients`` on a small 1-d network, weight
shapes and fans against torch.nn.Conv1d's, model-file descriptions, argument checks and
reprs.

The references are torch.nn.functional's conv1d with its gradients from autograd: never
backendnn code. The 1-d pools are in ``tests/test_layers_pool.py``.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import backendnn
from backendnn import _backend
from backendnn.estimators._constraints import LayerStack
from backendnn.layers import (
    Activation,
    AvgPool1d,
    Conv1d,
    Dense,
    GlobalAvgPool1d,
    MaxPool1d,
)
from backendnn.network import Network
from tests._helpers import close_to_scale as _close
from tests._helpers import optional_import

torch = optional_import("torch")

# (layer, input shape (N, C, L))
CASES = [
    (Conv1d(2, 3, 3), (2, 2, 9)),
    (Conv1d(2, 4, 3, stride=2, padding=1, bias=False), (2, 2, 8)),
    (Conv1d(4, 6, 3, padding="same", groups=2), (2, 4, 7)),
    (Conv1d(3, 3, 4, padding="same", dilation=2, groups=3), (2, 3, 9)),  # depthwise, odd zero
    (Conv1d(2, 2, 2, stride=3, dilation=3), (1, 2, 11)),
    (Conv1d(2, 3, 5, padding="valid"), (2, 2, 6)),
]


def _case_id(case):
    return f"{case[0]!r}-{case[1][2]}"


def _need_torch():
    if torch is None:
        pytest.skip("torch is not installed (the reference)")


@functools.cache
def _reference(case):
    """x, params, dy, y and (dx, dW[, db]) of sum(y * dy) from torch autograd."""
    _need_torch()
    layer, shape = case
    rng = np.random.default_rng(sum(map(ord, _case_id(case))))
    params = tuple(rng.normal(size=s) for s in layer.param_shapes())
    x = rng.normal(size=shape)
    tx = torch.tensor(x, requires_grad=True)
    tp = [torch.tensor(a, requires_grad=True) for a in params]
    args = (layer.stride, layer.padding, layer.dilation, layer.groups)
    with warnings.catch_warnings():  # "same" with an even window: torch pads a copy
        warnings.simplefilter("ignore", UserWarning)
        y = torch.nn.functional.conv1d(tx, tp[0], tp[1] if layer.bias else None, *args)
    dy = rng.normal(size=tuple(y.shape))
    (y * torch.tensor(dy)).sum().backward()
    grads = (tx.grad.numpy(), *(a.grad.numpy() for a in tp))
    return x, params, dy, y.detach().numpy(), grads


def _inputs(backend, case):
    x, params, dy, _, _ = _reference(case)
    ps = tuple(backend.asarray(a, dtype="float64") for a in params)
    return backend.asarray(x, dtype="float64"), ps, backend.asarray(dy, dtype="float64")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_conv1d_matches_torch_autograd(backend, case):
    layer, shape = case
    x, ps, dy = _inputs(backend, case)
    y, cache = layer.forward(ps, x)
    dx, grads = layer.backward(ps, cache, dy)
    _, _, _, ref_y, (ref_dx, *ref_grads) = _reference(case)
    assert tuple(y.shape[1:]) == layer.output_shape(shape[1:])
    _close(y, ref_y, backend)
    _close(dx, ref_dx, backend)
    assert len(grads) == len(ref_grads) == 1 + layer.bias
    for g, r in zip(grads, ref_grads):
        _close(g, r, backend)
    assert layer.backward(ps, cache, dy, need_dx=False)[0] is None


def test_native_convolution_equals_portable_path(backend, monkeypatch):
    if backend.name not in ("torch", "jax"):
        pytest.skip(f"{backend.name} has no native convolution")
    layer = CASES[3][0]
    x, ps, dy = _inputs(backend, CASES[3])
    y, cache = layer.forward(ps, x)
    assert cache[1] is None  # the native path ran
    dx, grads = layer.backward(ps, cache, dy)
    for name in ("native_conv2d", "native_conv2d_input_grad", "native_conv2d_weight_grad"):
        monkeypatch.setattr(_backend, name, lambda *args: None)
    y_p, cache_p = layer.forward(ps, x)
    dx_p, grads_p = layer.backward(ps, cache_p, dy)
    for a, b in [(y, y_p), (dx, dx_p), *zip(grads, grads_p)]:
        _close(a, _backend.to_numpy(b), backend, tol=1e-12)


def test_check_gradients_on_a_small_1d_network(backend):
    net = Network(
        [
            Conv1d(2, 4, 3, padding="same"),
            Activation("tanh"),
            MaxPool1d(2),
            Conv1d(4, 4, 3, dilation=2, groups=2),
            Activation("tanh"),
            AvgPool1d(2, stride=1),
            GlobalAvgPool1d(),
            Dense(4, 3),
        ]
    )
    assert net.output_shape((2, 12)) == (3,)
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    rng = np.random.default_rng(4)
    X = backend.asarray(rng.normal(size=(3, 2, 12)), dtype="float64")
    y = backend.asarray(np.array([0, 2, 1]))
    errors = backendnn.check_gradients(
        net, params, X, y, "softmax_cross_entropy", alpha=0.1, max_checks=12
    )
    assert list(errors) == net.param_names()
    assert max(errors.values()) < 1e-6, errors


# ---------------------------------------------------------------------------- declarations


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_weight_shape_and_fans_are_torchs(case):
    _need_torch()
    layer, (_, c, length) = case
    ref = torch.nn.Conv1d(
        c, layer.out_channels, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
        layer.groups, layer.bias,
    )  # fmt: skip
    assert layer.param_shapes() == tuple(tuple(p.shape) for p in ref.parameters())
    assert layer.fans() == torch.nn.init._calculate_fan_in_and_fan_out(ref.weight)
    assert layer.output_shape((c, length)) == tuple(ref(torch.zeros(1, c, length)).shape[1:])


def test_config_rebuilds_an_equal_layer_and_a_model_file_describes_it():
    layer = Conv1d(4, 8, 3, padding="same", dilation=2, groups=4, bias=False)
    assert layer.config() == {
        "in_channels": 4, "out_channels": 8, "kernel_size": 3, "stride": 1,
        "padding": "same", "dilation": 2, "groups": 4, "bias": False,
    }  # fmt: skip
    again = Conv1d(**layer.config())
    assert again == layer and hash(again) == hash(layer)
    assert Conv1d(4, 8, (3,)) == Conv1d(4, 8, 3) != Conv1d(4, 8, 3, groups=2)
    stack = LayerStack()
    layers = [
        Conv1d(2, 4, 3, stride=2, padding=1),
        MaxPool1d(2),
        AvgPool1d(3, 2),
        GlobalAvgPool1d(),
    ]
    assert stack.from_json(stack.to_json(layers)) == layers


# ---------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv1d(2.5, 2, 3),
        lambda: Conv1d(1, 0, 3),
        lambda: Conv1d(1, 2, (3, 3)),
        lambda: Conv1d(1, 2, True),
        lambda: Conv1d(1, 2, 3, stride=0),
        lambda: Conv1d(1, 2, 3, padding=-1),
        lambda: Conv1d(1, 2, 3, padding="full"),
        lambda: Conv1d(1, 2, 3, dilation=1.0),
        lambda: Conv1d(2, 2, 3, groups=None),
    ],
)
def test_bad_constructor_arguments_raise(make):
    with pytest.raises(ValueError, match="Conv1d: .* must be"):
        make()


def test_groups_must_divide_the_channels_and_same_takes_no_stride():
    with pytest.raises(ValueError, match="Conv1d: in_channels must be divisible by groups"):
        Conv1d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="Conv1d: padding='same' is not supported for strided"):
        Conv1d(1, 1, 3, stride=2, padding="same")


def test_wrong_input_shapes_raise_naming_the_layer_and_the_expected_shape():
    layer, W = Conv1d(3, 2, 3), np.ones((2, 3, 3))
    with pytest.raises(ValueError, match=r"Conv1d\(3, 2, .*\(n_samples, 3, length\) \(NCL\)"):
        layer.forward((W,), np.ones((4, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"\(n_samples, 3, length\).*\(4, 5\)"):
        layer.forward((W,), np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match=r"\(n_samples, 3, length\).*\(3,\)"):
        layer.output_shape((3,))
    with pytest.raises(ValueError, match=r"Conv1d\(.*a window of 5 does not fit in sequences of 4"):
        Conv1d(1, 1, 3, dilation=2).output_shape((1, 4))
    with pytest.raises(ValueError, match="does not fit"):
        Conv1d(1, 1, 5, padding=1).forward((np.ones((1, 1, 5)),), np.ones((1, 1, 2)))


def test_reprs():
    assert repr(Conv1d(1, 16, 3, padding=1)) == "Conv1d(1, 16, kernel_size=3, padding=1)"
    assert (
        repr(Conv1d(4, 4, 3, stride=2, dilation=2, groups=4, bias=False))
        == "Conv1d(4, 4, kernel_size=3, stride=2, dilation=2, groups=4, bias=False)"
    )
    assert repr(Conv1d(2, 2, 5, padding="same")) == "Conv1d(2, 2, kernel_size=5, padding='same')"
