"""Save on one backend, load on every other: the same predictions (1e-6 relative in float32)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import backendnn as bn
from backendnn import _backend

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 1, 2, 3)).astype(np.float32)  # NCHW images
Y_CLS = np.arange(30) % 3
Y_REG = RNG.normal(size=(30, 2)).astype(np.float32)


def _installed() -> list[str]:
    names = []
    for name in ("numpy", "array_api_strict", "jax", "torch", "cupy"):
        try:
            _backend.namespace(name)
            names.append(name)
        except ImportError:
            pass
    return names


MODELS = {
    "classifier-swiglu": lambda: bn.MLPClassifier(
        (5,), activation=bn.activations.get("swiglu", beta=1.5), max_iter=5, random_state=0
    ),
    "classifier-binary-gelu": lambda: bn.MLPClassifier(
        (4, 3), activation="gelu", max_iter=5, random_state=0
    ),
    "regressor-tanh": lambda: bn.MLPRegressor(hidden_layer_sizes=(6,), activation="tanh",
            max_iter=5, random_state=0),
    "perceptron": lambda: bn.Perceptron(max_iter=5),
    "cnn-classifier": lambda: bn.NeuralNetClassifier(
        [
            bn.layers.Conv2d(1, 2, (2, 2), padding=1),
            bn.layers.Activation("tanh"),
            bn.layers.MaxPool2d(2),
            bn.layers.Flatten(),
        ],
        max_iter=5,
        random_state=0,
    ),
}
TARGETS = {
    "classifier-swiglu": Y_CLS,
    "classifier-binary-gelu": Y_CLS % 2,
    "regressor-tanh": Y_REG,
    "perceptron": Y_CLS,
    "cnn-classifier": Y_CLS,
}


def _outputs(model, X_on):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X_on)
    if hasattr(model, "decision_function"):
        return model.decision_function(X_on)
    return model.predict(X_on)


@pytest.mark.parametrize("kind", list(MODELS))
def test_save_here_load_everywhere(backend, kind, tmp_path):
    model = MODELS[kind]().fit(backend.asarray(X), backend.asarray(TARGETS[kind]))
    reference = _backend.to_numpy(_outputs(model, backend.asarray(X)))
    labels = _backend.to_numpy(model.predict(backend.asarray(X)))
    path = tmp_path / "model.safetensors"
    bn.save(model, path)
    for name in _installed():
        loaded = bn.load(path, backend=name)
        X_on = bn.to_backend(X, name)
        out = _outputs(loaded, X_on)
        assert _backend.namespace_name(_backend.array_namespace(out)) == name
        np.testing.assert_allclose(_backend.to_numpy(out), reference, rtol=1e-6, atol=1e-6)
        predicted = _backend.to_numpy(loaded.predict(X_on))
        if kind.startswith("regressor"):
            np.testing.assert_allclose(predicted, labels, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(predicted, labels)
        assert loaded.get_params() == model.get_params()
        assert loaded.n_features_in_ == 6 and loaded.image_shape_ == (1, 2, 3)


def test_file_is_plain_safetensors_with_json_metadata(tmp_path):
    model = bn.MLPClassifier((4,), max_iter=3, random_state=0).fit(X, np.array(list("abc"))[Y_CLS])
    path = tmp_path / "m.safetensors"
    bn.save(model, path)
    tensors = load_file(str(path))
    assert sorted(tensors) == ["coefs.0", "coefs.1", "intercepts.0", "intercepts.1"]
    np.testing.assert_array_equal(tensors["coefs.0"], model.coefs_[0])
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    meta = json.loads(
        json.loads(path.read_bytes()[8 : 8 + header_len])["__metadata__"]["backendnn"]
    )
    assert meta["estimator"] == "MLPClassifier" and meta["version"] == bn.io.FORMAT_VERSION == 3
    assert meta["attributes"]["classes_"]["values"] == ["a", "b", "c"]
    loaded = bn.load(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.classes_.tolist() == ["a", "b", "c"]


def test_loaded_model_continues_training(tmp_path):
    model = bn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, Y_REG)
    bn.save(model, tmp_path / "r.safetensors")
    loaded = bn.load(tmp_path / "r.safetensors").set_params(warm_start=True, max_iter=3)
    loaded.fit(X, Y_REG)
    assert loaded.n_iter_ == 3
