"""Estimators for any stack of layers: :class:`NeuralNetClassifier` and
:class:`NeuralNetRegressor` (a convolutional network on NCHW images, or any other).

``layers`` is the network up to its output: the estimator appends the output
``Dense(width, n_outputs)`` sized from the data, as the MLPs do, and trains the whole with
the MLPs' solvers, schedules, early stopping, callbacks and backends. Inputs keep their
shape (NCHW batches reach the first layer as they are).

Imports :mod:`backendnn.layers`, ``network``, ``params``, ``_backend``, ``_validation``
and the sibling modules.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from .._backend import namespace
from .._validation import Constraint, Interval
from ..layers import Dense, Layer
from ..network import Network
from ..params import Params
from ._constraints import LayerStack
from ._core import SOLVED_ATTRIBUTES, SolverEstimator
from ._docs import STACK_CLASSIFIER_ATTRIBUTES_DOC
from ._inputs import Place
from ._outputs import ClassifierOutputs, RegressorOutputs
from ._params import STACK_PARAMS, constraints, parameters_doc


def output_width(layers: list[Layer], input_shape: tuple[int, ...]) -> int:
    """The width of the 2-D output of ``layers`` for samples of ``input_shape``, found by
    running an empty batch (no sample: no memory, whatever the image size) through them on
    the host (any layer, no shape rules to write).

    Raises
    ------
    ValueError
        If the stack does not accept that input, or does not end in (N, width) rows.
    """
    xp = namespace("numpy")
    x = xp.zeros((0, *input_shape))
    for i, layer in enumerate(layers):
        params = tuple(xp.zeros(s) for s in layer.param_shapes())
        try:
            x, _ = layer.forward(params, x)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"the layers do not fit samples of shape {input_shape}: layer {i} ({layer!r}) "
                f"got an input of shape {tuple(x.shape[1:])}: {exc}"
            ) from None
    if x.ndim != 2:
        raise ValueError(
            f"the layers end with samples of shape {tuple(x.shape[1:])}; the output layer "
            "needs rows: end the stack with Flatten() or GlobalAvgPool2d()"
        )
    return int(x.shape[1])


class _BaseStack(SolverEstimator):
    params_: list
    _fitted_layers: list

    _flatten_input = False
    _parameter_constraints: ClassVar[dict[str, Constraint]] = constraints(STACK_PARAMS)
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **SOLVED_ATTRIBUTES,
        "n_layers_": Interval(1, None, integer=True),
        "_fitted_layers": LayerStack(),
    }

    def __init__(
        self,
        layers: Any = (),
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
    ):
        self.layers = layers
        self._set_solver_params(locals())

    # ------------------------------------------------------------------ the network

    def _build_network(self, input_shape: tuple[int, ...], n_outputs: int) -> Network:
        stack = copy.deepcopy(list(self.layers))  # the fitted model keeps its own
        return Network([*stack, Dense(output_width(stack, input_shape), n_outputs)])

    def _init_params(self, network: Network, rng: Any, place: Place, initial: Any) -> Params:
        scheme = self.init if self.init is not None else "glorot_uniform"
        return network.init(rng, xp=place.xp, device=place.device, dtype=place.dtype, scheme=scheme)

    def _fitted_attributes(self, network: Network) -> dict[str, Any]:
        return {
            "_fitted_layers": list(network.layers),
            "n_layers_": len(network.layers),
            "n_outputs_": network.layers[-1].param_shapes()[0][1],
        }

    @classmethod
    def _network_of(cls, attributes: dict) -> Network:
        return Network(attributes["_fitted_layers"])

    # ------------------------------------------------------------------ the weight map

    def _weights(self) -> dict[str, Any]:
        layers = self._fitted_layers
        if len(self.params_) != len(layers):
            raise ValueError(
                f"params_ holds {len(self.params_)} tuples; the network has {len(layers)} layers"
            )
        return {
            f"layers.{i}.{name}": a
            for i, (layer, p) in enumerate(zip(layers, self.params_))
            for name, a in zip(layer.param_names, p)
        }

    @classmethod
    def _weight_attributes(cls, attributes: dict, weights: dict[str, Any]) -> dict[str, Any]:
        layers = attributes["_fitted_layers"]
        return {
            "params_": [
                tuple(weights[f"layers.{i}.{name}"] for name in layer.param_names)
                for i, layer in enumerate(layers)
            ]
        }

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        super()._check_attributes(attributes)  # image_shape_ first: the probe below uses it
        layers = attributes["_fitted_layers"]
        if not layers or not isinstance(layers[-1], Dense):
            raise ValueError("_fitted_layers must end with the output Dense layer")
        if layers[-1].n_out != attributes["n_outputs_"] or len(layers) != attributes["n_layers_"]:
            raise ValueError("_fitted_layers disagree with n_outputs_ or n_layers_")
        image = attributes["image_shape_"]
        shape = tuple(image) if image is not None else (attributes["n_features_in_"],)
        if output_width(layers[:-1], shape) != layers[-1].n_in:
            raise ValueError(f"_fitted_layers do not fit samples of shape {shape}")


class NeuralNetClassifier(ClassifierOutputs, _BaseStack):
    __doc__ = (
        """A classifier made of any stack of layers, a convolutional network for instance.

    The estimator appends the output layer (one logistic unit for two classes, softmax
    over k classes) and trains the whole as :class:`MLPClassifier` does; NCHW image
    batches reach the first layer as they are.
"""
        + parameters_doc(STACK_PARAMS)
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

    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **_BaseStack._fitted_constraints,
        **ClassifierOutputs.OUTPUT_ATTRIBUTES,
    }


class NeuralNetRegressor(RegressorOutputs, _BaseStack):
    __doc__ = (
        """A regressor made of any stack of layers (identity output, squared error).

    The estimator appends the output layer ``Dense(width, n_outputs)``; otherwise as
    :class:`NeuralNetClassifier`.
"""
        + parameters_doc(STACK_PARAMS)
        + """
    Attributes
    ----------
    params_ : list of tuples of arrays
        The parameters of every layer, the appended output layer last.
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_ : see
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

    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **_BaseStack._fitted_constraints,
        **RegressorOutputs.OUTPUT_ATTRIBUTES,
    }
