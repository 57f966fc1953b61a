"""Targets ``y``: string and other non-numeric labels (a NumPy feature, refused with the
reason for another library's X), labels on the host with X on any library, non-finite or
missing targets, continuous labels for a classifier, a single class, the shape of y at
``score``. (X: ``tests/test_fit_inputs.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest

import backendnn as bn
from backendnn import MLPClassifier
from tests._helpers import (
    ESTIMATORS,
    X30,
    X_CLS,
    X_OK,
    X_REG,
    Y_CLS,
    Y_OK_CLS,
    Y_OK_REG,
    Y_REG,
    assert_on,
    blobs3,
    each_kind,
    fit_small,
)

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


# ---------------------------------------------------------------------------- labels


def test_string_labels_on_numpy():
    X, y = blobs3()
    names = np.array(["emu", "cat", "dog"])[y]
    clf = MLPClassifier((8,), max_iter=200, random_state=0).fit(X, names)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "emu"])
    pred = clf.predict(X)
    assert isinstance(pred, np.ndarray) and pred.dtype.kind == "U"
    assert set(pred) <= {"cat", "dog", "emu"}
    # chance is 1/3; scikit-learn's MLPClassifier from this seed (the same draws) scores 0.744
    assert clf.score(X, names) > 0.7
    # predict_proba's columns follow classes_
    np.testing.assert_array_equal(clf.classes_[clf.predict_proba(X).argmax(axis=1)], pred)
    binary = MLPClassifier((4,), max_iter=50, random_state=0)
    binary.fit(X, np.where(y == 0, "yes", "no"))
    assert set(binary.predict(X)) <= {"yes", "no"}
    assert tuple(binary.predict_proba(X).shape) == (90, 2)


def test_string_labels_and_other_backends(backend):
    """String labels are a NumPy feature: a model fitted on them predicts strings for NumPy
    input and raises a TypeError that says why for another library's input; labels on the
    host train with X on any library (the README's "Choosing a backend")."""
    X, y = blobs3()
    names = np.array(["emu", "cat", "dog"])[y]
    clf = MLPClassifier((6,), max_iter=5, random_state=0).fit(X, names)
    if backend.name == "numpy":
        return
    with pytest.raises(TypeError, match="NumPy"):
        clf.predict(backend.asarray(X, "float64"))
    proba = clf.predict_proba(backend.asarray(X, "float64"))  # numbers: fine anywhere
    assert_on(proba, backend)
    # labels kept on the host go with X anywhere: the same model as with X on the host
    on_device = MLPClassifier((6,), max_iter=5, random_state=0, dtype="float64")
    on_device.fit(backend.asarray(X, "float64"), names)
    np.testing.assert_allclose(on_device.loss_curve_, clf.loss_curve_, rtol=1e-9)
    np.testing.assert_array_equal(on_device.classes_, clf.classes_)


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


@each_kind
def test_continuous_labels_for_classifiers(kind):
    if kind == "regressor":
        pytest.skip("regression takes continuous targets")
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        ESTIMATORS[kind]().fit(X_OK, Y_OK_REG)


@each_kind
def test_single_class(backend, kind):
    """The Perceptron needs two classes; an MLP fitted on one predicts it (scikit-learn's
    behaviour), with probability 1."""
    if kind == "regressor":
        pytest.skip("regression has no classes")
    y = np.full(12, 7, dtype=np.int64)
    if kind == "perceptron":
        with pytest.raises(ValueError, match="1 class"):
            fit_small(backend, kind, X_OK, y)
        return
    model = fit_small(backend, kind, X_OK, y)
    Xb = backend.asarray(X_OK)
    assert bn.to_numpy(model.predict(Xb)).tolist() == [7] * 12
    assert bn.to_numpy(model.predict_proba(Xb)).tolist() == [[1.0]] * 12


# ---------------------------------------------------------------------------- invalid targets


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_y_regressor(backend, bad):
    y = Y_OK_REG.copy()
    y[0] = bad
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        fit_small(backend, "regressor", X_OK, y)


def test_nan_label_classifier(backend):
    y = Y_OK_CLS.astype(float)
    y[0] = np.nan
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        fit_small(backend, "classifier", X_OK, y)


@each_kind
def test_missing_y(kind):
    with pytest.raises(ValueError, match="requires y to be passed"):
        ESTIMATORS[kind]().fit(X_OK, None)


def test_object_labels_with_nan_or_none():
    for missing in (np.nan, None):
        y = np.array([0, 1, missing] * 10, dtype=object)
        with pytest.raises(ValueError, match="missing labels"):
            bn.MLPClassifier((3,), max_iter=2).fit(X30, y)


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
