"""Hyper-parameters are checked when ``fit`` runs (construction never fails, as in
scikit-learn), against scikit-learn's kinds of values; an invalid one is named in the error
and leaves the model unchanged; ``set_params`` refuses unknown names.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import backendnn as bn
from backendnn import MLPClassifier
from tests._helpers import X30, X_OK, Y30, Y_OK_CLS, blobs3, fitted_state

pytestmark = [
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


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
        model.fit(X_OK, Y_OK_CLS)
    assert not hasattr(model, "coefs_")


@pytest.mark.parametrize(("param", "value"), [("eta0", 0.0), ("penalty", "l3"), ("alpha", -1)])
def test_invalid_perceptron_parameters(param, value):
    with pytest.raises(ValueError, match=param):
        bn.Perceptron(**{param: value}).fit(X_OK, Y_OK_CLS)


@pytest.mark.parametrize(
    ("param", "value"),
    [("hidden_layer_sizes", None), ("hidden_layer_sizes", 1e9), ("hidden_layer_sizes", "4"),
     ("max_iter", 1.5), ("max_iter", float("inf")), ("max_iter", 1e9), ("epsilon", 0.0),
     ("alpha", float("nan")), ("n_iter_no_change", 0), ("shuffle", "yes")],
)  # fmt: skip
def test_invalid_parameters_named_and_model_unchanged(backend, param, value):
    model = bn.MLPClassifier((3,), max_iter=2, random_state=0)
    model.fit(backend.asarray(X30), backend.asarray(Y30))
    before = fitted_state(model)
    with pytest.raises(ValueError, match=f"^{param} must be"):
        model.set_params(**{param: value}).fit(backend.asarray(X30), backend.asarray(Y30))
    after = fitted_state(model)
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] is before[key], key  # the very same objects: nothing committed


@pytest.mark.parametrize(
    ("params", "ok"),
    [({"hidden_layer_sizes": (h for h in (3,))}, False), ({"verbose": 1}, True),
     ({"verbose": -1}, False), ({"solver": np.str_("sgd")}, True),
     ({"dtype": "notfloat64"}, False)],
)  # fmt: skip
def test_parameter_kinds_as_scikit_learn_has_them(params, ok):
    model = bn.MLPClassifier((3,), max_iter=1).set_params(**params)
    if ok:
        model.fit(X30, Y30)
    else:
        with pytest.raises(ValueError, match=f"^{next(iter(params))} must be"):
            model.fit(X30, Y30)


def test_set_params_validation():
    X, y = blobs3()
    with pytest.raises(ValueError, match="invalid parameter"):
        MLPClassifier().set_params(nonsense=1)
    for bad in (
        dict(solver="newton"),
        dict(alpha=-1.0),
        dict(hidden_layer_sizes=(0,)),
        dict(batch_size=0),
        dict(learning_rate="fast"),
        dict(momentum=2.0),
    ):
        with pytest.raises(ValueError):
            MLPClassifier(max_iter=1, **bad).fit(X, y)
    assert math.isclose(MLPClassifier().get_params()["alpha"], 1e-4)
