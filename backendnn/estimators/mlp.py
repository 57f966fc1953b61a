"""Multi-layer perceptrons with scikit-learn's interface: :class:`MLPClassifier` and
:class:`MLPRegressor`.

Each builds a network of dense layers with an activation between them (GLU-gated dense
layers for the GLU family) and a linear output whose activation the loss fuses; the core
(``_core.py``), the driver (``_driver.py``), the hyper-parameter tables (``_params.py``)
and the outputs (``_outputs.py``) are shared with the other estimators.

Imports :mod:`backendnn.activations`, ``network``, ``params``, ``_validation`` and the
sibling modules.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from .. import activations as _act
from .._validation import POSITIVE_INT, Constraint, Interval, SequenceOf, is_int
from ..network import Network
from ..params import Params
from ._constraints import ActivationParam
from ._core import SOLVED_ATTRIBUTES, SolverEstimator
from ._docs import CLASSIFIER_ATTRIBUTES_DOC
from ._inputs import FitData, Place
from ._outputs import ClassifierOutputs, RegressorOutputs
from ._params import (
    MLP_CLASSIFIER_PARAMS,
    MLP_REGRESSOR_PARAMS,
    constraints,
    parameters_doc,
)


class _BaseMLP(SolverEstimator):
    coefs_: list
    intercepts_: list
    _fitted_hidden: tuple
    _fitted_activation: Any

    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **SOLVED_ATTRIBUTES,
        "n_layers_": Interval(2, None, integer=True),
        "_fitted_hidden": SequenceOf(POSITIVE_INT),
        "_fitted_activation": ActivationParam(),
    }

    # ------------------------------------------------------------------ the network

    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        return (int(sizes),) if is_int(sizes) else tuple(int(h) for h in sizes)

    def _build_network(self, input_shape: tuple[int, ...], n_outputs: int) -> Network:
        return Network.mlp(input_shape[0], self._hidden(), n_outputs, _act.get(self.activation))

    def _init_params(self, network: Network, rng: Any, place: Place, initial: Any) -> Params:
        return network.init(
            rng, xp=place.xp, device=place.device, dtype=place.dtype,
            scheme=self.init if self.init is not None else "glorot_uniform",
            activation=_act.get(self.activation),
        )  # fmt: skip

    def _fitted_attributes(self, network: Network, data: FitData) -> dict[str, Any]:
        hidden = self._hidden()
        return {
            "n_layers_": len(hidden) + 2,
            "n_outputs_": network.layers[-1].param_shapes()[0][1],
            "_fitted_hidden": hidden,
            # the function itself, copied: a later edit of the parameter (or of the
            # registry) must not change the fitted model
            "_fitted_activation": copy.deepcopy(_act.get(self.activation)),
        }

    @classmethod
    def _network_of(cls, attributes: dict) -> Network:
        return Network.mlp(
            attributes["n_features_in_"], attributes["_fitted_hidden"],
            attributes["n_outputs_"], _act.get(attributes["_fitted_activation"]),
        )  # fmt: skip

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        if attributes["n_layers_"] != len(attributes["_fitted_hidden"]) + 2:
            raise ValueError(
                f"n_layers_ {attributes['n_layers_']} disagrees with _fitted_hidden "
                f"{attributes['_fitted_hidden']} (hidden layers + 2)"
            )
        super()._check_attributes(attributes)

    # ------------------------------------------------------------------ the weight map

    def _weights(self) -> dict[str, Any]:
        # the fitted activation, or (weights assigned to an unfitted model) the parameter
        activation = self.__dict__.get("_fitted_activation", self.activation)
        coefs, intercepts = self.coefs_, self.intercepts_
        if len(coefs) != len(intercepts):
            raise ValueError(
                f"coefs_ and intercepts_ hold {len(coefs)} and {len(intercepts)} arrays"
            )
        dense = _dense_layers(len(coefs), activation)
        return {
            f"layers.{i}.{name}": a
            for i, W, b in zip(dense, coefs, intercepts)
            for name, a in (("W", W), ("b", b))
        }

    @classmethod
    def _weight_attributes(cls, attributes: dict, weights: dict[str, Any]) -> dict[str, Any]:
        dense = _dense_layers(attributes["n_layers_"] - 1, attributes["_fitted_activation"])
        return {
            "coefs_": [weights[f"layers.{i}.W"] for i in dense],
            "intercepts_": [weights[f"layers.{i}.b"] for i in dense],
        }


def _dense_layers(n: int, activation: Any) -> list[int]:
    """The index in :meth:`Network.mlp`'s layers of each of the ``n`` layers with weights:
    a GLU-gated hidden layer is one layer, any other is a dense layer and its activation."""
    step = 1 if _act.is_gated(_act.get(activation)) else 2
    return [step * k for k in range(n)]


class MLPClassifier(ClassifierOutputs, _BaseMLP):
    __doc__ = (
        """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` on any backend.

    Binary problems use one logistic output and the binary log-loss; multi-class ones
    softmax and cross-entropy; 2-D 0/1 targets are multi-label (logistic outputs).
    Results come back in the library and on the device of the input.
"""
        + parameters_doc(MLP_CLASSIFIER_PARAMS)
        + CLASSIFIER_ATTRIBUTES_DOC
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import MLPClassifier
    >>> X = np.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]] * 10)
    >>> y = np.array([0, 1, 1, 0] * 10)
    >>> clf = MLPClassifier((8,), activation="tanh", solver="lbfgs", random_state=0)
    >>> clf.fit(X, y).predict(X[:4]).tolist()
    [0, 1, 1, 0]
    """
    )

    _parameter_constraints: ClassVar[dict[str, Constraint]] = constraints(MLP_CLASSIFIER_PARAMS)
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **_BaseMLP._fitted_constraints,
        **ClassifierOutputs.OUTPUT_ATTRIBUTES,
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: Any = "relu",
        *,
        solver: Any = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int | str = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        backend: str | None = None,
        dtype: Any = None,
        init: Any = None,
        early_stopping_metric: str = "score",
        scoring: Any = None,
        clip_grad_norm: float | None = None,
        label_smoothing: float = 0.0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.label_smoothing = label_smoothing
        self._set_solver_params(locals())


class MLPRegressor(RegressorOutputs, _BaseMLP):
    __doc__ = (
        """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` on any backend
    (identity output and squared error, or the Poisson deviance with a log link). Results
    come back in the library of the input.

"""
        + parameters_doc(MLP_REGRESSOR_PARAMS)
        + """
    Attributes
    ----------
    coefs_, intercepts_ : list of arrays
        The weights and biases, as :class:`MLPClassifier`'s.
    loss_, best_loss_, loss_curve_, validation_scores_, validation_loss_curve_,
    best_validation_score_ : see
        :class:`MLPClassifier` (validation scores are R^2).
    t_, n_features_in_, image_shape_, n_iter_, n_layers_, n_outputs_ : see
        :class:`MLPClassifier`.
    out_activation_ : str
        ``"identity"``, or ``"exp"`` with ``loss="poisson"``.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import MLPRegressor
    >>> X = np.linspace(-1, 1, 50)[:, None]
    >>> reg = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", random_state=0)
    >>> reg = reg.fit(X, X[:, 0] ** 2)
    >>> round(reg.score(X, X[:, 0] ** 2), 2) > 0.9
    True
    """
    )

    _parameter_constraints: ClassVar[dict[str, Constraint]] = constraints(MLP_REGRESSOR_PARAMS)
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **_BaseMLP._fitted_constraints,
        **RegressorOutputs.OUTPUT_ATTRIBUTES,
    }

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: Any = "relu",
        *,
        solver: Any = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int | str = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        backend: str | None = None,
        dtype: Any = None,
        init: Any = None,
        early_stopping_metric: str = "score",
        scoring: Any = None,
        clip_grad_norm: float | None = None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self._set_solver_params(locals())
