"""Caches keyed by value, never by ``repr`` or ``id`` (``backendnn._cache``, the compiled
steps of ``backendnn.train``, the fitted weights moved to another library): regression tests
of bugs found on a22ab53. There, compiled steps were keyed by ``repr`` (two custom
activations sharing a repr shared one compiled step) and moved weights by ``id`` (an
in-place edit of ``coefs_`` kept serving the old weights).
"""

from __future__ import annotations

import numpy as np
import pytest

import backendnn as bn
from backendnn import _backend, _cache, _compiled, activations
from tests._helpers import X30, X40, Y40, Scaled, ScaledTanh, TwiceTanh, short_regressor
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

# ---------------------------------------------------------------------------- compiled steps


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_activations_sharing_a_repr_get_their_own_compiled_step(backend, solver):
    """On a22ab53, JAX reused the c = 1 step for c = 3 and returned its weights."""
    Xb, Yb = backend.asarray(X40), backend.asarray(Y40)
    first = short_regressor(ScaledTanh(1.0), solver).fit(Xb, Yb)
    second = short_regressor(ScaledTanh(3.0), solver).fit(Xb, Yb)
    reference = short_regressor(ScaledTanh(3.0), solver).fit(X40, Y40)  # NumPy: nothing compiled
    for ours, ref in zip(second.coefs_, reference.coefs_):
        assert_close(ours, ref, backend=backend, dtype="float64", rtol=1e-9, atol=1e-12)
    assert not np.allclose(_backend.to_numpy(first.coefs_[0]), reference.coefs_[0])
    # and prediction's compiled forward too
    assert_close(second.predict(Xb), reference.predict(X40), backend=backend, dtype="float64")


def test_editing_the_activation_object_after_fit_changes_nothing(backend):
    act = activations.get("swish", beta=1.0)
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), activation=act, max_iter=2, random_state=0)
    model.fit(backend.asarray(X30), backend.asarray(X30[:, 0]))
    before = _backend.to_numpy(model.predict(backend.asarray(X30)))
    act.beta = 5.0
    # exact: the same computation repeated (the edited beta would change it visibly)
    np.testing.assert_array_equal(_backend.to_numpy(model.predict(backend.asarray(X30))), before)


def test_compiled_cache_is_bounded(backend):
    """Fits of many different architectures keep at most the cache's size compiled."""
    before = len(_compiled._COMPILED)
    for width in range(1, _compiled._COMPILED.size + 8):
        bn.MLPRegressor(hidden_layer_sizes=(width,), max_iter=1).fit(backend.asarray(X40[:8]),
                backend.asarray(Y40[:8]))
    assert len(_compiled._COMPILED) <= _compiled._COMPILED.size
    assert before <= _compiled._COMPILED.size


# ---------------------------------------------------------------------------- cache keys


def test_cache_keys_follow_values_not_reprs():
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


def test_slotted_activation_parameters_are_not_shared_by_the_cache():
    class Slotted(activations.Activation):
        __slots__ = ("k",)
        name = "slotted"

        def __init__(self, k):
            self.k = k

    assert _cache.freeze(Slotted(1.0)) != _cache.freeze(Slotted(100.0))


# ---------------------------------------------------------------------------- moved weights


def _other(backend):
    """A library other than the backend's to fit on (the weights then have to move)."""
    return "array_api_strict" if backend.name == "numpy" else "numpy"


def test_weights_edited_in_place_are_moved_again(backend):
    """On a22ab53, predictions on JAX input kept using the weights from before the edit."""
    fit_lib = _other(backend)
    model = bn.MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0, dtype="float64")
    model.fit(bn.to_backend(X40, fit_lib), bn.to_backend(Y40, fit_lib))
    model.predict(backend.asarray(X40))  # moves and keeps the weights for the backend
    model.coefs_[0] *= -3.0  # in place, in the fitting library
    expected = _backend.to_numpy(model.predict(bn.to_backend(X40, fit_lib)))
    assert_close(model.predict(backend.asarray(X40)), expected, backend=backend, dtype="float64")
    model.intercepts_ = [b + 1.0 for b in model.intercepts_]  # assigned anew
    expected = _backend.to_numpy(model.predict(bn.to_backend(X40, fit_lib)))
    assert_close(model.predict(backend.asarray(X40)), expected, backend=backend, dtype="float64")


def test_unchanged_weights_are_moved_once(backend):
    model = bn.MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0, dtype="float64")
    model.fit(bn.to_backend(X40, _other(backend)), bn.to_backend(Y40, _other(backend)))
    first, _ = model._params_on(backend.asarray(X40))
    assert model._params_on(backend.asarray(X40))[0][0][0] is first[0][0]
