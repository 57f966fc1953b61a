"""L-BFGS on the device: SciPy's L-BFGS-B algorithm without bounds, written against the
Array API so it runs where the parameters live (GPU included).

Hand-written because no Array API library offers it: the two-loop recursion, the
Moré–Thuente line search and L-BFGS-B's other choices (first step 1/||d||, skipping a
curvature pair that fails s.y > eps ||y||^2, a restart after a failed search, ``max_fun``
tested between iterations), so it takes the same iterations as SciPy.

Imports only ``backendnn._backend``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._backend import array_namespace, to_numpy

__all__ = [
    "lbfgs",
    "LBFGSResult",
]


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


# Moré & Thuente, "Line search algorithms with guaranteed sufficient decrease" (ACM TOMS
# 20, 1994), with the settings SciPy's L-BFGS-B uses when there are no bounds.
_XTOL = 0.1  # relative width of the bracket below which the search stops
_STEP_MIN, _STEP_MAX = 0.0, 1e10
_MAX_SEARCH_EVALS = 20  # evaluations per line search
_EXTRAPOLATE_MIN, _EXTRAPOLATE_MAX = 1.1, 4.0  # next step in [t + 1.1 (t - x), t + 4 (t - x)]
_SHRINK = 0.66  # a bracket must shrink by this factor every two steps, else bisect


class _Point(NamedTuple):
    """A step along the search direction, with f and the directional derivative f' there."""

    step: float
    f: float
    g: float


def _cubic_step(a: _Point, b: _Point) -> float | None:
    """Minimiser of the cubic that interpolates f and f' at a and b, or None if it has none.

    theta = 3 (f_a - f_b)/(b - a) + f'_a + f'_b,  gamma = sign(b - a) sqrt(theta^2 - f'_a f'_b),
    step = a + r (b - a),  r = (gamma - f'_a + theta) / (2 gamma - f'_a + f'_b),
    with the square root scaled by max(|theta|, |f'_a|, |f'_b|) against overflow.
    """
    theta = 3.0 * (a.f - b.f) / (b.step - a.step) + a.g + b.g
    scale = max(abs(theta), abs(a.g), abs(b.g))
    disc = (theta / scale) ** 2 - (a.g / scale) * (b.g / scale)
    if not disc >= 0:  # negative (no local minimiser) or nan (scale 0, or f not finite)
        return None
    gamma = math.copysign(scale * math.sqrt(disc), b.step - a.step)
    q = ((gamma - a.g) + gamma) + b.g
    step = a.step + ((gamma - a.g) + theta) / q * (b.step - a.step) if q != 0 else math.nan
    return step if math.isfinite(step) else None


def _secant_step(a: _Point, b: _Point) -> float:
    """Zero of the line through (a, f'_a) and (b, f'_b)."""
    return a.step + a.g / (a.g - b.g) * (b.step - a.step)


def _safeguarded_step(
    x: _Point, y: _Point, t: _Point, bracketed: bool, lo: float, hi: float
) -> tuple[_Point, _Point, float, bool]:
    """Moré–Thuente's interval update and next trial step (their Section 4; MINPACK-2 dcstep).

    ``x`` is the best step so far, ``y`` the other end of the interval, ``t`` the step just
    evaluated, ``[lo, hi]`` the range the next step may take. With a_c the cubic step
    (:func:`_cubic_step`), a_q the minimiser of the quadratic through f_x, f'_x, f_t and
    a_s the secant step of f' (:func:`_secant_step`):

    1. f_t > f_x: a minimiser lies between x and t. a_c if it is closer to x than a_q,
       else (a_c + a_q)/2.
    2. f_t <= f_x, f'_t f'_x < 0: a minimiser lies between x and t. Whichever of a_c and
       a_s is farther from t.
    3. f_t <= f_x, same signs, |f'_t| < |f'_x|: a_c if the cubic has its minimiser beyond t,
       else the bound (lo or hi) in the direction of the step; then, once bracketed, the
       one of a_c and a_s closer to t, at most 0.66 of the way from t to y; otherwise the
       one farther from t, within [lo, hi].
    4. f_t <= f_x, same signs, |f'_t| >= |f'_x|: once bracketed, the cubic step through t and
       y; otherwise the bound in the direction of the step.

    Then t replaces y (case 1) or x (cases 2-4, x moving to y in case 2). Where f or f' is
    not finite at t, t becomes y and the step is halved back towards x.
    Returns (x, y, next step, bracketed).
    """
    forward = t.step > x.step
    if not (math.isfinite(t.f) and math.isfinite(t.g)):  # overflow: back off half way to x
        return x, t, x.step + 0.5 * (t.step - x.step), True
    if t.f > x.f:  # case 1
        cubic = _cubic_step(x, t)
        quad = x.step + x.g / ((x.f - t.f) / (t.step - x.step) + x.g) / 2.0 * (t.step - x.step)
        if cubic is None:
            step = quad
        elif abs(cubic - x.step) < abs(quad - x.step):
            step = cubic
        else:
            step = cubic + (quad - cubic) / 2.0
        return x, t, step, True
    if (t.g < 0 < x.g) or (x.g < 0 < t.g):  # case 2
        cubic, secant = _cubic_step(t, x), _secant_step(t, x)
        step = cubic if cubic is not None and abs(cubic - t.step) > abs(secant - t.step) else secant
        return t, x, step, True
    if abs(t.g) < abs(x.g):  # case 3
        cubic = _cubic_step(t, x)
        if cubic is None or (cubic - t.step) * (t.step - x.step) <= 0:  # not beyond t
            cubic = hi if forward else lo
        secant = _secant_step(t, x)
        if bracketed:
            step = cubic if abs(cubic - t.step) < abs(secant - t.step) else secant
            limit = t.step + _SHRINK * (y.step - t.step)
            step = min(step, limit) if forward else max(step, limit)
        else:
            step = cubic if abs(cubic - t.step) > abs(secant - t.step) else secant
            step = max(lo, min(step, hi))
        return t, y, step, bracketed
    if bracketed:  # case 4
        cubic = _cubic_step(t, y)
        step = cubic if cubic is not None else t.step + 0.5 * (y.step - t.step)
    else:
        step = hi if forward else lo
    return t, y, step, bracketed


def _tilt(p: _Point, slope: float) -> _Point:
    """p on the function f(a) - slope a (psi of :func:`_more_thuente`, up to a constant)."""
    return _Point(p.step, p.f - p.step * slope, p.g - slope)


def _more_thuente(
    phi: Callable[[float], tuple[float, float, Any]],
    f0: float,
    g0: float,
    step: float,
    c1: float,
    c2: float,
    max_evals: int,
) -> tuple[bool, float, Any, int]:
    """Moré–Thuente line search for a step satisfying the strong Wolfe conditions

        f(a) <= f0 + c1 a f'(0)   (sufficient decrease),   |f'(a)| <= c2 |f'(0)|   (curvature).

    ``phi(a)`` returns (f(a), f'(a), payload). While no step has reached sufficient decrease
    with f' >= 0 (stage 1), a step that lowered f without enough decrease is judged by the
    auxiliary function psi(a) = f(a) - f0 - c1 a f'(0) instead of f. Each new step comes from
    :func:`_safeguarded_step`; once a minimiser is bracketed, a bracket that did not shrink to
    0.66 of its width over the last two steps is bisected. Before that, the next step lies in
    [t + 1.1 (t - x), t + 4 (t - x)], t the step just tried and x the best so far. Steps are
    kept in [_STEP_MIN, _STEP_MAX].

    The search ends, accepting the step just evaluated, when it satisfies both conditions,
    or, as in MINPACK-2 and L-BFGS-B, when no further progress is possible: the bracket
    [lo, hi] has relative width <= xtol (0.1), the step falls on or outside it (rounding),
    or the step sits at _STEP_MAX / _STEP_MIN. If it cannot progress, the last trial step is
    the best point found, so that is the one accepted.
    Returns (accepted, step, payload, evaluations); ``accepted`` is False when ``max_evals``
    evaluations did not end the search.
    """
    slope = c1 * g0  # slope of the sufficient-decrease line
    x = y = _Point(0.0, f0, g0)
    bracketed, stage_one = False, True
    width = _STEP_MAX - _STEP_MIN
    prev_width = 2.0 * width
    lo, hi = 0.0, step + _EXTRAPOLATE_MAX * step
    payload = None
    for evals in range(1, max_evals + 1):
        f, g, payload = phi(step)
        f_line = f0 + step * slope
        decrease_ok = f <= f_line
        if stage_one and decrease_ok and g >= 0:
            stage_one = False
        stuck = bracketed and (step <= lo or step >= hi or hi - lo <= _XTOL * hi)
        at_max = step == _STEP_MAX and decrease_ok and g <= slope
        at_min = step == _STEP_MIN and (f > f_line or g >= slope)
        converged = decrease_ok and abs(g) <= -c2 * g0
        if converged or stuck or at_max or at_min:
            return True, step, payload, evals

        t = _Point(step, f, g)
        if stage_one and f <= x.f and not decrease_ok:  # interpolate psi rather than f
            x, y, step, bracketed = _safeguarded_step(
                _tilt(x, slope), _tilt(y, slope), _tilt(t, slope), bracketed, lo, hi
            )
            x, y = _tilt(x, -slope), _tilt(y, -slope)
        else:
            x, y, step, bracketed = _safeguarded_step(x, y, t, bracketed, lo, hi)

        if bracketed:
            if abs(y.step - x.step) >= _SHRINK * prev_width:
                step = x.step + 0.5 * (y.step - x.step)
            prev_width, width = width, abs(y.step - x.step)
            lo, hi = min(x.step, y.step), max(x.step, y.step)
        else:
            lo = step + _EXTRAPOLATE_MIN * (step - x.step)
            hi = step + _EXTRAPOLATE_MAX * (step - x.step)
        step = min(max(step, _STEP_MIN), _STEP_MAX)
        if bracketed and (step <= lo or step >= hi or hi - lo <= _XTOL * hi):
            step = x.step  # no progress possible: evaluate the best step again, and stop there
    return False, step, payload, max_evals


def _two_loop(xp: Any, g: Any, s_hist: list, y_hist: list, rho_hist: list) -> Any:
    """The L-BFGS direction -H g (two-loop recursion), H_0 = (s'y / y'y) I from the newest
    pair (the identity when there is none)."""
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
    return -q


def lbfgs(
    fun: Callable[[Any], tuple[Any, Any]],
    x0: Any,
    *,
    max_iter: int = 200,
    max_fun: int = 15000,
    tol: float = 1e-4,
    history: int = 10,
    c1: float = 1e-3,
    c2: float = 0.9,
    ftol: float = 2.220446049250313e-09,
    callback: Callable[[int, float, Any], Any] | None = None,
) -> LBFGSResult:
    """Minimise ``fun`` with L-BFGS, on the device where ``x0`` lives.

    ``fun(x) -> (f, g)`` returns the value (0-d array) and gradient (vector) on the
    device. The search direction comes from the two-loop recursion over the last
    ``history`` pairs (s, y) (10, as SciPy's L-BFGS-B), the step from the Moré–Thuente line
    search (``_more_thuente``) with sufficient-decrease constant ``c1`` and curvature
    constant ``c2``. Only the scalars the line search branches on (f and the directional
    derivative) and the stopping tests come to the host.

    Without bounds this is SciPy's L-BFGS-B (scikit-learn's ``solver="lbfgs"``), with its
    choices: line-search constants c1 = 1e-3, c2 = 0.9 (its ``ftol``, ``gtol``), xtol = 0.1,
    steps in [0, 1e10], at most 20 evaluations per search; first step 1/||d||_2 on the
    first iteration, 1 afterwards; a pair (s, y) is skipped when s'y <= eps (-g's), eps the
    machine epsilon of x's dtype; when a line search fails (or d is not a descent
    direction) the previous iterate is kept, the memory is dropped and the iteration
    restarts from steepest descent, and if the memory was already empty L-BFGS stops.
    Its iterates are L-BFGS-B's up to rounding (two-loop recursion instead of the compact
    form, and the objective's own rounding).

    Stopping rules, with scikit-learn's (SciPy's L-BFGS-B) meanings: ``max_iter``
    iterations, ``max_fun`` function evaluations (tested between iterations, so the last
    line search may pass it, as in L-BFGS-B), ``tol`` on ``max |g_i|``
    (SciPy's ``gtol``), and ``ftol`` on the relative decrease
    ``(f_k - f_k+1)/max(|f_k|, |f_k+1|, 1)``. ``success`` is True only for the last two. As in
    SciPy, the two limits are tested before the two convergence tests after an iteration:
    an iteration that meets a limit and converges reports the limit. ``callback(nit, f,
    x)`` is called after each iteration; returning True stops the run there (``success``
    False, message "stopped by a callback").

    Hand-written rather than SciPy's because it must run on every array library and device.
    See :ref:`notes-lbfgs` (notes, L-BFGS).
    """
    xp = array_namespace(x0)
    eps = float(xp.finfo(x0.dtype).eps)
    x = x0
    f_arr, g = fun(x)
    nfev = 1
    f, gmax = _host(xp, f_arr, xp.max(xp.abs(g)))
    s_hist: list[Any] = []
    y_hist: list[Any] = []
    rho_hist: list[Any] = []
    nit, message = 0, "maximum number of iterations reached"
    converged = ("projected gradient below tol", "relative reduction of f below ftol")
    if gmax <= tol:
        return LBFGSResult(x, f, 0, nfev, converged[0], True)
    while nit < max_iter:
        d = _two_loop(xp, g, s_hist, y_hist, rho_hist)
        slope, dd = _host(xp, xp.vecdot(g, d), xp.vecdot(d, d))
        accepted = False
        if slope < 0 and math.isfinite(slope) and math.isfinite(dd):  # a usable descent
            step0 = min(1.0 / math.sqrt(dd), _STEP_MAX) if nit == 0 else 1.0

            def phi(alpha: float, x: Any = x, d: Any = d) -> tuple[float, float, Any]:
                x_new = x + alpha * d
                f_new, g_new = fun(x_new)
                fv, dv = _host(xp, f_new, xp.vecdot(g_new, d))
                return fv, dv, (x_new, g_new, fv)

            accepted, step, payload, evals = _more_thuente(
                phi, f, slope, step0, c1, c2, _MAX_SEARCH_EVALS
            )
            nfev += evals
            accepted = accepted and math.isfinite(payload[2])
        if not accepted:  # keep x; restart from steepest descent, or stop if memory is empty
            if s_hist:
                s_hist, y_hist, rho_hist = [], [], []
                continue
            message = "line search failed"
            break
        x_new, g_new, f_new = payload
        nit += 1
        s = step * d
        y = g_new - g
        sy, gmax = _host(xp, xp.vecdot(s, y), xp.max(xp.abs(g_new)))
        if sy > eps * (-slope * step):  # else too little curvature to keep H positive definite
            s_hist.append(s)
            y_hist.append(y)
            rho_hist.append(1.0 / sy)
            if len(s_hist) > history:
                s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
        decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        x, g, f = x_new, g_new, f_new
        if callback is not None and callback(nit, f, x):
            message = "stopped by a callback"
            break
        # SciPy's order: the limits are tested first (a search is never cut), then convergence
        if nit >= max_iter:
            break
        if nfev > max_fun:
            message = "maximum number of function evaluations reached"
            break
        if gmax <= tol:
            message = converged[0]
            break
        if decrease <= ftol:
            message = converged[1]
            break
    return LBFGSResult(x, f, nit, nfev, message, message in converged)
