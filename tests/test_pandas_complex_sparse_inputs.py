"""What the estimators accept as X, y and sample_weight from pandas (mixed and nullable
columns), and how they refuse complex numbers and sparse y, through the public API only.

- Complex numbers are refused wherever a real number is expected (X, y, sample_weight),
  with scikit-learn's "Complex data not supported", instead of dropping the imaginary part.
- pandas DataFrames of numeric columns of several dtypes (float, int, bool) and of
  pandas' nullable ``Float64``/``Int64``/``boolean`` columns are converted to floats, as
  scikit-learn's ``check_array`` converts them; a missing value (``pd.NA``) is reported as
  NaN is. Series of nullable dtypes work as targets and as sample weights.
- A scipy.sparse y is refused with scikit-learn's "dense data is required" message.
- A refused fit leaves a fitted model as it was.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import neural_network as sknn

import backendnn as bn
from backendnn.layers import Activation, Dense

pd = pytest.importorskip("pandas")
sp = pytest.importorskip("scipy.sparse")

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

RNG = np.random.default_rng(0)
N = 30
FLOATS = RNG.normal(size=N)
INTS = RNG.integers(-3, 4, size=N)
BOOLS = RNG.random(N) > 0.5
# the three columns as one float64 array: what every frame below must train on
X_FLOAT = np.column_stack([FLOATS, INTS, BOOLS]).astype("float64")
Y_CLS = (X_FLOAT @ np.array([1.0, 0.5, -1.0]) > 0).astype(int)
Y_REG = np.tanh(X_FLOAT @ np.array([0.5, -0.3, 1.0]))
WEIGHTS = np.tile([1.0, 2.0, 0.0], N // 3)

KINDS = ("classifier", "regressor")


def _mixed_frame() -> pd.DataFrame:
    return pd.DataFrame({"f": FLOATS, "i": INTS, "b": BOOLS})


def _nullable_frame() -> pd.DataFrame:
    return _mixed_frame().astype({"f": "Float64", "i": "Int64", "b": "boolean"})


def _estimator(kind: str, **extra):
    Est = bn.MLPClassifier if kind == "classifier" else bn.MLPRegressor
    return Est(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=30, random_state=0, **extra)


def _targets(kind: str) -> np.ndarray:
    return Y_CLS if kind == "classifier" else Y_REG


def _all_estimators() -> list:
    """One of each public estimator, small and quick."""
    return [
        bn.MLPClassifier((3,), max_iter=3, random_state=0),
        bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0),
        bn.Perceptron(max_iter=3, random_state=0),
        bn.NeuralNetClassifier([Dense(3, 3), Activation("relu")], max_iter=3, random_state=0),
        bn.NeuralNetRegressor([Dense(3, 3), Activation("relu")], max_iter=3, random_state=0),
    ]


def _y_for(est) -> np.ndarray:
    return Y_REG if "Regressor" in type(est).__name__ else Y_CLS


def _partial_fit(est, X, y, **kw):
    if "Regressor" not in type(est).__name__:
        kw["classes"] = np.unique(Y_CLS)
    return est.partial_fit(X, y, **kw)


def _assert_unchanged(model, before: np.ndarray, attempt) -> None:
    """``attempt(model)`` (a refused fit) raises and leaves ``model`` predicting ``before``."""
    state = dict(model.__dict__)
    with pytest.raises((TypeError, ValueError)):
        attempt(model)
    assert model.__dict__.keys() == state.keys()
    assert all(model.__dict__[k] is v for k, v in state.items())  # nothing committed
    np.testing.assert_array_equal(bn.to_numpy(model.predict(X_FLOAT)), before)


# ---------------------------------------------------------------------- complex numbers


@pytest.mark.parametrize("est", _all_estimators(), ids=lambda e: type(e).__name__)
def test_complex_sample_weight_is_refused(est):
    """Its imaginary part was dropped with only NumPy's ComplexWarning."""
    complex_weights = WEIGHTS + 1j
    with pytest.raises(ValueError, match="Complex data not supported: sample_weight"):
        est.fit(X_FLOAT, _y_for(est), sample_weight=complex_weights)
    with pytest.raises(ValueError, match="Complex data not supported: sample_weight"):
        _partial_fit(est, X_FLOAT, _y_for(est), sample_weight=list(complex_weights))
    est.fit(X_FLOAT, _y_for(est))
    with pytest.raises(ValueError, match="Complex data not supported: sample_weight"):
        est.score(X_FLOAT, _y_for(est), sample_weight=complex_weights)


@pytest.mark.parametrize("kind", KINDS)
def test_complex_y_is_refused_on_every_backend(backend, kind):
    """scikit-learn refuses complex y for classifiers and regressors alike; a regressor
    computing on another library than NumPy took only its real part."""
    y = _targets(kind) + 1j
    for targets in (y, y.tolist()):
        with pytest.raises(ValueError, match="Complex data not supported: y"):
            _estimator(kind).fit(backend.asarray(X_FLOAT), targets)
        with pytest.raises(ValueError, match="Complex data not supported: y"):
            _estimator(kind, backend=backend.name).fit(X_FLOAT, targets)
    with pytest.raises(ValueError, match="Complex data not supported: y"):
        bn.Perceptron().fit(X_FLOAT, Y_CLS + 1j)


# ---------------------------------------------------------------------- pandas X


@pytest.mark.parametrize("make_frame", [_mixed_frame, _nullable_frame])
@pytest.mark.parametrize("kind", KINDS)
def test_numeric_frames_train_as_their_float_array(backend, kind, make_frame):
    """float + int + bool columns, or nullable Float64/Int64/boolean ones (refused before
    as "X must hold numbers; got an array of dtype object"), train the very model the
    equivalent float64 array trains, and predict alike."""
    frame = make_frame()
    y = _targets(kind)
    ours = _estimator(kind, backend=backend.name).fit(frame, y)
    ref = _estimator(kind, backend=backend.name).fit(X_FLOAT, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.dtype == b.dtype == backend.dtype("float64")
        np.testing.assert_allclose(bn.to_numpy(a), bn.to_numpy(b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        bn.to_numpy(ours.predict(frame)), bn.to_numpy(ref.predict(X_FLOAT)), rtol=1e-12
    )
    np.testing.assert_array_equal(ours.feature_names_in_, ["f", "i", "b"])


@pytest.mark.parametrize("make_frame", [_mixed_frame, _nullable_frame])
@pytest.mark.parametrize("kind", KINDS)
def test_numeric_frames_fit_as_sklearn_fits_them(kind, make_frame):
    """Given the same frame and random_state, scikit-learn's model and ours are the same
    (adam: our seeding reproduces scikit-learn's, so its loss curve too)."""
    frame = make_frame()
    y = _targets(kind)
    kw = dict(hidden_layer_sizes=(5,), solver="adam", batch_size=8, max_iter=10,
              learning_rate_init=0.01, random_state=3)  # fmt: skip
    Sk, Ours = (
        (sknn.MLPClassifier, bn.MLPClassifier)
        if kind == "classifier"
        else (sknn.MLPRegressor, bn.MLPRegressor)
    )
    theirs, ours = Sk(**kw).fit(frame, y), Ours(**kw).fit(frame, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    if kind == "classifier":
        np.testing.assert_allclose(ours.predict_proba(frame), theirs.predict_proba(frame),
                                   rtol=1e-9, atol=1e-12)  # fmt: skip
    else:
        np.testing.assert_allclose(ours.predict(frame), theirs.predict(frame), rtol=1e-9)


@pytest.mark.parametrize("column", ["f", "i", "b"])
def test_missing_values_in_nullable_columns_are_reported_as_nan(column):
    """pd.NA (and so NaN) in a nullable column is a missing value, refused as NaN is in a
    float array, at fit and at prediction."""
    frame = _nullable_frame()
    frame.loc[4, column] = pd.NA
    with pytest.raises(ValueError, match="X contains NaN"):
        bn.MLPClassifier((3,), max_iter=3).fit(frame, Y_CLS)
    model = bn.MLPClassifier((3,), max_iter=3, random_state=0).fit(_nullable_frame(), Y_CLS)
    with pytest.raises(ValueError, match="X contains NaN"):
        model.predict(frame)


def test_missing_values_in_object_columns_are_reported_as_nan():
    frame = _mixed_frame().astype({"f": object})
    frame.loc[2, "f"] = pd.NA
    with pytest.raises(ValueError, match="X contains NaN"):
        bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=3).fit(frame, Y_REG)


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(["a", "b", "c"] * (N // 3)),
        pd.Series(["a", "b", "c"] * (N // 3), dtype="category"),
        pd.Series(["a", "b", "c"] * (N // 3), dtype="string"),
    ],
    ids=["object", "category", "string"],
)
def test_non_numeric_columns_are_refused_by_name(column):
    frame = _mixed_frame().assign(colour=column)
    with pytest.raises(TypeError, match=r"X must hold numbers.*'colour'.*encode"):
        bn.MLPClassifier((3,), max_iter=3).fit(frame, Y_CLS)


# ---------------------------------------------------------------------- pandas y and weights


@pytest.mark.parametrize("dtype", ["Int64", "boolean"])
def test_nullable_class_labels_train_as_floats(dtype):
    """Nullable labels become floats, as in scikit-learn (its classes_ are 0.0 and 1.0)."""
    labels = pd.Series(Y_CLS, dtype=dtype)
    model = _estimator("classifier").fit(X_FLOAT, labels)
    sk = sknn.MLPClassifier((4,), solver="lbfgs", max_iter=3).fit(X_FLOAT, labels)
    ref = _estimator("classifier").fit(X_FLOAT, Y_CLS.astype("float64"))
    np.testing.assert_array_equal(model.classes_, sk.classes_)
    assert model.classes_.dtype == sk.classes_.dtype == np.float64
    np.testing.assert_array_equal(model.predict(X_FLOAT), ref.predict(X_FLOAT))
    assert model.score(X_FLOAT, labels) == ref.score(X_FLOAT, Y_CLS)


def test_nullable_regression_targets_train_as_floats():
    model = _estimator("regressor").fit(X_FLOAT, pd.Series(Y_REG, dtype="Float64"))
    ref = _estimator("regressor").fit(X_FLOAT, Y_REG)
    np.testing.assert_allclose(model.predict(X_FLOAT), ref.predict(X_FLOAT), rtol=1e-12)
    two = pd.DataFrame({"a": Y_REG, "b": INTS}).astype({"a": "Float64", "b": "Int64"})
    model = _estimator("regressor").fit(X_FLOAT, two)
    ref = _estimator("regressor").fit(X_FLOAT, np.column_stack([Y_REG, INTS]))
    np.testing.assert_allclose(model.predict(X_FLOAT), ref.predict(X_FLOAT), rtol=1e-12)


@pytest.mark.parametrize(
    "kind, dtype", [("classifier", "Int64"), ("classifier", "boolean"), ("regressor", "Float64")]
)
def test_missing_targets_are_reported_as_nan(kind, dtype):
    y = pd.Series(_targets(kind), dtype=dtype)
    y[3] = pd.NA
    with pytest.raises(ValueError, match="y contains NaN"):
        _estimator(kind).fit(X_FLOAT, y)


@pytest.mark.parametrize("dtype", ["Float64", "Int64", "boolean"])
def test_nullable_sample_weight(dtype):
    """A missing weight is reported as NaN is (a boolean one was "must hold real numbers")."""
    host = WEIGHTS if dtype != "boolean" else WEIGHTS > 0
    weights = pd.Series(host, dtype=dtype)
    model = _estimator("regressor").fit(X_FLOAT, Y_REG, sample_weight=weights)
    ref = _estimator("regressor").fit(X_FLOAT, Y_REG, sample_weight=host.astype("float64"))
    np.testing.assert_allclose(model.predict(X_FLOAT), ref.predict(X_FLOAT), rtol=1e-12)
    assert model.score(X_FLOAT, Y_REG, sample_weight=weights) == ref.score(
        X_FLOAT, Y_REG, sample_weight=host
    )
    weights[0] = pd.NA
    with pytest.raises(ValueError, match="sample_weight contains NaN"):
        _estimator("regressor").fit(X_FLOAT, Y_REG, sample_weight=weights)


# ---------------------------------------------------------------------- sparse targets


@pytest.mark.parametrize("est", _all_estimators(), ids=lambda e: type(e).__name__)
def test_sparse_y_is_refused(est):
    """It was reported as "got a scalar <Compressed Sparse Row sparse matrix ...>"."""
    y = sp.csr_matrix(_y_for(est).reshape(-1, 1))
    message = r"Sparse data was passed for y, but dense data is required.*\.toarray\(\)"
    with pytest.raises(TypeError, match=message):
        est.fit(X_FLOAT, y)
    with pytest.raises(TypeError, match=message):
        _partial_fit(est, X_FLOAT, y)
    with pytest.raises(TypeError, match=r"Sparse data was passed for sample_weight"):
        est.fit(X_FLOAT, _y_for(est), sample_weight=sp.csr_matrix(WEIGHTS))


@pytest.mark.parametrize("est", _all_estimators()[:3], ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(
    "error, bad_y",
    [
        ("Sparse data was passed for y", lambda y: sp.csr_matrix(y.reshape(-1, 1))),
        ("Complex data not supported: y", lambda y: y + 1j),
    ],
    ids=["sparse", "complex"],
)
def test_score_refuses_sparse_and_complex_y(est, error, bad_y):
    est.fit(X_FLOAT, _y_for(est))
    with pytest.raises((TypeError, ValueError), match=error):
        est.score(X_FLOAT, bad_y(_y_for(est)))


# ---------------------------------------------------------------------- refused fits


@pytest.mark.filterwarnings("ignore:X has feature names")  # a frame, the model fitted on arrays
@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_fit_leaves_the_model_as_it_was(kind):
    y = _targets(kind)
    bad_frame = _nullable_frame()
    bad_frame.loc[0, "i"] = pd.NA
    attempts = [
        lambda m: m.fit(X_FLOAT, y, sample_weight=WEIGHTS + 1j),
        lambda m: m.fit(X_FLOAT, y + 1j),
        lambda m: m.fit(X_FLOAT, sp.csr_matrix(y.reshape(-1, 1))),
        lambda m: m.fit(bad_frame, y),
        lambda m: m.fit(_mixed_frame().assign(s="x"), y),
    ]
    for warm_start in (False, True):
        model = _estimator(kind, warm_start=warm_start).fit(X_FLOAT, y)
        before = bn.to_numpy(model.predict(X_FLOAT))
        for attempt in attempts:
            _assert_unchanged(model, before, attempt)
