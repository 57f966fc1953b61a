"""Prediction in bounded memory: ``Network.forward`` and the estimators' prediction
methods run X in blocks of rows that fit in the memory budget (``bn.set_memory_budget``).

The blocks' results equal one pass's (every backend); each layer's declared workspace
bounds what its forward allocates (NumPy, measured with tracemalloc, which NumPy reports
its allocations to); and a subprocess measures the peak of a prediction on an X whose
one-pass activations are 20 times the budget.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest

import backendnn as bn
from backendnn import Network, activations
from backendnn.layers import (
    Activation,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    GatedDense,
    GlobalAvgPool2d,
    LayerNorm,
    MaxPool1d,
    MaxPool2d,
    Residual,
)  # fmt: skip
from backendnn.layers.base import Context

RNG = np.random.default_rng(0)


def _cnn() -> Network:
    return Network([
        Conv2d(2, 4, 3, padding=1), BatchNorm2d(4), Activation("gelu"), MaxPool2d(2),
        Residual([Conv2d(4, 4, 3, padding=1), Activation("relu")]), AvgPool2d(2, stride=1),
        Flatten(), Dense(36, 8), LayerNorm(8), Activation("tanh"), Dense(8, 3),
    ])  # fmt: skip


def _state(net, backend):
    state = net.init_state(xp=backend.xp, device=backend.device, dtype=backend.dtype("float64"))
    # running statistics away from 0 and 1, so that they matter
    return [tuple(a * 0.5 + 0.25 if a.ndim else a for a in s) for s in state]


def test_forward_in_blocks_equals_one_pass(backend):
    net = _cnn()
    params = net.init(seed=1, xp=backend.xp, device=backend.device, dtype=backend.dtype("float64"))
    state = _state(net, backend)
    X = backend.asarray(RNG.normal(size=(23, 2, 8, 8)))
    one = bn.to_numpy(net.forward(params, X, state, batch_size=23))
    for rows in (1, 5, 22):
        got = net.forward(params, X, state, batch_size=rows)
        assert tuple(got.shape) == (23, 3)
        np.testing.assert_allclose(bn.to_numpy(got), one, rtol=1e-12, atol=1e-14)
    with bn.memory_budget(3 * 8 * _elements(net, (2, 8, 8))):  # blocks of 3 rows
        assert net.block_rows((2, 8, 8), 8) == 3
        got = net.forward(params, X, state)
    np.testing.assert_allclose(bn.to_numpy(got), one, rtol=1e-12, atol=1e-14)


def _elements(net, shape) -> int:
    """The elements a sample's pass holds, as the module docstring of _blocks counts them,
    recomputed here from the layers' output shapes and declared workspaces."""
    peak, s = 0, shape
    for layer in net.build(shape).layers:
        out = layer.output_shape(s)
        peak = max(peak, math.prod(s) + math.prod(out) + layer.workspace(s))
        s = out
    return math.prod(shape) + peak


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_estimator_prediction_in_blocks_equals_one_pass(backend, kind):
    X = RNG.normal(size=(40, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0) if kind == "classifier" else X @ [1, 2, 0, 0, 1]
    Model = bn.MLPClassifier if kind == "classifier" else bn.MLPRegressor
    model = Model(
        hidden_layer_sizes=(16,), max_iter=5, random_state=0, dtype="float64", backend=backend.name
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        model.fit(X, y)
    Xb = backend.asarray(X)
    methods = ["predict"] + (["predict_proba", "predict_log_proba"] if kind == "classifier" else [])
    for name in methods:
        one = bn.to_numpy(getattr(model, name)(Xb, batch_size=40))
        np.testing.assert_allclose(
            bn.to_numpy(getattr(model, name)(Xb, batch_size=3)), one, rtol=1e-12, atol=1e-14
        )
        with bn.memory_budget(1000):  # one row per block
            np.testing.assert_allclose(
                bn.to_numpy(getattr(model, name)(Xb)), one, rtol=1e-12, atol=1e-14
            )
    # R^2 sums the blocks' squared errors in another order: equal to rounding
    assert model.score(Xb, y, batch_size=7) == pytest.approx(model.score(Xb, y), rel=1e-12)


def test_perceptron_decision_function_in_blocks(backend):
    X = RNG.normal(size=(30, 4))
    y = np.arange(30) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        model = bn.Perceptron(max_iter=5, backend=backend.name, dtype="float64").fit(X, y)
    Xb = backend.asarray(X)
    one = bn.to_numpy(model.decision_function(Xb, batch_size=30))
    np.testing.assert_allclose(
        bn.to_numpy(model.decision_function(Xb, batch_size=4)), one, rtol=1e-12, atol=1e-14
    )
    np.testing.assert_array_equal(
        bn.to_numpy(model.predict(Xb, batch_size=4)), bn.to_numpy(model.predict(Xb))
    )


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "8"])
def test_bad_batch_size_is_refused(bad):
    net = Network.mlp(3, (4,), 2)
    params = net.init(seed=0, xp=np, dtype=np.float64)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        net.forward(params, np.ones((5, 3)), batch_size=bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        model = bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(
            np.ones((6, 3)), np.arange(6.0)
        )
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.predict(np.ones((5, 3)), batch_size=bad)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_budget_is_refused_and_default_restored(bad):
    with pytest.raises(ValueError, match="memory budget must be a positive int"):
        bn.set_memory_budget(bad)
    assert bn.get_memory_budget() == 256 * 2**20
    with bn.memory_budget(2**20):
        assert bn.get_memory_budget() == 2**20
    assert bn.get_memory_budget() == 256 * 2**20


# ---------------------------------------------------------------- declared workspaces

WORKSPACE_CASES = [
    (Dense(64, 128), (64,)),
    *[(GatedDense(64, 32, g), (64,)) for g in ("glu", "reglu", "geglu", "swiglu")],
    *[(Activation(a), (256,)) for a in activations.names() if not activations.is_gated(
        activations.get(a))],
    (Conv2d(3, 8, 3), (3, 16, 16)),
    (Conv2d(3, 8, 3, padding=1), (3, 16, 16)),
    (Conv2d(3, 8, 3, stride=2, padding=2, dilation=2), (3, 16, 16)),
    (Conv2d(4, 8, 3, padding="same", groups=2), (4, 16, 16)),
    (Conv1d(3, 8, 5, padding=2), (3, 64)),
    (MaxPool2d(2), (8, 16, 16)), (MaxPool2d(3, stride=1), (8, 16, 16)),
    (AvgPool2d(3, stride=1), (8, 16, 16)), (MaxPool1d(3, stride=1), (8, 64)),
    (AvgPool1d(2), (8, 64)), (GlobalAvgPool2d(), (8, 16, 16)),
    (BatchNorm1d(64), (64,)), (BatchNorm2d(8), (8, 16, 16)), (LayerNorm((8, 16, 16)), (8, 16, 16)),
    (Dropout(0.5), (64,)), (Flatten(), (8, 16, 16)),
    (Residual([Conv2d(8, 8, 3, padding=1), BatchNorm2d(8), Activation("relu")]), (8, 16, 16)),
    (Residual([Conv2d(8, 16, 3, padding=1, stride=2)], [Conv2d(8, 16, 1, stride=2)]),
     (8, 16, 16)),
]  # fmt: skip

# NumPy's ufuncs allocate buffers of up to 8192 elements (64 KiB in float64) for
# broadcasting and casts: a constant a call, not a per-sample cost
UFUNC_BUFFERS = 4 * 8192 * 8


@pytest.mark.parametrize("layer, shape", WORKSPACE_CASES, ids=lambda c: repr(c)[:40])
def test_declared_workspace_bounds_numpy_allocations(layer, shape):
    net = Network([layer]).build(shape)
    layer = net.layers[0]
    params = net.init(seed=0, xp=np, dtype=np.float64)[0]
    state = net.init_state(xp=np, dtype=np.float64)[0]
    x = RNG.normal(size=(256, *shape))

    def run():
        ctx = Context(state=state)
        return layer.forward(params, x, ctx)[0] if layer.uses_mode else layer.forward(params, x)[0]

    run()  # first calls import and cache
    tracemalloc.start()
    y = run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    declared = (math.prod(y.shape[1:]) + layer.workspace(shape)) * 8 * x.shape[0]
    assert peak <= declared + UFUNC_BUFFERS, (peak, declared)


# ---------------------------------------------------------------- the peak, measured

PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys, tracemalloc
    import numpy as np
    import backendnn as bn
    from backendnn import Network
    from backendnn.layers import *

    BUDGET = 4 * 2**20
    bn.set_memory_budget(BUDGET)
    rng = np.random.default_rng(0)
    cases = {
        "mlp": (Network.mlp(256, (512, 512), 10), (256,)),
        "cnn": (Network([
            Conv2d(3, 16, 3, padding=1), Activation("relu"), MaxPool2d(2),
            Conv2d(16, 16, 3, padding=1), Activation("sigmoid"), GlobalAvgPool2d(),
            Dense(16, 10),
        ]), (3, 32, 32)),
    }

    def peak_of(fn):
        fn()  # imports, caches
        tracemalloc.start()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak, out.nbytes

    result = {}
    for name, (net, shape) in cases.items():
        params = net.init(seed=0, xp=np, dtype=np.float64)
        rows = net.block_rows(shape, 8)
        per_sample = BUDGET // rows
        n = 20 * BUDGET // per_sample  # one pass's activations: 20 budgets
        X = rng.normal(size=(n, *shape))
        result[name] = {
            "n": n, "rows": rows,
            "blocks": peak_of(lambda: net.forward(params, X)),
            "one_pass": peak_of(lambda: net.forward(params, X, batch_size=n)),
        }
    X = rng.normal(size=(300, 256))
    model = bn.MLPClassifier(hidden_layer_sizes=(512, 512), max_iter=1, dtype="float64")
    model.fit(X, np.arange(300) % 4)
    X = rng.normal(size=(20 * BUDGET // ((256 + 1024) * 8), 256))
    result["predict_proba"] = {"blocks": peak_of(lambda: model.predict_proba(X))}
    json.dump(result, sys.stdout)
    """
)


def test_prediction_peak_memory_stays_under_the_budget():
    """The peak beyond X, the model and the result stays within the budget (4 MiB) plus
    a 10 % slack for NumPy's ufunc buffers (64 KiB each) and the Python objects of the
    calls, on X 20 times the budget in activations; one pass over it takes over 10."""
    import json

    env = {"OMP_NUM_THREADS": "1", "BACKENDNN_BACKEND": "numpy", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    budget = 4 * 2**20
    for name, case in result.items():
        peak, result_bytes = case["blocks"]
        assert peak - result_bytes <= 1.1 * budget, (name, case)
        if "one_pass" in case:
            assert case["rows"] < case["n"] / 19, case
            one_peak, _ = case["one_pass"]
            assert one_peak > 10 * budget, (name, case)
