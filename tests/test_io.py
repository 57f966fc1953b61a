"""Model files (``backendnn.io``, ``backendnn.save``/``backendnn.load``): what is saved comes
back. Saved on one backend, loaded on every other: the same predictions (1e-6 relative in
float32); the file is plain safetensors with JSON metadata; hyper-parameters, registered
activations, class weights, feature names and infinite ``n_iter_no_change`` survive a file;
what no file can hold is refused at save, writing nothing; paths and file modes.

Files that are damaged, foreign, edited or half-written are in
``tests/test_io_damaged_files.py``.
"""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from safetensors.numpy import load_file

import backendnn as bn
from backendnn import _backend, activations
from backendnn.layers import Flatten
from tests._helpers import (
    PERCEPTRON_DATA,
    X30,
    X40,
    X_CLS,
    Y30,
    Y40,
    Y_CLS,
    Scaled,
    TwiceTanh,
    save,
    short_regressor,
)
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

RNG = np.random.default_rng(0)
X_IMG = RNG.normal(size=(30, 1, 2, 3)).astype(np.float32)  # NCHW images
Y_IMG_CLS = np.arange(30) % 3
Y_IMG_REG = RNG.normal(size=(30, 2)).astype(np.float32)


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
    "classifier-swiglu": Y_IMG_CLS,
    "classifier-binary-gelu": Y_IMG_CLS % 2,
    "regressor-tanh": Y_IMG_REG,
    "perceptron": Y_IMG_CLS,
    "cnn-classifier": Y_IMG_CLS,
}


def _outputs(model, X_on):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X_on)
    if hasattr(model, "decision_function"):
        return model.decision_function(X_on)
    return model.predict(X_on)


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", list(MODELS))
def test_save_here_load_everywhere(backend, kind, tmp_path):
    model = MODELS[kind]().fit(backend.asarray(X_IMG), backend.asarray(TARGETS[kind]))
    reference = _backend.to_numpy(_outputs(model, backend.asarray(X_IMG)))
    labels = _backend.to_numpy(model.predict(backend.asarray(X_IMG)))
    path = tmp_path / "model.safetensors"
    bn.save(model, path)
    for name in _installed():
        loaded = bn.load(path, backend=name)
        X_on = bn.to_backend(X_IMG, name)
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
    model = bn.MLPClassifier((4,), max_iter=3, random_state=0)
    model.fit(X_IMG, np.array(list("abc"))[Y_IMG_CLS])
    path = tmp_path / "m.safetensors"
    bn.save(model, path)
    tensors = load_file(str(path))
    # the network's parameters by layer: Dense, Activation, Dense
    assert sorted(tensors) == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"]
    np.testing.assert_array_equal(tensors["layers.0.W"], model.coefs_[0])
    np.testing.assert_array_equal(tensors["layers.2.b"], model.intercepts_[1])
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    meta = json.loads(
        json.loads(path.read_bytes()[8 : 8 + header_len])["__metadata__"]["backendnn"]
    )
    assert meta["estimator"] == "MLPClassifier" and meta["version"] == bn.io.FORMAT_VERSION == 6
    assert meta["attributes"]["classes_"]["values"] == ["a", "b", "c"]
    loaded = bn.load(path)
    np.testing.assert_array_equal(loaded.predict(X_IMG), model.predict(X_IMG))
    assert loaded.classes_.tolist() == ["a", "b", "c"]


def test_loaded_model_continues_training(tmp_path):
    model = bn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    model.fit(X_IMG, Y_IMG_REG)
    bn.save(model, tmp_path / "r.safetensors")
    loaded = bn.load(tmp_path / "r.safetensors").set_params(warm_start=True, max_iter=3)
    loaded.fit(X_IMG, Y_IMG_REG)
    assert loaded.n_iter_ == 3


@pytest.mark.parametrize(
    "value",
    [
        {"hidden_layer_sizes": (np.int64(4),), "max_iter": np.int64(3)},
        {"learning_rate_init": np.float32(0.01), "alpha": np.float64(1e-3)},
        {"dtype": np.float32, "shuffle": np.bool_(False)},
    ],
)
def test_numpy_scalar_hyperparameters_round_trip(backend, tmp_path, value):
    """On a22ab53 these were written as strings and the reloaded model could not refit."""
    model = bn.MLPClassifier((4,), max_iter=3, random_state=0).set_params(**value)
    model.fit(backend.asarray(X30), backend.asarray(Y30))
    loaded = bn.load(save(model, tmp_path / "m.safetensors"), backend=backend.name)
    for key, v in value.items():
        got = loaded.get_params()[key]
        if key == "dtype":
            assert got == "float32"
        else:
            assert got == (tuple(int(h) for h in v) if isinstance(v, tuple) else v), key
    loaded.fit(backend.asarray(X30), backend.asarray(Y30))  # refits as it is


def test_registered_custom_activation_round_trips(backend, tmp_path, registry):
    activations.register("scaled", Scaled)
    model = short_regressor(Scaled(2.5)).fit(backend.asarray(X40), backend.asarray(Y40))
    path = tmp_path / "m.safetensors"
    bn.save(model, path)
    loaded = bn.load(path)
    assert loaded.activation == Scaled(2.5) and loaded._fitted_activation == Scaled(2.5)
    assert_close(model.predict(backend.asarray(X40)), _backend.to_numpy(loaded.predict(X40)),
                 backend=backend, dtype="float64")  # fmt: skip
    # a program that registered another class under that name cannot load it as its own
    activations._REGISTRY["scaled"] = TwiceTanhFactory
    with pytest.raises(ValueError, match="was saved as .*Scaled"):
        bn.load(path)


def TwiceTanhFactory(c=1.0):  # noqa: N802 - stands in for a class
    return TwiceTanh()


def test_class_weight_saved_and_loaded(tmp_path):
    X, y = PERCEPTRON_DATA["3-class"]
    model = bn.Perceptron(class_weight={0: 2.0, 2: 0.5, 1: 1.0}, max_iter=5).fit(X, y)
    bn.save(model, tmp_path / "p.safetensors")
    again = bn.load(tmp_path / "p.safetensors")
    assert again.class_weight == {0: 2.0, 2: 0.5, 1: 1.0}
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    model.class_weight = {0: 1.0, "b": 2.0}  # labels of two kinds: no file holds them
    with pytest.raises(ValueError, match="class_weight"):
        bn.save(model, tmp_path / "q.safetensors")


def test_feature_names_survive_a_file(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_CLS, columns=["a", "b", "c", "d"])
    model = bn.MLPClassifier((4,), max_iter=5, random_state=0).fit(frame, Y_CLS)
    bn.save(model, tmp_path / "m.safetensors")
    loaded = bn.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)


def test_n_iter_no_change_inf_survives_a_file(tmp_path):
    model = bn.MLPClassifier((4,), max_iter=7, tol=1e9, n_iter_no_change=np.inf, random_state=0)
    model.fit(X_CLS, Y_CLS)
    bn.save(model, tmp_path / "m.safetensors")
    assert bn.load(tmp_path / "m.safetensors").n_iter_no_change == np.inf


# ---------------------------------------------------------------------------- refused at save


def test_save_refuses_what_a_file_cannot_hold(tmp_path):
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2,
            random_state=np.random.RandomState(0)).fit(X40, Y40)
    with pytest.raises(ValueError, match="random_state"):
        bn.save(model, tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="backendnn estimator"):
        bn.save(object(), tmp_path / "m.safetensors")


def test_a_subclass_reusing_a_builtin_name_is_refused_at_save(backend, tmp_path):
    """On a22ab53 the file said "tanh" and loaded as the built-in Tanh (probabilities off
    by up to 0.26). Now save refuses, naming the problem, and writes nothing."""
    clf = bn.MLPClassifier((4,), activation=TwiceTanh(), max_iter=3, random_state=0)
    clf.fit(backend.asarray(X40), backend.asarray((Y40 > 0).astype(np.int64)))
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="activation.*TwiceTanh.*register"):
        bn.save(clf, path)
    assert not path.exists()


def test_generator_random_state_is_refused_at_save(tmp_path):
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2,
            random_state=np.random.RandomState(0)).fit(X30, X30[:, 0])
    with pytest.raises(ValueError, match="random_state"):
        bn.save(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_byte_labels_are_refused_at_save_with_a_clear_error(tmp_path):
    model = bn.MLPClassifier((3,), max_iter=2).fit(X30, np.array([b"a", b"b", b"c"] * 10))
    with pytest.raises(ValueError, match="class labels of dtype"):
        bn.save(model, tmp_path / "m.safetensors")


def test_a_custom_layer_is_refused_at_save(tmp_path):
    class Twice(Flatten):
        def forward(self, params, x):
            y, cache = super().forward(params, x)
            return 2.0 * y, cache

    images = np.random.default_rng(0).normal(size=(24, 2, 6, 5))  # test_layer_stacks.py's
    model = bn.NeuralNetClassifier([Twice()], max_iter=1).fit(images, np.arange(24) % 3)
    with pytest.raises(ValueError, match="only the layers of backendnn.layers"):
        bn.save(model, tmp_path / "m.safetensors")


# ---------------------------------------------------------------------------- paths and modes


def test_save_into_a_missing_folder_names_the_path(backend, tmp_path):
    target = tmp_path / "no" / "such" / "m.safetensors"
    model = bn.Perceptron(max_iter=2).fit(backend.asarray(X30), backend.asarray(Y30))
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        bn.save(model, target)
    assert str(target) in str(info.value)


def test_saved_files_respect_the_umask_and_keep_an_existing_mode(backend, tmp_path):
    model = bn.Perceptron(max_iter=2).fit(backend.asarray(X30), backend.asarray(Y30))
    old = os.umask(0o027)
    try:
        path = save(model, tmp_path / "new.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    path.chmod(0o644)
    save(model, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_save_to_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        bn.save(bn.Perceptron(max_iter=2).fit(X30, Y30), tmp_path)
