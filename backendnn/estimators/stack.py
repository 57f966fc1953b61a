"""Estimators for any stack of layers: :class:`NeuralNetClassifier` and
:class:`NeuralNetRegressor` (a convolutional network on NCHW images, or any other).

``layers`` is the network up to its output (``output_layer="append"``: the estimator
appends ``Dense(width, n_outputs)`` sized from the data, as the MLPs do) or with it
(``"last"``: checked against the targets). Sizes a layer infers (``Dense(64)``'s input
width) are set from the data at fit, and every shape is checked from the shapes alone
before anything is allocated. The whole is trained with the MLPs' solvers, schedules,
early stopping, callbacks and backends. Inputs keep their shape (NCL signals and NCHW
images reach the first layer as they are).

Imports :mod:`backendnn.layers`, ``network``, ``params``, ``_backend``, ``_validation``
and the sibling modules.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from .._validation import Constraint, Interval
from ..layers import Activation, Dense, GatedDense, Layer
from ..network import Network
from ..params import Params
from ._constraints import LayerStack
from ._core import SOLVED_ATTRIBUTES, SolverEstimator
from ._docs import STACK_CLASSIFIER_ATTRIBUTES_DOC
from ._inputs import FitData, Place
from ._outputs import ClassifierOutputs, RegressorOutputs
from ._params import (
    STACK_CLASSIFIER_PARAMS,
    STACK_REGRESSOR_PARAMS,
    constraints,
    parameters_doc,
)
from ._weights import buffers_of, params_of, weight_map

OUTPUT_LAYERS = ("append", "last")


def build_stack(
    layers: list[Layer], input_shape: tuple[int, ...], n_outputs: int, output_layer: str
) -> Network:
    """The network of ``layers`` for samples of ``input_shape`` and ``n_outputs`` encoded
    target columns, sizes inferred and shapes checked from the shapes alone (nothing is
    allocated), the output layer appended or checked as ``output_layer`` says.

    Raises
    ------
    ValueError
        Naming the layer that does not accept its input, or saying why the stack's end
        does not fit the targets.
    """
    network = Network(copy.deepcopy(list(layers))).build(input_shape)  # the model's own
    out = network.output_shape(input_shape)
    if len(out) != 1:
        raise ValueError(
            f"the layers end with samples of shape {out}; the output needs rows: end the "
            "stack with Flatten() or a global pool"
        )
    last = network.layers[-1] if network.layers else None
    if output_layer == "append":
        if isinstance(last, (Dense, GatedDense)):
            raise ValueError(
                f"the layers end with {last!r} and output_layer='append' appends the output "
                f"layer Dense({out[0]}, {n_outputs}) after it: two linear layers in a row. "
                f"If {last!r} is the output layer, pass output_layer='last'; else end the "
                "stack with an activation (Activation('identity') keeps a linear bottleneck)"
            )
        return Network([*network.layers, Dense(out[0], n_outputs)])
    if isinstance(last, Activation):
        raise ValueError(
            f"with output_layer='last' the stack ends with the network's output, before the "
            f"output activation, which the loss applies itself; remove the final {last!r}"
        )
    if out[0] != n_outputs:
        binary = " (two classes take one logistic output unit, as scikit-learn's)"
        raise ValueError(
            f"the layers end with {out[0]} outputs, and the targets need {n_outputs}"
            + (binary if n_outputs == 1 else "")
            + "; change the last layer's width, or pass output_layer='append'"
        )
    return network


class _BaseStack(SolverEstimator):
    params_: list
    _fitted_layers: list

    _flatten_input = False
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **SOLVED_ATTRIBUTES,
        "n_layers_": Interval(1, None, integer=True),
        "_fitted_layers": LayerStack(),
    }

    # ------------------------------------------------------------------ the network

    def _build_network(self, input_shape: tuple[int, ...], n_outputs: int) -> Network:
        return build_stack(self.layers, input_shape, n_outputs, self.output_layer)

    def _init_params(self, network: Network, rng: Any, place: Place, initial: Any) -> Params:
        scheme = self.init if self.init is not None else "glorot_uniform"
        return network.init(rng, xp=place.xp, device=place.device, dtype=place.dtype, scheme=scheme)

    def _fitted_attributes(self, network: Network, data: FitData) -> dict[str, Any]:
        return {
            "_fitted_layers": list(network.layers),
            "n_layers_": len(network.layers),
            "n_outputs_": data.n_outputs,
        }

    @classmethod
    def _network_of(cls, attributes: dict) -> Network:
        return Network(attributes["_fitted_layers"])

    # ------------------------------------------------------------------ the weight map

    def _weights(self) -> dict[str, Any]:
        params = self.params_  # AttributeError before fit and assignment
        # fitted layers, or (params_ assigned to an unfitted model) the layers as given
        layers: Any = self.__dict__.get("_fitted_layers", self.layers)
        network = Network(layers)
        if len(params) != len(network.layers):
            raise ValueError(
                f"params_ holds {len(self.params_)} tuples; the network has "
                f"{len(network.layers)} layers"
            )
        return weight_map(network, self.params_, self.__dict__.get("buffers_"))

    @classmethod
    def _weight_attributes(cls, attributes: dict, weights: dict[str, Any]) -> dict[str, Any]:
        network = cls._network_of(attributes)
        return {
            "params_": params_of(network, weights),
            "buffers_": buffers_of(network, weights) if network.has_state else None,
        }

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        super()._check_attributes(attributes)
        layers = attributes["_fitted_layers"]
        image = attributes["image_shape_"]
        shape = tuple(image) if image is not None else (attributes["n_features_in_"],)
        network = Network(layers)
        if network.build(shape).layers != network.layers:
            raise ValueError("_fitted_layers must have every size set (none left to infer)")
        if len(layers) != attributes["n_layers_"]:
            raise ValueError("_fitted_layers disagree with n_layers_")
        out = network.output_shape(shape)  # symbolic: a file's sizes allocate nothing
        if out != (attributes["n_outputs_"],):
            raise ValueError(
                f"_fitted_layers give outputs of shape {out} for samples of shape {shape}, "
                f"not ({attributes['n_outputs_']},)"
            )


class NeuralNetClassifier(ClassifierOutputs, _BaseStack):
    __doc__ = (
        """A classifier made of any stack of layers, a convolutional network for instance.

    The estimator appends the output layer (one logistic unit for two classes, softmax
    over k classes) and trains the whole as :class:`MLPClassifier` does; NCHW image
    batches reach the first layer as they are.
"""
        + parameters_doc(STACK_CLASSIFIER_PARAMS)
        + STACK_CLASSIFIER_ATTRIBUTES_DOC
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import NeuralNetClassifier
    >>> from backendnn.layers import Activation, Conv2d, Flatten, MaxPool2d
    >>> X = np.random.default_rng(0).normal(size=(40, 1, 6, 6))
    >>> y = (X[:, 0, :3].sum(axis=(1, 2)) > 0).astype(int)
    >>> cnn = NeuralNetClassifier(
    ...     [Conv2d(1, 4, 3, padding=1), Activation("relu"), MaxPool2d(2), Flatten()],
    ...     max_iter=20, random_state=0)
    >>> cnn.fit(X, y).predict(X[:4]).shape
    (4,)
    """
    )

    _parameter_constraints: ClassVar[dict[str, Constraint]] = constraints(STACK_CLASSIFIER_PARAMS)
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **_BaseStack._fitted_constraints,
        **ClassifierOutputs.OUTPUT_ATTRIBUTES,
    }

    def __init__(
        self,
        layers: Any = (),
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
        output_layer: str = "append",
        loss: Any = "log_loss",
        label_smoothing: float = 0.0,
    ):
        self.layers = layers
        self.output_layer = output_layer
        self.loss = loss
        self.label_smoothing = label_smoothing
        self._set_solver_params(locals())


class NeuralNetRegressor(RegressorOutputs, _BaseStack):
    __doc__ = (
        """A regressor made of any stack of layers (squared error by default; ``loss``).

    The estimator appends the output layer ``Dense(width, n_outputs)``; otherwise as
    :class:`NeuralNetClassifier`.
"""
        + parameters_doc(STACK_REGRESSOR_PARAMS)
        + """
    Attributes
    ----------
    params_ : list of tuples of arrays
        The parameters of every layer, the appended output layer last.
    buffers_ : list of tuples of arrays, or None
        The state of every layer (batch norm's running statistics) after the last training
        epoch, what inference uses; None when no layer has state.
    loss_, best_loss_, loss_curve_, validation_scores_, validation_loss_curve_,
    best_validation_score_ : see
        :class:`MLPClassifier` (validation scores are R^2).
    t_, n_features_in_, image_shape_, n_iter_, n_layers_, n_outputs_ : see
        :class:`MLPClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import NeuralNetRegressor
    >>> from backendnn.layers import Activation, Dense
    >>> X = np.linspace(-1, 1, 50)[:, None]
    >>> reg = NeuralNetRegressor([Dense(1, 16), Activation("tanh")], solver="lbfgs",
    ...                          random_state=0).fit(X, X[:, 0] ** 2)
    >>> reg.score(X, X[:, 0] ** 2) > 0.9
    True
    """
    )

    _parameter_constraints: ClassVar[dict[str, Constraint]] = constraints(STACK_REGRESSOR_PARAMS)
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **_BaseStack._fitted_constraints,
        **RegressorOutputs.OUTPUT_ATTRIBUTES,
    }

    def __init__(
        self,
        layers: Any = (),
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
        output_layer: str = "append",
        loss: Any = "squared_error",
    ):
        self.layers = layers
        self.output_layer = output_layer
        self.loss = loss
        self._set_solver_params(locals())
