"""Training in steps: ``partial_fit`` (against scikit-learn's, classes announced on the
first call, labels absent from a batch, unknown labels refused, stochastic solvers only,
continuing an L-BFGS curve) and ``warm_start`` (continuing like scikit-learn's, ``n_iter_``,
weights from another backend, changed classes or feature names refused).

A loaded model's warm start is in ``tests/test_io.py``, the layer-stack estimators' in
``tests/test_layer_stacks.py``, a change of precision between ``partial_fit`` calls in
``tests/test_dtypes.py``, the generator's draws in ``tests/test_sklearn_seed.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import neural_network as sknn
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning

import backendnn as bn
from backendnn import MLPClassifier, MLPRegressor, _backend
from tests._helpers import (
    UNSHUFFLED_SGD,
    X_CLS,
    X_OK,
    X_REG,
    Y_CLS,
    Y_OK_CLS,
    Y_REG,
    assert_on,
    blobs3,
)

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

# ---------------------------------------------------------------------------- partial_fit


def _same_start(sk, ours, seed: int = 0) -> None:
    """Give scikit-learn's fitted ``sk`` and our unfitted ``ours`` the same fresh start."""
    rng = np.random.default_rng(seed)
    W0 = [rng.uniform(-0.5, 0.5, c.shape) for c in sk.coefs_]
    b0 = [rng.uniform(-0.2, 0.2, b.shape) for b in sk.intercepts_]
    sk.coefs_, sk.intercepts_ = [w.copy() for w in W0], [b.copy() for b in b0]
    sk.loss_curve_, sk.t_, sk.n_iter_ = [], 0, 0
    sk.best_loss_, sk._no_improvement_count = np.inf, 0
    if hasattr(sk, "_optimizer"):
        del sk._optimizer  # partial_fit would reuse it (velocities of the throw-away fit)
    ours.coefs_, ours.intercepts_ = [w.copy() for w in W0], [b.copy() for b in b0]


def test_partial_fit_matches_sklearn():
    X, y = blobs3()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk = sknn.MLPClassifier(max_iter=1, **UNSHUFFLED_SGD).fit(X, y)
    ours = MLPClassifier(**UNSHUFFLED_SGD)
    _same_start(sk, ours)
    for _ in range(3):
        sk.partial_fit(X, y)
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier(**UNSHUFFLED_SGD).partial_fit(X, y)  # classes are required on the first call
    ours.partial_fit(X, y, classes=[0, 1, 2])
    ours.partial_fit(X, y)
    ours.partial_fit(X, y, classes=np.array([0, 1, 2]))
    np.testing.assert_array_equal(ours.classes_, [0, 1, 2])
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-9)
    assert ours.t_ == sk.t_ == 3 * X.shape[0]
    for a, b in zip(ours.coefs_ + ours.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="classes"):
        ours.partial_fit(X, y, classes=[0, 1, 2, 3])  # differs from the first call's
    with pytest.raises(ValueError):
        ours.partial_fit(X, y + 5)  # labels never announced
    with pytest.raises(AttributeError):
        MLPClassifier(solver="lbfgs").partial_fit(X, y, classes=[0, 1, 2])


def test_partial_fit_classes_may_be_absent_from_a_batch():
    X, y = blobs3()
    clf = MLPClassifier((5,), random_state=0)
    clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    assert clf.out_activation_ == "softmax" and clf.predict_proba(X).shape == (90, 3)
    clf.partial_fit(X, y)
    reg = MLPRegressor(hidden_layer_sizes=(5,), random_state=0)
    reg.partial_fit(X, X[:, 0])
    reg.partial_fit(X, X[:, 0])
    assert len(reg.loss_curve_) == 2 and reg.t_ == 2 * X.shape[0]


def test_partial_fit_classes_are_sorted_and_distinct():
    m = bn.MLPClassifier((3,), solver="sgd", random_state=0)
    m.partial_fit(X_CLS, Y_CLS, classes=[2, 0, 1, 1])
    np.testing.assert_array_equal(m.classes_, [0, 1, 2])
    assert m.predict_proba(X_CLS).shape == (40, 3)


def test_partial_fit_exists_for_stochastic_solvers_only():
    assert not hasattr(bn.MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(bn.MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(bn.MLPClassifier(solver="sgd"), "partial_fit")
    with pytest.raises(ValueError, match="early_stopping"):
        bn.MLPRegressor(early_stopping=True).partial_fit(X_REG, Y_REG)


def test_unknown_label_for_partial_fit(backend):
    model = bn.MLPClassifier((4,))
    model.partial_fit(backend.asarray(X_OK), backend.asarray(Y_OK_CLS), classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"labels \[7\] not in classes"):
        model.partial_fit(backend.asarray(X_OK[:2]), backend.asarray(np.array([0, 7])))
    with pytest.raises(ValueError, match="classes must be passed"):
        bn.MLPClassifier((4,)).partial_fit(backend.asarray(X_OK), backend.asarray(Y_OK_CLS))


def test_partial_fit_after_lbfgs_continues_the_lbfgs_curve():
    model = bn.MLPClassifier((3,), max_iter=5, random_state=0).fit(X_CLS, Y_CLS)  # adam
    model.set_params(solver="lbfgs").fit(X_CLS, Y_CLS)
    lbfgs_curve = list(model.loss_curve_)
    model.set_params(solver="sgd").partial_fit(X_CLS, Y_CLS)
    assert model.loss_curve_[:-1] == lbfgs_curve and len(model.loss_curve_) == len(lbfgs_curve) + 1


# ---------------------------------------------------------------------------- warm_start


def test_warm_start_continues_like_sklearn():
    X, y = blobs3()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk = sknn.MLPClassifier(max_iter=1, **UNSHUFFLED_SGD).fit(X, y)
        ours = MLPClassifier(max_iter=5, warm_start=True, **UNSHUFFLED_SGD)
        _same_start(sk, ours)
        sk.set_params(warm_start=True, max_iter=5).fit(X, y)
        ours.fit(X, y)
        first = [c.copy() for c in ours.coefs_]
        sk.fit(X, y)
        ours.fit(X, y)
    assert len(ours.loss_curve_) == len(sk.loss_curve_) == 10
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-9)
    assert ours.t_ == sk.t_ == 10 * X.shape[0]
    assert not np.allclose(first[0], ours.coefs_[0])
    for a, b in zip(ours.coefs_, sk.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # without warm_start a refit starts afresh
    ours.set_params(warm_start=False, max_iter=2).fit(X, y)
    assert len(ours.loss_curve_) == 2


def test_n_iter_after_warm_start_and_partial_fit_matches_sklearn():
    X, y = blobs3()
    n_iter = {}
    for name, Est in (("sk", sknn.MLPClassifier), ("ours", MLPClassifier)):
        est = Est(max_iter=5, warm_start=True, **UNSHUFFLED_SGD).fit(X, y).fit(X, y)
        inc = Est(**UNSHUFFLED_SGD)
        inc.partial_fit(X, y, classes=[0, 1, 2])
        inc.partial_fit(X, y)
        n_iter[name] = (est.n_iter_, len(est.loss_curve_), inc.n_iter_, len(inc.loss_curve_))
    assert n_iter["sk"] == (5, 10, 1, 2)
    assert n_iter["ours"] == n_iter["sk"]


def test_warm_start_from_weights_of_another_backend(backend):
    """Weights fitted on one backend (here NumPy) seed a warm start on another."""
    X, y = blobs3()
    src = MLPClassifier((5,), max_iter=20, random_state=0).fit(X, y)
    dst = MLPClassifier((5,), max_iter=1, warm_start=True, solver="sgd", learning_rate_init=1e-9)
    dst.coefs_ = [backend.asarray(c, "float64") for c in src.coefs_]
    dst.intercepts_ = [backend.asarray(b, "float64") for b in src.intercepts_]
    dst.fit(backend.asarray(X, "float64"), backend.asarray(y, "int64"))
    assert_on(dst.coefs_[0], backend)
    np.testing.assert_allclose(_backend.to_numpy(dst.coefs_[0]), src.coefs_[0], atol=1e-6)
    bad = MLPClassifier((7,), warm_start=True, max_iter=1)
    bad.coefs_, bad.intercepts_ = src.coefs_, src.intercepts_
    with pytest.raises(ValueError, match="warm start"):
        bad.fit(X, y)


def test_changed_classes_are_refused_not_reused():
    model = bn.MLPClassifier((4,), max_iter=3, warm_start=True, random_state=0)
    model.fit(X_CLS, Y_CLS)
    with pytest.raises(ValueError, match="same classes"):
        model.fit(X_CLS, Y_CLS + 10)
    with pytest.raises(ValueError, match="multi-label"):
        model.fit(X_CLS, np.eye(3, dtype=int)[Y_CLS])
    inc = bn.MLPClassifier((4,), solver="sgd").partial_fit(X_CLS, Y_CLS, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not in classes"):
        inc.partial_fit(X_CLS, np.where(Y_CLS == 2, 3, Y_CLS))


def test_warm_start_checks_feature_names():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_CLS, columns=["a", "b", "c", "d"])
    model = bn.MLPClassifier((3,), max_iter=3, random_state=0, warm_start=True)
    model.fit(frame, Y_CLS)
    before = [c.copy() for c in model.coefs_]
    with pytest.raises(ValueError, match="same order"):
        model.fit(frame[["b", "a", "c", "d"]], Y_CLS)
    np.testing.assert_array_equal(model.coefs_[0], before[0])  # exact: left as they were
