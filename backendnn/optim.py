"""Optimisers: pure functions of (params, gradients, state) -> (new params, new state).

No array is ever mutated, so a whole training step compiles under ``jax.jit``. The
learning rate is passed in as a host number each step (schedules live on the host),
which keeps one compiled step for every learning rate.

:class:`SGD` and :class:`Adam` are scikit-learn's rules
(``sklearn.neural_network._stochastic_optimizers``), so the two give the same iterates from
the same start; :class:`AdamW`, :class:`RMSprop` and :class:`Adagrad` are ``torch.optim``'s,
as is :class:`SGD` at a constant learning rate (its velocity is -lr times torch's buffer,
``weight_decay`` added to the gradient as there). :class:`Adam` puts epsilon outside the
bias correction (scikit-learn's form), which moves it about 1e-5 (relative, at the
defaults) from ``torch.optim.Adam``. ``weight_decay`` acts on every parameter, biases
too, as in ``torch.optim``. Full-batch gradient descent (notes, eqs. 21-24) is :class:`SGD`
with the whole data set as the batch. :class:`ClipGradNorm` wraps any of them with
``torch.nn.utils.clip_grad_norm_``'s rescaling.

The contract a training step relies on: ``init(params) -> state``,
``update(params, grads, state, lr) -> (params, state)``, ``step_size(lr, t) -> float``
and the attribute ``scaled_gradients``: when True, the step passes ``lr * g`` (folded
into backpropagation, one multiply fewer per parameter) and calls
``update(..., scaled=True)``; a subclass that overrides ``update`` without handling
``scaled`` sets it to False. The loop calls ``step_size`` on the host for update number
``t`` (1-based) and passes its result as ``lr``. The state is a nest of lists and tuples
of arrays only (0-d arrays allowed, no Python numbers, no None), of the parameters'
library, device and dtype, its shapes fixed by the parameters' shapes and the
hyper-parameters: a checkpoint saves it and resumes from it exactly, and a move to
another library walks the nest. A rule that needs the update count inside ``update``
(:class:`AdamW`'s bias correction) carries it as a 0-d array of the parameters' dtype
(exact to 2^24 updates in float32, where the correction is 1 long before). L-BFGS is in
:mod:`backendnn.lbfgs`, the learning-rate schedules with the loop that changes them, in
``backendnn.train``.

Imports only ``backendnn._backend``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ._backend import array_namespace, device

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "ClipGradNorm",
]

Tree = list  # list[tuple[Array, ...]]: one tuple of arrays per layer


def tree_map(fn: Callable[..., Any], *trees: Tree) -> Tree:
    """Apply ``fn`` to matching arrays of parameter-shaped trees."""
    return [tuple(map(fn, *groups)) for groups in zip(*trees)]


def _zeros_like(params: Tree) -> Tree:
    return tree_map(lambda a: array_namespace(a).zeros_like(a), params)


def _sqrt(a: Any) -> Any:
    return array_namespace(a).sqrt(a)


def _check(owner: Any, name: str, low: float, high: float, interval: str) -> None:
    """Refuse field ``name`` of ``owner`` unless it is a number (not NaN) in ``interval``
    (e.g. ``"[0, 1)"``) from ``low`` to ``high``; store it as a Python float."""
    value = getattr(owner, name)
    x = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
    ok = (
        x is not None
        and (low < x if interval[0] == "(" else low <= x)
        and (x < high if interval[-1] == ")" else x <= high)
    )
    if not ok:
        raise ValueError(
            f"{type(owner).__name__}: {name} must be a number in {interval}; got {value!r}"
        )
    object.__setattr__(owner, name, x)


def _check_beta_eps(owner: Any) -> None:
    _check(owner, "beta_1", 0.0, 1.0, "[0, 1)")
    _check(owner, "beta_2", 0.0, 1.0, "[0, 1)")
    _check(owner, "epsilon", 0.0, math.inf, "(0, inf)")


@dataclass(frozen=True)
class SGD:
    """Minibatch SGD with momentum (scikit-learn's rule), g + wd theta for g where
    ``weight_decay`` wd > 0 (``torch.optim.SGD``'s decay)::

        v <- mu v - lr g,   theta <- theta + v                (classical momentum)
        v <- mu v - lr g,   theta <- theta + mu v - lr g      (Nesterov)

    With ``momentum=0`` this is the notes' plain step theta <- theta - lr g (eqs. 21-22).
    At a constant lr, v is -lr times ``torch.optim.SGD``'s buffer (dampening 0), so the
    iterates are torch's.
    See :ref:`notes-eq-21` (notes' eqs. 21-22) and :ref:`notes-sgd`.
    """

    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    #: the rule uses g only as lr g: a step may pass lr g with ``scaled=True``
    scaled_gradients: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check(self, "momentum", 0.0, 1.0, "[0, 1]")
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"SGD: nesterov must be True or False; got {self.nesterov!r}")
        _check(self, "weight_decay", 0.0, math.inf, "[0, inf)")

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
        mu, wd = self.momentum, self.weight_decay
        if wd and scaled:  # lr (g + wd theta)
            lr_g = tree_map(lambda s, p: s + (lr * wd) * p, grads, params)
        elif wd:
            lr_g = tree_map(lambda g, p: lr * (g + wd * p), grads, params)
        else:
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
    """Adam (Kingma & Ba), scikit-learn's form::

        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
        theta <- theta - lr_t m / (sqrt(v) + eps),   lr_t = lr sqrt(1 - b2^t) / (1 - b1^t).

    ``lr_t`` is computed on the host by :meth:`step_size` and passed to ``update``.
    eps is added outside the bias correction (``torch.optim.Adam`` adds it to
    sqrt(v / (1 - b2^t))): the two differ by about 1e-5 relative at the defaults.
    """

    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    #: the second moment needs g itself
    scaled_gradients: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_beta_eps(self)

    def init(self, params: Tree) -> tuple[Tree, Tree]:
        return _zeros_like(params), _zeros_like(params)

    def update(
        self, params: Tree, grads: Tree, state: tuple[Tree, Tree], lr: Any
    ) -> tuple[Tree, tuple[Tree, Tree]]:
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        m = tree_map(lambda m, g: b1 * m + (1.0 - b1) * g, state[0], grads)
        v = tree_map(lambda v, g: b2 * v + (1.0 - b2) * (g * g), state[1], grads)
        new = tree_map(lambda p, m, v: p - lr * m / (_sqrt(v) + eps), params, m, v)
        return new, (m, v)

    def step_size(self, lr: float, t: int) -> float:
        """lr sqrt(1 - b2^t) / (1 - b1^t) for update number ``t`` (1-based)."""
        return lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)


@dataclass(frozen=True)
class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter), ``torch.optim.AdamW``'s form::

        theta <- theta (1 - lr wd),
        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
        theta <- theta - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).

    The decay acts on every parameter (biases too) and is not part of the loss, unlike the
    estimators' ``alpha``. The state is (m, v, t), t a 0-d array counting the updates.
    """

    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    weight_decay: float = 0.01
    scaled_gradients: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_beta_eps(self)
        _check(self, "weight_decay", 0.0, math.inf, "[0, inf)")

    def init(self, params: Tree) -> tuple[Tree, Tree, Any]:
        a = params[0][0]
        t = array_namespace(a).zeros((), dtype=a.dtype, device=device(a))
        return _zeros_like(params), _zeros_like(params), t

    def update(
        self, params: Tree, grads: Tree, state: tuple[Tree, Tree, Any], lr: Any
    ) -> tuple[Tree, tuple[Tree, Tree, Any]]:
        b1, b2, eps, wd = self.beta_1, self.beta_2, self.epsilon, self.weight_decay
        t = state[2]
        t = array_namespace(t).asarray(t + 1.0, dtype=t.dtype)  # NumPy: 0-d stays an array
        step = lr / (1.0 - b1**t)
        root = _sqrt(1.0 - b2**t)
        m = tree_map(lambda m, g: b1 * m + (1.0 - b1) * g, state[0], grads)
        v = tree_map(lambda v, g: b2 * v + (1.0 - b2) * (g * g), state[1], grads)
        new = tree_map(
            lambda p, m, v: p * (1.0 - lr * wd) - step * m / (_sqrt(v) / root + eps),
            params, m, v,
        )  # fmt: skip
        return new, (m, v, t)

    def step_size(self, lr: float, t: int) -> float:
        """``lr`` itself: the bias correction is computed in ``update``."""
        return lr


@dataclass(frozen=True)
class RMSprop:
    """RMSprop (Tieleman & Hinton), ``torch.optim.RMSprop``'s form (``rho`` is its
    ``alpha``; not centred):

        s <- rho s + (1 - rho) g^2,   d = g / (sqrt(s) + eps),
        theta <- theta - lr d                              (momentum mu = 0)
        b <- mu b + d,   theta <- theta - lr b             (mu > 0)
    """

    rho: float = 0.99
    epsilon: float = 1e-8
    momentum: float = 0.0
    scaled_gradients: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check(self, "rho", 0.0, 1.0, "[0, 1)")
        _check(self, "epsilon", 0.0, math.inf, "(0, inf)")
        _check(self, "momentum", 0.0, 1.0, "[0, 1]")

    def init(self, params: Tree) -> tuple[Tree, Tree]:
        buffer = [() for _ in params] if self.momentum == 0 else _zeros_like(params)
        return _zeros_like(params), buffer

    def update(
        self, params: Tree, grads: Tree, state: tuple[Tree, Tree], lr: Any
    ) -> tuple[Tree, tuple[Tree, Tree]]:
        rho, eps, mu = self.rho, self.epsilon, self.momentum
        s = tree_map(lambda s, g: rho * s + (1.0 - rho) * (g * g), state[0], grads)
        d = tree_map(lambda g, s: g / (_sqrt(s) + eps), grads, s)
        buffer = state[1] if mu == 0 else tree_map(lambda b, d: mu * b + d, state[1], d)
        new = tree_map(lambda p, d: p - lr * d, params, d if mu == 0 else buffer)
        return new, (s, buffer)

    def step_size(self, lr: float, t: int) -> float:
        """``lr`` itself."""
        return lr


@dataclass(frozen=True)
class Adagrad:
    """Adagrad (Duchi et al.), ``torch.optim.Adagrad``'s form (no rate decay, a zero
    initial accumulator):

        s <- s + g^2,   theta <- theta - lr g / (sqrt(s) + eps).
    """

    epsilon: float = 1e-10
    scaled_gradients: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check(self, "epsilon", 0.0, math.inf, "(0, inf)")

    def init(self, params: Tree) -> Tree:
        return _zeros_like(params)

    def update(self, params: Tree, grads: Tree, state: Tree, lr: Any) -> tuple[Tree, Tree]:
        eps = self.epsilon
        s = tree_map(lambda s, g: s + g * g, state, grads)
        return tree_map(lambda p, g, s: p - lr * g / (_sqrt(s) + eps), params, grads, s), s

    def step_size(self, lr: float, t: int) -> float:
        """``lr`` itself."""
        return lr


#: the optimisers an estimator's ``solver`` takes as objects (and model files rebuild)
OPTIMIZERS: tuple[type, ...] = (SGD, Adam, AdamW, RMSprop, Adagrad)


def describe(optimizer: Any) -> dict[str, Any]:
    """The JSON form of an optimiser of :data:`OPTIMIZERS`: its class name and fields."""
    values = {f.name: getattr(optimizer, f.name) for f in fields(optimizer)}
    return {"optimizer": type(optimizer).__name__, **values}


def from_description(raw: Any) -> Any:
    """The optimiser :func:`describe` wrote (fields left out take their defaults);
    ``ValueError`` for anything else."""
    by_name = {cls.__name__: cls for cls in OPTIMIZERS}
    if not isinstance(raw, dict) or raw.get("optimizer") not in by_name:
        raise ValueError(f"must describe one of {', '.join(by_name)}; got {raw!r}")
    cls = by_name[raw["optimizer"]]
    kwargs = {k: v for k, v in raw.items() if k != "optimizer"}
    unknown = set(kwargs) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__} has no argument {', '.join(sorted(unknown))}")
    return cls(**kwargs)


@dataclass(frozen=True)
class ClipGradNorm:
    """``optimizer`` given gradients rescaled to a global L2 norm of at most ``max_norm``,
    as ``torch.nn.utils.clip_grad_norm_`` rescales them before ``step()``::

        n = sqrt(sum over every parameter array of sum(g^2)),
        g <- g min(1, max_norm / (n + 1e-6)).

    A non-finite norm makes the gradients non-finite (as torch's), never silently unclipped.
    The inner optimiser is given g itself (its lr folding is off: lr g would be clipped at
    another norm); its state, step sizes and update are otherwise its own.
    """

    optimizer: Any
    max_norm: float
    scaled_gradients: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check(self, "max_norm", 0.0, math.inf, "(0, inf]")  # inf: never clips

    def init(self, params: Tree) -> Any:
        return self.optimizer.init(params)

    def update(self, params: Tree, grads: Tree, state: Any, lr: Any) -> tuple[Tree, Any]:
        squares = [array_namespace(g).sum(g * g) for layer in grads for g in layer]
        total = squares[0]
        for s in squares[1:]:
            total = total + s
        xp = array_namespace(total)
        coef = xp.minimum(self.max_norm / (xp.sqrt(total) + 1e-6), 1.0)
        return self.optimizer.update(params, tree_map(lambda g: g * coef, grads), state, lr)

    def step_size(self, lr: float, t: int) -> float:
        return self.optimizer.step_size(lr, t)
