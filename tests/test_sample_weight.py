"""``sample_weight`` in ``fit``, ``score`` and metadata routing: integer weights equal
repeated rows (full batch), weighted minibatch training and early stopping equal
scikit-learn's from the same seed, weighted scores are scikit-learn's metrics, a minibatch
of zero weights changes nothing, bad weights are named and change nothing.

The losses' weights are in ``tests/test_losses.py``, the Perceptron's in
``tests/test_perceptron.py``, the same weighted draws as scikit-learn in
``tests/test_sklearn_seed.py``, an all-zero validation set in ``tests/test_early_stopping.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import neural_network as sknn
from sklearn.metrics import accuracy_score, r2_score

import backendnn as bn
from tests._helpers import WEIGHTS, X_CLS, X_REG, Y_CLS, Y_REG
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


@pytest.mark.parametrize("solver", ["gd", "lbfgs"])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_integer_weights_equal_repeated_rows(backend, solver, kind):
    """Full batch: weight k is the sample repeated k times (0: left out), for the loss,
    its penalty (alpha / sum of weights) and so every step."""
    Est = bn.MLPClassifier if kind == "classifier" else bn.MLPRegressor
    X, y = (X_CLS, Y_CLS) if kind == "classifier" else (X_REG, Y_REG)
    rows = np.repeat(np.arange(len(y)), WEIGHTS.astype(int))
    kw = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=15, alpha=1e-2, shuffle=False,
              learning_rate_init=0.1, random_state=0, dtype="float64")  # fmt: skip
    weighted = Est(**kw).fit(backend.asarray(X, "float64"), y, sample_weight=WEIGHTS)
    repeated = Est(**kw).fit(backend.asarray(X[rows], "float64"), y[rows])
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)
    for a, b in zip(weighted.coefs_, repeated.coefs_):
        assert_close(a, bn.to_numpy(b), backend=backend, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_weighted_fit_equals_sklearn_from_the_same_seed(solver, kind):
    """Weighted minibatch training, early stopping's weighted score included, equals
    scikit-learn's from the same integer random_state."""
    Ours, Sk = (
        (bn.MLPClassifier, sknn.MLPClassifier)
        if kind == "classifier"
        else (bn.MLPRegressor, sknn.MLPRegressor)
    )
    X, y = (X_CLS, Y_CLS) if kind == "classifier" else (X_REG, Y_REG)
    w = np.random.default_rng(0).uniform(0.1, 2.0, len(y))
    kw = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=12, alpha=1e-3, batch_size=8,
              learning_rate_init=0.05, random_state=3, early_stopping=True,
              validation_fraction=0.25, n_iter_no_change=50)  # fmt: skip
    ours = Ours(**kw).fit(X, y, sample_weight=w)
    ref = Sk(**kw).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=1e-9)
    for a, b in zip(ours.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    assert ours.score(X, y, sample_weight=w) == pytest.approx(
        ref.score(X, y, sample_weight=w), rel=1e-12
    )


def test_a_minibatch_of_zero_weights_changes_nothing(backend):
    """A batch whose weights are all 0 holds no data: no update (0/0 would make the loss
    NaN), so with momentum 0 the fit equals the fit without those rows."""
    X, y = backend.asarray(X_CLS, "float64"), Y_CLS
    w = np.r_[np.zeros(8), np.ones(32)]
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, batch_size=8, alpha=1e-2,
              shuffle=False, max_iter=3, random_state=0, dtype="float64")  # fmt: skip
    weighted = bn.MLPClassifier(**kw).fit(X, y, sample_weight=w)
    dropped = bn.MLPClassifier(**kw).fit(backend.asarray(X_CLS[8:], "float64"), y[8:])
    assert np.isfinite(weighted.loss_curve_).all()
    for a, b in zip(weighted.coefs_, dropped.coefs_):
        assert_close(a, bn.to_numpy(b), backend=backend, rtol=1e-12, atol=1e-14)


def test_weighted_scores_are_sklearns_metrics(backend):
    w = np.random.default_rng(1).uniform(0, 3, len(Y_CLS))
    clf = bn.MLPClassifier((5,), max_iter=20, random_state=0).fit(backend.asarray(X_CLS), Y_CLS)
    pred = bn.to_numpy(clf.predict(backend.asarray(X_CLS)))
    assert clf.score(backend.asarray(X_CLS), Y_CLS, sample_weight=w) == pytest.approx(
        accuracy_score(Y_CLS, pred, sample_weight=w), rel=1e-12
    )
    reg = bn.MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    reg.fit(backend.asarray(X_REG), Y_REG)
    pred = bn.to_numpy(reg.predict(backend.asarray(X_REG))).astype(float)
    assert reg.score(backend.asarray(X_REG), Y_REG, sample_weight=w) == pytest.approx(
        r2_score(Y_REG, pred, sample_weight=w), rel=1e-6
    )


def test_metadata_routing_passes_sample_weight():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.model_selection import cross_validate

    w = np.random.default_rng(2).uniform(0.5, 2.0, len(Y_CLS))
    with sklearn.config_context(enable_metadata_routing=True):
        model = bn.MLPClassifier((4,), max_iter=5, random_state=0)
        model.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        routed = cross_validate(model, X_CLS, Y_CLS, params={"sample_weight": w}, cv=2)
    # the same folds fitted and scored by hand with the weights
    from sklearn.model_selection import StratifiedKFold

    scores = []
    for train, test in StratifiedKFold(2).split(X_CLS, Y_CLS):
        m = bn.MLPClassifier((4,), max_iter=5, random_state=0)
        m.fit(X_CLS[train], Y_CLS[train], sample_weight=w[train])
        scores.append(m.score(X_CLS[test], Y_CLS[test], sample_weight=w[test]))
    np.testing.assert_allclose(routed["test_score"], scores, rtol=1e-12)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones(39), "39 weights but X has 40"),
        (np.ones((40, 1)), "1-D"),
        (np.r_[-1.0, np.ones(39)], "negative"),
        (np.r_[np.nan, np.ones(39)], "NaN"),
        (np.zeros(40), "sums to zero"),
        (np.array(["a"] * 40), "real numbers"),
    ],
)
def test_bad_sample_weights_are_named_and_change_nothing(weights, message):
    model = bn.MLPClassifier((4,), max_iter=3, random_state=0).fit(X_CLS, Y_CLS)
    before = [c.copy() for c in model.coefs_]
    with pytest.raises(ValueError, match=message):
        model.fit(X_CLS * 2, Y_CLS, sample_weight=weights)
    for a, b in zip(before, model.coefs_):
        np.testing.assert_array_equal(a, b)  # exact: untouched
