"""Optimisers: pure functions of (params, gradients, state) -> (new params, new state).

No array is ever mutated, so a whole training step compiles under ``jax.jit``. The
learning rate is passed in as a host number each step (schedules live on the host),
which keeps one compiled step for every learning rate.

Update rules and defaults are scikit-learn's (``sklearn.neural_network._stochastic_optimizers``),
so the two give the same iterates from the same start. Full-batch gradient descent
(notes, eqs. 21-24) is :class:`SGD` with the whole data set as the batch.

The contract a training step relies on: ``init(params) -> state``,
``update(params, grads, state, lr) -> (params, state)``, ``step_size(lr, t) -> float``
and the attribute ``scaled_gradients``: when True, the step passes ``lr * g`` (folded
into backpropagation, one multiply fewer per parameter) and calls
``update(..., scaled=True)``; a subclass that overrides ``update`` without handling
``scaled`` sets it to False. L-BFGS is in :mod:`backendnn.lbfgs`, the learning-rate
schedules with the loop that changes them, in :mod:`backendnn.train`.

Imports only :mod:`backendnn._backend`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ._backend import array_namespace

Tree = list  # list[tuple[Array, ...]]: one tuple of arrays per layer


def tree_map(fn: Callable[..., Any], *trees: Tree) -> Tree:
    """Apply ``fn`` to matching arrays of parameter-shaped trees."""
    return [tuple(map(fn, *groups)) for groups in zip(*trees)]


def _zeros_like(params: Tree) -> Tree:
    return tree_map(lambda a: array_namespace(a).zeros_like(a), params)


@dataclass(frozen=True)
class SGD:
    """Minibatch SGD with momentum (scikit-learn's rule):

        v <- mu v - lr g,   theta <- theta + v                (classical momentum)
        v <- mu v - lr g,   theta <- theta + mu v - lr g      (Nesterov)

    With ``momentum=0`` this is the notes' plain step theta <- theta - lr g (eqs. 21-22).
    """

    momentum: float = 0.9
    nesterov: bool = True
    #: the rule uses g only as lr g: a step may pass lr g with ``scaled=True``
    scaled_gradients: ClassVar[bool] = True

    def init(self, params: Tree) -> Tree:
        if self.momentum == 0:  # no velocity to carry: a compiled step then has none either
            return [() for _ in params]
        return _zeros_like(params)

    def update(
        self, params: Tree, grads: Tree, state: Tree, lr: Any, scaled: bool = False
    ) -> tuple[Tree, Tree]:
        """The new (params, velocity); ``scaled=True``: ``grads`` already hold lr g.

        The rule uses the gradient only as lr g, so a training step may pass lr g itself,
        folding lr into backpropagation (``Network.loss_and_grad``'s ``grad_scale``)
        rather than multiplying every parameter's gradient.
        """
        mu = self.momentum
        lr_g = grads if scaled else tree_map(lambda g: lr * g, grads)
        if mu == 0:  # plain SGD: skip the velocity arithmetic (it stays zero)
            return tree_map(lambda p, s: p - s, params, lr_g), state
        velocity = tree_map(lambda v, s: mu * v - s, state, lr_g)
        if self.nesterov:
            step = tree_map(lambda v, s: mu * v - s, velocity, lr_g)
        else:
            step = velocity
        return tree_map(lambda p, s: p + s, params, step), velocity

    def step_size(self, lr: float, t: int) -> float:
        """The learning rate to pass for update number ``t`` (1-based): ``lr`` itself."""
        return lr


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba), scikit-learn's form:

        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
        theta <- theta - lr_t m / (sqrt(v) + eps),   lr_t = lr sqrt(1 - b2^t) / (1 - b1^t).

    ``lr_t`` is computed on the host by :meth:`step_size` and passed to :meth:`update`.
    """

    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    #: the second moment needs g itself
    scaled_gradients: ClassVar[bool] = False

    def init(self, params: Tree) -> tuple[Tree, Tree]:
        return _zeros_like(params), _zeros_like(params)

    def update(
        self, params: Tree, grads: Tree, state: tuple[Tree, Tree], lr: Any
    ) -> tuple[Tree, tuple[Tree, Tree]]:
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        m = tree_map(lambda m, g: b1 * m + (1.0 - b1) * g, state[0], grads)
        v = tree_map(lambda v, g: b2 * v + (1.0 - b2) * (g * g), state[1], grads)
        new = tree_map(
            lambda p, m, v: p - lr * m / (array_namespace(v).sqrt(v) + eps), params, m, v
        )
        return new, (m, v)

    def step_size(self, lr: float, t: int) -> float:
        """lr sqrt(1 - b2^t) / (1 - b1^t) for update number ``t`` (1-based)."""
        return lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
