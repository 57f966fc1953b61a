"""``fit(X, y, validation_data=...)``: per-epoch ``validation_loss_curve_`` and
``validation_scores_`` equal to ``sklearn.metrics`` computed from the model's own
predictions after each epoch (read by a callback that sees the epoch's weights), weighted
validation rows, early stopping on the given set, ``scoring``, and sparse and dask
validation sets."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_squared_error, r2_score

import backendnn as bn
from backendnn.callbacks import Callback, LearningRateScheduler
from tests._helpers import blobs3

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


class Predictions(Callback):
    """The model's predictions on X_val after every epoch, and the records."""

    def __init__(self, X_val, method):
        self.X_val, self.method, self.outputs, self.records = X_val, method, [], []

    def on_epoch_end(self, model, record):
        out = getattr(model, self.method)(self.X_val)
        self.outputs.append(bn.to_numpy(out))
        self.records.append(dict(record))


def _split(X, y, n_val):
    return X[n_val:], y[n_val:], X[:n_val], y[:n_val]


@pytest.mark.parametrize("weighted", [False, True])
def test_classifier_curves_equal_sklearn_metrics(backend, weighted):
    X, y = blobs3()
    Xt, yt, Xv, yv = _split(X, y, 30)
    wv = np.random.RandomState(0).uniform(0.5, 2.0, size=30) if weighted else None
    seen = Predictions(backend.asarray(Xv, "float64"), "predict_proba")
    clf = bn.MLPClassifier((6,), max_iter=5, random_state=0, learning_rate_init=0.02)
    given = (backend.asarray(Xv, "float64"), yv) + ((wv,) if weighted else ())
    clf.fit(backend.asarray(Xt, "float64"), yt, validation_data=given, callbacks=[seen])
    assert clf.n_iter_ == 5 == len(seen.outputs)
    losses = [log_loss(yv, p, sample_weight=wv, labels=clf.classes_) for p in seen.outputs]
    scores = [accuracy_score(yv, clf.classes_[p.argmax(1)], sample_weight=wv) for p in seen.outputs]
    np.testing.assert_allclose(clf.validation_loss_curve_, losses, rtol=1e-10)
    np.testing.assert_allclose(clf.validation_scores_, scores, rtol=1e-12)
    assert [r["validation_loss"] for r in seen.records] == clf.validation_loss_curve_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # the weights of each epoch differ: the curve is not one number repeated
    assert len(set(clf.validation_loss_curve_)) == 5
    # nothing was split off: every training row was seen each epoch
    assert clf.t_ == 5 * len(Xt)


def test_regressor_curves_equal_sklearn_metrics(backend):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(80, 4))
    y = X @ rng.normal(size=4) + 0.1 * rng.normal(size=80)
    Xt, yt, Xv, yv = _split(X, y, 20)
    seen = Predictions(backend.asarray(Xv, "float64"), "predict")
    reg = bn.MLPRegressor(hidden_layer_sizes=(5,), max_iter=4, random_state=0)
    reg.fit(backend.asarray(Xt, "float64"), yt, validation_data=(Xv, yv), callbacks=[seen])
    # the squared-error loss is half the mean squared error (scikit-learn's MLP loss)
    losses = [mean_squared_error(yv, p) / 2 for p in seen.outputs]
    np.testing.assert_allclose(reg.validation_loss_curve_, losses, rtol=1e-10)
    r2 = [r2_score(yv, p) for p in seen.outputs]
    np.testing.assert_allclose(reg.validation_scores_, r2, rtol=1e-10)


def test_early_stopping_uses_the_given_set_and_scoring(backend):
    X, y = blobs3()
    Xt, yt, Xv, yv = _split(X, y, 30)
    seen = Predictions(backend.asarray(Xv, "float64"), "predict")
    clf = bn.MLPClassifier(
        (6,),
        max_iter=40,
        random_state=0,
        early_stopping=True,
        n_iter_no_change=3,
        learning_rate_init=0.05,
        scoring="f1_macro",
    )
    clf.fit(backend.asarray(Xt, "float64"), yt, validation_data=(Xv, yv), callbacks=[seen])
    f1 = [f1_score(yv, p, average="macro") for p in seen.outputs]
    np.testing.assert_allclose(clf.validation_scores_, f1, rtol=1e-12)
    assert [r["f1_macro"] for r in seen.records] == clf.validation_scores_
    assert clf.t_ == clf.n_iter_ * len(Xt)  # no held-out share of the training rows
    # the weights kept are those of the best epoch on the given set
    best = int(np.argmax(clf.validation_scores_))
    assert clf.n_iter_ >= best + 1 + clf.n_iter_no_change
    np.testing.assert_array_equal(clf.predict(Xv), seen.outputs[best])


def test_early_stopping_split_with_a_scorer():
    X, y = blobs3()
    clf = bn.MLPClassifier(
        (6,),
        max_iter=6,
        random_state=0,
        early_stopping=True,
        scoring="neg_log_loss",
        n_iter_no_change=100,
    )
    clf.fit(X, y)
    assert len(clf.validation_scores_) == 6
    # minus the log loss: the validation loss curve, computed the other way round
    np.testing.assert_allclose(
        clf.validation_scores_, [-v for v in clf.validation_loss_curve_], rtol=1e-10
    )


def test_layer_stack_validation_in_inference_mode(backend):
    X, y = blobs3()
    Xt, yt, Xv, yv = _split(X, y, 30)
    layers = [
        bn.layers.Dense(8),
        bn.layers.BatchNorm1d(8),
        bn.layers.Activation("relu"),
        bn.layers.Dropout(0.5),
    ]
    seen = Predictions(backend.asarray(Xv, "float64"), "predict_proba")
    clf = bn.NeuralNetClassifier(layers, max_iter=3, random_state=0)
    clf.fit(backend.asarray(Xt, "float64"), yt, validation_data=(Xv, yv), callbacks=[seen])
    # predict_proba is inference mode (running statistics, no dropout): so is validation
    losses = [log_loss(yv, p, labels=clf.classes_) for p in seen.outputs]
    np.testing.assert_allclose(clf.validation_loss_curve_, losses, rtol=1e-10)


def test_sparse_and_dask_validation_sets():
    sp = pytest.importorskip("scipy.sparse")
    X, y = blobs3()
    X = np.where(np.abs(X) > 1, X, 0.0)
    Xt, yt, Xv, yv = _split(X, y, 30)
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    dense = bn.MLPClassifier(**kw).fit(Xt, yt, validation_data=(Xv, yv))
    given = (sp.csr_matrix(Xv), yv)
    sparse = bn.MLPClassifier(**kw).fit(sp.csr_matrix(Xt), yt, validation_data=given)
    assert_allclose(sparse.validation_loss_curve_, dense.validation_loss_curve_, rtol=1e-10)
    da = pytest.importorskip("dask.array")
    streamed = bn.MLPClassifier(**kw, shuffle=False).fit(
        da.from_array(Xt, chunks=20), yt, validation_data=(da.from_array(Xv, chunks=10), yv)
    )
    one = bn.MLPClassifier(**kw, shuffle=False).fit(Xt, yt, validation_data=(Xv, yv))
    assert_allclose(streamed.validation_loss_curve_, one.validation_loss_curve_, rtol=1e-10)


def test_lbfgs_scores_the_solution():
    X, y = blobs3()
    Xt, yt, Xv, yv = _split(X, y, 30)
    # few iterations: log_loss clips probabilities at 2.2e-16, and an overfitted network's
    # exact cross-entropy (ours) then exceeds it
    clf = bn.MLPClassifier((6,), solver="lbfgs", max_iter=5, random_state=0)
    clf.fit(Xt, yt, validation_data=(Xv, yv))
    assert clf.validation_loss_curve_ == pytest.approx(
        [log_loss(yv, clf.predict_proba(Xv), labels=clf.classes_)], rel=1e-10
    )


@pytest.mark.parametrize(
    "given, match",
    [
        ((np.zeros((5, 5)),), "tuple"),
        (np.zeros((5, 5)), "tuple"),
        ((np.zeros((5, 4)), np.zeros(5, dtype=int)), "features|shape"),
        ((np.zeros((5, 5)), np.array([0, 1, 2, 9, 0])), "not in classes"),
        ((np.zeros((5, 5)), np.zeros(4, dtype=int)), "validation_data"),
    ],
)
def test_bad_validation_data_changes_nothing(given, match):
    X, y = blobs3()
    clf = bn.MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    before = [c.copy() for c in clf.coefs_]
    with pytest.raises((ValueError, TypeError), match=match):
        clf.fit(X, y, validation_data=given)
    for a, b in zip(before, clf.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["online", "gd"])
def test_perceptron_curves_equal_sklearn_metrics(backend, solver):
    X, y = blobs3()
    Xt, yt, Xv, yv = _split(X, y, 30)
    seen = Predictions(backend.asarray(Xv, "float64"), "predict")
    kw = dict(solver=solver, max_iter=5, tol=None, random_state=0)
    model = bn.Perceptron(**kw, **({"batch_size": 16} if solver == "gd" else {}))
    model.fit(backend.asarray(Xt, "float64"), yt, validation_data=(Xv, yv), callbacks=[seen])
    assert len(seen.outputs) == model.n_iter_ == 5
    accuracies = [accuracy_score(yv, p) for p in seen.outputs]
    np.testing.assert_allclose(model.validation_scores_, accuracies, rtol=1e-12)
    # the perceptron criterion (the notes' eq. 1): the sum of max(0, -y h) over samples
    # and one-vs-rest problems (y = +1/-1), from the model's own decision function
    last = bn.to_numpy(model.decision_function(backend.asarray(Xv, "float64")))
    signs = np.where(yv[:, None] == model.classes_[None, :], 1.0, -1.0)
    criterion = np.maximum(0.0, -signs * last).sum()
    assert model.validation_loss_curve_[-1] == pytest.approx(criterion, rel=1e-10)


def test_online_perceptron_early_stopping_on_the_given_set():
    X, y = blobs3()
    Xt, yt, Xv, yv = _split(X, y, 30)
    model = bn.Perceptron(early_stopping=True, n_iter_no_change=2, max_iter=50, random_state=0)
    model.fit(Xt, yt, validation_data=(Xv, yv))
    assert model.t_ == model.n_iter_ * len(Xt) + 1  # no row held out (scikit-learn's t_ + 1)
    with pytest.raises(ValueError, match="eta0"):
        bn.Perceptron(max_iter=3).fit(X, y, callbacks=[LearningRateScheduler(lambda e, lr: 0.5)])
