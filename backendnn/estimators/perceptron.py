"""The notes' perceptron (eqs. 1-5) with scikit-learn's interface: :class:`Perceptron`.

One dense layer (no hidden layer) trained on the perceptron criterion by gradient
descent from zero weights; labels become +1/-1 per class (one-vs-rest for several
classes). The shared core (:mod:`backendnn.estimators._base`) does everything else.

Imports :mod:`backendnn.network`, ``layers``, ``optim``, ``train``, ``_backend``,
``_validation`` and the sibling modules.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from .._backend import array_namespace, from_numpy, index_dtype
from .._validation import POSITIVE_INT, VERBOSE, AnyOf, Boolean, Constraint, Interval, Options
from ..layers import Dense
from ..network import Network
from ..optim import SGD
from ..params import Params
from ..train import LearningRateSchedule
from ._base import NetworkEstimator
from ._constraints import BackendParam, ClassLabels, DtypeParam, SeedParam
from ._targets import Targets, accuracy, class_labels, host_accuracy, labels_of, one_hot_host


class Perceptron(NetworkEstimator):
    """The notes' perceptron: minimise the criterion J(w, b) = sum over misclassified
    samples of -y_i (w.x_i + b) (eq. 1) by gradient descent, w <- w - eta0 dJ/dw,
    b <- b - eta0 dJ/db (eqs. 2-5), labels mapped to -1/+1 internally.

    Each epoch is one full-batch step over the training data (the notes' algorithm), or
    minibatch steps of ``batch_size`` samples; weights start at zero. Training stops at
    zero training errors, after ``max_iter`` epochs, or when J (``loss_curve_``) has not
    improved by ``tol`` for ``n_iter_no_change`` epochs. Multi-class problems are
    one-vs-rest, as scikit-learn's.

    Parameters
    ----------
    penalty : {None, "l2"}, default=None
        An L2 penalty alpha/(2 n) ||w||^2 on the criterion.
    alpha : float, default=1e-4
        The penalty's strength (with ``penalty="l2"``).
    fit_intercept : bool, default=True
        Learn the bias b (else b = 0).
    max_iter : int, default=1000
        Epochs at most.
    tol : float or None, default=1e-3
        Improvement of J below which an epoch counts as none; None: stop only at zero
        errors or ``max_iter``.
    shuffle : bool, default=True
        Shuffle the samples every epoch (minibatches only).
    eta0 : float, default=1.0
        The learning rate.
    random_state : int, RandomState, Generator or None, default=0
        Seeds the shuffling and the early-stopping split.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for two classes) and keep
        the weights with the best held-out accuracy.
    validation_fraction : float, default=0.1
        The held-out share, in (0, 1).
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping.
    batch_size : int or None, default=None
        None: full-batch gradient descent (the notes' algorithm); else minibatches.
    verbose : bool, default=False
        Show a progress bar (or one line per epoch).
    backend : str or None, default=None
        Where to compute (see :class:`MLPClassifier`).
    dtype : {"float32", "float64"} or None, default=None
        The compute precision (see :class:`MLPClassifier`).

    Attributes
    ----------
    coef_ : array of shape (1, n_features) or (n_classes, n_features)
        The weights w, scikit-learn's shape, in the compute library.
    intercept_ : array of shape (1,) or (n_classes,)
        The biases b.
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        The criterion J (mean over samples) per epoch.
    t_ : int
        Training samples seen.
    n_features_in_ : int
        Features per sample.
    image_shape_ : tuple or None
        (C, H, W) when fitted on NCHW images.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import Perceptron
    >>> X = np.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
    >>> Perceptron().fit(X, [0, 0, 0, 1]).predict(X).tolist()  # AND is separable
    [0, 0, 0, 1]
    """

    _estimator_type = "classifier"
    coef_: Any
    intercept_: Any
    classes_: Any

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "penalty": Options(None, "l2"),
        "alpha": Interval(0, None),
        "fit_intercept": Boolean(),
        "max_iter": POSITIVE_INT,
        "tol": AnyOf(Options(None), Interval(0, None)),
        "shuffle": Boolean(),
        "eta0": Interval(0, None, closed="neither"),
        "random_state": SeedParam(),
        "early_stopping": Boolean(),
        "validation_fraction": Interval(0, 1, closed="neither"),
        "n_iter_no_change": POSITIVE_INT,
        "batch_size": AnyOf(Options(None), POSITIVE_INT),
        "verbose": VERBOSE,
        "backend": BackendParam(),
        "dtype": DtypeParam(),
    }
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {"classes_": ClassLabels()}

    def __init__(
        self,
        *,
        penalty: str | None = None,
        alpha: float = 0.0001,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float | None = 1e-3,
        shuffle: bool = True,
        eta0: float = 1.0,
        random_state: Any = 0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        batch_size: int | None = None,
        verbose: bool = False,
        backend: str | None = None,
        dtype: Any = None,
    ):
        self.penalty = penalty
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.eta0 = eta0
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.verbose = verbose
        self.backend = backend
        self.dtype = dtype

    # ------------------------------------------------------------------ the network

    def _build_network(self, input_shape: tuple[int, ...], n_outputs: int) -> Network:
        return Network([Dense(input_shape[0], n_outputs, bias=self.fit_intercept)])

    def _fitted_network(self) -> Network:
        # always with a bias: intercept_ is zero when fitted without one
        return Network([Dense(self.n_features_in_, self.coef_.shape[0])])

    def _init_params(self, network: Network, rng: Any, xp: Any, dev: Any, dtype: Any) -> Params:
        """Zero weights (the notes' start)."""
        return [
            tuple(xp.zeros(s, dtype=dtype, device=dev) for s in layer.param_shapes())
            for layer in network.layers
        ]

    def _weight_pairs(self) -> list[tuple]:
        return [(_transpose(self.coef_), self.intercept_)]

    def _fitted_from_params(self, network: Network, params: Params) -> dict[str, Any]:
        W = params[0][0]
        b = params[0][1] if self.fit_intercept else array_namespace(W).zeros_like(W[0, :])
        return {"coef_": _transpose(W), "intercept_": b}

    def _weights(self) -> dict[str, Any]:
        return {"coef": self.coef_, "intercept": self.intercept_}

    @classmethod
    def _weight_shapes(cls, attributes: dict) -> dict[str, tuple[int, ...]]:
        n_classes = len(attributes["classes_"])
        k = 1 if n_classes == 2 else n_classes
        return {"coef": (k, attributes["n_features_in_"]), "intercept": (k,)}

    @classmethod
    def _weight_attributes(cls, attributes: dict, weights: dict[str, Any]) -> dict[str, Any]:
        return {"coef_": weights["coef"], "intercept_": weights["intercept"]}

    # ------------------------------------------------------------------ training

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any
    ) -> Targets:
        classes_, codes = class_labels(y, None, None)
        k = 1 if len(classes_) == 2 else len(classes_)
        # +1 for the sample's class, -1 for the others (binary: one column, class 1 positive)
        indicator = codes[:, None] == 1 if k == 1 else one_hot_host(codes, k) > 0
        signs = 2.0 * indicator - 1.0
        Y = from_numpy(signs, xp=xp, device=dev, dtype=dtype)
        return Targets(Y, codes, {"classes_": classes_})

    def _loss(self, targets: Targets) -> str:
        return "perceptron"

    def _alpha(self) -> float:
        return self.alpha if self.penalty == "l2" else 0.0

    def _batch_size(self, n: int) -> int:
        return self.batch_size or n

    def _optimizer(self) -> tuple[Any, LearningRateSchedule]:
        return SGD(momentum=0.0, nesterov=False), LearningRateSchedule("constant", self.eta0)

    def _stopping(self) -> tuple[float, float]:
        """scikit-learn's rule is off: :meth:`_stopping_rules` decides."""
        return -math.inf, math.inf

    def _shuffle(self) -> bool:
        return self.shuffle and self.batch_size is not None

    def _stopping_rules(self, network: Network, data: Any) -> list:
        """Stop at zero training errors, or when J has not improved by ``tol`` for
        ``n_iter_no_change`` epochs. J of the first epoch is skipped: it is measured at
        the zero initial weights, where every margin is 0 and so is J."""
        X, Y = data.X, data.Y
        xp = array_namespace(X)
        best, stale = math.inf, 0

        def rule(record: dict) -> bool:
            nonlocal best, stale
            out = network.forward(record["params"], X)
            if not bool(xp.any(out * Y <= 0)):
                return True
            if self.tol is None or record["epoch"] == 1:
                return False
            stale = stale + 1 if record["loss"] > best - self.tol else 0
            best = min(best, record["loss"])
            return stale >= self.n_iter_no_change

        return [rule]

    def _score_device(self, Y: Any, out: Any) -> Any:
        """Accuracy of scores ``out`` against +1/-1 targets ``Y``."""
        return accuracy(Y, out, 0.0)

    # ------------------------------------------------------------------ public

    def fit(self, X: Any, y: Any) -> Perceptron:
        """Fit on X and class labels y.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
            In any supported library.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad input or hyper-parameters (the message names which).
        """
        return self._fit(X, y, incremental=False)

    def decision_function(self, X: Any) -> Any:
        """w.x + b per sample (n_samples,) for two classes, else (n_samples, n_classes),
        in the library of X."""
        xp, scores = self._decision(X)
        return xp.reshape(scores, (scores.shape[0],)) if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> Any:
        """Predicted labels in the library of X."""
        scores = self.decision_function(X)
        xp = array_namespace(scores)
        idx = (
            xp.argmax(scores, axis=1) if scores.ndim > 1 else xp.astype(scores > 0, index_dtype(xp))
        )
        return labels_of(self.classes_, idx)

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy on (X, y)."""
        return host_accuracy(self.predict(X), y)


def _transpose(W: Any) -> Any:
    return array_namespace(W).permute_dims(W, (1, 0))
