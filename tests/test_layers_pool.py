"""Pooling layers (``backendnn.layers.pool``) on every backend: ``MaxPool2d``, ``AvgPool2d``,
``GlobalAvgPool2d`` and their 1-d twins ``MaxPool1d``, ``AvgPool1d``, ``GlobalAvgPool1d``:
forward values, symbolic output shapes and hand-written gradients against torch autograd
(float64, 1e-10), max-pool ties, torch's native max-pool against the portable path,
argument checks and reprs.

The references are torch.nn.functional's max_pool1d/2d, avg_pool1d/2d and mean, with their
gradients from autograd: never backendnn code.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from backendnn import _backend
from backendnn.layers import (
    AvgPool1d,
    AvgPool2d,
    GlobalAvgPool1d,
    GlobalAvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from tests._helpers import close_to_scale as _close
from tests._helpers import optional_import
from tests.conftest import assert_close

torch = optional_import("torch")


def _need_torch():
    if torch is None:
        pytest.skip("torch is not installed (the reference)")


POOL_CASES = [
    (MaxPool2d(2), (2, 3, 6, 7)),
    (MaxPool2d(3, stride=2), (2, 2, 7, 8)),
    (MaxPool2d((2, 3), stride=(1, 2)), (1, 2, 5, 7)),
    (AvgPool2d(2), (2, 3, 6, 7)),
    (AvgPool2d(3, stride=2), (2, 2, 7, 8)),
    (AvgPool2d((2, 3), stride=(1, 2)), (1, 2, 5, 7)),
    (GlobalAvgPool2d(), (2, 3, 5, 4)),
    (MaxPool1d(2), (2, 3, 7)),
    (MaxPool1d(3, stride=2), (2, 2, 9)),
    (MaxPool1d(2, stride=1), (1, 2, 6)),
    (AvgPool1d(2), (1, 3, 6)),
    (AvgPool1d(3, stride=2), (2, 2, 9)),
    (GlobalAvgPool1d(), (2, 3, 5)),
]


def _torch_pool(layer, x):
    F = torch.nn.functional
    if isinstance(layer, MaxPool2d):
        return F.max_pool2d(x, layer.kernel_size, layer.stride)
    if isinstance(layer, AvgPool2d):
        return F.avg_pool2d(x, layer.kernel_size, layer.stride)
    if isinstance(layer, MaxPool1d):
        return F.max_pool1d(x, layer.kernel_size, layer.stride)
    if isinstance(layer, AvgPool1d):
        return F.avg_pool1d(x, layer.kernel_size, layer.stride)
    return x.mean(dim=tuple(range(2, x.ndim)))


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


@pytest.mark.parametrize("index", range(len(POOL_CASES)), ids=lambda i: repr(POOL_CASES[i][0]))
def test_pools_match_torch_autograd(backend, index):
    layer, shape = POOL_CASES[index]
    x, ref_y, dy, ref_dx = _pool_reference(index)
    y, cache = layer.forward((), backend.asarray(x, dtype="float64"))
    assert tuple(y.shape[1:]) == layer.output_shape(shape[1:])
    _close(y, ref_y, backend)
    dx, grads = layer.backward((), cache, backend.asarray(dy, dtype="float64"))
    assert grads == () and layer.param_shapes() == ()
    _close(dx, ref_dx, backend)


def test_max_pool_ties_go_to_one_element(backend):
    """Every window sends its gradient to exactly one pixel: the first maximum in
    row-major order within the window."""
    x = np.array([[[[5.0, 5.0, 1.0, 2.0], [5.0, 1.0, 2.0, 2.0], [0.0, 0.0, 3.0, 1.0],
                    [0.0, 0.0, 3.0, 3.0]]]])  # fmt: skip
    layer = MaxPool2d(2)
    # exact (rtol 0): maxima are inputs, and each dx entry is one dy entry or a sum of ones
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


def test_native_max_pool_equals_portable_path(backend, monkeypatch):
    """torch's own max-pool (forward and backward) against the portable path, float64,
    overlapping windows and ties included; other libraries have none."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(2, 3, 7, 6)).astype(np.float64)  # many ties
    xb = backend.asarray(x)
    if backend.name != "torch":
        assert _backend.native_max_pool2d(xb, (2, 2), (2, 2)) is None
        pytest.skip(f"{backend.name} has no native max-pool")
    assert _backend.native_max_pool2d(xb, (2, 2), (2, 2)) is not None, "torch lost its max-pool"
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
        # exact: a maximum is one of its inputs, whichever code picks it (no rounding)
        _close(y, _backend.to_numpy(y_p), backend, tol=0.0)
        _close(dx, _backend.to_numpy(dx_p), backend, tol=1e-12)
    layer = MaxPool1d(3, stride=2)  # on (N, C, 1, L): the same native kernel
    y, cache = layer.forward((), xb[:, :, 0, :])
    assert cache[2] is not None
    dx, _ = layer.backward((), cache, backend.asarray(rng.normal(size=tuple(y.shape))))
    assert tuple(y.shape) == (2, 3, 2) and tuple(dx.shape) == (2, 3, 6)


# ---------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "make",
    [
        lambda: MaxPool2d(0),
        lambda: MaxPool2d(2, stride=(1, 0)),
        lambda: AvgPool2d((2, 2, 2)),
        lambda: MaxPool1d(0),
        lambda: MaxPool1d((2, 2)),
        lambda: AvgPool1d(1.5),
        lambda: AvgPool1d(2, stride=-1),
    ],
)
def test_bad_constructor_arguments_raise(make):
    with pytest.raises(ValueError, match="must be a"):
        make()


def test_wrong_input_shapes_raise_naming_the_expected_shape():
    for layer in (MaxPool2d(2), AvgPool2d(2), GlobalAvgPool2d()):
        with pytest.raises(ValueError, match=r"\(n_samples, C, height, width\)"):
            layer.forward((), np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        MaxPool2d(3).forward((), np.ones((1, 1, 2, 4)))
    for layer in (MaxPool1d(2), AvgPool1d(2), GlobalAvgPool1d()):
        with pytest.raises(ValueError, match=r"\(n_samples, C, length\) \(NCL\)"):
            layer.forward((), np.ones((2, 4, 4, 4)))
        with pytest.raises(
            ValueError, match=rf"{type(layer).__name__}\(.*\(n_samples, C, length\)"
        ):
            layer.output_shape((4,))
    with pytest.raises(ValueError, match=r"MaxPool1d\(3\): a window of 3 does not fit"):
        MaxPool1d(3).output_shape((1, 2))


def test_reprs():
    assert (
        repr(MaxPool2d(2)) == "MaxPool2d(2)" and repr(MaxPool2d(3, 2)) == "MaxPool2d(3, stride=2)"
    )
    assert repr(AvgPool2d((2, 3))) == "AvgPool2d((2, 3))"
    assert repr(GlobalAvgPool2d()) == "GlobalAvgPool2d()"
    assert (
        repr(MaxPool1d(2)) == "MaxPool1d(2)" and repr(AvgPool1d(3, 2)) == "AvgPool1d(3, stride=2)"
    )
    assert repr(GlobalAvgPool1d()) == "GlobalAvgPool1d()"
    assert MaxPool1d(2, stride=2) == MaxPool1d(2) != AvgPool1d(2)
    assert MaxPool1d(**MaxPool1d(3, 2).config()) == MaxPool1d(3, 2)
