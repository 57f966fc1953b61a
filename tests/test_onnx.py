"""ONNX export (``backendnn.export_onnx``) against ONNX Runtime, an independent runtime: for
every layer and activation (bare networks with random weights and running statistics) and
every estimator, ONNX Runtime's outputs equal backendnn's to 1e-5 in float32 and 1e-10 in
float64 on random inputs of batch sizes the export never saw, and the labels are the same
(but for rows whose two largest probabilities lie within 1e-6)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import backendnn as bn
from backendnn import activations
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
    GlobalAvgPool1d,
    GlobalAvgPool2d,
    Layer,
    LayerNorm,
    MaxPool1d,
    MaxPool2d,
    Residual,
)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = {"float32": 1e-5, "float64": 1e-10}
BATCHES = (1, 40)  # the graph's batch axis is dynamic: any size runs


def _run(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})


def _close(actual, expected, dtype):
    np.testing.assert_allclose(actual, expected, rtol=TOL[dtype], atol=TOL[dtype])


def _export(obj, tmp_path, **kw):
    path = tmp_path / "model.onnx"
    model = bn.export_onnx(obj, path, **kw)
    assert path.is_file() and onnx.load(path) == model
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    return model


# --------------------------------------------------------------------------- layers

ACTIVATIONS = [n for n in activations.names() if n not in activations.GATED]

NETWORKS = {
    **{f"act-{n}": ((5,), [Dense(5, 6), Activation(n), Dense(6, 3)]) for n in ACTIVATIONS},
    "swish-beta": ((5,), [Dense(5, 6), Activation(activations.get("swish", beta=1.7))]),
    **{f"gated-{n}": ((5,), [GatedDense(5, 4, n), Dense(4, 2)]) for n in activations.GATED},
    "swiglu-beta": ((5,), [GatedDense(5, 4, activations.get("swiglu", beta=0.6))]),
    "dense-no-bias": ((5,), [Dense(5, 3, bias=False)]),
    "conv2d": ((2, 7, 6), [Conv2d(2, 4, 3, stride=2, padding=1), Activation("relu"), Flatten()]),
    "conv2d-same-dilated-grouped": (
        (4, 7, 7),
        [Conv2d(4, 6, (2, 3), padding="same", dilation=(2, 1), groups=2), GlobalAvgPool2d()],
    ),
    "conv2d-pairs-no-bias": (
        (3, 8, 9),
        [Conv2d(3, 3, (3, 2), stride=(1, 2), padding=(2, 0), groups=3, bias=False), Flatten()],
    ),
    "conv1d": ((3, 11), [Conv1d(3, 4, 3, stride=2, padding=2, dilation=2), Flatten()]),
    "conv1d-same-grouped": ((4, 9), [Conv1d(4, 2, 4, padding="same", groups=2), Flatten()]),
    "pools2d": ((2, 9, 8), [MaxPool2d(2), AvgPool2d(3, stride=1), Flatten()]),
    "pools2d-overlap": ((2, 7, 7), [AvgPool2d((3, 2), stride=(2, 1)), MaxPool2d(3, 2), Flatten()]),
    "pools1d": ((3, 12), [MaxPool1d(3, stride=2), AvgPool1d(2), GlobalAvgPool1d()]),
    "batchnorm1d-rows": ((4,), [BatchNorm1d(4), Dense(4, 2)]),
    "batchnorm1d-signals": ((3, 5), [BatchNorm1d(3, affine=False), Flatten()]),
    "batchnorm2d": ((3, 4, 4), [Conv2d(3, 2, 3), BatchNorm2d(2, eps=1e-3, bias=False), Flatten()]),
    "batchnorm-batch-stats": ((3, 4), [BatchNorm1d(3, track_running_stats=False), Flatten()]),
    "layernorm": ((6,), [LayerNorm(6), Dense(6, 2)]),
    "layernorm-images": ((2, 3, 3), [LayerNorm((2, 3, 3), elementwise_affine=False), Flatten()]),
    "layernorm-no-bias": ((2, 5), [LayerNorm(5, eps=1e-2, bias=False), Flatten()]),
    "dropout": ((5,), [Dense(5, 4), Dropout(0.5), Dense(4, 2)]),
    "residual": ((4,), [Residual([Dense(4, 4), Activation("gelu"), Dense(4, 4)]), Dense(4, 2)]),
    "residual-projection-bn": (
        (2, 6, 6),
        [
            Residual(
                [Conv2d(2, 4, 3, stride=2, padding=1), BatchNorm2d(4), Activation("relu")],
                [Conv2d(2, 4, 1, stride=2), BatchNorm2d(4)],
            ),
            Residual([Residual([Conv2d(4, 4, 3, padding=1)]), Activation("silu")]),
            GlobalAvgPool2d(),
        ],
    ),
}


def _random_network(layers, shape, dtype, seed=0):
    """The network with every parameter and running statistic drawn at random (gamma and
    beta too, running variances in [0.5, 2])."""
    rng = np.random.default_rng(seed)
    network = bn.Network(layers).build(shape)
    params = [
        tuple(rng.normal(size=s).astype(dtype) for s in layer.param_shapes())
        for layer in network.layers
    ]
    state = None
    if network.has_state:
        state = [
            tuple(
                (rng.uniform(0.5, 2.0, p.shape) if "var" in p.name else rng.normal(size=p.shape))
                .astype(dtype)
                for p in layer.buffers()
            )
            for layer in network.layers
        ]
    return network, params, state


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_layer_and_activation_matches_onnx_runtime(name, dtype, tmp_path):
    shape, layers = NETWORKS[name]
    network, params, state = _random_network(layers, shape, dtype)
    model = _export((network, params, state), tmp_path, input_shape=shape, dtype=dtype)
    rng = np.random.default_rng(1)
    for n in BATCHES:
        X = (3.0 * rng.normal(size=(n, *shape))).astype(dtype)  # GELU's tails too
        (out,) = _run(model, X)
        assert out.dtype == np.dtype(dtype)
        _close(out, network.forward(params, X, state), dtype)


def test_activation_tails_in_float64(tmp_path):
    """Far out in both tails every activation keeps full relative precision (exact GELU:
    Cody's Phi in the graph; the sigmoid in its stable form)."""
    z = np.concatenate([np.linspace(-40.0, 40.0, 161), [-1e4, -30.5, 1e-8, 0.3, 5.5, 1e4]])
    for name in ("gelu", "gelu_tanh", "softplus", "silu", "sigmoid", "tanh"):
        network = bn.Network([Activation(name)])
        model = _export((network, [()], None), tmp_path, input_shape=(z.size,), dtype="float64")
        (out,) = _run(model, z[None, :])
        expected = network.forward([()], z[None, :])
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-300, err_msg=name)


def test_opset_17_and_the_default(tmp_path):
    """Opset 17 writes ReduceMean's axes as an attribute (18 on: an input)."""
    shape, layers = NETWORKS["pools1d"]
    network, params, state = _random_network(layers, shape, "float64")
    X = np.random.default_rng(2).normal(size=(3, *shape))
    for opset in (17, None):
        model = _export(
            (network, params, state), tmp_path, input_shape=shape, opset=opset, dtype="float64"
        )
        assert opset is None or model.opset_import[0].version == 17
        _close(_run(model, X)[0], network.forward(params, X, state), "float64")


# --------------------------------------------------------------------------- estimators


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        return model.fit(X, y)


def _check_labels(labels, expected, proba):
    """Identical labels, but for rows whose two largest probabilities lie within 1e-6."""
    top = np.sort(proba, axis=1)
    clear = top[:, -1] - top[:, -2] > 1e-6 if proba.shape[1] > 1 else np.ones(len(proba), bool)
    assert clear.sum() >= len(proba) // 2
    np.testing.assert_array_equal(labels[clear], np.asarray(expected)[clear])


def _check_classifier(est, X, tmp_path, dtype):
    model = _export(est, tmp_path)
    assert [o.name for o in model.graph.output] == ["probabilities", "labels"]
    for n in BATCHES:
        Xn = X[:n].astype(dtype)
        proba, labels = _run(model, Xn)
        expected = est.predict_proba(Xn)
        assert proba.dtype == np.dtype(dtype) and proba.shape == expected.shape
        _close(proba, expected, dtype)
        if getattr(est, "_multilabel", False):
            np.testing.assert_array_equal(labels, est.predict(Xn))
        else:
            _check_labels(labels, est.predict(Xn), expected)


def _images(n, shape=(1, 6, 6), seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, *shape))
    flat = X.reshape(n, -1)
    return X, (flat.mean(axis=1) > 0).astype(int) + (flat[:, 0] > 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mlp_classifiers(dtype, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4)).astype(dtype)
    binary = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    multiclass = np.digitize(X[:, 0], [-0.5, 0.5])
    multilabel = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 0.5], axis=1).astype(int)
    for y, activation in ((binary, "tanh"), (multiclass, "gelu"), (multilabel, "relu")):
        est = _fit(bn.MLPClassifier((6,), activation=activation, max_iter=30, random_state=0),
                   X, y)  # fmt: skip
        _check_classifier(est, 2.0 * X, tmp_path, dtype)
    _, labels = _run(_export(est, tmp_path), X[:5])
    assert labels.dtype == np.int64 and labels.shape == (5, 3)  # multi-label indicator
    est = _fit(bn.MLPClassifier((5,), activation="swiglu", max_iter=20), X, binary)
    assert _run(_export(est, tmp_path), X[:3])[1].tolist() == est.predict(X[:3]).tolist()
    single = _fit(bn.MLPClassifier((3,), max_iter=5), X, np.full(len(X), 7))
    proba, labels = _run(_export(single, tmp_path), X[:4])
    assert proba.tolist() == [[1.0]] * 4 and labels.tolist() == [7] * 4


def test_mlp_fitted_on_images_takes_rows(tmp_path):
    X, y = _images(30, (2, 3, 3))
    est = _fit(bn.MLPClassifier((4,), max_iter=10), X, y)
    model = _export(est, tmp_path)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [0, 18]
    proba, _ = _run(model, X.reshape(30, 18))
    _close(proba, est.predict_proba(X), "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mlp_regressors(dtype, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(dtype)
    cases = [
        (bn.MLPRegressor(hidden_layer_sizes=(5,), max_iter=30), X[:, 0] - X[:, 1], ()),
        (
            bn.MLPRegressor(hidden_layer_sizes=(4, 3), activation="softplus", max_iter=30),
            X[:, :2] * 2.0,
            (2,),
        ),
        (bn.MLPRegressor("poisson", (4,), max_iter=30), np.exp(X[:, 0] / 2).round(), ()),
    ]
    for est, y, out_shape in cases:
        _fit(est, X, y)
        model = _export(est, tmp_path)
        for n in BATCHES:
            (pred,) = _run(model, X[:n])
            assert pred.shape == (n, *out_shape)
            _close(pred, est.predict(X[:n]), dtype)


STACKS = {
    "cnn": (
        (1, 6, 6),
        [Conv2d(1, 4, 3, padding=1), BatchNorm2d(4), Activation("relu"), MaxPool2d(2),
         Residual([Conv2d(4, 4, 3, padding=1, groups=2), Activation("gelu_tanh")]),
         Dropout(0.2), AvgPool2d(3), Flatten()],
    ),  # fmt: skip
    "conv1d": (
        (2, 10),
        [Conv1d(2, 4, 3, stride=2, dilation=1, padding="valid"), LayerNorm(4), Activation("silu"),
         GlobalAvgPool1d()],
    ),  # fmt: skip
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("stack", list(STACKS))
def test_layer_stack_estimators(stack, dtype, tmp_path):
    shape, layers = STACKS[stack]
    X, y = _images(40, shape)
    X = X.astype(dtype)
    clf = _fit(bn.NeuralNetClassifier(layers, max_iter=3, batch_size=8, random_state=0), X, y)
    assert clf.image_shape_ == shape
    _check_classifier(clf, X, tmp_path, dtype)
    target = X.reshape(len(X), -1)[:, 1] + y
    reg = _fit(bn.NeuralNetRegressor(layers, max_iter=3, batch_size=8), X, target)
    model = _export(reg, tmp_path)
    for n in BATCHES:
        _close(_run(model, X[:n])[0], reg.predict(X[:n]), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_perceptron(dtype, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(dtype)
    for y in (X[:, 0] > 0, np.digitize(X[:, 1], [-0.5, 0.5]) + 10):
        est = _fit(bn.Perceptron(max_iter=5), X, y)
        model = _export(est, tmp_path)
        assert [o.name for o in model.graph.output] == ["decision", "labels"]
        for n in BATCHES:
            decision, labels = _run(model, X[:n])
            _close(decision, est.decision_function(X[:n]), dtype)
            np.testing.assert_array_equal(labels, est.predict(X[:n]))


def test_export_of_a_model_fitted_on_each_backend(backend, tmp_path):
    """The export reads the weights where they live (NumPy, JAX, torch, array-api-strict)."""
    X, y = _images(30, (1, 5, 5))
    layers = [Conv2d(1, 3, 3), BatchNorm2d(3), Activation("gelu"), Flatten()]
    est = bn.NeuralNetClassifier(layers, max_iter=2, batch_size=10, random_state=0)
    _fit(est, backend.asarray(X), backend.asarray(y))
    model = _export(est, tmp_path)
    proba, labels = _run(model, X)
    expected = bn.to_numpy(est.predict_proba(backend.asarray(X)))
    _close(proba, expected, "float64")
    _check_labels(labels, bn.to_numpy(est.predict(backend.asarray(X))), expected)


# --------------------------------------------------------------------------- errors


class Cube(activations.Activation):
    name = "cube"

    def forward(self, z):
        return z * z * z

    def derivative(self, z, y=None):
        return 3.0 * z * z


class Twice(Layer):
    def forward(self, params, x, ctx=None):
        return 2.0 * x, None


def test_unsupported_activation_and_layer_are_named(tmp_path):
    for layers, named in (
        ([Dense(3, 2), Activation(Cube())], "Cube"),
        ([GatedDense(3, 2, activations.GLU("cubeglu", Cube()))], "cubeglu"),
        ([Dense(3, 2), Twice()], "Twice"),
    ):
        network, params, state = _random_network(layers, (3,), "float64")
        with pytest.raises(ValueError, match=named):
            bn.export_onnx((network, params, state), tmp_path / "x.onnx", input_shape=(3,))
        assert not (tmp_path / "x.onnx").exists()  # nothing written


def test_bad_calls(tmp_path):
    path = tmp_path / "x.onnx"
    with pytest.raises(bn.NotFittedError):
        bn.export_onnx(bn.MLPClassifier(), path)
    network, params, _ = _random_network([Dense(3, 2)], (3,), "float64")
    with pytest.raises(ValueError, match="input_shape"):
        bn.export_onnx((network, params, None), path)
    with pytest.raises(ValueError, match="does not accept samples of shape"):
        bn.export_onnx((network, params, None), path, input_shape=(4,))
    with pytest.raises(ValueError, match="params do not fit"):
        bn.export_onnx((network, [params[0][:1]], None), path, input_shape=(3,))
    bn_net, bn_params, _ = _random_network([BatchNorm1d(3)], (3,), "float64")
    with pytest.raises(ValueError, match="state"):
        bn.export_onnx((bn_net, bn_params, None), path, input_shape=(3,))
    with pytest.raises(ValueError, match="opset"):
        bn.export_onnx((network, params, None), path, input_shape=(3,), opset=16)
    with pytest.raises(TypeError, match="estimator"):
        bn.export_onnx("model", path)
    assert not path.exists()


def test_state_that_does_not_fit_the_network_is_refused(tmp_path):
    """A state list shorter than the layers once exported only the layers it reached (a
    Dense(4, 4) alone here, of the declared output shape): a model silently wrong."""
    layers = [Dense(4, 4), BatchNorm1d(4), Dense(4, 4)]
    network, params, state = _random_network(layers, (4,), "float64")
    path = tmp_path / "x.onnx"
    for bad in (state[:1], [*state, ()], [(), (), ()], [(), state[1][:2], ()]):
        with pytest.raises(ValueError, match="state does not fit the network"):
            bn.export_onnx((network, params, bad), path, input_shape=(4,))
    assert not path.exists()


def test_missing_onnx_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "import numpy as np, backendnn as bn\n"
        "net = bn.Network([bn.layers.Dense(2, 1)])\n"
        "try:\n"
        "    bn.export_onnx((net, net.init(0, xp=np), None), 'x.onnx', input_shape=(2,))\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    assert "pip install backendnn[onnx]" in proc.stdout, proc.stdout + proc.stderr
