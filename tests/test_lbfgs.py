"""L-BFGS against SciPy's L-BFGS-B (issue 4, "Done when"): ``backendnn.lbfgs.lbfgs`` on
Rosenbrock, and ``solver="lbfgs"`` estimators against scikit-learn's (which call SciPy's
L-BFGS-B) on the digits (classification) and diabetes (regression) data sets, from the
same starting weights and with the same ``max_iter``.

Ours is hand-written (it must run on every array library and device) but makes L-BFGS-B's
choices when there are no bounds: the Moré–Thuente line search with its constants, the
first step, the rule for skipping a curvature pair, the restart after a failed search. Its
iterates are SciPy's up to rounding (our objective is computed differently from
scikit-learn's, and the direction by the two-loop recursion instead of L-BFGS-B's compact
form). On a convex problem (no hidden layer: softmax regression on digits, linear least
squares on diabetes) both reach the unique minimum and the final losses must agree to 1 %.
With a hidden layer the problem is non-convex: on digits the two loss curves agree to
~1e-10 for the first ~50 iterations, then the rounding differences grow, and after 150
iterations a single start's final loss (~4e-5) lands up to ~1.2 % either side of SciPy's.
So the tests take three starts and ask for the median final loss within 1 % of SciPy's on
digits (the issue's criterion; measured on CPU: 0.1-0.8 %) and not worse than SciPy's by
more than 1 % on diabetes (measured: ~0 %), and that each start reaches >= 99 % (digits) /
95 % (diabetes) of SciPy's loss decrease.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
import scipy.optimize as so
from sklearn import neural_network as sknn
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

import backendnn
from backendnn import _backend
from backendnn.lbfgs import lbfgs
from tests._helpers import X_REG, Y_REG
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


FULL = ("numpy", "jax", "torch", "cupy")  # the backends for the loss comparisons


# ---------------------------------------------------------------------------- Rosenbrock


def _rosenbrock(x):
    """f = sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 and its gradient, in x's library."""
    xp = _backend.array_namespace(x)
    a, b = x[:-1], x[1:]
    r = b - a * a
    f = xp.sum(100.0 * r * r + (1.0 - a) ** 2)
    zero = xp.zeros((1,), dtype=x.dtype, device=_backend.device(x))
    grad = xp.concat([-400.0 * a * r - 2.0 * (1.0 - a), zero]) + xp.concat([zero, 200.0 * r])
    return f, grad


START = {
    "2d": np.array([-1.2, 1.0]),
    "6d": np.array([-1.2, 1.0, -0.5, 0.8, 1.3, -0.7]),
}


@pytest.mark.parametrize("start", list(START))
def test_rosenbrock_reaches_the_minimum_like_scipy(backend, start):
    x0 = START[start]
    ref = so.minimize(
        so.rosen,
        x0,
        jac=so.rosen_der,
        method="L-BFGS-B",
        options=dict(maxiter=500, gtol=1e-8),
    )
    assert ref.fun < 1e-10  # SciPy reaches the minimum f(1, ..., 1) = 0
    res = lbfgs(_rosenbrock, backend.asarray(x0, "float64"), max_iter=500, tol=1e-8)
    assert res.success, res.message
    assert res.fun < 1e-9
    assert abs(res.fun - ref.fun) < 1e-9
    assert_close(res.x, np.ones_like(x0), backend=backend, rtol=1e-4, dtype="float64")
    assert_close(res.x, ref.x, backend=backend, rtol=1e-4, dtype="float64")
    # comparable work: not many more iterations than L-BFGS-B needs
    assert res.nit <= 1.5 * ref.nit + 5, (res.nit, ref.nit)


def test_lbfgs_stopping_rules(backend):
    x0 = backend.asarray(START["6d"], "float64")
    res = lbfgs(_rosenbrock, x0, max_iter=5, tol=0.0)
    assert res.nit == 5 and not res.success
    assert "iterations" in res.message
    # max_fun as L-BFGS-B: tested between iterations (a line search is never cut short),
    # so iterations and evaluations equal SciPy's
    ref = so.minimize(
        so.rosen,
        START["6d"],
        jac=so.rosen_der,
        method="L-BFGS-B",
        options=dict(maxiter=500, maxfun=12, gtol=0.0),
    )
    res = lbfgs(_rosenbrock, x0, max_iter=500, max_fun=12, tol=0.0)
    assert "function evaluations" in res.message and not res.success
    assert (res.nit, res.nfev) == (ref.nit, ref.nfev) and res.nfev > 12
    assert abs(res.fun - ref.fun) <= 1e-12 * abs(ref.fun)
    # tol is SciPy's gtol: a start whose gradient is already small returns at once
    res = lbfgs(_rosenbrock, backend.asarray(np.ones(6), "float64"), tol=1e-6)
    assert res.nit == 0 and res.success and res.fun == 0.0


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_lbfgs_overflowing_direction_is_a_failure_not_convergence(backend):
    """In float32 the squared gradient norm of this start overflows: no step can be taken,
    and L-BFGS says so rather than reporting convergence where it started."""
    xp = backend.xp
    x0 = backend.asarray(np.full(4, 1e9), "float32")
    res = lbfgs(lambda x: (1e10 * xp.sum(x * x), 2e10 * x), x0)
    assert res.nit == 0 and not res.success and res.message == "line search failed"


# ----------------------------------------------------------------------- estimators vs scikit-learn


@functools.cache
def _dataset(kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "digits":
        d = load_digits()
        return d.data / 16.0, d.target
    d = load_diabetes()
    X = (d.data - d.data.mean(axis=0)) / d.data.std(axis=0)
    y = (d.target - d.target.mean()) / d.target.std()
    return X, y


def _classes(kind: str) -> tuple[type, type]:
    if kind == "digits":
        return sknn.MLPClassifier, backendnn.MLPClassifier
    return sknn.MLPRegressor, backendnn.MLPRegressor


def _frozen(params: dict) -> tuple:
    return tuple(sorted(params.items()))


@functools.cache
def _sklearn_run(kind: str, frozen: tuple, max_iter: int) -> dict:
    """scikit-learn's lbfgs fit from its own initial weights (drawn with random_state),
    which are returned as the common start."""
    params = dict(frozen)
    X, y = _dataset(kind)
    Sk, _ = _classes(kind)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk = Sk(max_iter=1, **params).fit(X, y)
        W0 = [c.copy() for c in sk.coefs_]
        b0 = [b.copy() for b in sk.intercepts_]
        sk.set_params(warm_start=True, max_iter=max_iter).fit(X, y)
        # the start's loss, from scikit-learn's own loss function
        sk0 = Sk(max_iter=1, **params).fit(X, y)
        sk0.coefs_, sk0.intercepts_ = [c.copy() for c in W0], [b.copy() for b in b0]
        start_loss = _sk_loss(sk0, X, y)
    return dict(W0=W0, b0=b0, loss=sk.loss_, n_iter=sk.n_iter_, start_loss=start_loss)


def _sk_loss(sk, X, y) -> float:
    """scikit-learn's objective at its current weights, from public methods: the data
    loss (log-loss, or half the mean squared error) plus alpha/(2n) sum ||W||^2."""
    penalty = 0.5 * sk.alpha * sum(float(np.sum(c * c)) for c in sk.coefs_) / X.shape[0]
    if hasattr(sk, "predict_proba"):
        return log_loss(y, sk.predict_proba(X), labels=sk.classes_) + penalty
    return 0.5 * float(np.mean((sk.predict(X) - y) ** 2)) + penalty


def _ours(backend, kind: str, params: dict, max_iter: int, ref: dict):
    X, y = _dataset(kind)
    _, Ours = _classes(kind)
    est = Ours(max_iter=max_iter, warm_start=True, **params)
    est.coefs_ = [c.copy() for c in ref["W0"]]
    est.intercepts_ = [b.copy() for b in ref["b0"]]
    Xb = backend.asarray(X, "float64")
    yb = backend.asarray(y, "int64" if kind == "digits" else "float64")
    return est.fit(Xb, yb)


CONVEX = {
    # softmax regression; alpha makes the minimum unique and well conditioned
    "digits": (dict(hidden_layer_sizes=(), solver="lbfgs", alpha=0.1, tol=1e-5), 300),
    # linear least squares
    "diabetes": (dict(hidden_layer_sizes=(), solver="lbfgs", alpha=1e-2, tol=1e-6), 200),
}


@pytest.mark.parametrize("kind", list(CONVEX))
def test_lbfgs_convex_final_loss_within_1pct_of_sklearn(backend, kind):
    params, max_iter = CONVEX[kind]
    params = dict(params, random_state=0)
    ref = _sklearn_run(kind, _frozen(params), max_iter)
    est = _ours(backend, kind, params, max_iter, ref)
    assert math.isfinite(est.loss_)
    assert abs(est.loss_ - ref["loss"]) <= 0.01 * ref["loss"], (est.loss_, ref["loss"])
    assert est.n_layers_ == 2 and len(est.coefs_) == 1
    assert est.n_iter_ <= max_iter and est.loss_curve_[-1] == est.loss_
    assert _backend.namespace_name(_backend.array_namespace(est.coefs_[0])) == backend.name


HIDDEN = dict(hidden_layer_sizes=(16,), solver="lbfgs", tol=0.0)  # tol=0: all max_iter iterations
HIDDEN_ITER = 150
SEEDS = (0, 1, 2)


_GAPS: dict = {}


def _relative_gaps(backend, kind: str) -> tuple[list[float], list[float]]:
    """Per seed: (ours - sklearn)/sklearn final loss, and ours' share of sklearn's decrease
    (computed once per backend and data set)."""
    if backend.name not in FULL:
        pytest.skip("the loss comparison runs on numpy, jax, torch (and cupy)")
    key = (repr(backend), kind)
    if key not in _GAPS:
        _GAPS[key] = _compute_gaps(backend, kind)
    return _GAPS[key]


def _compute_gaps(backend, kind: str) -> tuple[list[float], list[float]]:
    rel, share = [], []
    for seed in SEEDS:
        params = dict(HIDDEN, random_state=seed)
        ref = _sklearn_run(kind, _frozen(params), HIDDEN_ITER)
        est = _ours(backend, kind, params, HIDDEN_ITER, ref)
        assert est.n_iter_ <= HIDDEN_ITER and math.isfinite(est.loss_)
        rel.append((est.loss_ - ref["loss"]) / ref["loss"])
        share.append((ref["start_loss"] - est.loss_) / (ref["start_loss"] - ref["loss"]))
    return rel, share


def test_lbfgs_hidden_layer_diabetes_not_worse_than_sklearn(backend):
    rel, share = _relative_gaps(backend, "diabetes")
    assert np.median(rel) <= 0.01, rel
    assert min(share) >= 0.95, share


def test_lbfgs_hidden_layer_digits_reaches_sklearns_decrease(backend):
    rel, share = _relative_gaps(backend, "digits")
    assert min(share) >= 0.99, share


def test_lbfgs_hidden_layer_digits_within_1pct_of_sklearn(backend):
    """The issue's criterion on digits. The paths are SciPy's until rounding takes over
    (~50 iterations), so the margin is set by rounding: per start -0.2 to +1.2 %, median
    0.1-0.8 % on numpy, jax and torch (CPU, one BLAS thread)."""
    rel, _ = _relative_gaps(backend, "digits")
    assert abs(np.median(rel)) <= 0.01, rel


def test_lbfgs_estimators_run_on_every_backend(backend):
    """A short run (array_api_strict included, in its strictest form too): finite,
    decreasing, predictions in the input's library."""
    X, y = _dataset("digits")
    Xb, yb = backend.asarray(X[:300], "float64"), backend.asarray(y[:300], "int64")
    clf = backendnn.MLPClassifier((8,), solver="lbfgs", max_iter=15, random_state=0).fit(Xb, yb)
    assert clf.n_iter_ == 15 and len(clf.loss_curve_) == 15
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    pred = clf.predict(Xb)
    assert _backend.namespace_name(_backend.array_namespace(pred)) == backend.name
    Xr, yr = _dataset("diabetes")
    reg = backendnn.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=15,
            random_state=0)
    reg.fit(backend.asarray(Xr, "float64"), backend.asarray(yr, "float64"))
    assert math.isfinite(reg.loss_) and reg.loss_ < reg.loss_curve_[0]
    assert reg.score(Xr, yr) > 0.3


# ----------------------------------------------------------------------- estimators' stopping rules


def test_lbfgs_reports_max_fun_as_scipy():
    """An iteration that passes max_fun ends L-BFGS with scikit-learn's warning, as SciPy's
    L-BFGS-B (which tests its limits before convergence)."""
    with pytest.warns(backendnn.ConvergenceWarning, match="function evaluations"):
        model = backendnn.MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs", tol=0.0,
                                       max_fun=10, max_iter=150,
                                       random_state=1).fit(X_REG, Y_REG)  # fmt: skip
    assert model.n_iter_ <= 10
