"""Same ``random_state``, same model as scikit-learn (issue 14).

With an integer ``random_state`` on NumPy float64, ``MLPClassifier``/``MLPRegressor``
draw what scikit-learn draws, in its order, from the same ``numpy.random.RandomState``:
the initial weights (Glorot-uniform, layer by layer, W then b), the early-stopping split
(``train_test_split``, stratified for a binary classifier) and the epoch shuffles (the
index array reshuffled every epoch). So ``loss_curve_``, ``validation_scores_`` and the
fitted weights equal scikit-learn's to 1e-9 relative for ``sgd`` and ``adam``, and the
initial weights for ``lbfgs`` too.

The reference is scikit-learn itself, fitted with the same integer ``random_state``; no
weights are copied between the two. The initial weights are read by wrapping each
library's own initialisation (scikit-learn's ``_initialize``, our ``Network.init``) during a
real fit.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sknn
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle as sk_shuffle

import backendnn
from backendnn import _backend
from backendnn._backend.splits import split_indices
from backendnn.data import ArrayData
from backendnn.network import Network
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

N_SAMPLES = 97  # batches of 16 leave a last batch of 1; a 10 % split holds out ceil(9.7) = 10
KINDS = ("binary", "multiclass", "regression")
SOLVERS = ("sgd", "adam")
SEED = 7


@functools.cache
def _data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "regression":
        X, y = make_regression(N_SAMPLES, 5, n_informative=4, noise=5.0, random_state=1)
        return X, (y - y.mean()) / y.std()
    k = 2 if kind == "binary" else 3
    # unbalanced classes: the stratified split's approximate mode has remainders to share
    weights = [0.7] if k == 2 else [0.5, 0.3]
    X, y = make_classification(
        N_SAMPLES, 5, n_informative=3, n_redundant=0, n_classes=k, weights=weights,
        random_state=1,
    )  # fmt: skip
    return X, y


def _params(solver: str, **extra) -> dict:
    return dict(
        hidden_layer_sizes=(6, 4),
        solver=solver,
        activation="tanh",
        alpha=1e-3,
        batch_size=16,
        learning_rate_init=0.05 if solver == "sgd" else 0.01,
        max_iter=25,
        shuffle=True,
        random_state=SEED,
        **extra,
    )


def _pair(kind: str):
    if kind == "regression":
        return sknn.MLPRegressor, backendnn.MLPRegressor
    return sknn.MLPClassifier, backendnn.MLPClassifier


@functools.cache
def _reference(kind: str, solver: str, early_stopping: bool):
    Sk, _ = _pair(kind)
    X, y = _data(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Sk(**_params(solver, early_stopping=early_stopping)).fit(X, y)


def _check_same_model(ours, theirs, *, backend=None) -> None:
    assert ours.n_iter_ == theirs.n_iter_
    assert len(ours.loss_curve_) == len(theirs.loss_curve_)
    assert ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9, atol=0)
    if theirs.validation_scores_ is None:
        assert ours.validation_scores_ is None
        np.testing.assert_allclose(ours.best_loss_, theirs.best_loss_, rtol=1e-9)
    else:
        np.testing.assert_allclose(
            ours.validation_scores_, theirs.validation_scores_, rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(
            ours.best_validation_score_, theirs.best_validation_score_, rtol=1e-9
        )
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        if backend is None:
            assert isinstance(a, np.ndarray) and a.dtype == np.float64
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        else:
            assert_close(a, b, backend=backend, rtol=1e-9, atol=1e-12, dtype="float64")


# ---------------------------------------------------------------------- whole fits


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", KINDS)
def test_same_random_state_same_model_numpy(kind, solver, early_stopping):
    """``loss_curve_``, the validation scores and the fitted weights equal scikit-learn's
    from the same integer ``random_state`` (initial weights, split and batch order all
    drawn as scikit-learn draws them)."""
    theirs = _reference(kind, solver, early_stopping)
    _, Ours = _pair(kind)
    X, y = _data(kind)
    ours = Ours(**_params(solver, early_stopping=early_stopping)).fit(X, y)
    _check_same_model(ours, theirs)


@pytest.mark.parametrize("kind", KINDS)
def test_same_random_state_same_weighted_model(kind):
    """With sample weights the split and the batches are drawn alike too (scikit-learn
    splits the weights with the rows): the same weighted curve and validation scores."""
    Sk, Ours = _pair(kind)
    X, y = _data(kind)
    w = np.random.RandomState(0).uniform(0.2, 2.0, len(y))
    params = _params("sgd", early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Sk(**params).fit(X, y, sample_weight=w)
    _check_same_model(Ours(**params).fit(X, y, sample_weight=w), theirs)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", KINDS)
def test_same_random_state_same_model_on_backend(backend, kind, solver):
    """The host draws are moved to the device: the same seed trains the same model on
    every backend (float64 data), early-stopping split and shuffles included."""
    theirs = _reference(kind, solver, True)
    _, Ours = _pair(kind)
    X, y = _data(kind)
    Xb = backend.asarray(X, "float64")
    yb = backend.asarray(y, "float64" if kind == "regression" else "int64")
    ours = Ours(**_params(solver, early_stopping=True)).fit(Xb, yb)
    _check_same_model(ours, theirs, backend=backend)


def test_references_shuffle_and_train():
    """Guard the test data: the runs train (the loss falls), shuffling matters (without it
    the curve differs) and the runs are not all stopped early at once."""
    X, y = _data("multiclass")
    for kind in KINDS:
        ref = _reference(kind, "sgd", False)
        assert ref.loss_curve_[-1] < 0.8 * ref.loss_curve_[0]
    unshuffled = backendnn.MLPClassifier(**dict(_params("sgd"), shuffle=False)).fit(X, y)
    shuffled = _reference("multiclass", "sgd", False)
    assert not np.allclose(unshuffled.loss_curve_, shuffled.loss_curve_)
    assert _reference("binary", "adam", False).n_iter_ == 25


# ---------------------------------------------------------------------- the initial weights


def _spy(monkeypatch, owner, name, record):
    original = getattr(owner, name)

    def wrapper(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        weights = out if owner is Network else [c.copy() for c in self.coefs_ + self.intercepts_]
        record.append(weights)
        return out

    monkeypatch.setattr(owner, name, wrapper)


@pytest.mark.parametrize("activation", ["logistic", "relu"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_initial_weights_equal_sklearns(monkeypatch, kind, solver, activation):
    """The weights training starts from, read inside a real fit of each library, are
    scikit-learn's (``lbfgs`` included; ``logistic`` has Glorot's factor 2)."""
    Sk, Ours = _pair(kind)
    X, y = _data(kind)
    theirs: list = []
    ours: list = []
    _spy(monkeypatch, Sk, "_initialize", theirs)
    _spy(monkeypatch, Network, "init", ours)
    params = dict(_params(solver), activation=activation, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Sk(**params).fit(X, y)
        Ours(**params).fit(X, y)
    assert len(theirs) == len(ours) == 1
    dense = [p for p in ours[0] if p]
    ours_flat = [p[0] for p in dense] + [p[1] for p in dense]
    assert [a.shape for a in ours_flat] == [b.shape for b in theirs[0]]
    # exact: the same uniform draws from the same RandomState, scaled by the same correctly
    # rounded bound, element by element (no sum that BLAS blocking or threads could reorder)
    for a, b in zip(ours_flat, theirs[0]):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- the draws themselves


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("n", "fraction", "labels"),
    [
        (97, 0.1, None),
        (30, 0.1, None),  # 0.1 * 30 = 3.0000000000000004: 4 held out, as scikit-learn
        (97, 0.1, "binary"),
        (41, 0.25, "binary-balanced"),
        (60, 0.2, "three"),  # ties in the approximate mode's remainders
        (23, 0.3, "three-rare"),
    ],
)
def test_split_indices_are_train_test_splits(n, fraction, labels, seed):
    """Our host split is ``train_test_split`` (ShuffleSplit, or StratifiedShuffleSplit for
    labels): the same rows in the same order, and the generator left in the same state."""
    rs = np.random.RandomState(1000 + n)
    y = {
        None: None,
        "binary": (rs.uniform(size=n) < 0.3).astype(int),
        "binary-balanced": np.arange(n) % 2,
        "three": np.arange(n) % 3,
        "three-rare": np.r_[np.zeros(n - 5, int), [1, 1, 2, 2, 2]],
    }[labels]
    ours_rng, their_rng = np.random.RandomState(seed), np.random.RandomState(seed)
    train, val = split_indices(n, fraction, ours_rng, y)
    their_train, their_val = train_test_split(
        np.arange(n), test_size=fraction, random_state=their_rng, stratify=y
    )
    assert train == their_train.tolist()
    assert val == their_val.tolist()
    assert ours_rng.randint(2**31) == their_rng.randint(2**31)


def test_epoch_orders_are_sklearns_reshuffles():
    """Each epoch permutes the previous epoch's order again, as scikit-learn's
    ``sample_idx = shuffle(sample_idx, random_state=...)`` does."""
    n = 13
    data = ArrayData(np.zeros((n, 1)), np.zeros((n, 1)))
    ours_rng, their_rng = np.random.RandomState(3), np.random.RandomState(3)
    order, theirs = None, np.arange(n)
    for _ in range(5):
        order = data.permutation(ours_rng, order)
        theirs = sk_shuffle(theirs, random_state=their_rng)
        np.testing.assert_array_equal(order, theirs)


# ---------------------------------------------------------------------- the generator's life


def test_partial_fit_draws_as_sklearn():
    """scikit-learn makes its generator anew on every call: ``partial_fit`` calls (the
    first draws the weights) give the same curve."""
    X, y = _data("multiclass")
    params = _params("sgd")
    theirs = sknn.MLPClassifier(**params)
    ours = backendnn.MLPClassifier(**params)
    for start in (0, 40, 0):
        rows = slice(start, start + 57)
        theirs.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        ours.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
    _check_same_model(ours, theirs)


def test_warm_start_and_a_shared_randomstate_draw_as_sklearn():
    """A ``RandomState`` instance is used, not copied: two fits in a row continue its
    stream as scikit-learn's do; a warm start draws no weights, only split and shuffles."""
    X, y = _data("binary")
    params = dict(_params("adam", early_stopping=True), max_iter=5)
    theirs = sknn.MLPClassifier(**dict(params, random_state=np.random.RandomState(11)))
    ours = backendnn.MLPClassifier(**dict(params, random_state=np.random.RandomState(11)))
    for warm in (False, False, True):
        theirs.set_params(warm_start=warm).fit(X, y)
        ours.set_params(warm_start=warm).fit(X, y)
        _check_same_model(ours, theirs)


def test_none_draws_from_numpys_global_randomstate():
    """``random_state=None`` is NumPy's global RandomState, as in scikit-learn: after the
    same ``numpy.random.seed`` both train the same model."""
    X, y = _data("regression")
    params = dict(_params("sgd"), random_state=None, max_iter=5)
    np.random.seed(5)  # noqa: NPY002 (the global RandomState is the point)
    theirs = sknn.MLPRegressor(**params).fit(X, y)
    np.random.seed(5)  # noqa: NPY002 (the global RandomState is the point)
    ours = backendnn.MLPRegressor(**params).fit(X, y)
    _check_same_model(ours, theirs)
    assert _backend.check_random_state(None) is _backend.check_random_state(None)
