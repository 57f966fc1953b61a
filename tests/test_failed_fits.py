"""A fit that fails leaves the estimator as it was: divergence raises ``ConvergenceError``
(scikit-learn's exception classes, a message that says what to do, the last finite weights)
and keeps an unfitted estimator unfitted or the previous fit (warm start included), not
even private state left behind; bad input and a KeyboardInterrupt mid-epoch keep the
previous fit too. (Invalid hyper-parameters: ``tests/test_parameter_validation.py``.)
"""

from __future__ import annotations

import signal

import numpy as np
import pytest

import backendnn as bn
from backendnn import ConvergenceError, MLPClassifier, MLPRegressor, NotFittedError, _backend
from tests._helpers import (
    TARGETS,
    X_OK,
    X_REG,
    Y_OK_REG,
    Y_REG,
    assert_same_state,
    blobs3,
    each_kind,
    fit_small,
    fitted_state,
)

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

RNG = np.random.default_rng(0)  # shapes and dtypes are what these tests check, not values


# ---------------------------------------------------------------------------- divergence


# n_iter_no_change: a growing loss must not stop training (on tol) before it overflows
_DIVERGE = dict(solver="sgd", learning_rate_init=1e6, max_iter=50, n_iter_no_change=100)


def _diverging(Est, **kw):
    return Est(hidden_layer_sizes=(5,), random_state=0, **_DIVERGE, **kw)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow being tested
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_divergence_raises_and_keeps_an_unfitted_estimator_unfitted(backend, kind):
    X, y = blobs3()
    Est = MLPClassifier if kind == "classifier" else MLPRegressor
    target = y if kind == "classifier" else X[:, 0] * 1e3
    est = _diverging(Est)
    with pytest.raises(ConvergenceError) as info:
        est.fit(backend.asarray(X * 1e3, "float64"), backend.asarray(target))
    assert isinstance(info.value, ArithmeticError)
    assert "learning_rate_init" in str(info.value)  # says what to do
    assert info.value.params is not None  # the last finite weights
    for p in info.value.params:
        for a in p:
            assert np.isfinite(_backend.to_numpy(a)).all()
    assert not hasattr(est, "coefs_") and not hasattr(est, "n_features_in_")
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_divergence_keeps_the_previous_fit(kind):
    X, y = blobs3()
    Est = MLPClassifier if kind == "classifier" else MLPRegressor
    target = y if kind == "classifier" else X[:, 0]
    est = Est(hidden_layer_sizes=(5,), solver="sgd", max_iter=5, random_state=0).fit(X, target)
    before, pred = fitted_state(est), est.predict(X)
    est.set_params(**_DIVERGE)
    with pytest.raises(ConvergenceError):
        est.fit(X * 1e3, target * (1 if kind == "classifier" else 1e3))
    assert_same_state(before, fitted_state(est))
    np.testing.assert_array_equal(est.predict(X), pred)  # exact: the same weights, the same call
    # warm_start divergence, too
    est.set_params(warm_start=True)
    with pytest.raises(ConvergenceError):
        est.fit(X * 1e3, target * (1 if kind == "classifier" else 1e3))
    assert_same_state(before, fitted_state(est))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_failed_fit_leaves_no_private_state_behind():
    """Not even private attributes: the failed fit leaves ``__dict__`` exactly as it was."""
    X, y = blobs3()
    est = _diverging(MLPClassifier)
    before = dict(vars(est))
    with pytest.raises(ConvergenceError):
        est.fit(X * 1e3, y)
    assert vars(est) == before


def test_divergence_keeps_previous_state_and_reports_last_finite_weights():
    model = bn.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", max_iter=5,
            random_state=0).fit(X_OK, Y_OK_REG)
    before, pred = fitted_state(model), model.predict(X_OK)
    model.set_params(learning_rate_init=1e6, max_iter=50)
    with pytest.raises(bn.ConvergenceError, match="lower learning_rate_init") as info:
        model.fit(X_OK * 1e3, Y_OK_REG)
    assert isinstance(info.value, ArithmeticError)
    assert all(np.all(np.isfinite(a)) for p in info.value.params for a in p)
    assert_same_state(before, fitted_state(model))
    np.testing.assert_array_equal(model.predict(X_OK), pred)  # exact: the same weights and call


def test_convergence_errors_and_warnings_are_sklearns():
    from sklearn.exceptions import ConvergenceWarning

    assert issubclass(bn.ConvergenceError, ValueError)
    assert issubclass(bn.ConvergenceWarning, ConvergenceWarning)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        bn.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=1e6,
                        max_iter=20).fit(X_REG * 1e150, Y_REG)  # fmt: skip


# ---------------------------------------------------------------------------- bad input, interrupts


@each_kind
def test_failed_fit_keeps_previous_state(backend, kind):
    model = fit_small(backend, kind, X_OK)
    before = fitted_state(model)
    bad = X_OK.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        model.fit(backend.asarray(bad), backend.asarray(TARGETS[kind]))
    assert_same_state(before, fitted_state(model))


def test_keyboard_interrupt_mid_epoch_keeps_model():
    """A real SIGALRM-driven KeyboardInterrupt lands inside the batch loop of fit."""
    if not hasattr(signal, "setitimer"):
        pytest.skip("needs POSIX timers")
    X = RNG.normal(size=(4000, 20))
    y = (X[:, 0] > 0).astype(int)
    model = bn.MLPClassifier((16,), max_iter=2, batch_size=8, random_state=0).fit(X, y)
    before, pred = fitted_state(model), model.predict(X)
    seen = []

    def interrupt(signum, frame):
        seen.append(frame.f_code.co_name)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            model.set_params(max_iter=10_000, warm_start=True).fit(X, y)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert seen, "the interrupt did not fire during fit"
    assert_same_state(before, fitted_state(model))
    np.testing.assert_array_equal(model.predict(X), pred)  # exact: the same weights and call
