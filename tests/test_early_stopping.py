"""Early stopping, all of it: on a validation split (``early_stopping=True``; the
validation score or loss, the best epoch's weights restored, multi-label subset accuracy,
the Perceptron's against scikit-learn's), the split's checks (too few samples, all-zero
weights), and stopping on the training loss (``tol``, ``n_iter_no_change``, infinite
included).

Early stopping on sparse and dask data is tested with those sources
(``tests/test_sparse.py``, ``tests/test_dask.py``), on a JAX mesh in
``tests/test_distributed.py``; the split drawn as scikit-learn's in
``tests/test_sklearn_seed.py``; weighted validation scores in ``tests/test_sample_weight.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import neural_network as sknn
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import Perceptron as SkPerceptron

import backendnn as bn
from backendnn import MLPClassifier, MLPRegressor, _backend
from backendnn._backend.splits import split_indices
from tests._helpers import (
    PERCEPTRON_DATA,
    X_CLS,
    X_OK,
    X_REG,
    Y_CLS,
    Y_OK_REG,
    Y_REG,
    fit_small,
    same_coef_as_sklearn,
)

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

# ---------------------------------------------------------------------------- on a validation split


@pytest.mark.parametrize("metric", ["score", "loss"])
def test_early_stopping(metric):
    X, y = make_classification(300, 8, n_informative=5, random_state=0)
    records = []
    clf = MLPClassifier(
        (16,),
        early_stopping=True,
        early_stopping_metric=metric,
        validation_fraction=0.2,
        n_iter_no_change=3,
        learning_rate_init=0.05,
        max_iter=200,
        random_state=0,
    )
    clf.fit(X, y, callbacks=[lambda r: records.append((r[f"validation_{metric}"], r["params"]))])
    scores, losses = clf.validation_scores_, clf.validation_loss_curve_
    assert len(scores) == len(losses) == clf.n_iter_ == len(clf.loss_curve_) == len(records) < 200
    assert clf.best_validation_score_ == max(scores)
    assert clf.best_loss_ is None  # scikit-learn's convention with early stopping
    assert all(0.0 <= s <= 1.0 for s in scores) and all(v > 0.0 for v in losses)
    # exact: the same numbers recorded twice (bookkeeping, not two computations)
    watched = scores if metric == "score" else [-v for v in losses]
    assert [s for s, _ in records] == (scores if metric == "score" else losses)
    # stopped n_iter_no_change + 1 epochs after the last improvement ...
    best = watched.index(max(watched))
    assert clf.n_iter_ >= best + 1 + clf.n_iter_no_change
    # ... and restored the best epoch's weights (exact: the weights kept, not recomputed)
    best_params = [p for p in records[best][1] if p]
    for coef, (W, _b) in zip(clf.coefs_, best_params):
        np.testing.assert_array_equal(coef, _backend.to_numpy(W))


def test_early_stopping_regressor_and_bad_metric():
    X, y = make_regression(200, 5, noise=1.0, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True, max_iter=30, random_state=0,
            n_iter_no_change=3)
    reg.fit(X, y / y.std())
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ == max(reg.validation_scores_) <= 1.0
    with pytest.raises(ValueError, match="early_stopping_metric"):
        MLPClassifier(early_stopping_metric="accuracy").fit(X, y > 0)


def test_multilabel_early_stopping_scores_subset_accuracy():
    rng = np.random.RandomState(0)
    X = rng.randn(400, 5)
    Y = np.c_[X[:, 0] > 0, X[:, 1] > 0.3, X[:, 0] + X[:, 2] > 0].astype(int)
    kw = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=6, early_stopping=True,
              solver="sgd", learning_rate_init=0.05)  # fmt: skip
    ours, ref = bn.MLPClassifier(**kw).fit(X, Y), sknn.MLPClassifier(**kw).fit(X, Y)
    np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=1e-12)
    assert ours.score(X, Y) == pytest.approx(ref.score(X, Y), rel=1e-12)


def _split_is_sklearns() -> bool:
    from sklearn.model_selection import StratifiedShuffleSplit

    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 1, 0, 0, 0, 1, 2, 2, 2, 1, 0] * 3)
    _, val = split_indices(len(y), 0.2, np.random.RandomState(0), y)
    _, theirs = next(StratifiedShuffleSplit(test_size=0.2, random_state=0).split(y, y))
    return sorted(val) == sorted(theirs.tolist())


@pytest.mark.parametrize("data", list(PERCEPTRON_DATA))
def test_perceptron_early_stopping(data):
    X, y = PERCEPTRON_DATA[data]
    kw = {"early_stopping": True, "n_iter_no_change": 3, "penalty": "l2", "shuffle": False}
    ours = bn.Perceptron(**kw).fit(X, y)
    assert 1 <= ours.n_iter_ < ours.max_iter and ours.score(X, y) > 0.5
    # scikit-learn from the same (default) random_state: the same split, the same fit
    assert _split_is_sklearns()
    same_coef_as_sklearn(ours, SkPerceptron(**kw).fit(X, y))
    with pytest.raises(ValueError, match="early_stopping"):
        bn.Perceptron(early_stopping=True).partial_fit(X, y, classes=np.unique(y))


# ---------------------------------------------------------------------------- the split's checks


def test_single_sample_with_early_stopping(backend):
    with pytest.raises(ValueError, match="train set will be empty"):
        fit_small(backend, "regressor", X_OK[:1], Y_OK_REG[:1], early_stopping=True)
    with pytest.raises(ValueError, match="validation set is too small"):
        fit_small(backend, "regressor", X_OK[:3], Y_OK_REG[:3], early_stopping=True)


def test_zero_weights_on_the_whole_validation_set_are_an_error(monkeypatch):
    from backendnn.estimators import _driver

    # the split fixed (the check under test is what follows it): rows 30-39 held out
    split = (list(range(30)), list(range(30, 40)))
    monkeypatch.setattr(_driver, "split_indices", lambda *a: split)
    w = np.r_[np.ones(30), np.zeros(10)]
    with pytest.raises(ValueError, match="validation set are all zero"):
        bn.MLPRegressor(hidden_layer_sizes=(3,), early_stopping=True, random_state=0).fit(
            X_REG, Y_REG, sample_weight=w
        )


# ---------------------------------------------------------------------------- on the training loss


def test_n_iter_no_change_inf_never_stops_early():
    model = bn.MLPClassifier((4,), max_iter=7, tol=1e9, n_iter_no_change=np.inf, random_state=0)
    with pytest.warns(bn.ConvergenceWarning, match="maximum iterations"):
        model.fit(X_CLS, Y_CLS)
    assert model.n_iter_ == 7
