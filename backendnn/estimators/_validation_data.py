"""Validation data of one fit: the caller's ``validation_data`` checked and placed
where the fit computes (:func:`validation_set`), or the early-stopping split's held-out
rows (:func:`held_out_set`), with the estimator's ``scoring``; and what is measured on it
after each epoch (:func:`validation_values`).

Imports :mod:`backendnn._backend`, ``_validation``, ``losses``, ``data.sparse`` and the
siblings ``_dask`` and ``_inputs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import losses as _losses
from .._backend import namespace_name, to_backend, to_numpy
from .._validation import resolve_array
from ..data.sparse import is_sparse
from ._dask import is_dask
from ._inputs import FitData, FitRequest, fit_data

if TYPE_CHECKING:
    from ..data import DataSource
    from ..network import Network
    from ..params import Params


@dataclass
class Validation:
    """Validation data of one fit, checked and placed where the fit computes: a data
    source (``X``, encoded ``Y``, weights ``W``) and, with ``scoring``, the scorer's
    value of the model at the current weights (``scorer(params, buffers) -> float``,
    named ``name`` in the records)."""

    source: DataSource
    scorer: Callable[[Params, Any], float] | None = None
    name: str | None = None


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


def validation_values(
    plan: Any, network: Network, validation: Validation
) -> Callable[[Params, Any], dict[str, float]]:
    """The validation values of parameters (and buffers) in inference mode: the loss of
    the fit without its penalty (weighted by the validation weights), the estimator's
    score (or the scorer's, also under its name)."""
    held_out = validation.source
    X_val, Y_val, W_val = held_out.X, held_out.Y, held_out.W
    loss_fn = _losses.get(plan.loss)
    # independent logistic outputs (several columns): subset accuracy, as scikit-learn's
    multilabel = _losses.output_of(plan.loss) == "logistic" and Y_val.shape[1] > 1
    score_fn = plan.score
    assert score_fn is not None

    def values(params: Params, buffers: Any) -> dict[str, float]:
        h = network.forward(params, X_val, buffers)
        loss, _ = loss_fn(Y_val, h) if W_val is None else loss_fn(Y_val, h, W_val)
        if validation.scorer is None:
            return {
                "validation_loss": float(loss),
                "validation_score": float(score_fn(Y_val, h, W_val, multilabel)),
            }
        score = float(validation.scorer(params, buffers))
        name = validation.name or "score"
        return {"validation_loss": float(loss), "validation_score": score, name: score}

    return values
