"""Nothing silently wrong (issue 15): an honest gradient checker, model files that cannot
change what a model is, hyper-parameters that survive a file, and errors that name the
problem. Each case runs on the ``backend`` fixture's backends where it involves arrays.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

import backendnn as bn
from backendnn import _backend, activations

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 3))
Y = (X[:, 0] > 0).astype(np.int64)


def _fitted_state(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


# ---------------------------------------------------------------------- the gradient checker


# ---------------------------------------------------------------------- inputs and parameters


def test_overflow_on_cast_is_named(backend):
    Xb = backend.asarray(X * 1e300)
    with pytest.raises(ValueError, match="X is finite but overflows float32"):
        bn.MLPRegressor(hidden_layer_sizes=(3,), dtype="float32").fit(Xb, backend.asarray(X[:, 0]))
    with pytest.raises(ValueError, match="y is finite but overflows float32"):
        bn.MLPRegressor(hidden_layer_sizes=(3,), dtype="float32").fit(
            backend.asarray(X), backend.asarray(X[:, 0] * 1e300)
        )
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        bn.MLPRegressor(hidden_layer_sizes=(3,)).fit(backend.asarray(X * np.inf),
                backend.asarray(X[:, 0]))


def test_object_labels_with_nan_or_none():
    for missing in (np.nan, None):
        y = np.array([0, 1, missing] * 10, dtype=object)
        with pytest.raises(ValueError, match="missing labels"):
            bn.MLPClassifier((3,), max_iter=2).fit(X, y)


@pytest.mark.parametrize(
    ("param", "value"),
    [("hidden_layer_sizes", None), ("hidden_layer_sizes", 1e9), ("hidden_layer_sizes", "4"),
     ("max_iter", 1.5), ("max_iter", float("inf")), ("max_iter", 1e9), ("epsilon", 0.0),
     ("alpha", float("nan")), ("n_iter_no_change", 0), ("shuffle", "yes")],
)  # fmt: skip
def test_invalid_parameters_named_and_model_unchanged(backend, param, value):
    model = bn.MLPClassifier((3,), max_iter=2, random_state=0)
    model.fit(backend.asarray(X), backend.asarray(Y))
    before = _fitted_state(model)
    with pytest.raises(ValueError, match=f"^{param} must be"):
        model.set_params(**{param: value}).fit(backend.asarray(X), backend.asarray(Y))
    after = _fitted_state(model)
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] is before[key], key  # the very same objects: nothing committed


# ---------------------------------------------------------------------- model files


def _save(model, path):
    bn.save(model, path)
    return path


def _meta(path):
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["backendnn"])


def _write_meta(path, raw: str):
    save_file(load_file(str(path)), str(path), metadata={"backendnn": raw})


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
    model.fit(backend.asarray(X), backend.asarray(Y))
    loaded = bn.load(_save(model, tmp_path / "m.safetensors"), backend=backend.name)
    for key, v in value.items():
        got = loaded.get_params()[key]
        if key == "dtype":
            assert got == "float32"
        else:
            assert got == (tuple(int(h) for h in v) if isinstance(v, tuple) else v), key
    loaded.fit(backend.asarray(X), backend.asarray(Y))  # refits as it is


def test_generator_random_state_is_refused_at_save(tmp_path):
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2,
            random_state=np.random.RandomState(0)).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="random_state"):
        bn.save(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_byte_labels_are_refused_at_save_with_a_clear_error(tmp_path):
    model = bn.MLPClassifier((3,), max_iter=2).fit(X, np.array([b"a", b"b", b"c"] * 10))
    with pytest.raises(ValueError, match="class labels of dtype"):
        bn.save(model, tmp_path / "m.safetensors")


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
    model = bn.Perceptron(max_iter=3).fit(backend.asarray(X), backend.asarray(Y))
    path = _save(model, tmp_path / "p.safetensors")
    _write_meta(path, raw)
    with pytest.raises(ValueError, match=message):
        bn.load(path)


def test_bad_activation_parameter_names_the_file_and_field(backend, tmp_path):
    model = bn.MLPClassifier((3,), activation=activations.get("swish", beta=1.5), max_iter=2)
    path = _save(model.fit(backend.asarray(X), backend.asarray(Y)), tmp_path / "m.safetensors")
    meta = _meta(path)
    meta["params"]["activation"]["beta"] = "abc"
    _write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match=r"m\.safetensors.*params\.activation"):
        bn.load(path)


def test_perceptron_features_disagreeing_with_coef(backend, tmp_path):
    model = bn.Perceptron(max_iter=3).fit(backend.asarray(X), backend.asarray(Y))
    path = _save(model, tmp_path / "p.safetensors")
    meta = _meta(path)
    meta["attributes"]["n_features_in_"] = 5
    _write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match="tensor 'coef' has shape"):
        bn.load(path)


def test_save_into_a_missing_folder_names_the_path(backend, tmp_path):
    target = tmp_path / "no" / "such" / "m.safetensors"
    model = bn.Perceptron(max_iter=2).fit(backend.asarray(X), backend.asarray(Y))
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        bn.save(model, target)
    assert str(target) in str(info.value)


def test_saved_files_respect_the_umask_and_keep_an_existing_mode(backend, tmp_path):
    model = bn.Perceptron(max_iter=2).fit(backend.asarray(X), backend.asarray(Y))
    old = os.umask(0o027)
    try:
        path = _save(model, tmp_path / "new.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    path.chmod(0o644)
    _save(model, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# ---------------------------------------------------------------------- hostile metadata values

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
            X, Y
        ),
        "regressor": bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0).fit(X,
                X[:, :2]),
        "perceptron": bn.Perceptron(max_iter=3).fit(X, Y),
    }
    return {k: (m, _save(m, folder / f"{k}.safetensors")) for k, m in models.items()}


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
    meta = _meta(source)
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
    out = loaded.predict(X)
    assert type(loaded) is type(model)
    if name not in _DEFINING:
        np.testing.assert_array_equal(out, model.predict(X))


# ---------------------------------------------------------------------- JAX without 64-bit


def test_requested_float64_on_jax_without_x64_warns_once():
    pytest.importorskip("jax")
    code = (
        "import warnings, numpy as np, jax.numpy as jnp, backendnn as bn\n"
        "warnings.simplefilter('always')\n"
        "X = jnp.asarray(np.random.default_rng(0).normal(size=(20, 3)), dtype=jnp.float32)\n"
        "y = jnp.arange(20) % 2\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    m = bn.MLPClassifier((3,), max_iter=1, dtype='float64').fit(X, y)\n"
        "    bn.MLPClassifier((3,), max_iter=1, dtype='float64').fit(X, y)\n"
        "msgs = [str(x.message) for x in w if 'JAX_ENABLE_X64' in str(x.message)]\n"
        "print(len(msgs), m.coefs_[0].dtype)\n"
    )
    env = {**os.environ, "JAX_ENABLE_X64": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "float32"]


# ---------------------------------------------------------------------- review findings


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


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))


def test_a_registered_name_is_saved_with_its_class(backend, tmp_path, registry):
    activations.register("poly", Cube)
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), activation="poly", max_iter=2, random_state=0)
    path = _save(
        model.fit(backend.asarray(X), backend.asarray(X[:, 0])), tmp_path / "m.safetensors"
    )
    activations._REGISTRY["poly"] = Square  # another program, another class under the name
    with pytest.raises(ValueError, match="was saved as"):
        bn.load(path)
    # and the fitted model itself keeps its function
    before = _backend.to_numpy(model.predict(backend.asarray(X)))
    np.testing.assert_array_equal(_backend.to_numpy(model.predict(backend.asarray(X))), before)


def test_editing_the_activation_object_after_fit_changes_nothing(backend):
    act = activations.get("swish", beta=1.0)
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), activation=act, max_iter=2, random_state=0)
    model.fit(backend.asarray(X), backend.asarray(X[:, 0]))
    before = _backend.to_numpy(model.predict(backend.asarray(X)))
    act.beta = 5.0
    np.testing.assert_array_equal(_backend.to_numpy(model.predict(backend.asarray(X))), before)


def test_slotted_activation_parameters_are_not_shared_by_the_cache():
    from backendnn import _cache

    class Slotted(activations.Activation):
        __slots__ = ("k",)
        name = "slotted"

        def __init__(self, k):
            self.k = k

    assert _cache.freeze(Slotted(1.0)) != _cache.freeze(Slotted(100.0))


@pytest.mark.parametrize(
    ("params", "ok"),
    [({"hidden_layer_sizes": (h for h in (3,))}, False), ({"verbose": 1}, True),
     ({"verbose": -1}, False), ({"solver": np.str_("sgd")}, True),
     ({"dtype": "notfloat64"}, False)],
)  # fmt: skip
def test_parameter_kinds_as_scikit_learn_has_them(params, ok):
    model = bn.MLPClassifier((3,), max_iter=1).set_params(**params)
    if ok:
        model.fit(X, Y)
    else:
        with pytest.raises(ValueError, match=f"^{next(iter(params))} must be"):
            model.fit(X, Y)


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
    path = _save(bn.MLPClassifier((3,), max_iter=2).fit(X, Y), tmp_path / "m.safetensors")
    meta = _meta(path)
    edit(meta)
    _write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match=message):
        bn.load(path)


def test_layer_arguments_must_describe_the_layer_exactly(tmp_path):
    stack = [bn.layers.Flatten(), bn.layers.Dense(60, 4), bn.layers.Activation("relu")]
    model = bn.NeuralNetClassifier(stack, max_iter=1).fit(X.repeat(20, axis=1), Y)
    path = _save(model, tmp_path / "s.safetensors")
    meta = _meta(path)
    meta["params"]["layers"][1]["bias"] = "no"
    _write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match="does not describe itself"):
        bn.load(path)
    meta["params"]["layers"][1]["bias"] = True
    meta["attributes"]["image_shape_"] = [1, 30000, 30000]  # an empty probe: no memory
    meta["attributes"]["n_features_in_"] = 30000 * 30000
    _write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError):
        bn.load(path)


def test_save_to_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        bn.save(bn.Perceptron(max_iter=2).fit(X, Y), tmp_path)
