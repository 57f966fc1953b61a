"""The estimator core: the one ``fit`` every estimator shares, and prediction.

:class:`NetworkEstimator` holds what does not depend on the model, besides scikit-learn's
protocol (parameters, tags, model-file fields: ``_protocol.py``): input checks and
conversion between libraries and devices; a ``fit`` that encodes the targets, builds the
network, trains it with :mod:`backendnn.estimators._training` and commits every fitted
attribute at once (a failed call changes nothing); prediction in the caller's own
library, with the weights moved there once and moved again whenever they change.

A concrete estimator (``mlp.py``, ``perceptron.py``) says only what is its own: its
parameters, how targets are encoded and decoded, the network, its loss and optimiser, and
how the network's parameters map to its fitted attributes.

Imports from :mod:`backendnn._backend`, ``_validation``, ``data``, ``network``, ``train``
and the sibling modules ``_protocol``, ``_targets`` and ``_training``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from .._backend import (
    array_namespace,
    check_random_state,
    device,
    from_numpy,
    has_64bit,
    is_array,
    namespace_name,
    to_namespace_of,
    to_numpy,
)
from .._validation import (
    NotFittedError,
    check_feature_names,
    check_lengths,
    check_sample_weight,
    check_X,
    feature_names,
    float_dtype,
    resolve_array,
)
from ..data import dask_fit_input, dask_predict, is_dask
from ..data.sparse import SparseRows, is_sparse, sparse_input
from ..network import Network
from ..params import Params
from ..train import compiled_forward
from ._protocol import EstimatorProtocol, _check_callbacks
from ._targets import Targets, as_target
from ._training import train_network


class NetworkEstimator(EstimatorProtocol):
    """Base class of backendnn's estimators (see the module docstring)."""

    #: NCHW images become (N, C*H*W) rows before the network (MLPs); a layer stack
    #: that starts with convolutions takes them as they are
    _flatten_input: ClassVar[bool] = True

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
        continuing = incremental or getattr(self, "warm_start", False)
        if continuing and hasattr(self, "n_features_in_"):
            check_feature_names(self, raw)  # partial_fit, warm start: the weights' columns
        xp, dev, X_in, X = self._fit_input(X, y, sample_weight)
        dtype = X_in.dtype
        # continue from the fitted (or user-assigned) weights: warm start, partial_fit
        reuse = self._has_weights() and (getattr(self, "warm_start", False) or incremental)
        if reuse and hasattr(self, "n_features_in_"):
            self._check_shape(X_in)
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
        # scikit-learn's generator, made anew on every fit/partial_fit call; draws in its
        # order: the initial weights, the early-stopping split, the epoch shuffles
        rng = check_random_state(self.random_state)  # type: ignore[attr-defined]
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

    def _fit_input(self, X: Any, y: Any, sample_weight: Any = None) -> tuple[Any, Any, Any, Any]:
        """(xp, device, X as checked, X as a 2-D float array) for ``fit``: on ``backend``
        if set, else where X lives. Targets and sample weights kept on the host (lists,
        NumPy arrays, pandas Series) go with X on any library and device; an array of
        another library or device than X's is a ``TypeError``. A scipy.sparse X stays on
        the host (a :class:`SparseRows`, densified a batch at a time); a dask X is
        streamed chunk by chunk (:mod:`backendnn.data.dask`)."""
        if is_sparse(X):
            X = sparse_input(X, getattr(self, "backend", None), getattr(self, "dtype", None))
            return X.xp, X.device, X, X
        if is_dask(X):
            return dask_fit_input(self, X)
        for other in (y, sample_weight):
            if (
                is_array(X)
                and is_array(other)
                and namespace_name(array_namespace(other)) != "numpy"
            ):
                _same_place(X, other)
        xp, dev, X_raw = resolve_array(X, getattr(self, "backend", None))
        X_in = check_X(X_raw, xp, float_dtype(xp, getattr(self, "dtype", None), X_raw))
        return xp, dev, X_in, (_flat(X_in) if self._flatten_input else X_in)

    def _predict_input(self, X: Any) -> tuple[Any, Any]:
        """(xp, X as a 2-D array of the fitted dtype) for prediction, where X lives (a
        scipy.sparse X: on the host with NumPy, as a :class:`SparseRows`)."""
        self._check_fitted()
        check_feature_names(self, X)
        if is_sparse(X):
            X = sparse_input(X, None, self._dtype_name)
            self._check_shape(X)
            return X.xp, X
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
        if isinstance(X, SparseRows):  # one block of rows densified at a time
            return X.map_blocks(self._forward)
        network = self._network()
        return compiled_forward(network, array_namespace(X))(self._params_on(X), X)

    def _decision(self, X: Any) -> tuple[Any, Any]:
        if is_dask(X):  # a lazy dask array of outputs, block by block
            return dask_predict(self, X)
        xp, X2 = self._predict_input(X)
        return xp, self._forward(X2)


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


def _same_place(X: Any, y: Any) -> None:
    """``TypeError`` unless arrays ``X`` and ``y`` (targets or sample weights) share a
    library and device, with the call that moves y to X's."""
    try:
        array_namespace(X, y)
    except TypeError as exc:
        lib = namespace_name(array_namespace(X))
        raise TypeError(
            f"{exc}. Targets and sample weights may be lists or NumPy arrays with X anywhere; "
            f"an array of another library must be where X is: backendnn.to_backend(y, "
            f"{lib!r}, device=<X's device>) moves it"
        ) from None


def _flat(X: Any) -> Any:
    """An NCHW image batch (N, C, H, W) as (N, C*H*W); 2-D input unchanged."""
    return array_namespace(X).reshape(X, (X.shape[0], -1)) if X.ndim == 4 else X
