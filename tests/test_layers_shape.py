"""Shape layers (``backendnn.layers.shape``): ``Flatten`` of an NCHW batch, forward and
backward, on every backend. ``Network.mlp(flatten=True)`` is tested in
``tests/test_network.py``."""

from __future__ import annotations

import math

import numpy as np

from backendnn import _backend
from backendnn.layers import Flatten
from tests._helpers import IMAGE_SHAPE
from tests.conftest import assert_close


def test_flatten_layer_nchw(backend):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, *IMAGE_SHAPE))
    layer = Flatten()
    assert layer.param_shapes() == () and layer.param_names == ()
    y, cache = layer.forward((), backend.asarray(x, dtype="float64"))
    # exact (rtol 0): reshapes move values, they compute none
    # row i is sample i in C, H, W order
    assert_close(y, x.reshape(6, -1), backend=backend, dtype="float64", rtol=0.0)
    np.testing.assert_array_equal(_backend.to_numpy(y)[1, :6], x[1, 0].ravel())
    dy = rng.normal(size=(6, math.prod(IMAGE_SHAPE)))
    dx, grads = layer.backward((), cache, backend.asarray(dy, dtype="float64"))
    assert grads == ()
    assert_close(dx, dy.reshape(6, *IMAGE_SHAPE), backend=backend, dtype="float64", rtol=0.0)
