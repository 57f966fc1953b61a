"""The perceptron with scikit-learn's interface: :class:`Perceptron`.

By default scikit-learn's algorithm (``solver="online"``, :mod:`._online`): updates
sample by sample, one-vs-rest for several classes, the same ``coef_`` as scikit-learn's.
``solver="gd"`` is the notes' algorithm (eqs. 1-5): gradient descent on the perceptron
criterion J(w, b) over the whole training set, by the shared training driver.

Imports :mod:`backendnn.network`, ``layers``, ``optim``, ``train``, ``_backend``,
``_validation`` and the sibling modules.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from .._backend import array_namespace, device, from_numpy, index_dtype, to_numpy
from .._validation import (
    POSITIVE_INT,
    VERBOSE,
    AnyOf,
    Boolean,
    Constraint,
    Interval,
    Options,
)
from ..layers import Dense
from ..network import Network
from ..optim import SGD
from ..params import Params
from ..train import LearningRateSchedule
from ._base import NetworkEstimator
from ._constraints import BackendParam, ClassLabels, ClassWeightParam, DtypeParam, SeedParam
from ._online import train_online
from ._targets import (
    Targets,
    accuracy,
    class_labels,
    class_weights,
    host_accuracy,
    labels_of,
    one_hot_host,
)
from ._training import train_network


class Perceptron(NetworkEstimator):
    """Linear perceptron classifier: scikit-learn's ``Perceptron`` on any backend, and the
    notes' perceptron one parameter away.

    ``solver="online"`` (default) is scikit-learn's algorithm: ``SGDClassifier(
    loss="perceptron", learning_rate="constant")``. Sample by sample, w += eta0 y x and
    b += eta0 y (times the class and sample weights) whenever y (w.x + b) <= 0, y = +1/-1;
    one weight vector for two classes (class ``classes_[1]`` positive), else one per class
    (one-vs-rest, each problem stopping on its own). With ``shuffle=False`` ``coef_``,
    ``intercept_``, ``n_iter_`` and ``t_`` equal scikit-learn's (to rounding, ~1e-12
    relative in float64), for every penalty, class and sample weights and ``partial_fit``.
    With ``shuffle=True`` the epoch order is scikit-learn's when the estimator's random
    generator is a ``numpy.random.RandomState`` (scikit-learn's kind), else another order
    drawn from ``random_state``.

    ``solver="gd"`` is the notes' perceptron (eqs. 1-5): minimise the criterion
    J(w, b) = sum over misclassified samples of -y_i (w.x_i + b) by gradient descent from
    zero weights, w <- w - eta0 dJ/dw, b <- b - eta0 dJ/db, one full-batch step per epoch
    (or minibatches of ``batch_size``). It stops at zero training errors, after
    ``max_iter`` epochs, or when J (``loss_curve_``) has not improved by ``tol`` for
    ``n_iter_no_change`` epochs; several classes train jointly, one-vs-rest. On XOR both
    solvers get at most 3 of the 4 points right: one line cannot split it.

    Parameters
    ----------
    penalty : {None, "l2", "l1", "elasticnet"}, default=None
        The penalty (``"gd"``: None or ``"l2"``, alpha/(2 n) ||w||^2 on J).
    alpha : float, default=1e-4
        The penalty's strength.
    l1_ratio : float, default=0.15
        The L1 share of ``"elasticnet"``, in [0, 1].
    fit_intercept : bool, default=True
        Learn the bias b (else b = 0).
    max_iter : int, default=1000
        Epochs at most (``fit``; ``partial_fit`` runs one).
    tol : float or None, default=1e-3
        ``"online"``: stop when the epoch's mean loss is above the best by more than -tol
        (or the held-out accuracy not above the best by tol) ``n_iter_no_change`` times
        in a row; None: run ``max_iter`` epochs. ``"gd"``: see above.
    shuffle : bool, default=True
        Shuffle the samples every epoch (``"gd"``: minibatches only).
    verbose : int, default=0
        Print one line per epoch (``"gd"``: a progress bar).
    eta0 : float, default=1.0
        The learning rate.
    n_jobs : int or None, default=None
        Accepted for scikit-learn's interface; the one-vs-rest problems already step
        together, on the device.
    random_state : int, RandomState, Generator or None, default=0
        Seeds the shuffling and the early-stopping split.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified). ``"online"``: stop each
        problem when its held-out accuracy stops improving (scikit-learn's rule; the last
        weights are kept). ``"gd"``: keep the weights with the best held-out accuracy.
    validation_fraction : float, default=0.1
        The held-out share, in (0, 1).
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping.
    class_weight : dict, "balanced" or None, default=None
        Weight of each class's samples ({label: weight}; ``"balanced"``: n_samples /
        (n_classes * count of the class)). ``"online"``: scikit-learn's use (in the
        one-vs-rest problem of class k, class k's weight on its samples and 1 on the
        rest); ``"gd"``: each sample's weight is multiplied by its class's.
    warm_start : bool, default=False
        Start ``fit`` from the current ``coef_`` and ``intercept_``.
    solver : {"online", "gd"}, default="online"
        scikit-learn's online updates, or the notes' gradient descent on J (see above).
    batch_size : int or None, default=None
        ``"gd"`` only: None is full-batch gradient descent (the notes' algorithm), else
        minibatches.
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
        Epochs run (``"online"``: the most of any one-vs-rest problem).
    loss_curve_ : list of float
        ``"online"``: per epoch, the mean loss (plus penalty) per training sample,
        averaged over the problems still running; ``"gd"``: the criterion J of the epoch
        (the sum over misclassified samples; with ``batch_size``, each batch's J times
        its size over n_samples, summed), which ``tol`` is compared with.
    t_ : int
        ``"online"``: weight updates performed plus one, n_iter_ * n_samples + 1 as
        scikit-learn's (``partial_fit`` adds to it); ``"gd"``: samples seen.
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
        "penalty": Options(None, "l2", "l1", "elasticnet"),
        "alpha": Interval(0, None),
        "l1_ratio": Interval(0, 1),
        "fit_intercept": Boolean(),
        "max_iter": POSITIVE_INT,
        "tol": AnyOf(Options(None), Interval(0, None)),
        "shuffle": Boolean(),
        "verbose": VERBOSE,
        "eta0": Interval(0, None, closed="neither"),
        "n_jobs": AnyOf(Options(None), Interval(None, None, integer=True)),
        "random_state": SeedParam(),
        "early_stopping": Boolean(),
        "validation_fraction": Interval(0, 1, closed="neither"),
        "n_iter_no_change": POSITIVE_INT,
        "class_weight": ClassWeightParam(),
        "warm_start": Boolean(),
        "solver": Options("online", "gd"),
        "batch_size": AnyOf(Options(None), POSITIVE_INT),
        "backend": BackendParam(),
        "dtype": DtypeParam(),
    }
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {"classes_": ClassLabels()}

    def __init__(
        self,
        *,
        penalty: str | None = None,
        alpha: float = 0.0001,
        l1_ratio: float = 0.15,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float | None = 1e-3,
        shuffle: bool = True,
        verbose: Any = 0,
        eta0: float = 1.0,
        n_jobs: int | None = None,
        random_state: Any = 0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        class_weight: Any = None,
        warm_start: bool = False,
        solver: str = "online",
        batch_size: int | None = None,
        backend: str | None = None,
        dtype: Any = None,
    ):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.eta0 = eta0
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.solver = solver
        self.batch_size = batch_size
        self.backend = backend
        self.dtype = dtype

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.solver == "online" and self.batch_size is not None:
            raise ValueError(
                "batch_size is a parameter of solver='gd' (the notes' gradient descent); "
                "solver='online' updates sample by sample: leave batch_size=None"
            )
        if self.solver == "gd" and self.penalty not in (None, "l2"):
            raise ValueError(
                f"penalty={self.penalty!r} needs solver='online'; solver='gd' takes None or 'l2'"
            )

    # ------------------------------------------------------------------ the network

    def _build_network(self, input_shape: tuple[int, ...], n_outputs: int) -> Network:
        return Network([Dense(input_shape[0], n_outputs, bias=self.fit_intercept)])

    def _fitted_network(self) -> Network:
        # always with a bias: intercept_ is zero when fitted without one
        return Network([Dense(self.n_features_in_, self.coef_.shape[0])])

    def _init_params(self, network: Network, rng: Any, xp: Any, dev: Any, dtype: Any) -> Params:
        """Zero weights (the notes' start and scikit-learn's), or ``fit``'s ``coef_init``
        and ``intercept_init``."""
        start = self.__dict__.get("_start")
        if start is not None:
            return self._start_params(network, start, xp, dev, dtype)
        return [
            tuple(xp.zeros(s, dtype=dtype, device=dev) for s in layer.param_shapes())
            for layer in network.layers
        ]

    def _reused_params(self, network: Network, xp: Any, dev: Any, dtype: Any) -> Params:
        start = self.__dict__.get("_start")  # coef_init wins over warm_start, as in sklearn
        if start is not None:
            return self._start_params(network, start, xp, dev, dtype)
        return super()._reused_params(network, xp, dev, dtype)

    def _start_params(
        self, network: Network, start: tuple, xp: Any, dev: Any, dtype: Any
    ) -> Params:
        (n_features, k), shapes = network.layers[0].param_shapes()[0], []
        coef_init, intercept_init = start
        out = []
        for given, shape, name in ((coef_init, (k, n_features), "coef_init"),
                                   (intercept_init, (k,), "intercept_init")):  # fmt: skip
            if given is None:
                out.append(to_numpy([[0.0] * shape[1]] * k if len(shape) == 2 else [0.0] * k))
                continue
            host = to_numpy(given).astype("float64")
            # scikit-learn's shapes: (k, d) and (k,); for two classes also (d,) and (1, d)
            allowed = {shape} | ({(n_features,), (1, n_features)} if len(shape) == 2 and k == 1
                                 else {(1,)} if k == 1 else set())  # fmt: skip
            if tuple(host.shape) not in allowed:
                raise ValueError(
                    f"{name} of shape {host.shape} does not match the data: {shape} expected "
                    "(Provided coef_ does not match dataset)"
                )
            out.append(host.reshape(shape))
        shapes.append(out[0].T)
        if self.fit_intercept:
            shapes.append(out[1])
        return [tuple(from_numpy(a, xp=xp, device=dev, dtype=dtype) for a in shapes)]

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

    # ------------------------------------------------------------------ targets

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any
    ) -> Targets:
        known = self.classes_ if incremental and hasattr(self, "classes_") else None
        if incremental and classes is None and known is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        classes_, codes = class_labels(y, classes, known)
        k = 1 if len(classes_) == 2 else len(classes_)
        # +1 for the sample's class, -1 for the others (binary: one column, class 1 positive)
        indicator = codes[:, None] == 1 if k == 1 else one_hot_host(codes, k) > 0
        signs = 2.0 * indicator - 1.0
        Y = from_numpy(signs, xp=xp, device=dev, dtype=dtype)
        return Targets(Y, codes, {"classes_": classes_})

    # ------------------------------------------------------------------ training

    def _train(
        self,
        network: Network,
        params: Params,
        X: Any,
        targets: Targets,
        weights: Any,
        rng: Any,
        incremental: bool,
        reuse: bool,
        callbacks: list,
    ) -> tuple[Params, dict[str, Any]]:
        codes = targets.codes
        class_w = class_weights(self.class_weight, targets.fitted["classes_"], codes)
        if self.solver == "gd":
            if self.class_weight is not None:
                Y = targets.Y  # on the compute device, in the compute dtype (X may be sparse)
                per_sample = from_numpy(
                    to_numpy(class_w)[codes], xp=array_namespace(Y), device=device(Y), dtype=Y.dtype
                )
                weights = per_sample if weights is None else weights * per_sample
            return train_network(
                self, network, params, X, targets, weights, rng, incremental, reuse, callbacks
            )
        return train_online(self, params, X, targets, weights, class_w, rng, incremental)

    # the shared driver's hooks (solver="gd")

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

    def _score_device(self, Y: Any, out: Any, W: Any = None, multilabel: bool = False) -> Any:
        """Accuracy of scores ``out`` against +1/-1 targets ``Y`` (weighted by ``W``)."""
        return accuracy(Y, out, 0.0, W)

    # ------------------------------------------------------------------ public

    def fit(
        self,
        X: Any,
        y: Any,
        coef_init: Any = None,
        intercept_init: Any = None,
        sample_weight: Any = None,
    ) -> Perceptron:
        """Fit on X and class labels y.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
            In any supported library.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        coef_init : array-like of shape (n_classes, n_features), optional
            Initial weights (``(1, n_features)`` or ``(n_features,)`` for two classes);
            used even with ``warm_start``.
        intercept_init : array-like of shape (n_classes,), optional
            Initial biases.
        sample_weight : array-like of shape (n_samples,), optional
            Weight of each sample, multiplying its update (``"online"``) or its term of
            J (``"gd"``) and, for ``class_weight``, its class's weight.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad input or hyper-parameters (the message names which).
        """
        if coef_init is None and intercept_init is None:
            return self._fit(X, y, incremental=False, sample_weight=sample_weight)
        self.__dict__["_start"] = (coef_init, intercept_init)
        try:
            return self._fit(X, y, incremental=False, sample_weight=sample_weight)
        finally:
            self.__dict__.pop("_start", None)

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> Perceptron:
        """One epoch over (X, y) from the current weights (scikit-learn's
        ``partial_fit``; with ``solver="gd"`` one gradient-descent epoch).

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
        y : array-like of shape (n_samples,)
        classes : array-like, optional
            Every label that will ever appear; required on the first call.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        if not hasattr(self, "classes_"):
            self._validate_params()
            if self.early_stopping:
                raise ValueError("early_stopping should be False with partial_fit")
            if isinstance(self.class_weight, str) and self.class_weight == "balanced":
                raise ValueError(
                    "class_weight 'balanced' is not supported for partial_fit. In order to "
                    "use 'balanced' weights, use compute_class_weight('balanced', "
                    "classes=classes, y=y) on a large enough sample of the targets and "
                    "pass the resulting weights as the class_weight parameter."
                )
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

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

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on (X, y), weighted by ``sample_weight`` if given."""
        return host_accuracy(self.predict(X), y, sample_weight)


def _transpose(W: Any) -> Any:
    return array_namespace(W).permute_dims(W, (1, 0))
