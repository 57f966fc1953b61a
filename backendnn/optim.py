"""Optimisers: pure functions of (params, gradients, state) -> (new params, new state).

No array is ever mutated, so a whole training step compiles under ``jax.jit``. The
learning rate is passed in as a host number each step (schedules live on the host),
which keeps one compiled step for every learning rate.

Update rules and defaults are scikit-learn's (``sklearn.neural_network._stochastic_optimizers``),
so the two give the same iterates from the same start. Full-batch gradient descent
(notes, eqs. 21-24) is :class:`SGD` with the whole data set as the batch.

:func:`lbfgs` minimises a function of one flat parameter vector on the device it lives on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._backend import array_namespace, to_numpy

Tree = list  # list[tuple[Array, ...]]: one tuple of arrays per layer


def tree_map(fn: Callable[..., Any], *trees: Tree) -> Tree:
    """Apply ``fn`` to matching arrays of parameter-shaped trees."""
    return [tuple(fn(*arrays) for arrays in zip(*groups)) for groups in zip(*trees)]


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

    def init(self, params: Tree) -> Tree:
        if self.momentum == 0:  # no velocity to carry: a compiled step then has none either
            return [() for _ in params]
        return _zeros_like(params)

    def update(self, params: Tree, grads: Tree, state: Tree, lr: Any) -> tuple[Tree, Tree]:
        mu = self.momentum
        if mu == 0:  # plain SGD: skip the velocity arithmetic (it stays zero)
            return tree_map(lambda p, g: p - lr * g, params, grads), state
        velocity = tree_map(lambda v, g: mu * v - lr * g, state, grads)
        if self.nesterov:
            step = tree_map(lambda v, g: mu * v - lr * g, velocity, grads)
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


class LearningRateSchedule:
    """scikit-learn's learning-rate schedules, on the host.

    ``constant``: lr = learning_rate_init.
    ``invscaling``: at the end of each epoch lr = learning_rate_init / (t + 1)^power_t,
    t the number of samples seen so far.
    ``adaptive``: constant while training improves; when ``n_iter_no_change`` epochs
    fail to improve by ``tol``, lr is divided by 5 (training stops once lr <= 1e-6).
    """

    KINDS = ("constant", "invscaling", "adaptive")

    def __init__(
        self, kind: str = "constant", learning_rate_init: float = 1e-3, power_t: float = 0.5
    ):
        if kind not in self.KINDS:
            raise ValueError(f"learning_rate must be one of {self.KINDS}, got {kind!r}")
        self.kind, self.learning_rate_init, self.power_t = kind, learning_rate_init, power_t
        self.lr = learning_rate_init

    def epoch_end(self, t: int) -> None:
        if self.kind == "invscaling":
            self.lr = self.learning_rate_init / (t + 1) ** self.power_t

    def plateau(self) -> bool:
        """Called when training stopped improving; returns True if training should stop."""
        if self.kind != "adaptive" or self.lr <= 1e-6:
            return True
        self.lr /= 5.0
        return False


# --------------------------------------------------------------------------- L-BFGS


@dataclass
class LBFGSResult:
    x: Any
    fun: float
    nit: int
    nfev: int
    message: str
    success: bool


def _host(xp: Any, *values: Any) -> list[float]:
    """Bring a few device scalars (0-d arrays of one dtype) to the host in one transfer."""
    return [float(v) for v in to_numpy(xp.stack([xp.asarray(v) for v in values]))]


def _cubic_min(a: float, fa: float, da: float, b: float, fb: float, db: float) -> float | None:
    """Minimiser of the cubic through (a, fa, da) and (b, fb, db), or None if it has none."""
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    if not math.isfinite(disc) or disc < 0:
        return None
    d2 = math.copysign(math.sqrt(disc), b - a)
    denom = db - da + 2.0 * d2
    if denom == 0:
        return None
    x = b - (b - a) * (db + d2 - d1) / denom
    return x if math.isfinite(x) else None


def _strong_wolfe(
    phi: Callable[[float], tuple[float, float, Any]],
    f0: float,
    d0: float,
    alpha: float,
    c1: float,
    c2: float,
    max_evals: int,
) -> tuple[float, Any, int]:
    """Find a step satisfying the strong Wolfe conditions (Nocedal & Wright, Alg. 3.5/3.6)

        f(alpha) <= f0 + c1 alpha f'(0),   |f'(alpha)| <= c2 |f'(0)|

    with cubic interpolation in the zoom phase. ``phi(alpha)`` returns (f, f', payload).
    Returns (alpha, payload, evaluations); alpha = 0 if no decrease was found.
    """
    evals = 0
    best: tuple[float, float, Any] = (0.0, f0, None)  # lowest sufficient-decrease point

    def zoom(lo: tuple, hi: tuple) -> tuple[float, Any]:
        nonlocal evals, best
        while evals < max_evals:
            a_lo, f_lo, d_lo, _ = lo
            a_hi, f_hi, d_hi, _ = hi
            width = a_hi - a_lo
            x = _cubic_min(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi) if math.isfinite(f_hi) else None
            lo_b, hi_b = sorted((a_lo + 0.1 * width, a_hi - 0.1 * width))
            if x is None or not lo_b <= x <= hi_b:
                x = a_lo + 0.5 * width
            f, d, payload = phi(x)
            evals += 1
            if not math.isfinite(f) or f > f0 + c1 * x * d0 or f >= f_lo:
                hi = (x, f, d, payload)
                continue
            if f < best[1]:
                best = (x, f, payload)
            if abs(d) <= -c2 * d0:
                return x, payload
            if d * (a_hi - a_lo) >= 0:
                hi = lo
            lo = (x, f, d, payload)
            if abs(hi[0] - lo[0]) <= 1e-12 * max(1.0, abs(lo[0])):
                break
        return best[0], best[2]

    prev = (0.0, f0, d0, None)
    while evals < max_evals:
        f, d, payload = phi(alpha)
        evals += 1
        cur = (alpha, f, d, payload)
        if not math.isfinite(f) or f > f0 + c1 * alpha * d0 or (evals > 1 and f >= prev[1]):
            a, p = zoom(prev, cur)
            return a, p, evals
        if f < best[1]:
            best = (alpha, f, payload)
        if abs(d) <= -c2 * d0:
            return alpha, payload, evals
        if d >= 0:
            a, p = zoom(cur, prev)
            return a, p, evals
        prev, alpha = cur, 2.0 * alpha
    return best[0], best[2], evals


def lbfgs(
    fun: Callable[[Any], tuple[Any, Any]],
    x0: Any,
    *,
    max_iter: int = 200,
    max_fun: int = 15000,
    tol: float = 1e-4,
    history: int = 10,
    c1: float = 1e-4,
    c2: float = 0.9,
    ftol: float = 2.220446049250313e-09,
    callback: Callable[[int, float], Any] | None = None,
) -> LBFGSResult:
    """Minimise ``fun`` with L-BFGS, on the device where ``x0`` lives.

    ``fun(x) -> (f, g)`` returns the value (0-d array) and gradient (vector) on the
    device. The search direction comes from the two-loop recursion over the last
    ``history`` pairs (s, y) (10, as SciPy's L-BFGS-B), the step from a strong-Wolfe
    line search (c1, c2). Only the scalars the line search branches on (f and the
    directional derivative) and the stopping tests come to the host.

    Stopping rules, with scikit-learn's (SciPy's L-BFGS-B) meanings: ``max_iter``
    iterations, ``max_fun`` function evaluations, ``tol`` on max |g_i| (SciPy's
    ``gtol``), and ``ftol`` on the relative decrease (f_k - f_k+1)/max(|f_k|, |f_k+1|, 1).

    Hand-written rather than SciPy's because it must run on every array library and
    device; its iterates differ from L-BFGS-B's (different line search) but reach the
    same losses.
    """
    xp = array_namespace(x0)
    x = x0
    f_arr, g = fun(x)
    nfev = 1
    f, gmax = _host(xp, f_arr, xp.max(xp.abs(g)))
    s_hist: list[Any] = []
    y_hist: list[Any] = []
    rho_hist: list[Any] = []
    nit, message = 0, "maximum number of iterations reached"
    if gmax <= tol:
        return LBFGSResult(x, f, 0, nfev, "projected gradient below tol", True)
    while nit < max_iter:
        if nfev >= max_fun:
            message = "maximum number of function evaluations reached"
            break
        # two-loop recursion: d = -H g
        q = g
        alphas = []
        for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
            a = rho * xp.vecdot(s, q)
            alphas.append(a)
            q = q - a * y
        if s_hist:
            y_last = y_hist[-1]
            q = q * (xp.vecdot(s_hist[-1], y_last) / xp.vecdot(y_last, y_last))
        for s, y, rho, a in zip(s_hist, y_hist, rho_hist, reversed(alphas)):
            q = q + (a - rho * xp.vecdot(y, q)) * s
        d = -q
        (d0,) = _host(xp, xp.vecdot(g, d))
        if not d0 < 0:  # not a descent direction: restart from steepest descent
            s_hist, y_hist, rho_hist = [], [], []
            d = -g
            (d0,) = _host(xp, xp.vecdot(g, d))
        step0 = 1.0 if s_hist else min(1.0, 1.0 / math.sqrt(-d0))

        def phi(alpha: float, x: Any = x, d: Any = d) -> tuple[float, float, Any]:
            x_new = x + alpha * d
            f_new, g_new = fun(x_new)
            fv, dv = _host(xp, f_new, xp.vecdot(g_new, d))
            return fv, dv, (x_new, g_new, fv)

        alpha, payload, evals = _strong_wolfe(
            phi, f, d0, step0, c1, c2, max_evals=min(20, max_fun - nfev)
        )
        nfev += evals
        if payload is None:
            message = "line search found no decrease"
            break
        x_new, g_new, f_new = payload
        nit += 1
        s = alpha * d
        y = g_new - g
        sy, yy, gmax = _host(xp, xp.vecdot(s, y), xp.vecdot(y, y), xp.max(xp.abs(g_new)))
        if sy > 1e-10 * yy:  # keep the curvature pair only if it keeps H positive definite
            s_hist.append(s)
            y_hist.append(y)
            rho_hist.append(1.0 / sy)
            if len(s_hist) > history:
                s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
        decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        x, g, f = x_new, g_new, f_new
        if callback is not None:
            callback(nit, f)
        if gmax <= tol:
            message = "projected gradient below tol"
            break
        if decrease <= ftol:
            message = "relative reduction of f below ftol"
            break
    return LBFGSResult(x, f, nit, nfev, message, message != "maximum number of iterations reached")
