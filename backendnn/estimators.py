"""Estimators with scikit-learn's conventions: ``Perceptron``, ``MLPClassifier``, ``MLPRegressor``.

They compute where the input lives (or on ``backend=``), return results in the caller's
own array library and device, and accept NCHW image batches. A failed ``fit`` or
``partial_fit`` (bad input, divergence, an interrupt) leaves the estimator as it was:
all fitted attributes are set together at the very end.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

from . import activations as _act
from . import init as _init
from . import losses as _losses
from ._backend import (
    array_namespace,
    device,
    from_numpy,
    has_64bit,
    host_rng,
    index_dtype,
    is_array,
    jit,
    namespace_name,
    to_namespace_of,
    to_numpy,
)
from ._validation import (
    NotFittedError,
    check_lengths,
    check_param,
    check_X,
    column_or_1d,
    float_dtype,
    is_int,
    is_real,
    resolve_array,
)
from .layers import Dense
from .losses import log_softmax, log_softmax_and_softmax
from .network import Network, flatten_params, unflatten_params
from .optim import SGD, Adam, LearningRateSchedule, lbfgs
from .train import (
    ConvergenceError,
    History,
    OptimizerState,
    make_objective,
    make_step,
    run_epochs,
)


class ConvergenceWarning(UserWarning):
    """Training stopped at ``max_iter`` before meeting its tolerance."""


class _Estimator:
    """get_params/set_params/repr from the constructor's signature, as scikit-learn does."""

    _estimator_type = ""
    # fitted attributes (set by fit; annotated here for readers and type checkers)
    n_features_in_: int
    image_shape_: tuple | None
    classes_: Any
    _dtype_name: str

    def _network(self) -> Network:
        raise NotImplementedError

    @property
    def _params(self) -> list:
        raise NotImplementedError

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Any:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for {type(self).__name__}; valid: {valid}"
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if not (k in defaults and _same(defaults[k].default, v))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_cache", None)  # moved weights and compiled functions are rebuilt on use
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._cache: dict = {}

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self._estimator_type == "classifier"
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True, multi_output=not classifier),
            classifier_tags=ClassifierTags(multi_label=isinstance(self, MLPClassifier))
            if classifier
            else None,
            regressor_tags=None if classifier else RegressorTags(),
            input_tags=InputTags(),
        )

    # ------------------------------------------------------------------ shared machinery

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(
                f"this {type(self).__name__} instance is not fitted yet; call fit first"
            )

    def _fit_input(self, X: Any, y: Any) -> tuple[Any, Any, Any, Any]:
        """(xp, device, X as checked, X as a 2-D float array) for ``fit``: on ``backend``
        if set, else where X lives; X and y must not come from two libraries."""
        if is_array(X) and is_array(y):
            array_namespace(X, y)  # TypeError for two libraries or devices in one call
        xp, dev, X_raw = resolve_array(X, getattr(self, "backend", None))
        X_in = check_X(X_raw, xp, float_dtype(xp, getattr(self, "dtype", None), X_raw))
        return xp, dev, X_in, _flat(X_in)

    def _predict_input(self, X: Any) -> tuple[Any, Any]:
        """(xp, X as a 2-D array of the fitted dtype) for prediction, where X lives."""
        self._check_fitted()
        xp, _, X = resolve_array(X, None)
        name = self._dtype_name if has_64bit(xp) else "float32"  # JAX without x64
        X = check_X(X, xp, getattr(xp, name))
        self._check_shape(X)
        return xp, _flat(X)

    def _check_shape(self, X: Any) -> None:
        image = getattr(self, "image_shape_", None)
        if X.ndim == 4 and image is not None and tuple(X.shape[1:]) != image:
            raise ValueError(
                f"X has image shape {tuple(X.shape[1:])} but this model was fitted on {image}"
            )
        n_features = math.prod(X.shape[1:])
        if n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )

    def _record_input(self, X_raw_shape: tuple) -> dict[str, Any]:
        return {
            "n_features_in_": math.prod(X_raw_shape[1:]),
            "image_shape_": tuple(X_raw_shape[1:]) if len(X_raw_shape) == 4 else None,
        }

    def _params_on(self, X: Any) -> list:
        """The fitted parameters in the library and on the device of ``X`` (moved once, cached)."""
        params = self._params
        ref = params[-1][0]
        if namespace_name(array_namespace(ref)) == namespace_name(array_namespace(X)) and (
            device(ref) == device(X)
        ):
            return params
        cache = self.__dict__.setdefault("_cache", {})
        key = (namespace_name(array_namespace(X)), str(device(X)))
        ids = tuple(id(a) for p in params for a in p if p)  # assigning new weights invalidates
        if key not in cache or cache[key][0] != ids:
            cache[key] = (ids, [tuple(to_namespace_of(a, X) for a in p) for p in params])
        return cache[key][1]

    def _forward(self, X: Any) -> Any:
        xp = array_namespace(X)
        cache = self.__dict__.setdefault("_cache", {})
        key = ("forward", namespace_name(xp))
        if key not in cache:
            cache[key] = jit(self._network().forward, xp)
        return cache[key](self._params_on(X), X)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b


# ====================================================================== MLPs


class _BaseMLP(_Estimator):
    coefs_: list
    intercepts_: list
    n_outputs_: int
    out_activation_: str
    _fitted_hidden: tuple
    _fitted_activation: Any
    _multilabel: bool
    _y_1d: bool

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any, reuse: bool
    ) -> dict[str, Any]:
        """Fitted target attributes plus the training targets ``_Y`` (n, n_outputs) and
        class ``_codes`` for stratification (None for regression)."""
        raise NotImplementedError

    @staticmethod
    def _score_device(Y: Any, out: Any, xp: Any) -> Any:
        """The validation score of outputs ``out`` against targets ``Y``, on the device."""
        raise NotImplementedError

    _loss_for_output = {
        "identity": "squared_error",
        "logistic": "binary_log_loss",
        "softmax": "softmax_cross_entropy",
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

    # ------------------------------------------------------------------ checks

    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if is_int(sizes) else tuple(sizes)
        check_param(
            "hidden_layer_sizes",
            self.hidden_layer_sizes,
            all(is_int(h) and h > 0 for h in sizes),
            "positive integers",
        )
        return tuple(int(h) for h in sizes)

    def _validate_params(self) -> None:
        self._hidden()
        _act.get(self.activation)
        check_param(
            "solver",
            self.solver,
            self.solver in ("sgd", "adam", "lbfgs", "gd"),
            "one of 'sgd', 'adam', 'lbfgs', 'gd'",
        )
        check_param(
            "alpha", self.alpha, is_real(self.alpha) and self.alpha >= 0, "a non-negative number"
        )
        check_param(
            "batch_size",
            self.batch_size,
            self.batch_size == "auto" or (is_int(self.batch_size) and self.batch_size > 0),
            "'auto' or a positive integer",
        )
        check_param(
            "learning_rate",
            self.learning_rate,
            self.learning_rate in LearningRateSchedule.KINDS,
            f"one of {LearningRateSchedule.KINDS}",
        )
        for name in ("learning_rate_init", "max_iter", "max_fun"):
            value = getattr(self, name)
            check_param(name, value, is_real(value) and value > 0, "a positive number")
        for name in ("tol", "power_t", "epsilon"):
            value = getattr(self, name)
            check_param(name, value, is_real(value) and value >= 0, "a non-negative number")
        check_param(
            "momentum",
            self.momentum,
            is_real(self.momentum) and 0 <= self.momentum <= 1,
            "a number in [0, 1]",
        )
        for name in ("beta_1", "beta_2"):
            value = getattr(self, name)
            check_param(name, value, is_real(value) and 0 <= value < 1, "a number in [0, 1)")
        _check_stopping_params(self)
        check_param(
            "early_stopping_metric",
            self.early_stopping_metric,
            self.early_stopping_metric in ("score", "loss"),
            "'score' or 'loss'",
        )
        if self.init is not None:
            _init.get(self.init)

    # ------------------------------------------------------------------ network and params

    def _network(self) -> Network:
        cache = self.__dict__.setdefault("_cache", {})
        if "network" not in cache:
            cache["network"] = Network.mlp(
                self.n_features_in_, self._fitted_hidden, self.n_outputs_, self._fitted_activation
            )
        return cache["network"]

    @property
    def _params(self) -> list:
        """Network parameters built from ``coefs_``/``intercepts_``, layer by layer."""
        weights = iter(zip(self.coefs_, self.intercepts_))
        return [
            tuple(next(weights)) if layer.param_shapes() else () for layer in self._network().layers
        ]

    @staticmethod
    def _split_params(params: list) -> tuple[list, list]:
        dense = [p for p in params if p]
        return [p[0] for p in dense], [p[1] for p in dense]

    def _initial_params(
        self, network: Network, xp: Any, dev: Any, dtype: Any, rng: Any, reuse: bool
    ) -> list:
        if reuse:
            coefs, intercepts = self.coefs_, self.intercepts_
            expected = [s for layer in network.layers for s in layer.param_shapes()[:1]]
            got = [tuple(c.shape) for c in coefs]
            if got != expected:
                raise ValueError(
                    f"warm start: coefs_ shapes {got} do not match the network {expected}; "
                    "set warm_start=False or assign coefs_ of matching shapes"
                )
            moved = iter(
                (_to(c, xp, dev, dtype), _to(b, xp, dev, dtype)) for c, b in zip(coefs, intercepts)
            )
            return [next(moved) if layer.param_shapes() else () for layer in network.layers]
        scheme = self.init if self.init is not None else "glorot_uniform"
        act = _act.get(self.activation)
        return network.init(
            rng,
            xp=xp,
            device=dev,
            dtype=dtype,
            scheme=scheme,
            activation=getattr(act, "name", "relu"),
        )

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any, *, callbacks: Any = ()) -> Any:
        """Fit the model to data X (n_samples, n_features) or NCHW images (N, C, H, W) and
        targets y. ``callbacks`` are called once per epoch with the epoch's record."""
        return self._fit(X, y, incremental=False, callbacks=callbacks)

    def _fit(
        self, X: Any, y: Any, *, incremental: bool, classes: Any = None, callbacks: Any = ()
    ) -> Any:
        self._validate_params()
        if incremental and self.solver not in ("sgd", "adam", "gd"):
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers; solver={self.solver!r}"
            )
        xp, dev, X_in, X = self._fit_input(X, y)
        dtype = X_in.dtype
        # warm start from coefs_/intercepts_, fitted here or assigned by the user
        reuse = hasattr(self, "coefs_") and (self.warm_start or incremental)
        if reuse and hasattr(self, "n_features_in_"):
            self._check_shape(X_in)
        y_arr = _as_target(y, self)
        check_lengths(X, y_arr)
        state = self._encode_targets(y_arr, xp, dev, dtype, incremental, classes, reuse)
        Y, codes, out_activation = state.pop("_Y"), state.pop("_codes"), state["out_activation_"]
        hidden, activation = self._hidden(), self.activation
        network = Network.mlp(X.shape[1], hidden, Y.shape[1], activation)
        rng = host_rng(self.random_state)
        params = self._initial_params(network, xp, dev, dtype, rng, reuse)
        loss = self._loss_for_output[out_activation]
        n = X.shape[0]

        if self.solver == "lbfgs":
            params, record = self._fit_lbfgs(network, params, X, Y, loss, callbacks)
        else:
            params, record = self._fit_stochastic(
                network, params, X, Y, loss, rng, codes, incremental, reuse, callbacks
            )
        coefs, intercepts = self._split_params(params)
        # commit: everything at once, only after training succeeded
        new = dict(state, **record, **self._record_input(tuple(X_in.shape)))
        new.update(
            coefs_=coefs,
            intercepts_=intercepts,
            n_layers_=len(hidden) + 2,
            n_outputs_=Y.shape[1],
            _fitted_hidden=hidden,
            _fitted_activation=activation,
            _dtype_name="float64" if dtype == xp.float64 else "float32",
            _n_samples=n,
        )
        new["_cache"] = {}  # weights moved for prediction and compiled functions, rebuilt on use
        self.__dict__.update(new)
        return self

    def _fit_lbfgs(
        self, network: Network, params: list, X: Any, Y: Any, loss: str, callbacks: Any
    ) -> tuple[list, dict]:
        compiled = make_objective(network, params, loss, float(self.alpha), array_namespace(X))
        curve: list[float] = []

        def on_iter(it: int, f: float) -> None:
            curve.append(f)
            for cb in callbacks:
                cb({"epoch": it, "loss": f})
            if self.verbose:
                print(f"Iteration {it}, loss = {f:.8f}")

        res = lbfgs(
            lambda v: compiled(v, X, Y),
            flatten_params(params),
            max_iter=self.max_iter,
            max_fun=self.max_fun,
            tol=self.tol,
            callback=on_iter,
        )
        if not math.isfinite(res.fun):
            raise ConvergenceError(f"L-BFGS reached a non-finite loss {res.fun}", params)
        if not res.success:
            advice = (
                "increase max_iter or max_fun"
                if res.message.startswith("maximum")
                else "scale the inputs or raise tol"
            )
            warnings.warn(
                f"L-BFGS stopped: {res.message}; {advice}", ConvergenceWarning, stacklevel=4
            )
        return unflatten_params(res.x, params), {
            "loss_": res.fun,
            "n_iter_": res.nit,
            "loss_curve_": curve,
            "best_loss_": None,
            "t_": 0,
            "validation_scores_": None,
            "best_validation_score_": None,
        }

    def _fit_stochastic(
        self,
        network: Network,
        params: list,
        X: Any,
        Y: Any,
        loss: str,
        rng: Any,
        codes: Any,
        incremental: bool,
        reuse: bool,
        callbacks: Any,
    ) -> tuple[list, dict]:
        """Minibatch training (sgd, adam, gd); ``codes`` are class indices to stratify
        the early-stopping split (None for regression)."""
        xp = array_namespace(X)
        n = X.shape[0]
        early = self.early_stopping and not incremental
        validation = None
        if early:
            train_idx, val_idx = _split_indices(n, self.validation_fraction, rng, codes)
            X_val, Y_val = _rows(X, val_idx), _rows(Y, val_idx)
            X, Y = _rows(X, train_idx), _rows(Y, train_idx)
            n = X.shape[0]
            validation = self._validation_fn(network, X_val, Y_val, loss)
        if self.solver == "gd":
            batch = n
        elif self.batch_size == "auto":
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    f"batch_size {self.batch_size} exceeds the {n} samples; using {n}",
                    UserWarning,
                    stacklevel=4,
                )
            batch = min(self.batch_size, n)

        history = _copy_history(self._history) if reuse and hasattr(self, "_history") else History()
        history.n_iter = 0  # scikit-learn counts the epochs of this call only
        if early:
            history.best_params = None
        if incremental and hasattr(self, "_opt"):
            opt = self._opt.copy(dtype=params[0][0].dtype)  # this call's precision
        else:
            optimizer = (
                Adam(self.beta_1, self.beta_2, self.epsilon)
                if self.solver == "adam"
                else SGD(self.momentum, self.nesterovs_momentum)
            )
            schedule = LearningRateSchedule(
                self.learning_rate if self.solver != "adam" else "constant",
                self.learning_rate_init,
                self.power_t,
            )
            opt = OptimizerState(optimizer, schedule, optimizer.init(params))
        step = make_step(network, loss, float(self.alpha), opt.optimizer, xp)
        params, converged = run_epochs(
            step,
            params,
            opt,
            X,
            Y,
            history=history,
            batch_size=batch,
            max_iter=self.max_iter,
            shuffle=self.shuffle,
            rng=rng,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            incremental=incremental,
            validation=validation,
            verbose=self.verbose,
            callbacks=callbacks,
        )
        if early and history.best_params is not None:
            params = history.best_params
        if not converged and not incremental and history.n_iter >= self.max_iter:
            warnings.warn(
                f"stochastic optimizer: maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet",
                ConvergenceWarning,
                stacklevel=4,
            )
        return params, {
            "loss_": history.loss_curve[-1],
            "loss_curve_": list(history.loss_curve),
            "best_loss_": None if early else history.best_loss,
            "n_iter_": history.n_iter,
            "t_": history.t,
            "validation_scores_": list(history.validation_scores) if early else None,
            "best_validation_score_": history.best_validation_score if early else None,
            "_history": history,
            "_opt": opt,
        }

    def _validation_fn(self, network: Network, X_val: Any, Y_val: Any, loss: str) -> Any:
        xp = array_namespace(X_val)
        if self.early_stopping_metric == "loss":
            loss_fn = _losses.get(loss)

            def negative_loss(params: list) -> float:
                value, _ = loss_fn(Y_val, network.forward(params, X_val))
                return -float(value)

            return negative_loss
        metric = self._score_device

        def score(params: list) -> float:
            return float(metric(Y_val, network.forward(params, X_val), xp))

        return score

    # ------------------------------------------------------------------ prediction

    def _decision(self, X: Any) -> tuple[Any, Any]:
        xp, X2 = self._predict_input(X)
        return xp, self._forward(X2)


def _check_stopping_params(est: Any) -> None:
    """The early-stopping parameters MLPs and the Perceptron share."""
    check_param(
        "validation_fraction",
        est.validation_fraction,
        is_real(est.validation_fraction) and 0 < est.validation_fraction < 1,
        "a number strictly between 0 and 1",
    )
    check_param(
        "n_iter_no_change",
        est.n_iter_no_change,
        is_int(est.n_iter_no_change) and est.n_iter_no_change > 0,
        "a positive integer",
    )


def _flat(X: Any) -> Any:
    """An NCHW image batch (N, C, H, W) as (N, C*H*W); 2-D input unchanged."""
    return array_namespace(X).reshape(X, (X.shape[0], -1)) if X.ndim == 4 else X


def _split_indices(n: int, fraction: float, rng: Any, labels: Any = None) -> tuple[list, list]:
    """Host-drawn (train, validation) row indices; stratified when class ``labels`` are given."""
    n_val = int(math.ceil(fraction * n))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(
            f"early_stopping needs at least 2 samples to split off a validation set; got {n}"
        )
    order = rng.permutation(n).tolist()
    if labels is not None:  # stratify: every (n/n_val)-th row of the class-sorted order
        order = sorted(order, key=lambda i: labels[i])
        val = sorted(order[int(j * n / n_val)] for j in range(n_val))
    else:
        val = sorted(order[:n_val])
    chosen = set(val)
    return [i for i in range(n) if i not in chosen], val


def _check_labels(host: Any) -> None:
    """Class labels: 1-D, finite, and not continuous (floats must be whole numbers)."""
    if host.ndim != 1:
        raise ValueError(f"y must be 1-D class labels; got shape {host.shape}")
    if host.dtype.kind == "f":
        values = host.tolist()
        if not all(math.isfinite(v) for v in values):
            raise ValueError("y contains NaN or infinity; class labels must be finite")
        if any(v != round(v) for v in values):
            raise ValueError(
                "Unknown label type: continuous. Classifiers need discrete labels; "
                "use MLPRegressor for continuous targets"
            )


def _check_two_classes(classes_: Any) -> None:
    if len(classes_) < 2:
        raise ValueError(f"y has 1 class ({classes_[0]!r}); a classifier needs at least 2 classes")


def _as_target(y: Any, owner: Any) -> Any:
    """``y`` as an array; lists become NumPy (labels may be strings there)."""
    if y is None:
        raise ValueError(
            f"{type(owner).__name__} requires y to be passed, but the target y is None"
        )
    if is_array(y):
        return y
    host = to_numpy(y)
    if host.ndim == 0:
        raise ValueError(f"y must be an array of targets, one per sample; got a scalar {y!r}")
    return host


def _rows(A: Any, idx: list) -> Any:
    xp = array_namespace(A)
    return xp.take(A, from_numpy(list(idx), xp=xp, device=device(A), dtype=index_dtype(xp)), axis=0)


def _to(a: Any, xp: Any, dev: Any, dtype: Any) -> Any:
    return from_numpy(to_numpy(a), xp=xp, device=dev, dtype=dtype)


def _copy_history(h: History) -> History:
    return History(
        list(h.loss_curve),
        list(h.validation_scores),
        h.best_loss,
        h.best_validation_score,
        h.best_params,
        h.n_iter,
        h.t,
        h.no_improvement,
    )


class MLPClassifier(_BaseMLP):
    """Multi-layer perceptron classifier, scikit-learn's ``MLPClassifier`` on any backend.

    Parameters are scikit-learn's, with these extensions: ``activation`` takes any name
    of :mod:`backendnn.activations` (the GLU family makes GLU-gated hidden layers, with
    ``coefs_[i]`` of shape (fan_in, 2h)) or an activation object; ``solver`` adds
    ``"gd"`` (full-batch gradient descent); ``backend`` (None: compute where X lives);
    ``dtype`` (None: float32 unless X is float64); ``init`` (None: scikit-learn's
    Glorot scheme; ``"normal"``: the notes' N(0, 0.01^2)); ``early_stopping_metric``
    (``"score"``: accuracy, scikit-learn's; ``"loss"``: validation loss).

    Binary problems use one logistic output and the binary log-loss; multi-class ones
    softmax and cross-entropy; 2-D 0/1 targets are multi-label (logistic outputs).
    """

    _estimator_type = "classifier"

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any, reuse: bool
    ) -> dict[str, Any]:
        host = column_or_1d(to_numpy(y))
        if host.ndim == 2:  # multi-label indicator matrix
            if not ((host == 0) | (host == 1)).all():
                raise ValueError("2-D y must be a 0/1 multi-label indicator matrix")
            found = list(range(host.shape[1]))
            Y = host.astype("float64")
            self_classes = to_numpy(found)
            return {
                "classes_": self_classes,
                "out_activation_": "logistic",
                "_multilabel": True,
                "_Y": from_numpy(Y, xp=xp, device=dev, dtype=dtype),
                "_codes": None,
            }
        _check_labels(host)
        if classes is not None or (incremental and hasattr(self, "classes_")):
            known = to_numpy(classes) if classes is not None else self.classes_
            if (
                classes is not None
                and hasattr(self, "classes_")
                and incremental
                and (list(known) != list(self.classes_))
            ):
                raise ValueError(
                    f"classes={list(known)} differs from the classes seen earlier "
                    f"{list(self.classes_)}"
                )
            unknown = sorted(set(host.tolist()) - set(known.tolist()))
            if unknown:
                raise ValueError(
                    f"y contains labels {unknown} not in classes={list(known)} given to partial_fit"
                )
            classes_ = known
        else:
            if incremental:
                raise ValueError("classes must be passed on the first call to partial_fit")
            classes_ = _unique(host)
        _check_two_classes(classes_)
        codes = _codes(classes_, host)
        if len(classes_) == 2:
            Y, out_activation = codes[:, None].astype("float64"), "logistic"
        else:
            Y = (codes[:, None] == _arange(len(classes_))[None, :]).astype("float64")
            out_activation = "softmax"
        return {
            "classes_": classes_,
            "out_activation_": out_activation,
            "_multilabel": False,
            "_Y": from_numpy(Y, xp=xp, device=dev, dtype=dtype),
            "_codes": codes,
        }

    @staticmethod
    def _score_device(Y: Any, out: Any, xp: Any) -> Any:
        """Accuracy of logits ``out`` against encoded targets ``Y``, on the device."""
        if Y.shape[1] == 1:
            hits = (out[:, 0] > 0) == (Y[:, 0] > 0.5)
        else:
            hits = xp.argmax(out, axis=1) == xp.argmax(Y, axis=1)
        return xp.mean(xp.astype(hits, out.dtype))

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the current state; ``classes`` (every
        label that will ever appear) is required on the first call."""
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
        return _labels(self.classes_, idx)

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy on (X, y)."""
        pred = to_numpy(self.predict(X))
        return float((pred == to_numpy(y).reshape(pred.shape)).mean())


class MLPRegressor(_BaseMLP):
    """Multi-layer perceptron regressor, scikit-learn's ``MLPRegressor`` on any backend
    (identity output, squared error). Parameters as :class:`MLPClassifier`."""

    _estimator_type = "regressor"

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any, reuse: bool
    ) -> dict[str, Any]:
        foreign = not is_array(y) or namespace_name(array_namespace(y)) != namespace_name(xp)
        if foreign or getattr(y.dtype, "kind", "f") == "O":
            host = to_numpy(y)
            if host.dtype.kind not in "iufb":
                try:  # NumPy objects or strings that hold numbers
                    host = host.astype("float64")
                except (TypeError, ValueError) as exc:
                    raise ValueError(
                        f"Unknown label type: regression targets y must be real numbers ({exc})"
                    ) from None
            y = from_numpy(host, xp=xp, device=dev)
        y = column_or_1d(y)
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D (n_samples, n_outputs); got shape {y.shape}")
        if not xp.isdtype(y.dtype, ("real floating", "integral")):
            raise TypeError(f"y must hold real numbers; got dtype {y.dtype}")
        y = xp.astype(y, dtype)
        if not bool(xp.all(xp.isfinite(y))):
            raise ValueError("y contains NaN or infinity; remove or impute those values first")
        Y = xp.reshape(y, (y.shape[0], 1)) if y.ndim == 1 else y
        return {"out_activation_": "identity", "_y_1d": y.ndim == 1, "_Y": Y, "_codes": None}

    @staticmethod
    def _score_device(Y: Any, out: Any, xp: Any) -> Any:
        """R^2 (averaged over outputs) on the device."""
        ss_res = xp.sum((Y - out) ** 2, axis=0)
        ss_tot = xp.sum((Y - xp.mean(Y, axis=0)) ** 2, axis=0)
        return xp.mean(1.0 - ss_res / xp.where(ss_tot == 0, 1.0, ss_tot))

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current state."""
        return self._fit(X, y, incremental=True)

    def predict(self, X: Any) -> Any:
        """Predictions (n_samples,) or (n_samples, n_outputs) in the library of X."""
        xp, outputs = self._decision(X)
        return xp.reshape(outputs, (outputs.shape[0],)) if self._y_1d else outputs

    def score(self, X: Any, y: Any) -> float:
        """Coefficient of determination R^2 (averaged over outputs)."""
        pred = to_numpy(self.predict(X)).astype("float64")
        y = to_numpy(y).astype("float64").reshape(pred.shape)
        ss_res = ((y - pred) ** 2).sum(axis=0)
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        ok = ss_tot > 0
        r2 = 1.0 - ss_res[ok] / ss_tot[ok] if ok.any() else [1.0 if (ss_res == 0).all() else 0.0]
        return float(sum(r2) / len(r2))


# ====================================================================== Perceptron


class Perceptron(_Estimator):
    """The notes' perceptron: minimise the criterion J(w, b) = sum over misclassified
    samples of -y_i (w.x_i + b) (eq. 1) by gradient descent, w <- w - eta0 dJ/dw,
    b <- b - eta0 dJ/db (eqs. 2-5), labels mapped to -1/+1 internally.

    Each epoch is one full-batch step over the training data (the notes' algorithm), or
    minibatch steps of ``batch_size`` samples; weights start at zero. Training stops at
    zero training errors, after ``max_iter`` epochs, or when J (``loss_curve_``) has not
    improved by ``tol`` for ``n_iter_no_change`` epochs. Multi-class problems are
    one-vs-rest, as scikit-learn's.
    ``coef_`` has scikit-learn's shape (n_classes or 1, n_features).
    """

    _estimator_type = "classifier"
    coef_: Any
    intercept_: Any

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

    def _validate_params(self) -> None:
        check_param("penalty", self.penalty, self.penalty in (None, "l2"), "None or 'l2'")
        check_param(
            "alpha", self.alpha, is_real(self.alpha) and self.alpha >= 0, "a non-negative number"
        )
        check_param("eta0", self.eta0, is_real(self.eta0) and self.eta0 > 0, "a positive number")
        check_param(
            "max_iter",
            self.max_iter,
            is_int(self.max_iter) and self.max_iter > 0,
            "a positive integer",
        )
        check_param(
            "tol",
            self.tol,
            self.tol is None or (is_real(self.tol) and self.tol >= 0),
            "None or a non-negative number",
        )
        check_param(
            "batch_size",
            self.batch_size,
            self.batch_size is None or (is_int(self.batch_size) and self.batch_size > 0),
            "None (full batch) or a positive integer",
        )
        _check_stopping_params(self)

    def _network(self) -> Network:
        cache = self.__dict__.setdefault("_cache", {})
        if "network" not in cache:
            cache["network"] = Network(
                [Dense(self.n_features_in_, self.coef_.shape[0], bias=self.fit_intercept)]
            )
        return cache["network"]

    @property
    def _params(self) -> list:
        W = _transpose(self.coef_)
        return [(W, self.intercept_) if self.fit_intercept else (W,)]

    def fit(self, X: Any, y: Any) -> Perceptron:
        """Fit on X (n_samples, n_features) or NCHW images, and labels y."""
        self._validate_params()
        xp, dev, X_in, X = self._fit_input(X, y)
        dtype = X_in.dtype
        host = column_or_1d(to_numpy(_as_target(y, self)))
        _check_labels(host)
        check_lengths(X, host)
        classes_ = _unique(host)
        _check_two_classes(classes_)
        codes = _codes(classes_, host)
        k = 1 if len(classes_) == 2 else len(classes_)
        # +1 for the sample's class, -1 for the others (binary: one column, class 1 positive)
        signs = 2.0 * (codes[:, None] == (_arange(k) + (1 if k == 1 else 0))[None, :]) - 1.0
        Y = from_numpy(signs, xp=xp, device=dev, dtype=dtype)
        network = Network([Dense(X.shape[1], k, bias=self.fit_intercept)])
        params = [
            tuple(xp.zeros(s, dtype=dtype, device=dev) for s in network.layers[0].param_shapes())
        ]
        rng = host_rng(self.random_state)
        validation = None
        n = X.shape[0]
        if self.early_stopping:
            train_idx, val_idx = _split_indices(n, self.validation_fraction, rng, codes)
            X_val, Y_val = _rows(X, val_idx), _rows(Y, val_idx)
            X, Y = _rows(X, train_idx), _rows(Y, train_idx)

            def validation(p: list) -> float:
                out = network.forward(p, X_val)
                if k == 1:
                    hits = (out > 0) == (Y_val > 0)
                else:
                    hits = xp.argmax(out, axis=1) == xp.argmax(Y_val, axis=1)
                return float(xp.mean(xp.astype(hits, dtype)))

        alpha = float(self.alpha) if self.penalty == "l2" else 0.0
        sgd = SGD(momentum=0.0, nesterov=False)
        opt = OptimizerState(
            sgd, LearningRateSchedule("constant", float(self.eta0)), sgd.init(params)
        )
        history = History()
        params, _ = run_epochs(
            make_step(network, "perceptron", alpha, sgd, xp),
            params,
            opt,
            X,
            Y,
            history=history,
            batch_size=self.batch_size or X.shape[0],
            max_iter=self.max_iter,
            shuffle=self.shuffle and self.batch_size is not None,
            rng=rng,
            tol=-math.inf,
            n_iter_no_change=self.max_iter,
            validation=validation,
            verbose=self.verbose,
            callbacks=[self._stopping_rule(network, X, Y)],
        )
        if self.early_stopping and history.best_params is not None:
            params = history.best_params
        W = params[0][0]
        b = params[0][1] if self.fit_intercept else xp.zeros((k,), dtype=dtype, device=dev)
        new = {
            "coef_": _transpose(W),
            "intercept_": b,
            "classes_": classes_,
            "n_iter_": history.n_iter,
            "loss_curve_": history.loss_curve,
            "t_": history.t,
            "_dtype_name": "float64" if dtype == xp.float64 else "float32",
            **self._record_input(tuple(X_in.shape)),
        }
        new["_cache"] = {}  # weights moved for prediction and compiled functions, rebuilt on use
        self.__dict__.update(new)
        return self

    def _stopping_rule(self, network: Network, X: Any, Y: Any) -> Any:
        """Stop at zero training errors, or when J has not improved by ``tol`` for
        ``n_iter_no_change`` epochs. J of the first epoch is skipped: it is measured at
        the zero initial weights, where every margin is 0 and so is J."""
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

    def decision_function(self, X: Any) -> Any:
        """w.x + b per sample (n_samples,) for two classes, else (n_samples, n_classes)."""
        xp, X2 = self._predict_input(X)
        out = self._forward(X2)
        return xp.reshape(out, (out.shape[0],)) if out.shape[1] == 1 else out

    def predict(self, X: Any) -> Any:
        """Predicted labels in the library of X."""
        scores = self.decision_function(X)
        xp = array_namespace(scores)
        idx = (
            xp.argmax(scores, axis=1) if scores.ndim > 1 else xp.astype(scores > 0, index_dtype(xp))
        )
        return _labels(self.classes_, idx)

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy on (X, y)."""
        pred = to_numpy(self.predict(X))
        return float((pred == to_numpy(y).reshape(pred.shape)).mean())


# ====================================================================== label helpers (host)


def _transpose(W: Any) -> Any:
    return array_namespace(W).permute_dims(W, (1, 0))


def _unique(host: Any) -> Any:
    """The sorted distinct labels of host array ``host``, keeping its numeric dtype."""
    values = to_numpy(sorted(set(host.tolist())))
    return values.astype(host.dtype) if host.dtype.kind in "iufb" else values


def _codes(classes_: Any, host: Any) -> Any:
    index = {v: i for i, v in enumerate(classes_.tolist())}
    return to_numpy([index[v] for v in host.tolist()])


def _arange(k: int) -> Any:
    return to_numpy(list(range(k)))


def _labels(classes_: Any, idx: Any) -> Any:
    """Class labels for indices ``idx`` (an array of the caller's library)."""
    xp = array_namespace(idx)
    if namespace_name(xp) == "numpy":
        return classes_[to_numpy(idx)]
    if classes_.dtype.kind not in "iufb":
        raise TypeError(
            f"labels of dtype {classes_.dtype} can only be returned as NumPy arrays; "
            "predict on NumPy input, or encode the labels as numbers"
        )
    table = from_numpy(classes_, xp=xp, device=device(idx))
    return xp.take(table, idx, axis=0)
