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

import numpy as np

from .._backend import array_namespace, from_numpy, index_dtype, to_numpy
from .._validation import Constraint
from ..layers import Dense
from ..network import Network
from ..optim import SGD
from ..params import Params
from ..train import LearningRateSchedule
from ._constraints import ClassLabels
from ._core import FitRequest, NetworkEstimator
from ._driver import FitPlan
from ._inputs import FitData, Place
from ._online import OnlineSetup
from ._params import PERCEPTRON_PARAMS, constraints, parameters_doc
from ._targets import accuracy, class_weights, host_accuracy, labels_of


class Perceptron(NetworkEstimator):
    __doc__ = """Linear perceptron classifier: scikit-learn's ``Perceptron`` on any backend, and the
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
    See :ref:`notes-eq-4` (notes' eqs. 1-5).

{parameters}
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
        ``"online"``: weight updates performed plus one, ``n_iter_ * n_samples + 1`` as
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
    """.format(parameters=parameters_doc(PERCEPTRON_PARAMS).strip("\n"))

    _estimator_type = "classifier"
    coef_: Any
    intercept_: Any
    classes_: Any

    _target_kind = "signs"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = constraints(PERCEPTRON_PARAMS)
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

    @classmethod
    def _network_of(cls, attributes: dict) -> Network:
        # always with a bias: intercept_ is zero when fitted without one
        n_classes = len(attributes["classes_"])
        return Network([Dense(attributes["n_features_in_"], 1 if n_classes == 2 else n_classes)])

    def _init_params(self, network: Network, rng: Any, place: Place, initial: Any) -> Params:
        """Zero weights (the notes' start and scikit-learn's), or ``fit``'s ``coef_init``
        and ``intercept_init`` (``initial``)."""
        layer = network.layers[0]
        n_features, k = layer.param_shapes()[0]
        b_shape = (k,)
        coef_init, intercept_init = (None, None) if initial is None else initial
        W = self._initial(coef_init, "coef_init", (k, n_features)).T
        b = self._initial(intercept_init, "intercept_init", b_shape)
        arrays = (W, b) if self.fit_intercept else (W,)
        return [tuple(from_numpy(a, xp=place.xp, device=place.device, dtype=place.dtype)
                      for a in arrays)]  # fmt: skip

    @staticmethod
    def _initial(given: Any, name: str, shape: tuple[int, ...]) -> Any:
        """``given`` (``coef_init`` or ``intercept_init``) as a float64 host array of
        ``shape``: zeros if None; scikit-learn's shapes (k, d) and (k,), for two classes
        also (d,) and (1, d) (``ValueError`` for any other)."""
        if given is None:
            return np.zeros(shape)
        host = to_numpy(given).astype("float64")
        k = shape[0]
        if len(shape) == 2:
            allowed = {shape} | ({(shape[1],), (1, shape[1])} if k == 1 else set())
        else:
            allowed = {shape} | ({(1,)} if k == 1 else set())
        if tuple(host.shape) not in allowed:
            raise ValueError(
                f"{name} of shape {host.shape} does not match the data: {shape} expected "
                "(Provided coef_ does not match dataset)"
            )
        return host.reshape(shape)

    def _fitted_attributes(self, network: Network, data: FitData) -> dict[str, Any]:
        return {}

    def _weights(self) -> dict[str, Any]:
        return {"layers.0.W": _transpose(self.coef_), "layers.0.b": self.intercept_}

    @classmethod
    def _weight_attributes(cls, attributes: dict, weights: dict[str, Any]) -> dict[str, Any]:
        W = weights["layers.0.W"]
        b = weights.get("layers.0.b")
        return {
            "coef_": _transpose(W),
            "intercept_": array_namespace(W).zeros_like(W[0, :]) if b is None else b,
        }

    # ------------------------------------------------------------------ training

    def _fit_plan(self, data: FitData, network: Network) -> FitPlan:
        name = type(self).__name__
        if self.solver == "online":
            class_w = class_weights(self.class_weight, data.fitted["classes_"], data.codes)
            online = OnlineSetup(
                penalty=self.penalty, alpha=self.alpha, l1_ratio=self.l1_ratio,
                eta0=self.eta0, fit_intercept=self.fit_intercept, max_iter=self.max_iter,
                tol=self.tol, n_iter_no_change=self.n_iter_no_change, shuffle=self.shuffle,
                # partial_fit after fit holds out too, as scikit-learn's
                early_stopping=self.early_stopping,
                validation_fraction=self.validation_fraction, verbose=self.verbose,
                random_state=self.random_state, class_weights=class_w,
            )  # fmt: skip
            return FitPlan(
                solver="online", loss="perceptron", online=online, score=self._score_device,
                owner=name,
            )  # fmt: skip
        return FitPlan(
            solver="gd",
            loss="perceptron",
            alpha=self.alpha if self.penalty == "l2" else 0.0,
            batch_size=self.batch_size,  # None: full batch, the notes' algorithm
            optimizer=SGD(momentum=0.0, nesterov=False),
            schedule=LearningRateSchedule("constant", self.eta0),
            max_iter=self.max_iter,
            # scikit-learn's rule is off: the stopping rule below decides
            tol=-math.inf,
            n_iter_no_change=math.inf,
            shuffle=self.shuffle and self.batch_size is not None,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            score=self._score_device,
            stop_rule=self._stop_rule,
            verbose=self.verbose,
            owner=name,
        )

    def _weigh_samples(self, W: Any, codes: Any, targets: dict, place: Place) -> Any:
        """``"gd"`` with ``class_weight``: each sample's weight times its class's (the
        online solver weighs each one-vs-rest problem itself)."""
        if self.solver != "gd" or self.class_weight is None:
            return W
        class_w = class_weights(self.class_weight, targets["classes_"], codes)
        per_sample = from_numpy(
            np.asarray(class_w)[codes], xp=place.xp, device=place.device, dtype=place.dtype
        )
        return per_sample if W is None else W * per_sample

    def _stop_rule(self, network: Network, data: Any) -> Any:
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

        return rule

    def _score_device(self, Y: Any, out: Any, W: Any = None, multilabel: bool = False) -> Any:
        """Accuracy of scores ``out`` against +1/-1 targets ``Y`` (weighted by ``W``)."""
        return accuracy(Y, out, 0.0, W)

    def _check_partial_fit(self, request: FitRequest) -> None:
        if hasattr(self, "classes_"):
            return
        if self.early_stopping:
            raise ValueError("early_stopping should be False with partial_fit")
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit. In order to "
                "use 'balanced' weights, use compute_class_weight('balanced', "
                "classes=classes, y=y) on a large enough sample of the targets and "
                "pass the resulting weights as the class_weight parameter."
            )

    # ------------------------------------------------------------------ public

    def fit(  # type: ignore[override]  # scikit-learn's signature: coef_init, intercept_init
        self,
        X: Any,
        y: Any,
        coef_init: Any = None,
        intercept_init: Any = None,
        sample_weight: Any = None,
        *,
        callbacks: Any = (),
        validation_data: Any = None,
        resume: bool = False,
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
        callbacks : list of callables or Callback objects, optional
            As for :meth:`backendnn.MLPClassifier.fit`; with ``solver="online"`` a
            callback cannot change the learning rate (``eta0`` is compiled into the
            epochs).
        validation_data : tuple, optional
            As for :meth:`backendnn.MLPClassifier.fit`; with ``solver="online"`` early
            stopping scores each one-vs-rest problem on it.
        resume : bool, default=False
            As for :meth:`backendnn.MLPClassifier.fit`, with ``solver="gd"`` (the online
            updates keep no optimiser state to continue).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad input or hyper-parameters (the message names which).
        """
        given = (
            None if coef_init is None and intercept_init is None else (coef_init, intercept_init)
        )
        return self._fit(
            FitRequest(
                X, y, sample_weight, initial=given, callbacks=callbacks,
                validation_data=validation_data, resume=resume,
            )
        )  # fmt: skip

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
        request = FitRequest(X, y, sample_weight, incremental=True, classes=classes)
        return self._fit(request)

    def decision_function(self, X: Any, *, batch_size: Any = None) -> Any:
        """w.x + b per sample (n_samples,) for two classes, else (n_samples, n_classes),
        in the library of X, in blocks of ``batch_size`` rows (default: as many as fit in
        the memory budget, :func:`backendnn.set_memory_budget`)."""
        xp, scores = self._decision(X, batch_size=batch_size)
        return xp.reshape(scores, (scores.shape[0],)) if scores.shape[1] == 1 else scores

    def predict(self, X: Any, *, batch_size: Any = None) -> Any:
        """Predicted labels in the library of X; ``batch_size`` as in
        :meth:`decision_function`."""
        scores = self.decision_function(X, batch_size=batch_size)
        xp = array_namespace(scores)
        idx = (
            xp.argmax(scores, axis=1) if scores.ndim > 1 else xp.astype(scores > 0, index_dtype(xp))
        )
        return labels_of(self.classes_, idx)

    def score(self, X: Any, y: Any, sample_weight: Any = None, *, batch_size: Any = None) -> float:
        """Mean accuracy on (X, y), weighted by ``sample_weight`` if given; ``batch_size``
        as in :meth:`decision_function`."""
        return host_accuracy(self.predict(X, batch_size=batch_size), y, sample_weight)


def _transpose(W: Any) -> Any:
    return array_namespace(W).permute_dims(W, (1, 0))
