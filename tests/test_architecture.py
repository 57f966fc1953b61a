"""The architecture issue's contracts: caches that cannot serve wrong results, activation
objects as first-class citizens, model files checked against each model's schema, and one
documented record for callbacks.

The first three groups are regression tests of bugs found on a22ab53: compiled steps
keyed by ``repr`` (two custom activations sharing a repr shared one compiled step),
moved weights keyed by ``id`` (an in-place edit of ``coefs_`` kept serving the old
weights), and activation objects turned into names (a custom one failed to fit; a
subclass reusing a built-in name came back from a file as the built-in).
"""

from __future__ import annotations

import pydoc

import numpy as np
import pytest

import backendnn as bn
from backendnn import _backend, activations, train
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y = np.sin(X @ np.array([1.0, -2.0, 0.5]))


class Scaled(activations.Activation):
    """c tanh(z): its repr, Scaled(), is the same for every c."""

    name = "scaled"

    def __init__(self, c: float):
        self.c = c

    def forward(self, z):
        return self.c * _backend.array_namespace(z).tanh(z)

    def derivative(self, z, y=None):
        t = _backend.array_namespace(z).tanh(z)
        return self.c * (1.0 - t * t)


class ScaledTanh(activations.Tanh):
    """c tanh(z) under the built-in name (so a22ab53 could fit it); its repr, ScaledTanh(),
    is the same for every c."""

    from_output = False

    def __init__(self, c: float):
        self.c = c

    def forward(self, z):
        return self.c * _backend.array_namespace(z).tanh(z)

    def derivative(self, z, y=None):
        t = _backend.array_namespace(z).tanh(z)
        return self.c * (1.0 - t * t)


class Cube(activations.Activation):
    name = "cube"

    def forward(self, z):
        return z * z * z

    def derivative(self, z, y=None):
        return 3.0 * z * z


class TwiceTanh(activations.Tanh):
    """Reuses the built-in name "tanh" but computes 2 tanh(z)."""

    from_output = False  # the derivative below needs z

    def forward(self, z):
        return 2.0 * _backend.array_namespace(z).tanh(z)

    def derivative(self, z, y=None):
        t = _backend.array_namespace(z).tanh(z)
        return 2.0 * (1.0 - t * t)


def _regressor(activation, solver="sgd"):
    return bn.MLPRegressor(
        hidden_layer_sizes=(4,), activation=activation, solver=solver, max_iter=3, shuffle=False,
        learning_rate_init=0.05, random_state=0,
    )  # fmt: skip


# ---------------------------------------------------------------------- bug 1: compiled caches


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_activations_sharing_a_repr_get_their_own_compiled_step(backend, solver):
    """On a22ab53, JAX reused the c = 1 step for c = 3 and returned its weights."""
    Xb, Yb = backend.asarray(X), backend.asarray(Y)
    first = _regressor(ScaledTanh(1.0), solver).fit(Xb, Yb)
    second = _regressor(ScaledTanh(3.0), solver).fit(Xb, Yb)
    reference = _regressor(ScaledTanh(3.0), solver).fit(X, Y)  # NumPy: nothing compiled
    for ours, ref in zip(second.coefs_, reference.coefs_):
        assert_close(ours, ref, backend=backend, dtype="float64", rtol=1e-9, atol=1e-12)
    assert not np.allclose(_backend.to_numpy(first.coefs_[0]), reference.coefs_[0])
    # and prediction's compiled forward too
    assert_close(second.predict(Xb), reference.predict(X), backend=backend, dtype="float64")


def test_cache_keys_follow_values_not_reprs():
    from backendnn import _cache

    net = lambda beta: bn.Network.mlp(3, (4,), 2, activations.get("swish", beta=beta))  # noqa: E731
    assert _cache.freeze(net(1.5)) == _cache.freeze(net(1.5))
    assert _cache.freeze(net(1.5)) != _cache.freeze(net(2.0))
    assert _cache.freeze(Scaled(1.0)) != _cache.freeze(Scaled(3.0))
    assert _cache.freeze(TwiceTanh()) != _cache.freeze(activations.Tanh())

    def loss_a(y, h):
        return None

    def loss_b(y, h):
        return None

    assert _cache.freeze(loss_a) != _cache.freeze(loss_b)  # functions: by identity


def test_compiled_cache_is_bounded(backend):
    """Fits of many different architectures keep at most the cache's size compiled."""
    before = len(train._COMPILED)
    for width in range(1, train._COMPILED.size + 8):
        bn.MLPRegressor(hidden_layer_sizes=(width,), max_iter=1).fit(backend.asarray(X[:8]),
                backend.asarray(Y[:8]))
    assert len(train._COMPILED) <= train._COMPILED.size
    assert before <= train._COMPILED.size


# ---------------------------------------------------------------------- bug 2: moved weights


def _other(backend):
    """A library other than the backend's to fit on (the weights then have to move)."""
    return "array_api_strict" if backend.name == "numpy" else "numpy"


def test_weights_edited_in_place_are_moved_again(backend):
    """On a22ab53, predictions on JAX input kept using the weights from before the edit."""
    fit_lib = _other(backend)
    model = bn.MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0, dtype="float64")
    model.fit(bn.to_backend(X, fit_lib), bn.to_backend(Y, fit_lib))
    model.predict(backend.asarray(X))  # moves and keeps the weights for the backend
    model.coefs_[0] *= -3.0  # in place, in the fitting library
    expected = _backend.to_numpy(model.predict(bn.to_backend(X, fit_lib)))
    assert_close(model.predict(backend.asarray(X)), expected, backend=backend, dtype="float64")
    model.intercepts_ = [b + 1.0 for b in model.intercepts_]  # assigned anew
    expected = _backend.to_numpy(model.predict(bn.to_backend(X, fit_lib)))
    assert_close(model.predict(backend.asarray(X)), expected, backend=backend, dtype="float64")


def test_unchanged_weights_are_moved_once(backend):
    model = bn.MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0, dtype="float64")
    model.fit(bn.to_backend(X, _other(backend)), bn.to_backend(Y, _other(backend)))
    first = model._params_on(backend.asarray(X))
    assert model._params_on(backend.asarray(X)) is first


# ---------------------------------------------------------------------- bug 3: activation objects


@pytest.fixture
def registry(monkeypatch):
    """Registrations made in a test are undone after it."""
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))


def test_custom_activation_objects_train_everywhere(backend):
    """On a22ab53, MLPRegressor(activation=Cube()) raised "unknown activation 'cube'"."""
    Xb, Yb = backend.asarray(X), backend.asarray(Y)
    ours = bn.MLPRegressor(hidden_layer_sizes=(4,), activation=Cube(), solver="lbfgs",
            max_iter=5, random_state=0)
    ref = bn.MLPRegressor(hidden_layer_sizes=(4,), activation=Cube(), solver="lbfgs", max_iter=5,
            random_state=0)
    ours.fit(Xb, Yb)
    ref.fit(X, Y)
    assert_close(ours.predict(Xb), ref.predict(X), backend=backend, dtype="float64", rtol=1e-8)
    clf = bn.MLPClassifier((4,), activation=Cube(), max_iter=3, random_state=0)
    clf.fit(Xb, backend.asarray((Y > 0).astype(np.int64)))
    assert clf.predict_proba(Xb).shape == (40, 2)


# ---------------------------------------------------------------------- model-file schema


# ---------------------------------------------------------------------- documentation


DOCUMENTED = [
    bn.MLPClassifier, bn.MLPRegressor, bn.Perceptron, bn.Network, bn.layers.Dense,
    bn.layers.GatedDense, bn.layers.Activation, bn.layers.Flatten, bn.check_gradients,
    bn.save, bn.load,
]  # fmt: skip


@pytest.mark.parametrize("obj", DOCUMENTED, ids=lambda o: o.__name__)
def test_reference_documentation_is_complete(obj):
    doc = pydoc.render_doc(obj, renderer=pydoc.plaintext)
    for section in ("Parameters", "Examples"):
        assert f"{section}\n" in doc.replace(" |  ", ""), f"{obj.__name__}: no {section}"
    if isinstance(obj, type) and issubclass(obj, bn.estimators.NetworkEstimator):
        own = obj.__doc__
        for name in obj._param_names():  # every constructor parameter, ours included
            assert f"{name} :" in own or f"{name}," in own, f"{obj.__name__}: {name}"
        assert "Attributes\n" in own


def test_fit_documents_every_callback_record_key():
    records = []
    bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=1).fit(X, Y, callbacks=[records.append])
    for key in records[0]:
        assert f"``{key}``" in bn.MLPRegressor.fit.__doc__, key


def test_callbacks_are_checked_before_training(backend):
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=1)
    with pytest.raises(TypeError, match="list of callables"):
        model.fit(backend.asarray(X), backend.asarray(Y), callbacks=print)
    assert not hasattr(model, "coefs_")
