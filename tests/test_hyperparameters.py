"""Every estimator's hyper-parameters agree with their one table
(``backendnn.estimators._params``): the constructor's signature (scikit-learn reads it),
its defaults, the validation constraints and the docstring's "Parameters" entries."""

from __future__ import annotations

import inspect
import math

import pytest

import backendnn as bn
from backendnn.estimators import _params

TABLES = {
    bn.MLPClassifier: _params.MLP_CLASSIFIER_PARAMS,
    bn.MLPRegressor: _params.MLP_REGRESSOR_PARAMS,
    bn.NeuralNetClassifier: _params.STACK_CLASSIFIER_PARAMS,
    bn.NeuralNetRegressor: _params.STACK_REGRESSOR_PARAMS,
    bn.Perceptron: _params.PERCEPTRON_PARAMS,
}


def _same(a, b) -> bool:
    return type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a)))


@pytest.mark.parametrize("cls", list(TABLES), ids=lambda c: c.__name__)
def test_signature_defaults_constraints_and_docs_follow_the_table(cls):
    table = TABLES[cls]
    signature = inspect.signature(cls.__init__).parameters
    names = [n for n in signature if n != "self"]
    assert names == list(table), "the signature's parameters, in order, are the table's"
    for name in names:
        default = signature[name].default
        assert _same(default, table[name].default), (name, default, table[name].default)
        assert cls._parameter_constraints[name] is table[name].constraint, name
        assert table[name].entry(name) in cls.__doc__, f"{name}'s docstring entry"
        # the default is valid
        assert table[name].constraint.ok(default), (name, default)
    assert set(cls._parameter_constraints) == set(table)


@pytest.mark.parametrize("cls", list(TABLES), ids=lambda c: c.__name__)
def test_get_params_returns_the_defaults(cls):
    params = cls().get_params()
    assert set(params) == set(TABLES[cls])
    for name, value in params.items():
        assert _same(value, TABLES[cls][name].default), name


def test_verbose_is_typed_as_what_it_takes():
    """verbose takes "progress" too: its annotation says so."""
    for cls in TABLES:
        annotation = str(inspect.signature(cls.__init__).parameters["verbose"].annotation)
        assert "str" in annotation or annotation in ("Any", "typing.Any"), (cls, annotation)
    assert bn.MLPClassifier(verbose="progress").get_params()["verbose"] == "progress"


def test_a_changed_default_is_caught():
    """The comparison above is not vacuous: a table entry with another default fails."""
    table = dict(_params.MLP_PARAMS)
    table["alpha"] = _params.Param(0.5, table["alpha"].constraint, "float", "x")
    default = inspect.signature(bn.MLPClassifier.__init__).parameters["alpha"].default
    assert not _same(default, table["alpha"].default)
    assert table["alpha"].entry("alpha") not in bn.MLPClassifier.__doc__


def test_fit_docstring_lists_its_arguments():
    for cls in (bn.MLPClassifier, bn.MLPRegressor, bn.NeuralNetClassifier, bn.Perceptron):
        doc = cls.fit.__doc__
        for name in inspect.signature(cls.fit).parameters:
            if name != "self":
                assert f"    {name} :" in doc, (cls.__name__, name)


def test_stack_docstring_lists_the_layers():
    """help(NeuralNetClassifier) names every layer one can put in the stack."""
    from backendnn import layers

    for name in layers.__all__:
        obj = getattr(layers, name)
        if isinstance(obj, type) and issubclass(obj, layers.Layer) and obj is not layers.Layer:
            assert name in bn.NeuralNetClassifier.__doc__, name
