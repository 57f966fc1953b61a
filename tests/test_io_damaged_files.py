"""Model files that are damaged, foreign, edited or half-written (``backendnn.io``): load
refuses them with a ValueError naming the file and the problem (FileNotFoundError for a
missing path), never with another exception and never by building a model that computes
something else; every field is checked against the model's schema before a model is built
(and arbitrary JSON in any field, property-based); a crash mid-save leaves the previous file.

Round trips and what save refuses are in ``tests/test_io.py``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

import backendnn as bn
from backendnn import _backend, activations
from tests._helpers import (
    X30,
    X40,
    X_OK,
    Y30,
    Y40,
    Y_OK_CLS,
    read_meta,
    rewrite_meta,
    save,
    write_meta,
)

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

# ---------------------------------------------------------------------------- damaged files


@pytest.fixture
def saved(tmp_path):
    model = bn.MLPClassifier((4,), max_iter=3, random_state=0).fit(X_OK, Y_OK_CLS)
    path = tmp_path / "model.safetensors"
    bn.save(model, path)
    return model, path


def test_load_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        bn.load(tmp_path / "absent.safetensors")


def test_load_truncated(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    for cut in (0, 5, 100, len(data) // 2, len(data) - 1):
        broken = tmp_path / f"cut{cut}.safetensors"
        broken.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut"):
            bn.load(broken)


def test_load_flipped_bytes(saved, tmp_path):
    _, path = saved
    data = bytearray(path.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    for position in (0, 3, 8, 9, 8 + header_len // 2):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        broken = tmp_path / f"flip{position}.safetensors"
        broken.write_bytes(bytes(flipped))
        with pytest.raises(ValueError):
            bn.load(broken)


def test_load_foreign_safetensors(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"weight": np.ones((2, 2), np.float32)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not a backendnn model"):
        bn.load(path)


def test_load_unknown_activation(saved, tmp_path):
    from safetensors.numpy import load_file, save_file

    _, path = saved
    tensors = load_file(str(path))
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    meta = json.loads(
        json.loads(path.read_bytes()[8 : 8 + header_len])["__metadata__"]["backendnn"]
    )
    meta["params"]["activation"] = "warp_drive"
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={"backendnn": json.dumps(meta)})
    with pytest.raises(ValueError, match="unknown activation 'warp_drive'"):
        bn.load(bad)


def test_crash_mid_save_leaves_previous_file(saved, monkeypatch):
    model, path = saved
    before = path.read_bytes()
    bigger = bn.MLPClassifier((50,), max_iter=3, random_state=0).fit(X_OK, Y_OK_CLS)

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated crash before the rename)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        bn.save(bigger, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    # exact: the same weights (bit for bit from the file), the same library and call
    np.testing.assert_array_equal(bn.load(path).predict(X_OK), model.predict(X_OK))


# ---------------------------------------------------------------------------- edited metadata


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[1, 2]", "not a backendnn model description"),
        ('{"format": "backendnn", "version": "2"}', "'version' must be an integer"),
        ("[" * 100_000 + "]" * 100_000, "damaged backendnn metadata"),
        ("not json", "damaged backendnn metadata"),
    ],
)
def test_metadata_of_the_wrong_shape(backend, tmp_path, raw, message):
    model = bn.Perceptron(max_iter=3).fit(backend.asarray(X30), backend.asarray(Y30))
    path = save(model, tmp_path / "p.safetensors")
    write_meta(path, raw)
    with pytest.raises(ValueError, match=message):
        bn.load(path)


def test_bad_activation_parameter_names_the_file_and_field(backend, tmp_path):
    model = bn.MLPClassifier((3,), activation=activations.get("swish", beta=1.5), max_iter=2)
    path = save(model.fit(backend.asarray(X30), backend.asarray(Y30)), tmp_path / "m.safetensors")
    meta = read_meta(path)
    meta["params"]["activation"]["beta"] = "abc"
    write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match=r"m\.safetensors.*params\.activation"):
        bn.load(path)


def test_perceptron_features_disagreeing_with_coef(backend, tmp_path):
    model = bn.Perceptron(max_iter=3).fit(backend.asarray(X30), backend.asarray(Y30))
    path = save(model, tmp_path / "p.safetensors")
    meta = read_meta(path)
    meta["attributes"]["n_features_in_"] = 5
    write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match="tensor 'layers.0.W' has shape"):
        bn.load(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["attributes"].update(predict=0), r"unknown fields \['predict'\]"),
        (lambda m: m["attributes"].update(_dtype_name="int64"), "attributes._dtype_name"),
        (lambda m: m["attributes"].update(n_features_in_="3"), "attributes.n_features_in_"),
        (lambda m: m["attributes"].pop("loss_curve_"), r"lacks \['loss_curve_'\]"),
        (lambda m: m["params"].update(alpha=-1), "params.alpha"),
        (lambda m: m["attributes"].update(n_features_in_=4), "tensor 'layers.0.W' has shape"),
        (
            lambda m: m["attributes"].update(classes_={"values": [0, 1, 2], "dtype": "<i8"}),
            "3 classes need 3 outputs",
        ),
        (lambda m: m.update(version="2"), "'version' must be an integer"),
    ],
)
def test_every_field_is_checked_before_a_model_is_built(backend, tmp_path, edit, message):
    model = bn.MLPClassifier((4,), max_iter=3, random_state=0)
    model.fit(backend.asarray(X40), backend.asarray((Y40 > 0).astype(np.int64)))
    path = tmp_path / "m.safetensors"
    bn.save(model, path)
    rewrite_meta(path, edit)
    with pytest.raises(ValueError, match=message) as info:
        bn.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["attributes"].update(n_layers_=9), "n_layers_ 9"),
        (lambda m: m["attributes"].update(n_iter_=99), "n_iter_ 99"),
        (lambda m: m["attributes"].update(image_shape_=[1, 1, 5]), "image_shape_"),
        (lambda m: m.update(estimator=["MLPClassifier"]), "unknown model kind"),
        (
            lambda m: m["attributes"].update(classes_={"values": [0, 2**70], "dtype": "<i8"}),
            "do not fit dtype",
        ),
    ],
)
def test_disagreeing_or_overflowing_fields(tmp_path, edit, message):
    path = save(bn.MLPClassifier((3,), max_iter=2).fit(X30, Y30), tmp_path / "m.safetensors")
    meta = read_meta(path)
    edit(meta)
    write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match=message):
        bn.load(path)


def test_layer_arguments_must_describe_the_layer_exactly(tmp_path):
    stack = [bn.layers.Flatten(), bn.layers.Dense(60, 4), bn.layers.Activation("relu")]
    model = bn.NeuralNetClassifier(stack, max_iter=1).fit(X30.repeat(20, axis=1), Y30)
    path = save(model, tmp_path / "s.safetensors")
    meta = read_meta(path)
    meta["params"]["layers"][1]["bias"] = "no"
    write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match="does not describe itself"):
        bn.load(path)
    meta["params"]["layers"][1]["bias"] = True
    meta["attributes"]["image_shape_"] = [1, 30000, 30000]  # an empty probe: no memory
    meta["attributes"]["n_features_in_"] = 30000 * 30000
    write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError):
        bn.load(path)


class Square(activations.Activation):
    name = "poly"

    def forward(self, z):
        return z * z

    def derivative(self, z, y=None):
        return 2.0 * z


class Cube(Square):
    def forward(self, z):
        return z * z * z

    def derivative(self, z, y=None):
        return 3.0 * z * z


def test_a_registered_name_is_saved_with_its_class(backend, tmp_path, registry):
    activations.register("poly", Cube)
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), activation="poly", max_iter=2, random_state=0)
    path = save(
        model.fit(backend.asarray(X30), backend.asarray(X30[:, 0])), tmp_path / "m.safetensors"
    )
    activations._REGISTRY["poly"] = Square  # another program, another class under the name
    with pytest.raises(ValueError, match="was saved as"):
        bn.load(path)
    # and the fitted model itself keeps its function (exact: one computation repeated)
    before = _backend.to_numpy(model.predict(backend.asarray(X30)))
    np.testing.assert_array_equal(_backend.to_numpy(model.predict(backend.asarray(X30))), before)


# ---------------------------------------------------------------------------- any metadata value

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=12,
)  # fmt: skip


# fields whose value defines the function the model computes
_DEFINING = {"_fitted_activation", "_fitted_hidden", "out_activation_", "classes_",
             "n_features_in_", "n_outputs_", "_dtype_name", "_multilabel", "_y_1d",
             "image_shape_"}  # fmt: skip


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    models = {
        "classifier": bn.MLPClassifier((3,), activation="swish", max_iter=3, random_state=0).fit(
            X30, Y30
        ),
        "regressor": bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0).fit(X30,
                X30[:, :2]),
        "perceptron": bn.Perceptron(max_iter=3).fit(X30, Y30),
    }
    return {k: (m, save(m, folder / f"{k}.safetensors")) for k, m in models.items()}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_arbitrary_metadata_values_load_as_described_or_raise_value_error(
    saved_models, tmp_path, data
):
    """Any value written into any field of a valid file: load returns a working model or
    raises ValueError, never another exception; unless the field defines the function, the
    loaded model predicts exactly as the saved one."""
    kind = data.draw(st.sampled_from(sorted(saved_models)))
    model, source = saved_models[kind]
    meta = read_meta(source)
    section = data.draw(st.sampled_from(["params", "attributes"]))
    name = data.draw(st.sampled_from(sorted(meta[section]) + ["predict", "__class__"]))
    value = data.draw(_JSON)
    meta[section][name] = value
    path = tmp_path / "edited.safetensors"
    save_file(load_file(str(source)), str(path), metadata={"backendnn": json.dumps(meta)})
    try:
        loaded = bn.load(path)
    except ValueError:
        return
    out = loaded.predict(X30)
    assert type(loaded) is type(model)
    if name not in _DEFINING:
        # exact: the same weights (bit for bit from the file) through the same NumPy code
        np.testing.assert_array_equal(out, model.predict(X30))
