"""The estimator core: scikit-learn's plumbing and the one ``fit`` every estimator shares.

:class:`NetworkEstimator` holds what does not depend on the model: parameters from the
constructor's signature, validated from one table (``_parameter_constraints``); input
checks and conversion between libraries and devices; a ``fit`` that encodes the targets,
builds the network, trains it with :mod:`backendnn.estimators._training` and commits every
fitted attribute at once (a failed call changes nothing); prediction in the caller's own
library, with the weights moved there once and moved again whenever they change; and what
a model file holds (the constraint tables again, and the weights by name).

A concrete estimator (``mlp.py``, ``perceptron.py``) says only what is its own: its
parameters, how targets are encoded and decoded, the network, its loss and optimiser, and
how the network's parameters map to its fitted attributes.

Imports from :mod:`backendnn._backend`, ``_validation``, ``network``, ``train`` and the
sibling modules ``_targets`` and ``_training``.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any, ClassVar

from .._backend import (
    array_namespace,
    device,
    from_numpy,
    has_64bit,
    host_rng,
    is_array,
    namespace_name,
    to_namespace_of,
    to_numpy,
)
from .._validation import (
    AnyOf,
    Constraint,
    Interval,
    NotFittedError,
    Options,
    SequenceOf,
    Text,
    check_feature_names,
    check_lengths,
    check_sample_weight,
    check_X,
    feature_names,
    float_dtype,
    resolve_array,
    validate_params,
)
from ..data import dask_fit_input, dask_predict, is_dask
from ..network import Network
from ..params import Params
from ..train import compiled_forward
from ._targets import Targets, as_target
from ._training import train_network

#: the fitted attributes every estimator saves (besides its own)
INPUT_ATTRIBUTES: dict[str, Constraint] = {
    "n_features_in_": Interval(1, None, integer=True),
    "image_shape_": AnyOf(Options(None), SequenceOf(Interval(1, None, integer=True), length=3)),
    "n_iter_": Interval(0, None, integer=True),
    "t_": Interval(0, None, integer=True),
    "loss_curve_": SequenceOf(Interval(None, None), as_list=True),
    "_dtype_name": Options("float32", "float64"),
    "_feature_names": AnyOf(Options(None), SequenceOf(Text())),
}


try:  # where scikit-learn is installed: its metadata routing (set_fit_request, ...), HTML repr
    from sklearn.base import BaseEstimator as _SklearnEstimator

    _BASES: tuple[type, ...] = (_SklearnEstimator,)
except ImportError:  # pragma: no cover - depends on the environment
    _BASES = ()


class NetworkEstimator(*_BASES):  # type: ignore[misc]
    """Base class of backendnn's estimators (see the module docstring). Where scikit-learn
    is installed it derives from scikit-learn's ``BaseEstimator`` for metadata routing
    (``set_fit_request(sample_weight=True)``); its own methods below take precedence."""

    _estimator_type: ClassVar[str] = ""
    #: hyper-parameter name -> constraint (validation, model files)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}
    #: fitted attribute name -> constraint (model files)
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {}

    # fitted attributes every estimator has (set by fit; annotated for readers)
    n_features_in_: int
    image_shape_: tuple | None
    _dtype_name: str

    # ------------------------------------------------------------------ what a model says

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any
    ) -> Targets:
        raise NotImplementedError

    def _build_network(self, input_shape: tuple[int, ...], n_outputs: int) -> Network:
        """The network to train, from the current hyper-parameters, for samples of
        ``input_shape`` ((n_features,), or (C, H, W) where the input is not flattened)."""
        raise NotImplementedError

    def _fitted_network(self) -> Network:
        """The network of the fitted attributes (for prediction)."""
        raise NotImplementedError

    def _init_params(self, network: Network, rng: Any, xp: Any, dev: Any, dtype: Any) -> Params:
        raise NotImplementedError

    def _weights(self) -> dict[str, Any]:
        """The fitted weight arrays by file name (``"coefs.0"``, ...)."""
        raise NotImplementedError

    @classmethod
    def _weight_shapes(cls, attributes: dict) -> dict[str, tuple[int, ...]]:
        """The shape of each weight array that fitted ``attributes`` imply, by file name."""
        raise NotImplementedError

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        """Raise ``ValueError`` if fitted ``attributes`` (each valid alone) disagree."""
        image = attributes["image_shape_"]
        if image is not None and math.prod(image) != attributes["n_features_in_"]:
            raise ValueError(
                f"image_shape_ {tuple(image)} does not hold n_features_in_ "
                f"{attributes['n_features_in_']} features"
            )
        if attributes["n_iter_"] > len(attributes["loss_curve_"]):
            raise ValueError(
                f"n_iter_ {attributes['n_iter_']} is more than the loss curve's "
                f"{len(attributes['loss_curve_'])} epochs"
            )

    @classmethod
    def _weight_attributes(cls, attributes: dict, weights: dict[str, Any]) -> dict[str, Any]:
        """The fitted attributes holding the arrays ``weights`` (by file name), given the
        other fitted ``attributes``."""
        raise NotImplementedError

    def _weight_pairs(self) -> list[tuple]:
        """The fitted weights as one tuple of arrays per layer that has parameters, in
        network order (e.g. ``(coefs_[i], intercepts_[i])``)."""
        raise NotImplementedError

    def _fitted_from_params(self, network: Network, params: Params) -> dict[str, Any]:
        """The fitted attributes of trained ``network`` and its parameters ``params``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ parameters

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyper-parameters, by name (scikit-learn's protocol)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Any:
        """Set hyper-parameters by name; ``ValueError`` for a name the estimator lacks."""
        valid = self._param_names()
        for key in params:
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for {type(self).__name__}; valid: {valid}"
                )
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def _validate_params(self) -> None:
        validate_params(self, self._parameter_constraints)

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
        state.pop("_cache", None)  # moved weights and networks are rebuilt on use
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
            classifier_tags=ClassifierTags(multi_label=self._multi_label_tag)
            if classifier
            else None,
            regressor_tags=None if classifier else RegressorTags(),
            input_tags=InputTags(),
        )

    _multi_label_tag: ClassVar[bool] = False
    #: NCHW images become (N, C*H*W) rows before the network (MLPs); a layer stack
    #: that starts with convolutions takes them as they are
    _flatten_input: ClassVar[bool] = True

    # ------------------------------------------------------------------ fitting

    def _fit(
        self,
        X: Any,
        y: Any,
        *,
        incremental: bool,
        classes: Any = None,
        callbacks: Any = (),
        sample_weight: Any = None,
    ) -> Any:
        """Train on (X, y) with ``sample_weight`` and commit every fitted attribute at
        once, or change nothing. ``incremental``: one epoch from the current state
        (``partial_fit``)."""
        self._validate_params()
        callbacks = _check_callbacks(callbacks)
        raw, names = X, feature_names(X)
        xp, dev, X_in, X = self._fit_input(X, y)
        dtype = X_in.dtype
        # continue from the fitted (or user-assigned) weights: warm start, partial_fit
        reuse = self._has_weights() and (getattr(self, "warm_start", False) or incremental)
        if reuse and hasattr(self, "n_features_in_"):
            self._check_shape(X_in)
        if incremental and hasattr(self, "n_features_in_"):
            check_feature_names(self, raw)  # partial_fit: the names of the first call
        y_arr = as_target(y, self)
        check_lengths(X, y_arr)
        host_weights = check_sample_weight(sample_weight, int(X.shape[0]))
        weights = (
            None
            if host_weights is None
            else from_numpy(host_weights, xp=xp, device=dev, dtype=dtype)
        )
        targets = self._encode_targets(y_arr, xp, dev, dtype, incremental, classes)
        network = self._build_network(tuple(X.shape[1:]), targets.Y.shape[1])
        rng = host_rng(self.random_state)  # type: ignore[attr-defined]
        if reuse:
            params = self._reused_params(network, xp, dev, dtype)
        else:
            params = self._init_params(network, rng, xp, dev, dtype)
        params, record = self._train(
            network, params, X, targets, weights, rng, incremental, reuse, callbacks
        )
        new = dict(targets.fitted, **record, **self._fitted_from_params(network, params))
        new.update(
            n_features_in_=math.prod(X_in.shape[1:]),
            image_shape_=tuple(X_in.shape[1:]) if X_in.ndim == 4 else None,
            _dtype_name="float64" if dtype == xp.float64 else "float32",
            _feature_names=names,
            _cache={},  # networks and weights moved for prediction: rebuilt on use
        )
        self.__dict__.update(new)  # the commit: only after training succeeded
        return self

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
        """Train ``network`` from ``params``; returns the trained parameters and the fitted
        attributes the training defines. The shared driver, unless a model has its own."""
        return train_network(
            self, network, params, X, targets, weights, rng, incremental, reuse, callbacks
        )

    @property
    def feature_names_in_(self) -> Any:
        """The column names of the DataFrame given to ``fit`` (absent without names)."""
        names = self.__dict__.get("_feature_names")
        if names is None:
            raise AttributeError(
                f"{type(self).__name__} has no feature_names_in_: it was not fitted on a "
                "DataFrame with string column names"
            )
        return to_numpy(list(names)).astype(object)

    def _has_weights(self) -> bool:
        try:
            self._weight_pairs()
        except AttributeError:
            return False
        return True

    def _reused_params(self, network: Network, xp: Any, dev: Any, dtype: Any) -> Params:
        """The current weights as parameters of ``network``, in ``xp``/``dev``/``dtype``."""
        pairs = self._weight_pairs()
        shapes = [layer.param_shapes() for layer in network.layers if layer.param_shapes()]
        got = [tuple(tuple(a.shape) for a in p[: len(s)]) for p, s in zip(pairs, shapes)]
        if len(pairs) != len(shapes) or got != shapes:
            raise ValueError(
                f"warm start: the weights' shapes {[[tuple(a.shape) for a in p] for p in pairs]} "
                f"do not match the network {shapes}; set warm_start=False or assign weights "
                "of matching shapes"
            )
        moved = [
            tuple(from_numpy(to_numpy(a), xp=xp, device=dev, dtype=dtype) for a in p[: len(s)])
            for p, s in zip(pairs, shapes)
        ]
        return _fill(network, moved)

    # ------------------------------------------------------------------ inputs

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(
                f"this {type(self).__name__} instance is not fitted yet; call fit first"
            )

    def _fit_input(self, X: Any, y: Any) -> tuple[Any, Any, Any, Any]:
        """(xp, device, X as checked, X as a 2-D float array) for ``fit``: on ``backend``
        if set, else where X lives. Targets kept on the host (a list, a NumPy array, a
        pandas Series) go with X on any library and device; a target array of another
        library or device than X's is a ``TypeError``."""
        if is_dask(X):  # streamed chunk by chunk (backendnn.data.dask)
            return dask_fit_input(self, X)
        if is_array(X) and is_array(y) and namespace_name(array_namespace(y)) != "numpy":
            _same_place(X, y)
        xp, dev, X_raw = resolve_array(X, getattr(self, "backend", None))
        X_in = check_X(X_raw, xp, float_dtype(xp, getattr(self, "dtype", None), X_raw))
        return xp, dev, X_in, (_flat(X_in) if self._flatten_input else X_in)

    def _predict_input(self, X: Any) -> tuple[Any, Any]:
        """(xp, X as a 2-D array of the fitted dtype) for prediction, where X lives."""
        self._check_fitted()
        check_feature_names(self, X)
        xp, _, X = resolve_array(X, None)
        name = self._dtype_name if has_64bit(xp) else "float32"  # JAX without x64
        X = check_X(X, xp, getattr(xp, name))
        self._check_shape(X)
        return xp, (_flat(X) if self._flatten_input else X)

    def _check_shape(self, X: Any) -> None:
        image = getattr(self, "image_shape_", None)
        if X.ndim == 4 and image is not None and tuple(X.shape[1:]) != tuple(image):
            raise ValueError(
                f"X has image shape {tuple(X.shape[1:])} but this model was fitted on {image}"
            )
        if not self._flatten_input and image is not None and X.ndim != 4:
            raise ValueError(
                f"X has shape {tuple(X.shape)}; this model was fitted on images of shape "
                f"(N, {', '.join(map(str, image))})"
            )
        n_features = math.prod(X.shape[1:])
        if n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )

    # ------------------------------------------------------------------ prediction

    @property
    def _params(self) -> Params:
        """The fitted weights as the prediction network's parameters."""
        return _fill(self._network(), self._weight_pairs())

    def _network(self) -> Network:
        cache = self.__dict__.setdefault("_cache", {})
        if "network" not in cache:
            cache["network"] = self._fitted_network()
        return cache["network"]

    def _params_on(self, X: Any) -> Params:
        """The fitted parameters in the library and on the device of ``X``.

        Weights of another library or device are moved once and kept, with a copy of the
        weights they were moved from; before each use that copy is compared with the
        current weights (on their own device, one reduction per array), so assigning new
        weights or editing them in place moves them again.
        """
        params = self._params
        ref = next(a for p in params for a in p)
        xp = array_namespace(X)
        if namespace_name(array_namespace(ref)) == namespace_name(xp) and device(ref) == device(X):
            return params
        cache = self.__dict__.setdefault("_cache", {})
        key = ("weights", namespace_name(xp), str(device(X)))
        entry = cache.get(key)
        if entry is None or not _unchanged(entry[0], params):
            snapshot = [tuple(array_namespace(a).asarray(a, copy=True) for a in p) for p in params]
            moved = [tuple(to_namespace_of(a, X) for a in p) for p in params]
            cache[key] = entry = (snapshot, moved)
        return entry[1]

    def _forward(self, X: Any) -> Any:
        """The network's output for 2-D ``X``, computed where X lives."""
        network = self._network()
        return compiled_forward(network, array_namespace(X))(self._params_on(X), X)

    def _decision(self, X: Any) -> tuple[Any, Any]:
        if is_dask(X):  # a lazy dask array of outputs, block by block
            return dask_predict(self, X)
        xp, X2 = self._predict_input(X)
        return xp, self._forward(X2)

    # ------------------------------------------------------------------ model files

    def _file_fields(self) -> dict[str, dict[str, Any]]:
        """The hyper-parameters and fitted attributes as JSON, by the constraint tables
        (``ValueError`` naming a value a file cannot hold)."""
        self._check_fitted()
        out: dict[str, dict[str, Any]] = {}
        for section, table in self._file_schema().items():
            out[section] = {}
            for name, constraint in table.items():
                try:
                    out[section][name] = constraint.to_json(getattr(self, name))
                except ValueError as exc:
                    raise ValueError(f"cannot save {name}: {exc}") from None
        return out

    @classmethod
    def _file_schema(cls) -> dict[str, dict[str, Constraint]]:
        """What a model file holds besides the weights: section -> name -> constraint."""
        return {
            "params": cls._parameter_constraints,
            "attributes": {**INPUT_ATTRIBUTES, **cls._fitted_constraints},
        }

    @classmethod
    def _weight_schema(cls, attributes: dict) -> dict[str, tuple[tuple[int, ...], str]]:
        """Each weight array's (shape, dtype name) that fitted ``attributes`` imply."""
        dtype = attributes["_dtype_name"]
        return {k: (shape, dtype) for k, shape in cls._weight_shapes(attributes).items()}

    @classmethod
    def _from_fields(cls, fields: dict[str, dict[str, Any]], weights: dict[str, Any]) -> Any:
        """A fitted model from checked fields (as ``_file_fields`` made them, rebuilt
        by the constraints) and weight arrays of the right shapes."""
        model = cls(**fields["params"])
        model.__dict__.update(fields["attributes"])
        model.__dict__.update(cls._weight_attributes(fields["attributes"], weights))
        model._cache = {}
        return model


class available_if:  # noqa: N801 - a decorator, named as scikit-learn's
    """A method that exists only while ``check(self)`` passes: ``check`` raises
    ``AttributeError`` (with the reason) when it does not, so ``hasattr`` is False
    there -- scikit-learn's ``available_if`` (``partial_fit`` of non-stochastic solvers)."""

    def __init__(self, check: Any):
        self.check = check

    def __call__(self, fn: Any) -> Any:
        self.fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        return self

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self.fn
        self.check(obj)
        return self.fn.__get__(obj, owner)


def _fill(network: Network, pairs: list) -> Params:
    """Parameters of ``network`` from one tuple of arrays per layer that has parameters."""
    it = iter(pairs)
    return [tuple(next(it)) if layer.param_shapes() else () for layer in network.layers]


def _unchanged(snapshot: Params, params: Params) -> bool:
    """Whether ``params`` still hold exactly the values of ``snapshot``."""
    if [len(p) for p in snapshot] != [len(p) for p in params]:
        return False
    for old, new in zip((a for p in snapshot for a in p), (a for p in params for a in p)):
        if not is_array(new) or tuple(old.shape) != tuple(new.shape) or old.dtype != new.dtype:
            return False
        if namespace_name(array_namespace(old)) != namespace_name(array_namespace(new)):
            return False
        xp = array_namespace(old)
        if not bool(xp.all(old == new)):
            return False
    return True


def _check_callbacks(callbacks: Any) -> list:
    """``callbacks`` as a list of callables, checked before any training."""
    if callable(callbacks) or isinstance(callbacks, (str, bytes)):
        raise TypeError(
            "callbacks must be a list of callables, each called once per epoch with a "
            f"record dict; got {callbacks!r} (pass [callback] for one)"
        )
    try:
        listed = list(callbacks)
    except TypeError:
        raise TypeError(
            f"callbacks must be a list of callables; got {type(callbacks).__name__}"
        ) from None
    for cb in listed:
        if not callable(cb):
            raise TypeError(f"every callback must be callable; got {cb!r}")
    return listed


def _same_place(X: Any, y: Any) -> None:
    """``TypeError`` unless arrays ``X`` and ``y`` share a library and device, with the
    call that moves y to X's."""
    try:
        array_namespace(X, y)
    except TypeError as exc:
        lib = namespace_name(array_namespace(X))
        raise TypeError(
            f"{exc}. Targets y may be a list or NumPy array with X anywhere; an array y of "
            f"another library must be where X is: backendnn.to_backend(y, {lib!r}, "
            "device=<X's device>) moves it"
        ) from None


def _flat(X: Any) -> Any:
    """An NCHW image batch (N, C, H, W) as (N, C*H*W); 2-D input unchanged."""
    return array_namespace(X).reshape(X, (X.shape[0], -1)) if X.ndim == 4 else X


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b
