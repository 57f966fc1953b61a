"""Multi-layer perceptrons with scikit-learn's interface: :class:`MLPClassifier` and
:class:`MLPRegressor`.

Each builds a network of dense layers with an activation between them (GLU-gated dense
layers for the GLU family) and a linear output whose activation the loss fuses; the
shared core (:mod:`backendnn.estimators._base`) does everything else.

Imports :mod:`backendnn.activations`, ``losses``, ``network``, ``optim``, ``train``,
``_backend``, ``_validation`` and the sibling modules.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from .. import activations as _act
from .._backend import from_numpy, index_dtype, to_numpy
from .._validation import (
    AnyOf,
    Boolean,
    Constraint,
    Interval,
    Options,
    SequenceOf,
    column_or_1d,
    is_int,
)
from ..losses import log_softmax, log_softmax_and_softmax
from ..network import Network
from ..optim import SGD, Adam
from ..params import Params
from ..train import LearningRateSchedule
from ._base import NetworkEstimator
from ._constraints import (
    ActivationParam,
    BackendParam,
    ClassLabels,
    DtypeParam,
    InitParam,
    LayerSizes,
    SeedParam,
)
from ._docs import CLASSIFIER_ATTRIBUTES_DOC, FIT_DOC, MLP_PARAMETERS_DOC
from ._targets import (
    Targets,
    accuracy,
    class_labels,
    host_accuracy,
    labels_of,
    one_hot_host,
    r2_device,
    r2_host,
    regression_targets,
)

_POSITIVE_INT = Interval(1, None, integer=True)
_REAL = Interval(None, None)

_LOSS_OF_OUTPUT = {
    "identity": "squared_error",
    "logistic": "binary_log_loss",
    "softmax": "softmax_cross_entropy",
}


class _BaseMLP(NetworkEstimator):
    coefs_: list
    intercepts_: list
    n_outputs_: int
    out_activation_: str
    _fitted_hidden: tuple
    _fitted_activation: Any

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "hidden_layer_sizes": LayerSizes(),
        "activation": ActivationParam(),
        "solver": Options("sgd", "adam", "lbfgs", "gd"),
        "alpha": Interval(0, None),
        "batch_size": AnyOf(Options("auto"), _POSITIVE_INT),
        "learning_rate": Options(*LearningRateSchedule.KINDS),
        "learning_rate_init": Interval(0, None, closed="neither"),
        "power_t": Interval(0, None),
        "max_iter": _POSITIVE_INT,
        "shuffle": Boolean(),
        "random_state": SeedParam(),
        "tol": Interval(0, None),
        "verbose": Boolean(),
        "warm_start": Boolean(),
        "momentum": Interval(0, 1),
        "nesterovs_momentum": Boolean(),
        "early_stopping": Boolean(),
        "validation_fraction": Interval(0, 1, closed="neither"),
        "beta_1": Interval(0, 1, closed="left"),
        "beta_2": Interval(0, 1, closed="left"),
        "epsilon": Interval(0, None, closed="neither"),
        "n_iter_no_change": _POSITIVE_INT,
        "max_fun": _POSITIVE_INT,
        "backend": BackendParam(),
        "dtype": DtypeParam(),
        "init": InitParam(),
        "early_stopping_metric": Options("score", "loss"),
    }
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        "out_activation_": Options(*_LOSS_OF_OUTPUT),
        "n_outputs_": _POSITIVE_INT,
        "n_layers_": Interval(2, None, integer=True),
        "loss_": _REAL,
        "best_loss_": AnyOf(Options(None), _REAL),
        "validation_scores_": AnyOf(Options(None), SequenceOf(_REAL, as_list=True)),
        "best_validation_score_": AnyOf(Options(None), _REAL),
        "_fitted_hidden": SequenceOf(_POSITIVE_INT),
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
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype
        self.init = init
        self.early_stopping_metric = early_stopping_metric

    # ------------------------------------------------------------------ the network

    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        return (int(sizes),) if is_int(sizes) else tuple(int(h) for h in sizes)

    def _build_network(self, n_features: int, n_outputs: int) -> Network:
        return Network.mlp(n_features, self._hidden(), n_outputs, _act.get(self.activation))

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

    def _fitted_from_params(self, params: Params) -> dict[str, Any]:
        dense = [p for p in params if p]
        hidden = self._hidden()
        return {
            "coefs_": [p[0] for p in dense],
            "intercepts_": [p[1] for p in dense],
            "n_layers_": len(hidden) + 2,
            "n_outputs_": dense[-1][0].shape[1],
            "_fitted_hidden": hidden,
            "_fitted_activation": self.activation,
        }

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
    def _weight_attributes(cls, weights: dict[str, Any]) -> dict[str, Any]:
        n = sum(name.startswith("coefs.") for name in weights)
        return {
            "coefs_": [weights[f"coefs.{i}"] for i in range(n)],
            "intercepts_": [weights[f"intercepts.{i}"] for i in range(n)],
        }

    # ------------------------------------------------------------------ training

    def _loss(self, targets: Targets) -> str:
        return _LOSS_OF_OUTPUT[targets.fitted["out_activation_"]]

    def _alpha(self) -> float:
        return self.alpha

    def _batch_size(self, n: int) -> int:
        if self.solver == "gd":
            return n
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(
                f"batch_size {self.batch_size} exceeds the {n} samples; using {n}",
                UserWarning,
                stacklevel=6,
            )
        return min(self.batch_size, n)

    def _optimizer(self) -> tuple[Any, LearningRateSchedule]:
        if self.solver == "adam":
            optimizer: Any = Adam(float(self.beta_1), float(self.beta_2), float(self.epsilon))
            schedule = LearningRateSchedule("constant", self.learning_rate_init)
        else:
            optimizer = SGD(float(self.momentum), bool(self.nesterovs_momentum))
            schedule = LearningRateSchedule(
                self.learning_rate, self.learning_rate_init, self.power_t
            )
        return optimizer, schedule

    def _stopping(self) -> tuple[float, float]:
        return float(self.tol), int(self.n_iter_no_change)

    def _shuffle(self) -> bool:
        return self.shuffle

    def _stopping_rules(self, network: Network, data: Any) -> list:
        return []

    def _partial_fit_check(self) -> None:
        self._validate_params()
        if self.solver not in ("sgd", "adam", "gd"):
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers; solver={self.solver!r}"
            )


class MLPClassifier(_BaseMLP):
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

    _estimator_type = "classifier"
    _multi_label_tag = True
    _multilabel: bool
    classes_: Any
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **_BaseMLP._fitted_constraints,
        "classes_": ClassLabels(),
        "_multilabel": Boolean(),
    }

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        k, n_out = len(attributes["classes_"]), attributes["n_outputs_"]
        multilabel = attributes["_multilabel"]
        expected = k if multilabel or k > 2 else 1
        if k < 2 or n_out != expected:
            raise ValueError(f"{k} classes need {expected} outputs; the model has {n_out}")
        activation = "logistic" if expected == 1 or multilabel else "softmax"
        if attributes["out_activation_"] != activation:
            raise ValueError(
                f"out_activation_ must be {activation!r} for {k} classes; got "
                f"{attributes['out_activation_']!r}"
            )

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any
    ) -> Targets:
        host = column_or_1d(to_numpy(y))
        if host.ndim == 2:  # multi-label indicator matrix
            if not ((host == 0) | (host == 1)).all():
                raise ValueError("2-D y must be a 0/1 multi-label indicator matrix")
            Y, fitted = (
                host.astype("float64"),
                {
                    "classes_": to_numpy(list(range(host.shape[1]))),
                    "out_activation_": "logistic",
                    "_multilabel": True,
                },
            )
            return Targets(from_numpy(Y, xp=xp, device=dev, dtype=dtype), None, fitted)
        known = self.classes_ if incremental and hasattr(self, "classes_") else None
        if incremental and classes is None and known is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        classes_, codes = class_labels(host, classes, known)
        if len(classes_) == 2:
            Y, out = codes[:, None].astype("float64"), "logistic"
        else:
            Y, out = one_hot_host(codes, len(classes_)), "softmax"
        fitted = {"classes_": classes_, "out_activation_": out, "_multilabel": False}
        return Targets(from_numpy(Y, xp=xp, device=dev, dtype=dtype), codes, fitted)

    def _score_device(self, Y: Any, out: Any) -> Any:
        """Accuracy of logits ``out`` against encoded targets ``Y`` (0/1 or one-hot)."""
        return accuracy(Y, out, 0.5)

    def fit(self, X: Any, y: Any, *, callbacks: Any = ()) -> MLPClassifier:
        return self._fit(X, y, incremental=False, callbacks=callbacks)

    fit.__doc__ = "Fit the model to X and class labels y." + FIT_DOC

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
        y : array-like of shape (n_samples,)
        classes : array-like, optional
            Every label that will ever appear; required on the first call.

        Returns
        -------
        self
        """
        self._partial_fit_check()
        return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, shape (n_samples, n_classes), in the library of X."""
        xp, logits = self._decision(X)
        if self.out_activation_ == "softmax":
            return log_softmax_and_softmax(logits, xp)[1]
        sigmoid = _act.get("sigmoid")
        if self._multilabel:
            return sigmoid.forward(logits)
        return xp.concat([sigmoid.forward(-logits), sigmoid.forward(logits)], axis=1)

    def predict_log_proba(self, X: Any) -> Any:
        """Log of :meth:`predict_proba`, computed stably from the logits."""
        xp, logits = self._decision(X)
        if self.out_activation_ == "softmax":
            return log_softmax(logits, xp)
        sp = _act.get("softplus")
        if self._multilabel:
            return -sp.forward(-logits)
        return xp.concat([-sp.forward(logits), -sp.forward(-logits)], axis=1)

    def predict(self, X: Any) -> Any:
        """Predicted labels, in the library and on the device of X (NumPy input: any
        label type; other libraries: numeric labels)."""
        xp, logits = self._decision(X)
        if self._multilabel:
            return xp.astype(logits > 0, index_dtype(xp))
        idx = (
            xp.argmax(logits, axis=1)
            if logits.shape[1] > 1
            else xp.astype(logits[:, 0] > 0, index_dtype(xp))
        )
        return labels_of(self.classes_, idx)

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy on (X, y)."""
        return host_accuracy(self.predict(X), y)


class MLPRegressor(_BaseMLP):
    __doc__ = (
        """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` on any backend
    (identity output, squared error). Results come back in the library of the input.
"""
        + MLP_PARAMETERS_DOC
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
        ``"identity"``.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import MLPRegressor
    >>> X = np.linspace(-1, 1, 50)[:, None]
    >>> reg = MLPRegressor((16,), solver="lbfgs", random_state=0).fit(X, X[:, 0] ** 2)
    >>> round(reg.score(X, X[:, 0] ** 2), 2) > 0.9
    True
    """
    )

    _estimator_type = "regressor"
    _y_1d: bool
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {
        **_BaseMLP._fitted_constraints,
        "_y_1d": Boolean(),
    }

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        if attributes["out_activation_"] != "identity":
            raise ValueError(
                f"out_activation_ must be 'identity'; got {attributes['out_activation_']!r}"
            )
        if attributes["_y_1d"] and attributes["n_outputs_"] != 1:
            raise ValueError(f"1-D targets need 1 output; the model has {attributes['n_outputs_']}")

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any
    ) -> Targets:
        y = regression_targets(y, xp, dev, dtype)
        Y = xp.reshape(y, (y.shape[0], 1)) if y.ndim == 1 else y
        return Targets(Y, None, {"out_activation_": "identity", "_y_1d": y.ndim == 1})

    def _score_device(self, Y: Any, out: Any) -> Any:
        """R^2 (averaged over outputs) on the device."""
        return r2_device(Y, out)

    def fit(self, X: Any, y: Any, *, callbacks: Any = ()) -> MLPRegressor:
        return self._fit(X, y, incremental=False, callbacks=callbacks)

    fit.__doc__ = "Fit the model to X and real targets y." + FIT_DOC

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        self._partial_fit_check()
        return self._fit(X, y, incremental=True)

    def predict(self, X: Any) -> Any:
        """Predictions (n_samples,) or (n_samples, n_outputs) in the library of X."""
        xp, outputs = self._decision(X)
        return xp.reshape(outputs, (outputs.shape[0],)) if self._y_1d else outputs

    def score(self, X: Any, y: Any) -> float:
        """Coefficient of determination R^2 (averaged over outputs)."""
        return r2_host(self.predict(X), y)
