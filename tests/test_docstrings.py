"""The reference documentation: every public estimator, layer and function has numpydoc
Parameters and Examples sections, and each estimator documents every constructor parameter
and its Attributes. (The callback record's keys: ``tests/test_callbacks.py``.)"""

from __future__ import annotations

import pydoc

import pytest

import backendnn as bn

DOCUMENTED = [
    bn.MLPClassifier, bn.MLPRegressor, bn.Perceptron, bn.Network, bn.layers.Dense,
    bn.layers.GatedDense, bn.layers.Activation, bn.layers.Flatten, bn.layers.Conv1d,
    bn.layers.Conv2d, bn.layers.MaxPool1d, bn.layers.MaxPool2d, bn.layers.AvgPool1d,
    bn.layers.AvgPool2d, bn.layers.GlobalAvgPool1d, bn.layers.GlobalAvgPool2d,
    bn.layers.BatchNorm1d, bn.layers.BatchNorm2d, bn.layers.LayerNorm, bn.layers.Dropout,
    bn.layers.Residual, bn.check_gradients, bn.save, bn.load, bn.export_onnx,
]  # fmt: skip


@pytest.mark.parametrize("obj", DOCUMENTED, ids=lambda o: o.__name__)
def test_reference_documentation_is_complete(obj):
    doc = pydoc.render_doc(obj, renderer=pydoc.plaintext)
    for section in ("Parameters", "Examples"):
        assert f"{section}\n" in doc.replace(" |  ", ""), f"{obj.__name__}: no {section}"
    if isinstance(obj, type) and issubclass(obj, bn.estimators.NetworkEstimator):
        own = obj.__doc__
        for name in obj._param_names():  # every constructor parameter, ours included
            assert f"{name} :" in own or f"{name}," in own, f"{obj.__name__}: {name}"
        assert "Attributes\n" in own
