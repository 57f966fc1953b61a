"""The output heads of the ONNX export: from the network output h to what the estimator's
prediction methods return (:mod:`backendnn.estimators._outputs`, ``perceptron``).

Each head adds its nodes to the :class:`~.onnx_graph.Graph` and returns one (name, NumPy
dtype, shape after the batch axis) per graph output. Labels are ``classes_[idx]``, a
Gather on a constant of the classes (numbers, booleans or strings).

Imports ``onnx``, ``numpy`` and ``interop.onnx_graph``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper

from .onnx_graph import sigmoid

_INT64 = np.dtype(np.int64)


def network(out_shape: tuple[int, ...], g: Any, h: Any) -> list:
    """The network output itself, ``output``."""
    g.output("output", h)
    return [("output", g.dtype, list(out_shape))]


def classifier(est: Any, g: Any, h: Any) -> list:
    """``probabilities`` and ``labels``: softmax and argmax, two logistic columns and h > 0
    (binary), per-label logistic outputs and the 0/1 indicator (multi-label)."""
    k = len(est.classes_)
    if est.out_activation_ == "softmax":
        g.output("probabilities", g.op("Softmax", h, axis=1))
        idx = g.op("ArgMax", h, axis=1, keepdims=0)
        return [("probabilities", g.dtype, [k]), _labels(g, est, idx)]
    if est._multilabel:
        g.output("probabilities", sigmoid(g, h))
        g.output("labels", g.op("Cast", g.op("Greater", h, 0.0), to=TensorProto.INT64))
        return [("probabilities", g.dtype, [k]), ("labels", _INT64, [k])]
    if k == 1:  # a single class: probability 1, label classes_[0]
        one = helper.make_tensor("one", helper.np_dtype_to_tensor_dtype(g.dtype), [1], [1.0])
        zero = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
        g.output("probabilities", g.op("ConstantOfShape", g.op("Shape", h), value=one))
        n = g.op("Shape", h, start=0, end=1)
        return [
            ("probabilities", g.dtype, [1]),
            _labels(g, est, g.op("ConstantOfShape", n, value=zero)),
        ]
    g.output("probabilities", g.op("Concat", sigmoid(g, -h), sigmoid(g, h), axis=1))
    return [("probabilities", g.dtype, [2]), _labels(g, est, _positive(g, h))]


def regressor(est: Any, g: Any, h: Any) -> list:
    """``predictions``: h, or exp(h) for the Poisson loss's log link; (N,) for 1-D targets."""
    predictions = g.op("Exp", h) if est.out_activation_ == "exp" else h
    if est._y_1d:
        g.output("predictions", g.op("Squeeze", predictions, g.ints([1])))
        return [("predictions", g.dtype, [])]
    g.output("predictions", predictions)
    return [("predictions", g.dtype, [int(est.n_outputs_)])]


def perceptron(est: Any, g: Any, h: Any) -> list:
    """``decision`` (w.x + b; (N,) for two classes) and ``labels``."""
    k = len(est.classes_)
    if k == 2:
        g.output("decision", g.op("Squeeze", h, g.ints([1])))
        return [("decision", g.dtype, []), _labels(g, est, _positive(g, h))]
    g.output("decision", h)
    idx = g.op("ArgMax", h, axis=1, keepdims=0)
    return [("decision", g.dtype, [k]), _labels(g, est, idx)]


def _positive(g: Any, h: Any) -> str:
    """1 where the single column of h is > 0, else 0: int64 of shape (N,)."""
    positive = g.op("Greater", g.op("Squeeze", h, g.ints([1])), 0.0)
    return g.op("Cast", positive, to=TensorProto.INT64)


def _labels(g: Any, est: Any, idx: str) -> tuple:
    """``classes_[idx]`` as the output ``labels``."""
    classes = np.asarray(est.classes_)
    if classes.dtype.kind in "OUS":
        if not all(isinstance(c, str) for c in classes.tolist()):
            raise ValueError(
                "export_onnx: class labels must be numbers, booleans or strings; got "
                f"{classes.tolist()!r}"
            )
        classes = np.array([str(c) for c in classes.tolist()], dtype=object)
    g.output("labels", g.op("Gather", g.const(classes, dtype=classes.dtype), idx, axis=0))
    return ("labels", classes.dtype, [])
