"""Portable special functions: standard functions only.

The Array API standard has no ``erf``. This module holds W. J. Cody's rational
Chebyshev approximations of erf and erfc (:func:`erf_cody`, :func:`erfc_cody`, ~2 ulp in
float64) and the standard normal CDF built on them (:func:`ndtr_cody`), written with
standard element-wise functions only, so they run unchanged on every backend and inside
``jax.jit``; and :func:`ndtr`, the normal CDF the library uses (exact GELU), which takes
the array library's own ndtr where ``_backend`` offers it as the fast path.

What it may import: the standard library, and from ``backendnn._backend`` only
``array_namespace`` and the ``native_ndtr`` primitive. It names no array library: where
one needs something special, ``_backend`` offers it (DESIGN.md, "No backend branches
outside ``_backend.py``").
"""

from __future__ import annotations

import math
from typing import Any

from ._backend import array_namespace, native_ndtr

__all__ = ["erf_cody", "erfc_cody", "ndtr", "ndtr_cody"]


def ndtr(x: Any) -> Any:
    """Phi(x), the standard normal CDF, on any backend: the library's own ndtr where
    ``backendnn._backend.native_ndtr`` offers it as the fast path for ``x``'s dtype
    (measured faster than :func:`ndtr_cody` and as accurate, benchmarks/NOTES.md "Native
    ndtr fast path"), else :func:`ndtr_cody` (a few ulp in both tails).
    """
    native = native_ndtr(array_namespace(x), x.dtype)
    return native(x) if native is not None else ndtr_cody(x)


# --------------------------------------------------------------------------- Cody's erf / erfc

# W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969) 631-638, as in SPECFUN's CALERF. The standard has no erf, so
# this is written with standard functions only; each branch is fed inputs clipped
# to its own interval so that no branch over- or underflows (JAX differentiates
# through every branch of a ``where``).
_A = (
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
)
_B = (
    2.36012909523441209e01,
    2.44024637934444173e02,
    1.28261652607737228e03,
    2.84423683343917062e03,
)
_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
_Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
_THRESH = 0.46875
_XBIG = 26.543  # erfc(x) underflows float64 beyond this
_SQRPI = 0.56418958354775628695  # 1/sqrt(pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def _erf_small(x: Any, xp: Any) -> Any:
    """erf(x) for |x| <= 0.46875."""
    ysq = x * x
    num, den = _A[4] * ysq, ysq
    for i in range(3):
        num, den = (num + _A[i]) * ysq, (den + _B[i]) * ysq
    return x * (num + _A[3]) / (den + _B[3])


def _exp_neg_square(v: Any, xp: Any, scale: float = 1.0) -> Any:
    """exp(-scale * v**2) for v >= 0, with v split as Cody does, v = vs + (v - vs),
    vs = trunc(16 v)/16, so that vs**2 is exact and the exponent keeps full precision."""
    vs = xp.trunc(v * 16.0) / 16.0
    return xp.exp(-scale * vs * vs) * xp.exp(-scale * (v - vs) * (v + vs))


def _erfc_ratio(y: Any, xp: Any) -> Any:
    """erfc(y) * exp(y**2) for y >= 0.46875: Cody's rational forms on [0.46875, 4] and
    [4, 26.543], each fed only inputs of its own interval."""
    ym = xp.clip(y, _THRESH, 4.0)
    num, den = _C[8] * ym, ym
    for i in range(7):
        num, den = (num + _C[i]) * ym, (den + _D[i]) * ym
    mid = (num + _C[7]) / (den + _D[7])
    yl = xp.clip(y, 4.0, _XBIG)
    inv = 1.0 / (yl * yl)
    num, den = _P[5] * inv, inv
    for i in range(4):
        num, den = (num + _P[i]) * inv, (den + _Q[i]) * inv
    large = (_SQRPI - inv * (num + _P[4]) / (den + _Q[4])) / yl
    return xp.where(y <= 4.0, mid, large)


def _erfc_abs(y: Any, xp: Any) -> Any:
    """erfc(y) for y >= 0.46875 (0 past XBIG, where it underflows)."""
    tail = _exp_neg_square(xp.clip(y, 0.0, _XBIG), xp) * _erfc_ratio(y, xp)
    return xp.where(y < _XBIG, tail, 0.0)


def erf_cody(x: Any) -> Any:
    """erf(x) by Cody's rational approximations, standard functions only (~2 ulp in float64)."""
    xp = array_namespace(x)
    y = xp.abs(x)
    small = _erf_small(xp.clip(x, -_THRESH, _THRESH), xp)
    big = 1.0 - _erfc_abs(y, xp)
    out = xp.where(y <= _THRESH, small, xp.where(x < 0, -big, big))
    return xp.where(xp.isnan(x), x, out)


def erfc_cody(x: Any) -> Any:
    """erfc(x) = 1 - erf(x) by Cody's approximations, accurate in the tail (x up to 26.5)."""
    xp = array_namespace(x)
    y = xp.abs(x)
    small = 1.0 - _erf_small(xp.clip(x, -_THRESH, _THRESH), xp)
    tail = _erfc_abs(y, xp)
    out = xp.where(y <= _THRESH, small, xp.where(x < 0, 2.0 - tail, tail))
    return xp.where(xp.isnan(x), x, out)


def ndtr_cody(x: Any) -> Any:
    """Phi(x), the standard normal CDF, = erfc(-x/sqrt 2)/2, accurate to a few ulp in
    float64 in both tails (standard functions only, every backend).

    The lower tail is not computed as erfc(-x/sqrt 2): rounding x/sqrt 2 would cost
    about x**2 ulp (1e-13 at x = -30). The rational part takes the rounded argument, but
    exp(-x**2/2) is formed from x itself.
    """
    xp = array_namespace(x)
    a = xp.abs(x)
    u = a * _INV_SQRT2
    small = 0.5 + 0.5 * _erf_small(xp.clip(x * _INV_SQRT2, -_THRESH, _THRESH), xp)
    half_tail = 0.5 * _exp_neg_square(xp.clip(a, 0.0, 40.0), xp, 0.5) * _erfc_ratio(u, xp)
    half_tail = xp.where(u < _XBIG, half_tail, 0.0)
    out = xp.where(u <= _THRESH, small, xp.where(x < 0, half_tail, 1.0 - half_tail))
    return xp.where(xp.isnan(x), x, out)
