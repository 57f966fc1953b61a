"""scikit-learn's interface beyond the first stage (issue 14): sample weights, labels on the
host, feature names, the Poisson loss, ``partial_fit``'s availability, scikit-learn's
errors and warnings. References: real scikit-learn fits and metrics, and unweighted fits
on repeated rows.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn import neural_network as sknn
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.metrics import accuracy_score, r2_score

import backendnn as bn
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

X_CLS, Y_CLS = make_classification(40, 4, n_informative=3, n_redundant=0, n_classes=3,
                                   random_state=0)  # fmt: skip
X_REG, Y_REG = make_regression(40, 4, noise=0.1, random_state=0)
Y_REG = Y_REG / Y_REG.std()
WEIGHTS = np.tile([2.0, 0.0, 1.0, 3.0], 10)  # integers, zeros included


# ---------------------------------------------------------------------- sample weights


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
        np.testing.assert_array_equal(a, b)


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


# ---------------------------------------------------------------------- labels on the host


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_host_targets_with_x_anywhere(backend, kind):
    """y as a list, a NumPy array or a pandas Series trains with X on any library: the
    same model as with X on NumPy."""
    pd = pytest.importorskip("pandas")
    X, y = (X_CLS, Y_CLS) if kind == "classifier" else (X_REG, Y_REG)
    Est = bn.MLPClassifier if kind == "classifier" else bn.MLPRegressor
    dtype = "float64"
    ref = Est(hidden_layer_sizes=(4,), max_iter=5, random_state=0, dtype=dtype).fit(X, y)
    for targets in (y.tolist(), y, pd.Series(y)):
        model = Est(hidden_layer_sizes=(4,), max_iter=5, random_state=0, dtype=dtype)
        model.fit(backend.asarray(X, dtype), targets)
        np.testing.assert_allclose(model.loss_curve_, ref.loss_curve_, rtol=1e-5)


def test_readme_choosing_a_backend_snippet_runs_as_written():
    """The first code block of the README's "Choosing a backend", with X_numpy and y
    defined, runs unchanged."""
    pytest.importorskip("jax")
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Choosing a backend") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    X_numpy, y = load_digits(return_X_y=True)
    X_numpy = X_numpy[:300] / 16.0
    y = y[:300]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        exec(code, {"X_numpy": X_numpy, "y": y})


# ---------------------------------------------------------------------- feature names


def test_feature_names_from_dataframes():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_CLS, columns=["a", "b", "c", "d"])
    model = bn.MLPClassifier((4,), max_iter=5, random_state=0).fit(frame, Y_CLS)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    assert model.feature_names_in_.dtype == object
    np.testing.assert_array_equal(model.predict(frame), model.predict(X_CLS))
    with pytest.raises(ValueError, match="same order"):
        model.predict(frame[["b", "a", "c", "d"]])  # the same names reordered
    with pytest.raises(ValueError, match="unseen at fit time:\n- e"):
        model.predict(frame.rename(columns={"d": "e"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        model.predict(X_CLS)
    plain = bn.MLPClassifier((4,), max_iter=5, random_state=0).fit(X_CLS, Y_CLS)
    assert not hasattr(plain, "feature_names_in_")
    with pytest.warns(UserWarning, match="fitted without feature names"):
        plain.predict(frame)
    with pytest.raises(TypeError, match="string names"):
        bn.MLPClassifier((4,), max_iter=5).fit(pd.DataFrame(X_CLS, columns=["a", 1, "c", 2]),
                                               Y_CLS)  # fmt: skip


# ---------------------------------------------------------------------- Poisson


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


# ---------------------------------------------------------------------- smaller items


def test_convergence_errors_and_warnings_are_sklearns():
    from sklearn.exceptions import ConvergenceWarning

    assert issubclass(bn.ConvergenceError, ValueError)
    assert issubclass(bn.ConvergenceWarning, ConvergenceWarning)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        bn.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=1e6,
                        max_iter=20).fit(X_REG * 1e150, Y_REG)  # fmt: skip


def test_lbfgs_reports_max_fun_as_scipy():
    """An iteration that passes max_fun ends L-BFGS with scikit-learn's warning, as SciPy's
    L-BFGS-B (which tests its limits before convergence)."""
    with pytest.warns(bn.ConvergenceWarning, match="function evaluations"):
        model = bn.MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs", tol=0.0, max_fun=10,
                                max_iter=150, random_state=1).fit(X_REG, Y_REG)  # fmt: skip
    assert model.n_iter_ <= 10


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


# ---------------------------------------------------------------------- found in review


def test_score_checks_the_shape_of_y():
    reg = bn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    reg.fit(X_REG, np.c_[Y_REG, -Y_REG])
    with pytest.raises(ValueError, match="y has 2 samples but X has 40"):
        reg.score(X_REG, np.c_[Y_REG, -Y_REG].T)  # the same numbers, transposed
    with pytest.raises(ValueError, match="y has 30 samples but X has 40"):
        reg.score(X_REG, np.c_[Y_REG, -Y_REG][:30])
    clf = bn.MLPClassifier((4,), max_iter=5, random_state=0).fit(X_CLS, Y_CLS)
    with pytest.raises(ValueError, match="y has shape"):
        clf.score(X_CLS, np.zeros((40, 2)))


