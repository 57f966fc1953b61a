"""``activations.register(name, cls)`` is all a custom activation needs to be saved and
loaded: the class need not carry a ``name`` of its own."""

from __future__ import annotations

import numpy as np
import pytest

import backendnn as bn
from backendnn import _backend, activations
from tests.conftest import assert_close

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y = X[:, 0] - 2.0 * X[:, 1] * X[:, 2]


class Cube(activations.Activation):
    """f(z) = z³, f'(z) = 3z²; no ``name`` attribute (it inherits the base class's)."""

    def forward(self, z):
        return z * z * z

    def derivative(self, z, y=None):
        return 3.0 * z * z


@pytest.fixture
def registry(monkeypatch):
    """Registrations made in a test are undone after it."""
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))


@pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")  # 5 L-BFGS iterations
@pytest.mark.parametrize("given", ["object", "name"])
def test_registering_a_class_without_a_name_is_enough_to_save_it(
    backend, tmp_path, registry, given
):
    assert "name" not in vars(Cube)
    activations.register("cube", Cube)
    model = bn.MLPRegressor(
        hidden_layer_sizes=(4,),
        activation=Cube() if given == "object" else "cube",
        solver="lbfgs",
        max_iter=5,
        random_state=0,
    ).fit(backend.asarray(X), backend.asarray(Y))
    path = tmp_path / "cube.safetensors"
    bn.save(model, path)
    loaded = bn.load(path, backend=backend.name)
    assert activations.get(loaded.activation) == Cube()
    assert_close(
        loaded.predict(backend.asarray(X)),
        _backend.to_numpy(model.predict(backend.asarray(X))),
        backend=backend,
        rtol=0.0,
    )
