"""The caller's data, checked and placed in one pass: :func:`fit_data` turns (X, y,
sample_weight) into the data source the driver trains on, with the encoded targets and
the fitted attributes the input defines; :func:`predict_input` checks X for prediction.

Where the computation runs: on the estimator's ``backend`` if set, else where X lives.
Targets and sample weights kept on the host (lists, NumPy arrays, pandas Series) go with X
to any library and device; an array of another library or device than X's is a
``TypeError``. A scipy.sparse X stays on the host (a :class:`SparseRows`, densified a
batch at a time); a dask X is streamed chunk by chunk (:mod:`._dask`).

Imports :mod:`backendnn._backend`, ``_validation``, ``data`` and the siblings ``_dask``
and ``_targets``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import array_namespace, from_numpy, has_64bit, is_array, namespace_name
from .._validation import (
    check_feature_names,
    check_lengths,
    check_sample_weight,
    check_X,
    feature_names,
    float_dtype,
    resolve_array,
)
from ..data import DataSource, as_source
from ..data.sparse import is_sparse, sparse_input
from ._dask import dask_fit_input, is_dask
from ._targets import as_target, encode_targets


@dataclass(frozen=True)
class FitRequest:
    """What one call of ``fit`` or ``partial_fit`` asks for.

    Attributes
    ----------
    X, y, sample_weight
        The caller's data, unchecked.
    incremental : bool
        ``partial_fit``: one epoch from the current state.
    classes : array-like, optional
        Every label (``partial_fit``'s first call).
    callbacks : sequence of callables
        Called after every epoch with its record.
    initial : object, optional
        Starting weights given to this call (the Perceptron's ``coef_init`` and
        ``intercept_init``); they win over a warm start.
    validation_data : tuple, optional
        ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``.
    resume : bool
        Continue the run that stopped where it stopped.
    """

    X: Any
    y: Any
    sample_weight: Any = None
    incremental: bool = False
    classes: Any = None
    callbacks: Any = ()
    initial: Any = None
    validation_data: Any = None
    resume: bool = False


@dataclass(frozen=True)
class Place:
    """Where a fit computes: the namespace ``xp``, its ``device`` and the ``dtype``."""

    xp: Any
    device: Any
    dtype: Any


@dataclass
class FitData:
    """The checked training data of one fit.

    Attributes
    ----------
    source : DataSource
        Inputs as the network takes them, encoded targets Y (n_samples, n_outputs) and
        sample weights, on the compute device.
    codes : host integer array of shape (n_samples,), or None
        The class index of each sample (None: regression, multi-label).
    fitted : dict
        The fitted attributes the data defines (``classes_``, ``out_activation_``,
        ``n_features_in_``, ``image_shape_``, ...).
    sample_shape : tuple of int
        One sample's shape as the network takes it.
    n_outputs : int
        The width of the encoded targets (asking the source for Y would gather a
        streamed one).
    place : Place
    """

    source: DataSource
    codes: Any
    place: Place
    sample_shape: tuple[int, ...]
    n_outputs: int
    fitted: dict = field(default_factory=dict)


def fit_data(est: Any, request: Any) -> FitData:
    """The training data of ``request`` (a :class:`._core.FitRequest`) for estimator
    ``est``: X, y and the sample weights checked against each other and against what
    ``est`` was fitted on where the call continues from its weights (``partial_fit``,
    warm start), moved once to where ``est`` computes, targets encoded."""
    X, y, sample_weight = request.X, request.y, request.sample_weight
    names = feature_names(X)
    continuing = request.incremental or est.warm_start or request.resume
    fitted = hasattr(est, "n_features_in_")
    if continuing and fitted:
        check_feature_names(est, X)  # the weights' columns
    xp, dev, X_in, X = _placed(est, X, y, sample_weight)
    dtype = X_in.dtype
    if continuing and fitted and est._has_weights():
        check_shape(est, X_in)
    y = as_target(y, est)
    check_lengths(X, y)
    host_weights = check_sample_weight(sample_weight, int(X.shape[0]))
    W = None if host_weights is None else from_numpy(host_weights, xp=xp, device=dev, dtype=dtype)
    place = Place(xp, dev, dtype)
    Y, codes, target_attributes = encode_targets(est, y, place, request)
    W = est._weigh_samples(W, codes, target_attributes, place)
    return FitData(
        source=as_source(X, Y, W),
        codes=codes,
        place=place,
        sample_shape=tuple(int(d) for d in X.shape[1:]),
        n_outputs=int(Y.shape[1]),
        fitted={
            **target_attributes,
            "n_features_in_": math.prod(X_in.shape[1:]),
            "image_shape_": tuple(X_in.shape[1:]) if X_in.ndim > 2 else None,
            "_dtype_name": "float64" if dtype == xp.float64 else "float32",
            "_feature_names": names,
        },
    )


def _placed(est: Any, X: Any, y: Any, sample_weight: Any) -> tuple[Any, Any, Any, Any]:
    """(xp, device, X as checked, X as the network takes it)."""
    if is_sparse(X):
        X = sparse_input(X, getattr(est, "backend", None), getattr(est, "dtype", None))
        return X.xp, X.device, X, X
    if is_dask(X):
        return dask_fit_input(est, X)
    for other in (y, sample_weight):  # host (NumPy) targets and weights go anywhere
        if is_array(X) and is_array(other) and not isinstance(other, np.ndarray):
            _same_place(X, other)
    xp, dev, X_raw = resolve_array(X, getattr(est, "backend", None))
    dtype = float_dtype(xp, getattr(est, "dtype", None), X_raw)
    X_in = check_X(X_raw, xp, dtype, signals=not est._flatten_input)
    return xp, dev, X_in, (_flat(X_in) if est._flatten_input else X_in)


def predict_input(est: Any, X: Any) -> tuple[Any, Any]:
    """(xp, X as the network takes it, of the fitted dtype) for prediction, where X lives
    (a scipy.sparse X: on the host with NumPy, as a :class:`SparseRows`)."""
    est._check_fitted()
    check_feature_names(est, X)
    if is_sparse(X):
        X = sparse_input(X, None, est._dtype_name)
        check_shape(est, X)
        return X.xp, X
    xp, _, X = resolve_array(X, None)
    name = est._dtype_name if has_64bit(xp) else "float32"  # JAX without x64
    X = check_X(X, xp, getattr(xp, name), signals=not est._flatten_input)
    check_shape(est, X)
    return xp, (_flat(X) if est._flatten_input else X)


def check_shape(est: Any, X: Any) -> None:
    """``ValueError`` unless ``X``'s samples have the shape ``est`` was fitted on: as
    many features, and the same image (or signal) shape where it was fitted on images and
    takes them unflattened."""
    image = getattr(est, "image_shape_", None)
    kind = "image" if image is not None and len(image) == 3 else "signal"
    if X.ndim > 2 and image is not None and tuple(X.shape[1:]) != tuple(image):
        raise ValueError(
            f"X has {kind} shape {tuple(X.shape[1:])} but this model was fitted on {tuple(image)}"
        )
    if not est._flatten_input and image is not None and X.ndim != len(image) + 1:
        raise ValueError(
            f"X has shape {tuple(X.shape)}; this model was fitted on {kind}s of shape "
            f"(N, {', '.join(map(str, image))})"
        )
    if not est._flatten_input and image is None and X.ndim != 2:
        raise ValueError(
            f"X has shape {tuple(X.shape)}; this model was fitted on rows of "
            f"{est.n_features_in_} features: pass an array of shape (n_samples, "
            f"{est.n_features_in_})"
        )
    n_features = math.prod(X.shape[1:])
    if n_features != est.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input"
        )


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
