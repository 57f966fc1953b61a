"""One fit's dealings with its caller besides the data: the callbacks, bound to the model
(:class:`FitSession`), and the validation set with its scorer (:func:`validation_set`).

Callbacks are functions of the epoch's record, or objects with any of the methods of
:class:`backendnn.callbacks.Callback` (``on_fit_begin(model)``, ``on_epoch_begin(model,
record)``, ``on_epoch_end(model, record)``, ``on_fit_end(model)``). While an object's
``on_epoch_end`` runs, the model shows the epoch just finished: its fitted attributes
(weights, ``loss_curve_``, ``n_iter_``, the training state a checkpoint saves) are that
epoch's. A fit that fails restores every attribute it changed.

Imports :mod:`backendnn._backend`, ``train`` and the siblings ``_driver`` and ``_inputs``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._backend import namespace_name, to_backend, to_numpy
from .._validation import resolve_array
from ..data.sparse import is_sparse
from ..train import Hooks
from ._dask import is_dask
from ._driver import Validation
from ._inputs import FitData, FitRequest, fit_data

if TYPE_CHECKING:
    from ..params import Params

#: the methods that make an object a callback
CALLBACK_METHODS = ("on_fit_begin", "on_epoch_begin", "on_epoch_end", "on_fit_end")


def _is_object(cb: Any) -> bool:
    return any(callable(getattr(cb, m, None)) for m in CALLBACK_METHODS)


def check_callbacks(callbacks: Any) -> list:
    """``callbacks`` as a list of callables or callback objects, checked before any
    training."""
    if callable(callbacks) or _is_object(callbacks) or isinstance(callbacks, (str, bytes)):
        raise TypeError(
            "callbacks must be a list of callables (called once per epoch with a record "
            "dict) or Callback objects; got "
            f"{callbacks!r} (pass [callback] for one)"
        )
    try:
        listed = list(callbacks)
    except TypeError:
        raise TypeError(
            f"callbacks must be a list of callables or Callback objects; got "
            f"{type(callbacks).__name__}"
        ) from None
    for cb in listed:
        if not (callable(cb) or _is_object(cb)):
            raise TypeError(
                f"every callback must be callable or have one of the methods "
                f"{', '.join(CALLBACK_METHODS)}; got {cb!r}"
            )
    return listed


class FitSession(Hooks):
    """The callbacks of one fit, bound to ``model``; ``show(record)`` (set by the fit)
    puts the epoch's fitted attributes on the model before the objects see it."""

    def __init__(self, model: Any, callbacks: Any):
        self.model = model
        self.callbacks = check_callbacks(callbacks)
        self.objects = [cb for cb in self.callbacks if _is_object(cb)]
        self.show: Callable[[dict], None] | None = None

    def _call(self, method: str, *args: Any) -> list:
        out = []
        for cb in self.objects:
            fn = getattr(cb, method, None)
            if callable(fn):
                out.append(fn(self.model, *args))
        return out

    def fit_begin(self) -> None:
        self._call("on_fit_begin")

    def epoch_begin(self, record: dict) -> None:
        self._call("on_epoch_begin", record)

    def epoch_end(self, record: dict) -> bool:
        attributes = record.pop("attributes", None)
        if self.objects and self.show is not None and attributes is not None:
            self.show(attributes())
        # every callback sees every epoch, the stopping one included
        stops = [bool(cb(record)) for cb in self.callbacks if not _is_object(cb)]
        stops += [bool(s) for s in self._call("on_epoch_end", record)]
        return any(stops)

    def fit_end(self) -> None:
        self._call("on_fit_end")


# ---------------------------------------------------------------------- validation data


class _ValidationView:
    """What :func:`._inputs.fit_data` reads of an estimator, for validation data: the
    training's library and precision, its kind of targets and (``classes``) its labels."""

    warm_start = False

    def __init__(self, est: Any, data: FitData):
        self._est = est
        self.backend = namespace_name(data.place.xp)
        self.dtype = data.fitted["_dtype_name"]
        self._flatten_input = est._flatten_input
        self._target_kind = est._target_kind
        self.loss = getattr(est, "loss", None)
        self.solver = getattr(est, "solver", None)

    def _weigh_samples(self, W: Any, codes: Any, targets: dict, place: Any) -> Any:
        return W


def validation_set(
    est: Any, given: Any, data: FitData, view: Callable[[Params, Any], Any]
) -> Validation | None:
    """The caller's ``validation_data`` (``(X_val, y_val)`` or ``(X_val, y_val, w_val)``)
    checked like the training data and placed where the fit computes, with the
    estimator's ``scoring`` (None: its own score). ``view(params, buffers)`` is a copy of
    the model with those weights, for a scikit-learn scorer."""
    if given is None:
        return None
    if not isinstance(given, (tuple, list)) or len(given) not in (2, 3):
        raise TypeError(
            "validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
            f"sample_weight_val); got {type(given).__name__}"
        )
    X_val, y_val, w_val = (*given, None)[:3]
    if not (is_sparse(X_val) or is_dask(X_val)):  # onto the training device, as it is
        host = resolve_array(X_val, None, "X_val")[2]
        X_val = to_backend(host, namespace_name(data.place.xp), data.place.device)
    classes = data.fitted.get("classes_")
    multilabel = data.fitted.get("_multilabel", False)
    request = FitRequest(
        X_val, y_val, w_val, incremental=classes is not None and not multilabel,
        classes=None if multilabel else classes,
    )  # fmt: skip
    try:
        checked = fit_data(_ValidationView(est, data), request)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"validation_data: {exc}") from None
    if checked.sample_shape != data.sample_shape:
        raise ValueError(
            f"validation_data: X_val's samples have shape {checked.sample_shape}, the "
            f"training samples {data.sample_shape}"
        )
    if checked.n_outputs != data.n_outputs:
        raise ValueError(
            f"validation_data: y_val has {checked.n_outputs} outputs, y {data.n_outputs}"
        )
    source = checked.source
    return with_scorer(est, Validation(source), view, X_val, y_val, w_val)


def held_out_set(
    est: Any, source: Any, y: Any, rows: Any, view: Callable[[Params, Any], Any]
) -> Validation:
    """The early-stopping split's validation set (its data ``source``) with the
    estimator's ``scoring``: the scorer reads the held-out rows of the caller's ``y``."""
    y_host = to_numpy(y)
    W = None if source.W is None else to_numpy(source.W)
    return with_scorer(est, Validation(source), view, source.X, y_host[np.asarray(rows)], W)


def with_scorer(
    est: Any, validation: Validation, view: Callable, X: Any, y: Any, w: Any
) -> Validation:
    """``validation`` with the estimator's ``scoring`` (a scikit-learn scorer name or
    callable ``scorer(estimator, X, y)``) on ``X``, ``y`` and weights ``w``."""
    scoring = getattr(est, "scoring", None)
    if scoring is None:
        return validation
    from sklearn.metrics import check_scoring

    scorer = check_scoring(est, scoring=scoring)
    name = scoring if isinstance(scoring, str) else getattr(scoring, "__name__", "score")
    kwargs = {} if w is None else {"sample_weight": to_numpy(w)}
    # scikit-learn's metrics read NumPy: the scorer's model predicts on the host
    X = X if is_sparse(X) or is_dask(X) else to_numpy(resolve_array(X, None, "X_val")[2])
    y = to_numpy(y)

    def score(params: Params, buffers: Any) -> float:
        return float(scorer(view(params, buffers), X, y, **kwargs))

    validation.scorer, validation.name = score, name
    return validation


def model_view(model: Any, attributes: Callable[[Params, Any], dict]) -> Callable:
    """``view(params, buffers)``: a shallow copy of ``model`` whose fitted attributes are
    ``attributes(params, buffers)`` (the model itself is not changed)."""

    def view(params: Params, buffers: Any) -> Any:
        copied = copy.copy(model)
        copied.__dict__.update(attributes(params, buffers))
        return copied

    return view


def restore(model: Any, before: dict) -> None:
    """Put back the attributes ``before`` (a copy of ``model.__dict__``)."""
    model.__dict__.clear()
    model.__dict__.update(before)
