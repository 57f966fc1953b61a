"""Hostile inputs: every case below is a test, on every backend that can represent it.

| case                                             | error                                   |
|--------------------------------------------------|-----------------------------------------|
| NaN / +inf / -inf in X                           | ValueError "X contains NaN or infinity" |
| NaN / inf in y (regressor), NaN label (classif.) | ValueError "y contains NaN or infinity" |
| empty X (0 samples)                              | ValueError "0 sample(s)"                |
| continuous y for a classifier                    | ValueError "Unknown label type"         |
| y missing (None)                                 | ValueError "requires y to be passed"    |
| NaN / inf stored in a sparse X (scipy.sparse)    | ValueError "X contains NaN or infinity" |
| one sample with early_stopping                   | ValueError "at least 2 samples"         |
| 0-feature X                                      | ValueError "0 feature(s)"               |
| 1-D or 3-D X                                     | ValueError "must be 2-D ... or 4-D"     |
| X and y of different lengths                     | ValueError "different numbers of samples" |
| other feature count at predict                   | ValueError "features, but ... expecting" |
| other image shape at predict                     | ValueError "image shape"                |
| strings or objects in X (NumPy)                  | TypeError / ValueError naming the dtype |
| integer or boolean X                             | accepted, converted to float32          |
| complex X                                        | ValueError "Complex data not supported" |
| a single class in y                              | MLP: predicts it; Perceptron: "1 class" |
| label unknown to partial_fit's classes           | ValueError "not in classes"             |
| y an array of another library than X's         | TypeError "two libraries", with the fix |
| arrays on two devices                            | TypeError "two devices"                 |
| invalid hyper-parameters (checked at fit)        | ValueError naming the parameter         |
| predict before fit                               | NotFittedError (ValueError, AttributeError) |
| float16 (and torch bfloat16) X                   | accepted: computed in float32           |
| dtype="float16" requested                        | ValueError "dtype must be"              |
| loss with mismatched y/h shapes                  | ValueError "y has shape"                |
| load: missing path                               | FileNotFoundError                       |
| load: truncated / flipped bytes / foreign file   | ValueError naming the file and problem  |
| load: metadata naming an unknown activation      | ValueError "unknown activation"         |
"""

from __future__ import annotations

import signal

import numpy as np
import pytest

import backendnn as bn
from backendnn import _backend, losses

RNG = np.random.default_rng(0)
X_OK = RNG.normal(size=(12, 3))
Y_CLS = np.array([0, 1, 2] * 4)
Y_REG = RNG.normal(size=12)

ESTIMATORS = {
    "classifier": lambda **kw: bn.MLPClassifier((4,), max_iter=3, random_state=0, **kw),
    "regressor": lambda **kw: bn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3,
            random_state=0, **kw),
    "perceptron": lambda **kw: bn.Perceptron(max_iter=3, **kw),
}
TARGETS = {"classifier": Y_CLS, "regressor": Y_REG, "perceptron": Y_CLS}

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")


@pytest.fixture(params=list(ESTIMATORS))
def kind(request):
    return request.param


def _fit(backend, kind, X, y=None, **kw):
    y = TARGETS[kind] if y is None else y
    X = backend.asarray(X) if isinstance(X, np.ndarray) else X
    y = backend.asarray(y) if isinstance(y, np.ndarray) else y
    return ESTIMATORS[kind](**kw).fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X(backend, kind, bad):
    X = X_OK.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        _fit(backend, "regressor" if kind == "regressor" else kind, X)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_y_regressor(backend, bad):
    y = Y_REG.copy()
    y[0] = bad
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        _fit(backend, "regressor", X_OK, y)


def test_nan_label_classifier(backend):
    y = Y_CLS.astype(float)
    y[0] = np.nan
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        _fit(backend, "classifier", X_OK, y)


def test_empty_X(backend, kind):
    with pytest.raises(ValueError, match="0 sample"):
        _fit(backend, kind, np.zeros((0, 3)), TARGETS[kind][:0])


def test_zero_features(backend, kind):
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        _fit(backend, kind, np.zeros((12, 0)))


@pytest.mark.parametrize("shape", [(12,), (12, 3, 2)])
def test_wrong_ndim(backend, kind, shape):
    with pytest.raises(ValueError, match="must be 2-D"):
        _fit(backend, kind, RNG.normal(size=shape))


def test_length_mismatch(backend, kind):
    with pytest.raises(ValueError, match="different numbers of samples"):
        _fit(backend, kind, X_OK, TARGETS[kind][:-1])


def test_feature_count_at_predict(backend, kind):
    model = _fit(backend, kind, X_OK)
    with pytest.raises(ValueError, match="4 features, but .* expecting 3"):
        model.predict(backend.asarray(RNG.normal(size=(2, 4))))


def test_image_shape_at_predict(backend, kind):
    images = RNG.normal(size=(12, 1, 2, 3))
    model = _fit(backend, kind, images)
    assert model.n_features_in_ == 6
    with pytest.raises(ValueError, match="image shape"):
        model.predict(backend.asarray(RNG.normal(size=(2, 1, 3, 2))))


def test_strings_and_objects_in_X(kind):
    with pytest.raises((TypeError, ValueError), match="dtype|number|float"):
        ESTIMATORS[kind]().fit(np.array([["a", "b"]] * 6), TARGETS[kind][:6])
    X = X_OK.astype(object)
    X[0, 0] = {"not": "a number"}
    with pytest.raises(TypeError, match="number"):
        ESTIMATORS[kind]().fit(X, TARGETS[kind])


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_integer_and_bool_X_are_converted(backend, kind, dtype):
    X = (RNG.normal(size=(12, 3)) * 3).astype(dtype)
    model = _fit(backend, kind, X)
    out = model.predict(backend.asarray(X))
    assert _backend.namespace_name(_backend.array_namespace(out)) == backend.name
    weights = model.coef_ if kind == "perceptron" else model.coefs_[0]
    assert weights.dtype == backend.xp.float32


def test_complex_X(backend, kind):
    if backend.name == "array_api_strict" and backend.strictest:
        pytest.skip("covered by the non-strictest run")
    X = X_OK.astype(np.complex128)
    with pytest.raises(ValueError, match="Complex data not supported"):
        _fit(backend, kind, X)


def test_continuous_labels_for_classifiers(kind):
    if kind == "regressor":
        pytest.skip("regression takes continuous targets")
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        ESTIMATORS[kind]().fit(X_OK, Y_REG)


def test_missing_y(kind):
    with pytest.raises(ValueError, match="requires y to be passed"):
        ESTIMATORS[kind]().fit(X_OK, None)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_sparse_X(kind, bad):
    sparse = pytest.importorskip("scipy.sparse")  # sparse input is accepted: test_sparse.py
    X = X_OK.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        ESTIMATORS[kind]().fit(sparse.csr_matrix(X), TARGETS[kind])


def test_single_class(backend, kind):
    """The Perceptron needs two classes; an MLP fitted on one predicts it (scikit-learn's
    behaviour), with probability 1."""
    if kind == "regressor":
        pytest.skip("regression has no classes")
    y = np.full(12, 7, dtype=np.int64)
    if kind == "perceptron":
        with pytest.raises(ValueError, match="1 class"):
            _fit(backend, kind, X_OK, y)
        return
    model = _fit(backend, kind, X_OK, y)
    Xb = backend.asarray(X_OK)
    assert bn.to_numpy(model.predict(Xb)).tolist() == [7] * 12
    assert bn.to_numpy(model.predict_proba(Xb)).tolist() == [[1.0]] * 12


def test_two_libraries_in_one_call(backend, kind):
    """Targets on the host go with X anywhere; a target *array* of another library than
    X's is refused with the call that moves it."""
    if backend.name == "numpy":
        pytest.skip("needs a second library")
    ESTIMATORS[kind]().fit(backend.asarray(X_OK), TARGETS[kind])  # host y: fine
    with pytest.raises(TypeError, match=r"two libraries.*to_backend\(y, 'numpy'"):
        ESTIMATORS[kind]().fit(X_OK, backend.asarray(TARGETS[kind]))


def test_two_devices_in_one_call():
    strict = pytest.importorskip("array_api_strict")
    a = strict.asarray(X_OK, device=strict.Device("CPU_DEVICE"))
    b = strict.asarray(Y_REG, device=strict.Device("device1"))
    with pytest.raises(TypeError, match="two devices"):
        bn.MLPRegressor().fit(a, b)
    with pytest.raises(TypeError, match="two devices"):
        losses.squared_error(b, strict.asarray(Y_REG, device=strict.Device("CPU_DEVICE")))


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("alpha", -1.0),
        ("hidden_layer_sizes", (4, 0)),
        ("activation", "nope"),
        ("solver", "newton"),
        ("batch_size", 0),
        ("validation_fraction", 0.0),
        ("validation_fraction", 1.0),
        ("learning_rate", "fast"),
        ("momentum", 2.0),
        ("beta_1", 1.0),
        ("n_iter_no_change", 0),
        ("max_iter", 0),
        ("early_stopping_metric", "auc"),
    ],
)
def test_invalid_hyper_parameters_checked_at_fit(param, value):
    model = bn.MLPClassifier(**{param: value})  # construction never fails, as in sklearn
    with pytest.raises(ValueError, match=param if param != "activation" else "activation"):
        model.fit(X_OK, Y_CLS)
    assert not hasattr(model, "coefs_")


@pytest.mark.parametrize(("param", "value"), [("eta0", 0.0), ("penalty", "l3"), ("alpha", -1)])
def test_invalid_perceptron_parameters(param, value):
    with pytest.raises(ValueError, match=param):
        bn.Perceptron(**{param: value}).fit(X_OK, Y_CLS)


def test_predict_before_fit(kind):
    model = ESTIMATORS[kind]()
    with pytest.raises(bn.NotFittedError, match="not fitted"):
        model.predict(X_OK)
    assert issubclass(bn.NotFittedError, ValueError)
    assert issubclass(bn.NotFittedError, AttributeError)


def test_float16_is_computed_in_float32(kind):
    model = ESTIMATORS[kind]().fit(X_OK.astype(np.float16), TARGETS[kind])
    weights = model.coef_ if kind == "perceptron" else model.coefs_[0]
    assert weights.dtype == np.float32
    reference = ESTIMATORS[kind]().fit(X_OK.astype(np.float16).astype(np.float32), TARGETS[kind])
    np.testing.assert_array_equal(model.predict(X_OK), reference.predict(X_OK))
    with pytest.raises(ValueError, match="dtype must be"):
        ESTIMATORS[kind](dtype="float16").fit(X_OK, TARGETS[kind])


def test_torch_bfloat16_is_computed_in_float32():
    torch = pytest.importorskip("torch")
    X = torch.tensor(X_OK, dtype=torch.bfloat16)
    model = bn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3).fit(X, torch.tensor(Y_REG))
    assert model.coefs_[0].dtype == torch.float32


# ---------------------------------------------------------------------- atomic fits


def _fitted_state(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


def _same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], list) and a[k] and _backend.is_array(a[k][0]):
            for x, y in zip(a[k], b[k]):
                np.testing.assert_array_equal(_backend.to_numpy(x), _backend.to_numpy(y))
        elif _backend.is_array(a[k]):
            np.testing.assert_array_equal(_backend.to_numpy(a[k]), _backend.to_numpy(b[k]))
        else:
            assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), k


def test_failed_fit_keeps_previous_state(backend, kind):
    model = _fit(backend, kind, X_OK)
    before = _fitted_state(model)
    bad = X_OK.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        model.fit(backend.asarray(bad), backend.asarray(TARGETS[kind]))
    _same_state(before, _fitted_state(model))


def test_divergence_keeps_previous_state_and_reports_last_finite_weights():
    model = bn.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", max_iter=5,
            random_state=0).fit(X_OK, Y_REG)
    before, pred = _fitted_state(model), model.predict(X_OK)
    model.set_params(learning_rate_init=1e6, max_iter=50)
    with pytest.raises(bn.ConvergenceError, match="lower learning_rate_init") as info:
        model.fit(X_OK * 1e3, Y_REG)
    assert isinstance(info.value, ArithmeticError)
    assert all(np.all(np.isfinite(a)) for p in info.value.params for a in p)
    _same_state(before, _fitted_state(model))
    np.testing.assert_array_equal(model.predict(X_OK), pred)


def test_keyboard_interrupt_mid_epoch_keeps_model():
    """A real SIGALRM-driven KeyboardInterrupt lands inside the batch loop of fit."""
    if not hasattr(signal, "setitimer"):
        pytest.skip("needs POSIX timers")
    X = RNG.normal(size=(4000, 20))
    y = (X[:, 0] > 0).astype(int)
    model = bn.MLPClassifier((16,), max_iter=2, batch_size=8, random_state=0).fit(X, y)
    before, pred = _fitted_state(model), model.predict(X)
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
    _same_state(before, _fitted_state(model))
    np.testing.assert_array_equal(model.predict(X), pred)


# ---------------------------------------------------------------------- damaged files


