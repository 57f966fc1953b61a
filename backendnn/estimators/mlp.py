"""Multi-layer perceptrons with scikit-learn's interface: :class:`MLPClassifier` and
:class:`MLPRegressor`.

Each builds a network of dense layers with an activation between them (GLU-gated dense
layers for the GLU family) and a linear output whose activation the loss fuses; the
training parameters and driver (``_optimized.py``), the outputs (``_outputs.py``) and the
core (``_base.py``) are shared with the other estimators.

Imports :mod:`backendnn.activations`, ``network``, ``params``, ``_validation`` and the
sibling modules.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from .. import activations as _act
from .._validation import Constraint, Interval, Options, SequenceOf, is_int
from ..network import Network
from ..params import Params
from ._constraints import ActivationParam, LayerSizes
from ._docs import CLASSIFIER_ATTRIBUTES_DOC, MLP_PARAMETERS_DOC
from ._optimized import (
    POSITIVE_INT,
    TRAINING_ATTRIBUTES,
    TRAINING_CONSTRAINTS,
    OptimizedNetwork,
)
from ._outputs import ClassifierOutputs, RegressorOutputs


class _BaseMLP(OptimizedNetwork):
    coefs_: list
    intercepts_: list
    n_outputs_: int
    out_activation_: str
    _fitted_hidden: tuple
    _fitted_activation: Any

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "hidden_layer_sizes": LayerSizes(),
        "activation": ActivationParam(),
        **TRAINING_CONSTRAINTS,
    }
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **TRAINING_ATTRIBUTES,
        "n_layers_": Interval(2, None, integer=True),
        "_fitted_hidden": SequenceOf(POSITIVE_INT),
        "_fitted_activation": ActivationParam(),
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: Any = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
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
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self._set_training_params(locals())

    # ------------------------------------------------------------------ the network

    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        return (int(sizes),) if is_int(sizes) else tuple(int(h) for h in sizes)

    def _build_network(self, input_shape: tuple[int, ...], n_outputs: int) -> Network:
        return Network.mlp(input_shape[0], self._hidden(), n_outputs, _act.get(self.activation))

    def _fitted_network(self) -> Network:
        return Network.mlp(
            self.n_features_in_, self._fitted_hidden, self.n_outputs_,
            _act.get(self._fitted_activation),
        )  # fmt: skip

    def _init_params(self, network: Network, rng: Any, xp: Any, dev: Any, dtype: Any) -> Params:
        return network.init(
            rng,
            xp=xp,
            device=dev,
            dtype=dtype,
            scheme=self.init if self.init is not None else "glorot_uniform",
            activation=_act.get(self.activation),
        )

    def _weight_pairs(self) -> list[tuple]:
        return list(zip(self.coefs_, self.intercepts_))

    def _fitted_from_params(self, network: Network, params: Params) -> dict[str, Any]:
        dense = [p for p in params if p]
        hidden = self._hidden()
        return {
            "coefs_": [p[0] for p in dense],
            "intercepts_": [p[1] for p in dense],
            "n_layers_": len(hidden) + 2,
            "n_outputs_": dense[-1][0].shape[1],
            "_fitted_hidden": hidden,
            # the function itself, copied: a later edit of the parameter (or of the
            # registry) must not change the fitted model
            "_fitted_activation": copy.deepcopy(_act.get(self.activation)),
        }

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        if attributes["n_layers_"] != len(attributes["_fitted_hidden"]) + 2:
            raise ValueError(
                f"n_layers_ {attributes['n_layers_']} disagrees with _fitted_hidden "
                f"{attributes['_fitted_hidden']} (hidden layers + 2)"
            )
        super()._check_attributes(attributes)

    def _weights(self) -> dict[str, Any]:
        out = {f"coefs.{i}": c for i, c in enumerate(self.coefs_)}
        out.update({f"intercepts.{i}": b for i, b in enumerate(self.intercepts_)})
        return out

    @classmethod
    def _weight_shapes(cls, attributes: dict) -> dict[str, tuple[int, ...]]:
        network = Network.mlp(
            attributes["n_features_in_"], attributes["_fitted_hidden"],
            attributes["n_outputs_"], _act.get(attributes["_fitted_activation"]),
        )  # fmt: skip
        dense = [layer.param_shapes() for layer in network.layers if layer.param_shapes()]
        out = {f"coefs.{i}": s[0] for i, s in enumerate(dense)}
        out.update({f"intercepts.{i}": s[1] for i, s in enumerate(dense)})
        return out

    @classmethod
    def _weight_attributes(cls, attributes: dict, weights: dict[str, Any]) -> dict[str, Any]:
        n = sum(name.startswith("coefs.") for name in weights)
        return {
            "coefs_": [weights[f"coefs.{i}"] for i in range(n)],
            "intercepts_": [weights[f"intercepts.{i}"] for i in range(n)],
        }


class MLPClassifier(ClassifierOutputs, _BaseMLP):
    __doc__ = (
        """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` on any backend.

    Binary problems use one logistic output and the binary log-loss; multi-class ones
    softmax and cross-entropy; 2-D 0/1 targets are multi-label (logistic outputs).
    Results come back in the library and on the device of the input.
"""
        + MLP_PARAMETERS_DOC
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

    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **_BaseMLP._fitted_constraints,
        **ClassifierOutputs.OUTPUT_ATTRIBUTES,
    }


class MLPRegressor(RegressorOutputs, _BaseMLP):
    __doc__ = (
        """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` on any backend
    (identity output and squared error, or the Poisson deviance with a log link). Results
    come back in the library of the input.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default="squared_error"
        ``"squared_error"``: half the mean squared error of an identity output.
        ``"poisson"``: half the Poisson deviance of counts y >= 0 with mean exp(h) for
        network output h (predictions are exp(h)), as scikit-learn's. The first
        parameter, as in scikit-learn: pass ``hidden_layer_sizes`` by name.
"""
        + MLP_PARAMETERS_DOC.replace("    Parameters\n    ----------\n", "", 1)
        + """
    Attributes
    ----------
    coefs_, intercepts_ : list of arrays
        The weights and biases, as :class:`MLPClassifier`'s.
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_ : see
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

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "loss": Options("squared_error", "poisson"),
        **_BaseMLP._parameter_constraints,
    }
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
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
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
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self._set_training_params(locals())
