"""Parameters as plain data (``backendnn.params``): ``flatten_params``/``unflatten_params``
round trips on every backend and dtype (what L-BFGS and the gradient checker use), and
``Network.param_names``, one name per array in flattening order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backendnn import Network, _backend, flatten_params, unflatten_params
from tests._helpers import HIDDEN, IMAGE_SHAPE, INIT_SEED, N_IN, N_OUT, on_backend, to_host
from tests.conftest import assert_close


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "net",
    [
        Network.mlp(N_IN, HIDDEN, N_OUT),
        Network.mlp(N_IN, HIDDEN, N_OUT, activation="swiglu"),
        Network.mlp(math.prod(IMAGE_SHAPE), (4,), 2, flatten=True),
        Network.mlp(N_IN, (), 1),
    ],
    ids=["relu", "swiglu", "flatten", "perceptron"],
)
def test_flatten_unflatten_params_round_trip(backend, net, dtype):
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.dtype(dtype))
    host = to_host(params)
    vector = flatten_params(params)
    expected = np.concatenate([a.ravel() for p in host for a in p])
    # exact (rtol 0) throughout: flattening and unflattening move values, they compute none
    assert_close(vector, expected, backend=backend, dtype=dtype, rtol=0.0)
    assert vector.ndim == 1
    back = unflatten_params(vector, params)
    assert len(back) == len(params)
    for p, q in zip(back, host):
        assert len(p) == len(q)
        for a, b in zip(p, q):
            assert_close(a, b, backend=backend, dtype=dtype, rtol=0.0)
            np.testing.assert_array_equal(_backend.to_numpy(a), b, strict=True)
    # a different vector lands in the right places
    other = backend.asarray(np.arange(expected.size, dtype=dtype), dtype=dtype)
    back = unflatten_params(other, params)
    np.testing.assert_array_equal(
        np.concatenate([a.ravel() for p in to_host(back) for a in p]),
        np.arange(expected.size, dtype=dtype),
    )
    # param_names: one name per array, in flattening order
    names = net.param_names()
    assert len(names) == sum(len(p) for p in params)
    assert names == [f"layers[{i}].{n}" for i, p in enumerate(params) for n in ("W", "b")[: len(p)]]
    assert [n for i, layer in enumerate(net.layers) for n in layer.param_names] == [
        n.split(".")[1] for n in names
    ]


def test_param_names_of_the_standard_mlp():
    net = Network.mlp(N_IN, HIDDEN, N_OUT)
    assert net.param_names() == [
        "layers[0].W",
        "layers[0].b",
        "layers[2].W",
        "layers[2].b",
        "layers[4].W",
        "layers[4].b",
    ]
    net = Network.mlp(N_IN, HIDDEN, N_OUT, activation="glu", flatten=True)
    assert net.param_names() == [
        "layers[1].W",
        "layers[1].b",
        "layers[2].W",
        "layers[2].b",
        "layers[3].W",
        "layers[3].b",
    ]


def test_flatten_params_of_gradients_matches_params(backend):
    net, params, X, y = on_backend(backend, "tanh", "squared_error", 0.3)
    _, grads = net.loss_and_grad(params, X, y, "squared_error", 0.3)
    gv = flatten_params(grads)
    assert tuple(gv.shape) == tuple(flatten_params(params).shape)
    back = unflatten_params(gv, params)
    for g, b in zip(grads, back):
        for ga, ba in zip(g, b):
            assert_close(ba, _backend.to_numpy(ga), backend=backend, dtype="float64", rtol=0.0)
