"""Estimators with scikit-learn's conventions: :class:`Perceptron`, :class:`MLPClassifier`,
:class:`MLPRegressor`.

They compute where the input lives (or on ``backend=``), return results in the caller's
own array library and device, and accept NCHW image batches. A failed ``fit`` or
``partial_fit`` (bad input, divergence, an interrupt) leaves the estimator as it was.

Layout: one fit reads top to bottom in three modules: ``_core.py`` (``fit``, the commit,
prediction), ``_inputs.py`` (the caller's data checked and placed in one pass) and
``_driver.py`` (what a fit is, :class:`FitPlan`, and the one training driver). Beside
them: ``_targets.py`` (label and target encoding), ``_outputs.py`` (classifier and
regressor outputs), ``_params.py`` (the hyper-parameter tables), ``_protocol.py``
(scikit-learn's protocol), ``_constraints.py`` (parameter kinds), ``_dask.py`` (dask
inputs), ``_online.py`` (scikit-learn's online perceptron), ``_docs.py``; and what is each
model's own: ``mlp.py``, ``perceptron.py``, ``stack.py`` (any layer stack).
"""

from ..train import ConvergenceWarning
from ._core import NetworkEstimator
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
