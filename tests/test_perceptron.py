"""``Perceptron`` (issue 14): scikit-learn's online algorithm by default, compared with the
installed scikit-learn's ``Perceptron`` (penalties, class and sample weights, ``partial_fit``,
``warm_start``, ``coef_init``, shuffling); the notes' gradient descent as ``solver="gd"``;
the same coefficients on every backend; separable data, XOR, one-vs-rest and labels of any
values; parameter checks.

The Perceptron's early stopping is in ``tests/test_early_stopping.py``, its model files in
``tests/test_io.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import Perceptron as SkPerceptron
from sklearn.utils._seq_dataset import ArrayDataset64

import backendnn as bn
from backendnn import Perceptron, _backend
from backendnn.estimators import _online_draws
from tests._helpers import PERCEPTRON_DATA, X_CLS, Y_CLS, assert_on, same_coef_as_sklearn, xor
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

DATA = PERCEPTRON_DATA
X3, Y3 = DATA["3-class"]
X2, Y2 = DATA["binary"]
SW = np.random.default_rng(0).integers(0, 4, size=len(Y3)).astype(float)
PENALTIES = [
    {},
    {"penalty": "l2", "alpha": 0.01},
    {"penalty": "l1", "alpha": 0.01},
    {"penalty": "elasticnet", "alpha": 0.01, "l1_ratio": 0.3},
]


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("kw", PENALTIES, ids=["none", "l2", "l1", "elasticnet"])
def test_coef_equals_sklearn_without_shuffle(data, kw):
    X, y = DATA[data]
    theirs = SkPerceptron(shuffle=False, **kw).fit(X, y)
    ours = bn.Perceptron(shuffle=False, **kw).fit(X, y)
    same_coef_as_sklearn(ours, theirs)
    assert ours.score(X, y) == theirs.score(X, y)


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize(
    "kw",
    [
        {"class_weight": "balanced"},
        {"class_weight": {0: 3.0, 1: 0.5}},
        {"fit_intercept": False, "eta0": 0.3},
        {"tol": None, "max_iter": 12},
        {"penalty": "elasticnet", "alpha": 0.05, "class_weight": "balanced"},
    ],
    ids=["balanced", "dict", "no-intercept", "tol-none", "elasticnet-balanced"],
)
@pytest.mark.parametrize("weighted", [False, True], ids=["", "sample_weight"])
def test_weights_equal_sklearn(data, kw, weighted):
    X, y = DATA[data]
    sw = SW if weighted else None
    theirs = SkPerceptron(shuffle=False, **kw).fit(X, y, sample_weight=sw)
    ours = bn.Perceptron(shuffle=False, **kw).fit(X, y, sample_weight=sw)
    same_coef_as_sklearn(ours, theirs)
    assert ours.score(X, y, sample_weight=sw) == pytest.approx(theirs.score(X, y, sample_weight=sw))


@pytest.mark.parametrize("data", list(DATA))
def test_partial_fit_sequence_equals_sklearn(data):
    X, y = DATA[data]
    kw = {"penalty": "elasticnet", "alpha": 0.01, "shuffle": False}
    theirs, ours = SkPerceptron(**kw), bn.Perceptron(**kw)
    classes = np.unique(y)
    for i, (lo, hi) in enumerate([(0, 30), (30, 60), (60, 90), (0, 90)]):
        sw = SW[lo:hi] if i == 1 else None
        first = {"classes": classes} if i == 0 else {}
        theirs.partial_fit(X[lo:hi], y[lo:hi], sample_weight=sw, **first)
        ours.partial_fit(X[lo:hi], y[lo:hi], sample_weight=sw, **first)
        same_coef_as_sklearn(ours, theirs)
    # then fit starts afresh, as scikit-learn's
    same_coef_as_sklearn(ours.fit(X, y), theirs.fit(X, y))


def test_warm_start_and_coef_init_equal_sklearn():
    X, y = DATA["3-class"]
    kw = {"shuffle": False, "warm_start": True, "max_iter": 2, "tol": None}
    theirs, ours = SkPerceptron(**kw), bn.Perceptron(**kw)
    for max_iter in (2, 3):
        theirs.set_params(max_iter=max_iter).fit(X, y)
        ours.set_params(max_iter=max_iter).fit(X, y)
        same_coef_as_sklearn(ours, theirs)
    coef, intercept = np.ones((3, X.shape[1])), np.array([0.5, -0.5, 0.0])
    ours = bn.Perceptron(shuffle=False).fit(X, y, coef_init=coef, intercept_init=intercept)
    # (scikit-learn trains in coef_init's memory: give it copies)
    theirs = SkPerceptron(shuffle=False).fit(
        X, y, coef_init=coef.copy(), intercept_init=intercept.copy()
    )
    same_coef_as_sklearn(ours, theirs)
    with pytest.raises(ValueError, match="coef_init"):
        bn.Perceptron().fit(X, y, coef_init=np.ones((2, X.shape[1])))


def test_shuffle_order_is_sklearns():
    n = 11
    data = ArrayDataset64(np.zeros((n, 1)), np.zeros(n), np.ones(n), seed=1)
    orders = _online_draws.Orders([123456789], n, 1)
    for _ in range(3):
        data._shuffle_py(123456789)
        expected = [data._next_py()[-1] for _ in range(n)]
        assert orders.next_epoch()[:, 0].tolist() == expected


@pytest.mark.parametrize("data", list(DATA))
def test_shuffled_fit_equals_sklearn(data):
    X, y = DATA[data]
    for rs in (0, 7):
        theirs = SkPerceptron(random_state=rs, penalty="l1", alpha=1e-3).fit(X, y)
        ours = bn.Perceptron(random_state=rs, penalty="l1", alpha=1e-3).fit(X, y)
        same_coef_as_sklearn(ours, theirs)


def test_same_coef_on_every_backend(backend):
    X, y = DATA["3-class"]
    kw = {"penalty": "elasticnet", "alpha": 0.01, "class_weight": "balanced", "shuffle": False}
    ref = bn.Perceptron(**kw).fit(X, y, sample_weight=SW)
    ours = bn.Perceptron(**kw).fit(backend.asarray(X, "float64"), y, sample_weight=SW)
    assert_close(ours.coef_, _backend.to_numpy(ref.coef_), backend=backend, rtol=1e-9)
    assert_close(ours.intercept_, _backend.to_numpy(ref.intercept_), backend=backend, rtol=1e-9)
    assert ours.n_iter_ == ref.n_iter_ and ours.loss_curve_ == pytest.approx(ref.loss_curve_)
    binary = bn.Perceptron(max_iter=20).fit(backend.asarray(X2, "float32"), Y2)
    assert binary.coef_.dtype == backend.dtype("float32") and binary.score(X2, Y2) > 0.5


@pytest.mark.parametrize("kw", [{}, {"solver": "gd", "tol": None}], ids=["online", "gd"])
def test_and_separates_and_xor_does_not(kw):
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert bn.Perceptron(**kw).fit(X, [0, 0, 0, 1]).score(X, [0, 0, 0, 1]) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        xor = bn.Perceptron(max_iter=200, **kw).fit(X, [0, 1, 1, 0])
    assert xor.score(X, [0, 1, 1, 0]) <= 0.75  # one line cannot split XOR


def test_gd_integer_weights_equal_repeated_rows():
    X, y = DATA["3-class"]
    w = np.random.default_rng(1).integers(1, 4, size=len(y))
    kw = {"solver": "gd", "penalty": "l2", "alpha": 0.1, "eta0": 0.1, "max_iter": 40}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        weighted = bn.Perceptron(**kw).fit(X, y, sample_weight=w.astype(float))
        repeated = bn.Perceptron(**kw).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-10, atol=1e-12)
    assert weighted.n_iter_ == repeated.n_iter_
    assert weighted.loss_curve_ == pytest.approx(repeated.loss_curve_, rel=1e-10)


def test_gd_class_weight_is_a_sample_weight():
    X, y = DATA["binary"]
    kw = {"solver": "gd", "max_iter": 30, "tol": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        by_class = bn.Perceptron(class_weight={0: 2.0, 1: 1.0}, **kw).fit(X, y)
        by_sample = bn.Perceptron(**kw).fit(X, y, sample_weight=np.where(y == 0, 2.0, 1.0))
    np.testing.assert_allclose(by_class.coef_, by_sample.coef_, rtol=1e-12)


def test_parameters_checked():
    X, y = DATA["3-class"]
    for kw, match in [
        ({"batch_size": 10}, "batch_size"),
        ({"solver": "gd", "penalty": "l1"}, "penalty"),
        ({"solver": "sgd"}, "solver"),
        ({"l1_ratio": 1.5}, "l1_ratio"),
        ({"class_weight": "auto"}, "class_weight"),
        ({"class_weight": {0: 1.0, 7: 2.0}}, "not in class_weight"),
    ]:
        with pytest.raises(ValueError, match=match):
            bn.Perceptron(**kw).fit(X, y)
    with pytest.raises(ValueError, match="balanced"):
        bn.Perceptron(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="classes"):
        bn.Perceptron().partial_fit(X, y)
    with pytest.warns(bn.ConvergenceWarning, match="Maximum number of iteration"):
        bn.Perceptron(max_iter=1).fit(X, y)
    bn.Perceptron(n_jobs=-1, verbose=0).fit(X, y)  # accepted


# --------------------------------------------------------------------------- separable data, labels


def test_perceptron_separable_and_xor(backend):
    X, y = make_blobs(200, centers=2, random_state=1)
    p = Perceptron().fit(backend.asarray(X, "float64"), backend.asarray(y, "int64"))
    pred = p.predict(backend.asarray(X, "float64"))
    assert_on(pred, backend)
    assert int((_backend.to_numpy(pred) != y).sum()) == 0  # zero training errors
    assert tuple(p.coef_.shape) == (1, 2) and tuple(p.intercept_.shape) == (1,)
    assert p.n_iter_ >= 1 and p.n_iter_ <= p.max_iter
    assert tuple(p.decision_function(backend.asarray(X, "float64")).shape) == (200,)
    # XOR is not linearly separable: at most 3 of 4 right, whatever the training (1969)
    Xx, yx = xor()
    px = Perceptron(max_iter=200).fit(backend.asarray(Xx, "float64"), backend.asarray(yx))
    assert px.score(Xx, yx) <= 0.75


def test_perceptron_one_vs_rest(backend):
    X, y = make_blobs(150, centers=3, n_features=4, random_state=0)
    p = Perceptron(max_iter=500).fit(backend.asarray(X, "float64"), backend.asarray(y, "int64"))
    assert tuple(p.coef_.shape) == (3, 4) and tuple(p.intercept_.shape) == (3,)
    assert_on(p.coef_, backend)
    scores = p.decision_function(backend.asarray(X, "float64"))
    assert tuple(scores.shape) == (150, 3)
    np.testing.assert_array_equal(p.classes_, [0, 1, 2])
    assert p.score(X, y) >= 0.9
    # labels of any values, the originals kept
    q = Perceptron().fit(X, np.array(["a", "b", "c"])[y])
    assert set(q.predict(X)) <= {"a", "b", "c"}


def test_perceptron_labels_any_two_values():
    X, y = make_blobs(100, centers=2, random_state=1)
    p = Perceptron().fit(X, np.where(y == 1, 7, -3))
    np.testing.assert_array_equal(p.classes_, [-3, 7])
    np.testing.assert_array_equal(p.predict(X), np.where(y == 1, 7, -3))


def test_perceptron_initial_weights_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="does not match"):
        bn.Perceptron().fit(X_CLS, Y_CLS, coef_init=np.zeros((4, 3)))  # (d, k), not (k, d)
    with pytest.raises(ValueError, match="does not match"):
        bn.Perceptron().fit(X_CLS, Y_CLS, intercept_init=np.zeros((3, 1)))


@pytest.mark.parametrize("data", list(DATA))
def test_gd_takes_the_notes_steps(backend, data):
    """``solver="gd"`` is the notes' gradient descent on the perceptron criterion (eqs.
    1-5), written out here in NumPy from zero weights: over the misclassified samples
    (y_i (w.x_i + b) <= 0), w <- w - eta0 dJ/dw = w + eta0 sum y_i x_i and
    b <- b + eta0 sum y_i; one column of +1/-1 targets per class for 3 classes."""
    X, y = DATA[data]
    classes = np.unique(y)
    Y = np.where(y[:, None] == classes[None, :], 1.0, -1.0)[:, 1 if len(classes) == 2 else 0 :]
    eta0, epochs = 0.1, 4
    W, b = np.zeros((X.shape[1], Y.shape[1])), np.zeros(Y.shape[1])
    for _ in range(epochs):
        misclassified_y = np.where(Y * (X @ W + b) <= 0, Y, 0.0)
        W, b = W + eta0 * X.T @ misclassified_y, b + eta0 * misclassified_y.sum(axis=0)
    assert np.any(Y * (X @ W + b) <= 0)  # not separated yet: all epochs run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        ours = bn.Perceptron(solver="gd", eta0=eta0, max_iter=epochs, tol=None)
        ours.fit(backend.asarray(X, "float64"), y)
    assert ours.n_iter_ == epochs
    assert_close(ours.coef_, W.T, backend=backend, rtol=1e-12, atol=1e-12)
    assert_close(ours.intercept_, b, backend=backend, rtol=1e-12, atol=1e-12)
