"""Estimators with scikit-learn's conventions: :class:`Perceptron`, :class:`MLPClassifier`,
:class:`MLPRegressor`.

They compute where the input lives (or on ``backend=``), return results in the caller's
own array library and device, and accept NCHW image batches. A failed ``fit`` or
``partial_fit`` (bad input, divergence, an interrupt) leaves the estimator as it was.

Layout: ``_base.py`` (the core every estimator shares), ``_training.py`` (the one
training driver), ``_targets.py`` (label and target encoding), ``_constraints.py``
(parameter kinds), ``_optimized.py`` (the training parameters), ``_outputs.py``
(classifier and regressor outputs), ``_docs.py``, and what is each model's own: ``mlp.py``,
``perceptron.py``, ``stack.py`` (any layer stack).
"""

from ..train import ConvergenceWarning
from ._base import NetworkEstimator
from .mlp import MLPClassifier, MLPRegressor
from .perceptron import Perceptron
from .stack import NeuralNetClassifier, NeuralNetRegressor

#: estimators by class name, for model files
REGISTRY: dict[str, type[NetworkEstimator]] = {
    cls.__name__: cls
    for cls in (MLPClassifier, MLPRegressor, Perceptron, NeuralNetClassifier, NeuralNetRegressor)
}

__all__ = [
    "REGISTRY",
    "ConvergenceWarning",
    "MLPClassifier",
    "MLPRegressor",
    "NetworkEstimator",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "Perceptron",
]
