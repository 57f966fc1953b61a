"""The minibatch optimisers, one update at a time, against scikit-learn's own
(``sklearn.neural_network._stochastic_optimizers``, which updates NumPy arrays in place).

:class:`~backendnn.optim.SGD` is also given lr g directly (``scaled=True``, as the training
step passes it): both entry points must take scikit-learn's steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neural_network import _stochastic_optimizers as sk_optim

from backendnn import Network, _backend
from backendnn.optim import SGD, Adam, tree_map
from backendnn.train import make_step
from tests.conftest import assert_close

SHAPES = [(3, 4), (4,), (4, 2), (2,)]
LR = 0.05
STEPS = 4


def _draws(seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def _tree(arrays, backend):
    """Flat host arrays as backendnn's tree: one (W, b) tuple per layer."""
    moved = [_backend.from_numpy(a, xp=backend.xp, device=backend.device) for a in arrays]
    return [tuple(moved[i : i + 2]) for i in range(0, len(moved), 2)]


def _flat(tree):
    return [a for layer in tree for a in layer]


def _run(backend, optimizer, params, grads, scaled):
    ours = _tree(params, backend)
    state = optimizer.init(ours)
    for t, g in enumerate(grads, start=1):
        lr = optimizer.step_size(LR, t)
        tree = _tree([lr * a for a in g] if scaled else g, backend)
        extra = {"scaled": True} if scaled else {}
        ours, state = optimizer.update(ours, tree, state, lr, **extra)
    return ours


@pytest.mark.parametrize("scaled", [False, True], ids=["grads", "lr_grads"])
@pytest.mark.parametrize(
    "momentum, nesterov",
    [(0.0, False), (0.9, False), (0.9, True)],
    ids=["plain", "classical", "nesterov"],
)
def test_sgd_takes_scikit_learns_steps(backend, momentum, nesterov, scaled):
    params, grads = _draws(0)
    ours = _run(backend, SGD(momentum=momentum, nesterov=nesterov), params, grads, scaled)
    theirs = [a.copy() for a in params]
    sk = sk_optim.SGDOptimizer(theirs, learning_rate_init=LR, momentum=momentum, nesterov=nesterov)
    for g in grads:
        sk.update_params(theirs, g)
    for a, b in zip(_flat(ours), theirs):
        assert_close(a, b, backend=backend, dtype="float64", rtol=1e-13, atol=1e-15)


def test_adam_takes_scikit_learns_steps(backend):
    params, grads = _draws(1)
    ours = _run(backend, Adam(), params, grads, scaled=False)
    theirs = [a.copy() for a in params]
    sk = sk_optim.AdamOptimizer(theirs, learning_rate_init=LR)
    for g in grads:
        sk.update_params(theirs, g)
    for a, b in zip(_flat(ours), theirs):
        assert_close(a, b, backend=backend, dtype="float64", rtol=1e-13, atol=1e-15)


def test_an_sgd_subclass_without_scaled_gets_the_gradients(backend):
    """make_step folds lr into backpropagation only for an optimiser that declares
    ``scaled_gradients``: a subclass overriding update(params, grads, state, lr) that sets
    it False is given g itself (here it steps by 2 g whatever lr is: lr g would move the
    weights 20 times less)."""

    class Doubling(SGD):
        scaled_gradients = False

        def update(self, params, grads, state, lr):
            return tree_map(lambda p, g: p - 2.0 * g, params, grads), state

    xp = backend.xp
    net = Network.mlp(3, (4,), 2)
    params = net.init(0, xp=xp, device=backend.device, dtype=xp.float64)
    rng = np.random.default_rng(0)
    X = backend.asarray(rng.standard_normal((5, 3)), dtype="float64")
    Y = backend.asarray(rng.standard_normal((5, 2)), dtype="float64")
    opt = Doubling(momentum=0.0)
    new, _, _ = make_step(net, "squared_error", 0.0, opt, xp)(params, opt.init(params), X, Y, 0.1)
    _, grads = net.loss_and_grad(params, X, Y, "squared_error")
    for p, g, n in zip(_flat(params), _flat(grads), _flat(new)):
        expected = _backend.to_numpy(p) - 2.0 * _backend.to_numpy(g)
        assert_close(n, expected, backend=backend, dtype="float64")


def test_an_undeclared_override_fails_loudly_not_silently(backend):
    """The contract is explicit: a subclass that inherits ``scaled_gradients = True`` but
    overrides update() without ``scaled`` gets a TypeError, never silently lr g."""

    class Careless(SGD):
        def update(self, params, grads, state, lr):
            return tree_map(lambda p, g: p - 2.0 * g, params, grads), state

    xp = backend.xp
    net = Network.mlp(3, (4,), 2)
    params = net.init(0, xp=xp, device=backend.device, dtype=xp.float64)
    X = backend.asarray(np.ones((5, 3)), dtype="float64")
    Y = backend.asarray(np.ones((5, 2)), dtype="float64")
    opt = Careless(momentum=0.0)
    with pytest.raises(TypeError, match="scaled"):
        make_step(net, "squared_error", 0.0, opt, xp)(params, opt.init(params), X, Y, 0.1)
