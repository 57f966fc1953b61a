"""Parity with scikit-learn's ``MLPClassifier``/``MLPRegressor`` (issues 4 and 5, "Done when").

From identical starting weights, with ``shuffle=False`` and float64, our per-epoch
``loss_curve_`` must equal scikit-learn's to 1e-9 relative, and the final ``coefs_`` and
``intercepts_`` must agree, for SGD (plain, classical momentum, Nesterov; constant and
invscaling learning rates), Adam, and our full-batch ``"gd"`` against scikit-learn's
``sgd`` with ``batch_size=n_samples``; activations identity, logistic, tanh and relu; a
binary and a multi-class classifier and a single-output regressor; with an L2 penalty
``alpha > 0``.

Identical starts: scikit-learn is fitted once with ``max_iter=1`` (to create its
attributes), its ``coefs_``/``intercepts_`` are overwritten with weights drawn here and
its training record reset; then it is refitted with ``warm_start=True`` (it recreates its
optimizer when not incremental). Ours gets the same weights assigned before a
``warm_start=True`` fit.

The scikit-learn references depend only on (problem, solver, activation): they are
computed once and cached, then compared against the full grid on NumPy and against a
covering subset on every backend of the ``backend`` fixture (each problem x solver
configuration, activations cycled so each backend sees all four on each problem).

Also here: the fitted attributes have scikit-learn's meanings (``n_layers_``, ``t_``,
``n_iter_``, ``out_activation_``, shapes) for every problem kind and solver, L-BFGS's ``t_``
included, and the Poisson loss equals scikit-learn's.
"""

from __future__ import annotations

import functools
import warnings
import zlib

import numpy as np
import pytest
from sklearn import neural_network as sknn
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning

import backendnn
import backendnn as bn
from backendnn import MLPClassifier, MLPRegressor, _backend
from tests._helpers import blobs3
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


N_SAMPLES = 72  # batch_size 16 leaves a last batch of 8: the partial batch's weighting counts
BATCH = 16
EPOCHS = 20
ALPHA = 1e-2
KINDS = ("binary", "multiclass", "regression")
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")

# name -> (our parameters, scikit-learn's parameters)
_SGD = dict(solver="sgd", learning_rate_init=0.05)
CONFIGS = {
    "sgd": (dict(_SGD, momentum=0.0), dict(_SGD, momentum=0.0)),
    "sgd-invscaling": (
        dict(_SGD, momentum=0.0, learning_rate="invscaling", learning_rate_init=0.2),
        dict(_SGD, momentum=0.0, learning_rate="invscaling", learning_rate_init=0.2),
    ),
    "momentum": (
        dict(_SGD, momentum=0.9, nesterovs_momentum=False),
        dict(_SGD, momentum=0.9, nesterovs_momentum=False),
    ),
    "nesterov": (
        dict(_SGD, momentum=0.9, nesterovs_momentum=True),
        dict(_SGD, momentum=0.9, nesterovs_momentum=True),
    ),
    "nesterov-invscaling": (
        dict(_SGD, learning_rate="invscaling", learning_rate_init=0.1, power_t=0.4),
        dict(_SGD, learning_rate="invscaling", learning_rate_init=0.1, power_t=0.4),
    ),
    "adam": (
        dict(solver="adam", learning_rate_init=0.01),
        dict(solver="adam", learning_rate_init=0.01),
    ),
    # our full-batch gradient descent is scikit-learn's sgd with one batch of all samples
    "gd": (
        dict(solver="gd", momentum=0.0, learning_rate_init=0.2),
        dict(solver="sgd", momentum=0.0, learning_rate_init=0.2, batch_size=N_SAMPLES),
    ),
    "gd-nesterov": (
        dict(solver="gd", learning_rate_init=0.1),
        dict(solver="sgd", learning_rate_init=0.1, batch_size=N_SAMPLES),
    ),
}


def _common(activation: str) -> dict:
    return dict(
        hidden_layer_sizes=(5,),
        activation=activation,
        alpha=ALPHA,
        batch_size=BATCH,
        shuffle=False,
        random_state=0,
        # stopping by tol stays possible and must happen at the same epoch in both
        tol=1e-4,
        n_iter_no_change=10,
    )


@functools.cache
def _data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "regression":
        X, y = make_regression(N_SAMPLES, 6, n_informative=4, noise=10.0, random_state=0)
        return X, (y - y.mean()) / y.std()
    X, y = make_classification(
        N_SAMPLES,
        6,
        n_informative=4,
        n_redundant=0,
        n_classes=2 if kind == "binary" else 3,
        random_state=0,
    )
    return X, y


@functools.cache
def _reference(kind: str, config: str, activation: str) -> dict:
    """scikit-learn's run from weights drawn here (the start both get)."""
    X, y = _data(kind)
    sk_params = dict(_common(activation), **CONFIGS[config][1])
    Sk = sknn.MLPRegressor if kind == "regression" else sknn.MLPClassifier
    sk = Sk(max_iter=1, **sk_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk.fit(X, y)
    rng = np.random.default_rng(zlib.crc32(f"{kind}/{config}/{activation}".encode()))
    W0 = [rng.uniform(-0.6, 0.6, c.shape) for c in sk.coefs_]
    b0 = [rng.uniform(-0.3, 0.3, b.shape) for b in sk.intercepts_]
    sk.coefs_ = [w.copy() for w in W0]
    sk.intercepts_ = [b.copy() for b in b0]
    sk.loss_curve_ = []
    sk.t_ = 0
    sk.n_iter_ = 0
    sk.best_loss_ = np.inf
    sk._no_improvement_count = 0
    sk.set_params(warm_start=True, max_iter=EPOCHS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk.fit(X, y)
    assert all(np.isfinite(sk.loss_curve_)), "reference diverged: lower the learning rate"
    return dict(
        W0=W0,
        b0=b0,
        loss_curve=list(sk.loss_curve_),
        loss=sk.loss_,
        best_loss=sk.best_loss_,
        n_iter=sk.n_iter_,
        t=sk.t_,
        coefs=[c.copy() for c in sk.coefs_],
        intercepts=[b.copy() for b in sk.intercepts_],
    )


def _ours(kind: str, config: str, activation: str, ref: dict, **extra):
    Ours = backendnn.MLPRegressor if kind == "regression" else backendnn.MLPClassifier
    est = Ours(max_iter=EPOCHS, warm_start=True, **dict(_common(activation), **CONFIGS[config][0]))
    est.set_params(**extra)
    est.coefs_ = [w.copy() for w in ref["W0"]]
    est.intercepts_ = [b.copy() for b in ref["b0"]]
    return est


def _check_record(est, ref: dict) -> None:
    assert len(est.loss_curve_) == len(ref["loss_curve"]) == est.n_iter_ == ref["n_iter"]
    np.testing.assert_allclose(est.loss_curve_, ref["loss_curve"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(est.loss_, ref["loss"], rtol=1e-9)
    np.testing.assert_allclose(est.best_loss_, ref["best_loss"], rtol=1e-9)
    assert est.t_ == ref["t"]
    assert all(isinstance(v, float) for v in est.loss_curve_)


GRID = [(k, c, a) for k in KINDS for c in CONFIGS for a in ACTIVATIONS]


@pytest.mark.parametrize(("kind", "config", "activation"), GRID)
def test_loss_curve_and_weights_match_sklearn_numpy(kind, config, activation):
    ref = _reference(kind, config, activation)
    X, y = _data(kind)
    est = _ours(kind, config, activation, ref).fit(X, y)
    _check_record(est, ref)
    assert len(est.coefs_) == len(ref["coefs"]) == 2
    for ours, theirs in zip(est.coefs_ + est.intercepts_, ref["coefs"] + ref["intercepts"]):
        assert isinstance(ours, np.ndarray) and ours.dtype == np.float64
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


# every (problem, solver) on each backend; activations cycled over the solvers
SUBSET = [
    (k, c, ACTIVATIONS[(i + j) % len(ACTIVATIONS)])
    for i, k in enumerate(KINDS)
    for j, c in enumerate(CONFIGS)
]


@pytest.mark.parametrize(("kind", "config", "activation"), SUBSET)
def test_loss_curve_and_weights_match_sklearn_on_backend(backend, kind, config, activation):
    """Data given as arrays of the backend (float64): training runs there, and the fitted
    weights live there, in float64."""
    ref = _reference(kind, config, activation)
    X, y = _data(kind)
    Xb = backend.asarray(X, "float64")
    yb = backend.asarray(y, "float64" if kind == "regression" else "int64")
    est = _ours(kind, config, activation, ref).fit(Xb, yb)
    _check_record(est, ref)
    for ours, theirs in zip(est.coefs_ + est.intercepts_, ref["coefs"] + ref["intercepts"]):
        assert_close(ours, theirs, backend=backend, rtol=1e-9, atol=1e-12, dtype="float64")


@pytest.mark.parametrize("kind", KINDS)
def test_backend_parameter_moves_numpy_input(backend, kind):
    """``backend=`` moves NumPy input once and trains there: the same curve as sklearn."""
    config, activation = "nesterov", "tanh"
    ref = _reference(kind, config, activation)
    X, y = _data(kind)
    est = _ours(kind, config, activation, ref, backend=backend.name, dtype="float64").fit(X, y)
    _check_record(est, ref)
    lib = _backend.namespace_name(_backend.array_namespace(est.coefs_[0]))
    assert lib == backend.name
    np.testing.assert_allclose(
        _backend.to_numpy(est.coefs_[0]), ref["coefs"][0], rtol=1e-9, atol=1e-12
    )


def test_references_are_not_trivial():
    """Guard the test data: the references train (the loss falls) and run all ``EPOCHS``
    epochs, so the comparisons above cover real training, not a stalled start."""
    for kind in KINDS:
        ref = _reference(kind, "nesterov", "tanh")
        assert ref["loss_curve"][-1] < 0.9 * ref["loss_curve"][0]
        assert ref["n_iter"] == EPOCHS


# ----------------------------------------------------------------------- fitted attributes, Poisson


def _problems():
    X, y3 = blobs3()
    return {
        "binary": (X, (y3 == 0).astype(int)),
        "multiclass": (X, y3),
        "multilabel": (X, np.stack([y3 == 0, y3 == 1, y3 != 1], axis=1).astype(int)),
        "regression": (X, X @ np.array([1.0, -2.0, 0.5, 0.0, 1.0])),
        "regression-2d": (X, np.stack([X[:, 0], X[:, 1] - X[:, 2]], axis=1)),
    }


@pytest.mark.parametrize("problem", list(_problems()))
@pytest.mark.parametrize("solver", ["sgd", "adam", "gd"])
def test_fitted_attributes_match_sklearn(problem, solver):
    X, y = _problems()[problem]
    regression = problem.startswith("regression")
    Sk = sknn.MLPRegressor if regression else sknn.MLPClassifier
    Ours = MLPRegressor if regression else MLPClassifier
    params = dict(hidden_layer_sizes=(5, 4), max_iter=3, random_state=0, batch_size=32)
    sk_solver = dict(solver="sgd", batch_size=X.shape[0]) if solver == "gd" else dict(solver=solver)
    sk = Sk(**dict(params, **sk_solver)).fit(X, y)
    ours = Ours(**dict(params, solver=solver)).fit(X, y)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_", "t_", "n_iter_"):
        assert getattr(ours, name) == getattr(sk, name), name
    assert hasattr(ours, "classes_") == hasattr(sk, "classes_")
    if hasattr(sk, "classes_"):
        np.testing.assert_array_equal(ours.classes_, sk.classes_)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in sk.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in sk.intercepts_]
    assert len(ours.loss_curve_) == len(sk.loss_curve_) == 3
    # exact: the same numbers recorded twice (bookkeeping, not two computations)
    assert ours.best_loss_ == min(ours.loss_curve_) and ours.loss_ == ours.loss_curve_[-1]
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None
    assert ours.predict(X).shape == sk.predict(X).shape
    if not regression:
        assert ours.predict_proba(X).shape == sk.predict_proba(X).shape


def test_lbfgs_t_matches_sklearn():
    X, y = blobs3()
    sk = sknn.MLPClassifier((5,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    ours = MLPClassifier((5,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    assert ours.n_iter_ == sk.n_iter_ and ours.n_layers_ == sk.n_layers_
    assert ours.t_ == sk.t_


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_poisson_regressor_equals_sklearn(solver):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1]))
    kw = dict(loss="poisson", hidden_layer_sizes=(5,), solver=solver, max_iter=20,
              learning_rate_init=0.01, batch_size=16, random_state=0)  # fmt: skip
    ours, ref = bn.MLPRegressor(**kw).fit(X, y), sknn.MLPRegressor(**kw).fit(X, y)
    assert ours.out_activation_ == ref.out_activation_ == "exp"
    if solver == "sgd":
        np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-6)
    assert (ours.predict(X) > 0).all()
    with pytest.raises(ValueError, match="negative"):
        bn.MLPRegressor(loss="poisson").fit(X, y - 1.0)
