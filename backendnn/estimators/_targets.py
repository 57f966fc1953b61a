"""Targets: class labels and regression values turned into the arrays a network trains on
(:func:`encode_targets`, by the estimator's ``_target_kind``), and network outputs turned
back into labels and scores.

Labels live on the host (NumPy; any label type there, strings included) and are encoded
once; the encoded targets are moved to the compute device once per fit. Predicted class
indices are mapped back to labels in the caller's own library.

Imports :mod:`backendnn._backend`, :mod:`backendnn._validation` and ``losses``; NumPy for the labels
on the host.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._backend import (
    array_namespace,
    device,
    from_numpy,
    is_array,
    namespace_name,
    to_numpy,
)
from .._validation import (
    check_finite,
    check_real,
    check_sample_weight,
    check_target,
    column_or_1d,
    host_array,
)
from ..losses import output_of


def encode_targets(est: Any, y: Any, place: Any, request: Any) -> tuple[Any, Any, dict]:
    """(Y, codes, fitted) for targets ``y`` of estimator ``est`` as its ``_target_kind``
    says: Y (n_samples, n_outputs) on the device of ``place`` in its dtype; ``codes`` the
    host class index of each sample (None for regression and multi-label; they stratify
    the early-stopping split); ``fitted`` the attributes the targets define
    (``classes_``, ``out_activation_``, ...)."""
    kind = est._target_kind
    if kind == "real":
        return _real_targets(est, y, place)
    if kind == "signs":
        return _sign_targets(est, y, place, request)
    return _class_targets(est, y, place, request)


def _class_targets(est: Any, y: Any, place: Any, request: Any) -> tuple[Any, Any, dict]:
    """Binary labels: one logistic output (Y is 0/1); k > 2 classes: softmax (one-hot Y);
    a 2-D 0/1 indicator matrix: multi-label (independent logistic outputs)."""
    host = column_or_1d(to_numpy(y))
    incremental = request.incremental
    # continuing from fitted weights (partial_fit, warm start): the same kind of targets
    # and the same classes, as scikit-learn requires -- the weights' outputs stand for them
    was_fitted = hasattr(est, "classes_") and hasattr(est, "_multilabel")
    continuing = was_fitted and (incremental or est.warm_start)
    if continuing and (host.ndim == 2) != est._multilabel:
        raise ValueError(
            "y is "
            + ("a multi-label indicator matrix" if host.ndim == 2 else "1-D class labels")
            + " but this model was fitted on "
            + ("multi-label targets" if est._multilabel else "class labels")
            + "; fit a new model (warm_start=False) to change the kind of target"
        )
    if host.ndim == 2:  # multi-label indicator matrix
        if not ((host == 0) | (host == 1)).all():
            raise ValueError("2-D y must be a 0/1 multi-label indicator matrix")
        if continuing and host.shape[1] != len(est.classes_):
            raise ValueError(
                f"y has {host.shape[1]} labels but this model was fitted on "
                f"{len(est.classes_)}; fit a new model (warm_start=False) to change them"
            )
        fitted = {
            "classes_": np.arange(host.shape[1]),
            "out_activation_": "logistic",
            "_multilabel": True,
        }
        return _to_device(host, place), None, fitted
    known = est.classes_ if continuing else None
    if incremental and request.classes is None and known is None:
        raise ValueError("classes must be passed on the first call to partial_fit")
    if known is not None and not incremental:
        seen = unique_labels(host)
        if set(seen.tolist()) != set(known.tolist()):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the "
                f"previous call to fit. Previously got {known}, `y` has {seen}; set "
                "warm_start=False to fit new classes"
            )
    # one class: trained towards output 0 and always predicted (scikit-learn's)
    classes_, codes = class_labels(host, request.classes, known, min_classes=1)
    if len(classes_) <= 2:
        Y, output = codes[:, None].astype("float64"), "logistic"
    else:
        Y, output = one_hot_host(codes, len(classes_)), "softmax"
    fitted = {"classes_": classes_, "out_activation_": output, "_multilabel": False}
    return _to_device(Y, place), codes, fitted


def _sign_targets(est: Any, y: Any, place: Any, request: Any) -> tuple[Any, Any, dict]:
    """+1 for the sample's class and -1 for the others, one column per one-vs-rest
    problem (two classes: one column, ``classes_[1]`` positive)."""
    known = est.classes_ if request.incremental and hasattr(est, "classes_") else None
    if request.incremental and request.classes is None and known is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    classes_, codes = class_labels(y, request.classes, known)
    k = 1 if len(classes_) == 2 else len(classes_)
    indicator = codes[:, None] == 1 if k == 1 else one_hot_host(codes, k) > 0
    return _to_device(2.0 * indicator - 1.0, place), codes, {"classes_": classes_}


def _real_targets(est: Any, y: Any, place: Any) -> tuple[Any, Any, dict]:
    """Real targets as (n, n_outputs), the output activation the estimator's ``loss``
    fuses (identity; ``loss="poisson"``: counts y >= 0 and the log link, outputs exp)."""
    xp = place.xp
    y = regression_targets(y, xp, place.device, place.dtype)
    loss = getattr(est, "loss", "squared_error")
    if isinstance(loss, str) and loss == "poisson" and bool(xp.any(y < 0)):
        raise ValueError(
            "Some value(s) of y are negative which is not allowed for Poisson regression: "
            "loss='poisson' models counts or rates y >= 0"
        )
    Y = xp.reshape(y, (y.shape[0], 1)) if y.ndim == 1 else y
    output = output_of(loss)
    return Y, None, {"out_activation_": output, "_y_1d": y.ndim == 1}


def _to_device(host: Any, place: Any) -> Any:
    return from_numpy(host, xp=place.xp, device=place.device, dtype=place.dtype)


def as_target(y: Any, owner: Any) -> Any:
    """``y`` as an array (:func:`check_target`): lists and pandas objects become NumPy
    (labels may be strings there); sparse, scalar and complex ``y`` are refused."""
    if y is None:
        raise ValueError(
            f"{type(owner).__name__} requires y to be passed, but the target y is None"
        )
    return check_target(y)


# ---------------------------------------------------------------------- classification


def check_labels(host: Any) -> None:
    """Class labels: 1-D, finite, and not continuous (floats must be whole numbers)."""
    if host.ndim != 1:
        raise ValueError(f"y must be 1-D class labels; got shape {host.shape}")
    if host.dtype.kind == "O":
        bad = [v for v in host.tolist() if v is None or (isinstance(v, float) and v != v)]
        if bad:
            raise ValueError(
                f"y contains missing labels ({bad[0]!r}); remove those samples or give them a class"
            )
    if host.dtype.kind == "f":
        values = host.tolist()
        if not all(math.isfinite(v) for v in values):
            raise ValueError("y contains NaN or infinity; class labels must be finite")
        if any(v != round(v) for v in values):
            raise ValueError(
                "Unknown label type: continuous. Classifiers need discrete labels; "
                "use MLPRegressor for continuous targets"
            )


def unique_labels(host: Any) -> Any:
    """The sorted distinct labels of host array ``host``, keeping its numeric dtype."""
    values = to_numpy(sorted(set(host.tolist())))
    return values.astype(host.dtype) if host.dtype.kind in "iufb" else values


def class_codes(classes_: Any, host: Any) -> Any:
    """The index in ``classes_`` of each label of ``host``."""
    index = {v: i for i, v in enumerate(classes_.tolist())}
    return to_numpy([index[v] for v in host.tolist()])


def check_two_classes(classes_: Any) -> None:
    if len(classes_) < 2:
        raise ValueError(f"y has 1 class ({classes_[0]!r}); a classifier needs at least 2 classes")


def one_hot_host(codes: Any, k: int) -> Any:
    """(n, k) float64 host indicator of class indices ``codes``."""
    return (codes[:, None] == np.arange(k)[None, :]).astype("float64")


def class_labels(y: Any, classes: Any, known: Any, min_classes: int = 2) -> tuple[Any, Any]:
    """(classes_, codes) for 1-D labels ``y``. ``classes`` (given to ``partial_fit``;
    sorted and made distinct, as scikit-learn's) or ``known`` (the classes of an earlier
    call, or None) fix the label set; else it is the labels found in ``y``."""
    host = column_or_1d(to_numpy(y))
    check_labels(host)
    given = None if classes is None else unique_labels(to_numpy(classes))  # sorted, distinct
    if given is not None and known is not None and given.tolist() != list(known):
        raise ValueError(
            f"classes={list(given)} differs from the classes seen earlier {list(known)}"
        )
    fixed = given if given is not None else known
    if fixed is not None:
        unknown = sorted(set(host.tolist()) - set(fixed.tolist()))
        if unknown:
            raise ValueError(
                f"y contains labels {unknown} not in classes={list(fixed)} given to partial_fit"
            )
        classes_ = fixed
    else:
        classes_ = unique_labels(host)
    if len(classes_) < min_classes:
        check_two_classes(classes_)
    return classes_, class_codes(classes_, host)


def class_weights(class_weight: Any, classes_: Any, codes: Any) -> list[float]:
    """scikit-learn's ``compute_class_weight(class_weight, classes=classes_, y=y)`` for
    class indices ``codes`` of y: None, ``"balanced"`` or a dict {label: weight}."""
    k, cw = len(classes_), class_weight
    if cw is None or (isinstance(cw, dict) and not cw):
        return [1.0] * k
    if isinstance(cw, str):  # "balanced"
        counts = [int((codes == i).sum()) for i in range(k)]
        if min(counts) == 0:
            raise ValueError("classes should have valid labels that are in y")
        return [len(codes) / (k * c) for c in counts]
    weights, missing = [], []
    for label in classes_.tolist():
        weights.append(float(cw[label]) if label in cw else 1.0)
        if label not in cw:
            missing.append(label)
    if missing and k - len(missing) != len(cw):
        raise ValueError(f"The classes, {missing}, are not in class_weight")
    return weights


def labels_of(classes_: Any, idx: Any) -> Any:
    """Class labels for indices ``idx`` (an array of the caller's library)."""
    if type(idx).__module__.startswith("dask."):  # a lazy dask array: looked up per block
        return idx.map_blocks(classes_.__getitem__, dtype=classes_.dtype)
    if isinstance(idx, np.ndarray):  # on the host: any label type
        return classes_[idx]
    xp = array_namespace(idx)
    if classes_.dtype.kind not in "iufb":
        raise TypeError(
            f"labels of dtype {classes_.dtype} can only be returned as NumPy arrays; "
            "predict on NumPy input, or encode the labels as numbers"
        )
    table = from_numpy(classes_, xp=xp, device=device(idx))
    return xp.take(table, idx, axis=0)


def accuracy(Y: Any, out: Any, threshold: float, W: Any = None, multilabel: bool = False) -> Any:
    """Accuracy of network outputs ``out`` against encoded targets ``Y``, on the device
    (weighted by sample weights ``W`` if given): one column, the sign of ``out`` against
    ``Y > threshold``; ``multilabel``, every column's sign right (subset accuracy);
    several classes, arg-max against arg-max."""
    xp = array_namespace(out)
    if multilabel:
        hits = xp.all((out > 0) == (Y > threshold), axis=1)
    elif Y.shape[1] == 1:
        hits = (out[:, 0] > 0) == (Y[:, 0] > threshold)
    else:
        hits = xp.argmax(out, axis=1) == xp.argmax(Y, axis=1)
    hits = xp.astype(hits, out.dtype)
    return xp.mean(hits) if W is None else xp.sum(hits * W) / xp.sum(W)


def host_accuracy(pred: Any, y: Any, sample_weight: Any = None) -> float:
    """Mean of ``pred == y`` on the host (any label type), weighted by ``sample_weight``.
    A 2-D ``pred`` (multi-label) counts a sample right only when every label is: the
    subset accuracy, as scikit-learn's ``accuracy_score``."""
    pred = to_numpy(pred)
    hits = pred == _like_predictions(y, pred)
    if hits.ndim == 2:
        hits = hits.all(axis=1)
    weights = check_sample_weight(sample_weight, hits.shape[0])
    if weights is None:
        return float(hits.mean())
    return float((hits * weights).sum() / weights.sum())


# ---------------------------------------------------------------------- regression


def regression_targets(y: Any, xp: Any, dev: Any, dtype: Any) -> Any:
    """Real targets ``y`` as an (n,) or (n, n_outputs) array of ``dtype`` on the device."""
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
    cast = xp.astype(y, dtype)
    if not bool(xp.all(xp.isfinite(cast))):
        check_finite(y, xp, dtype, "y")
    return cast


def _like_predictions(y: Any, pred: Any) -> Any:
    """``y`` on the host, checked against the predictions ``pred`` it is scored with:
    the same number of samples and the same shape (a (n, 1) column for 1-D predictions
    is taken as 1-D); a ``ValueError`` naming both shapes otherwise -- never reshaped."""
    host = host_array(y, "y")
    check_real(host, "y")
    if host.ndim == 0 or host.shape[0] != pred.shape[0]:
        got = "a scalar" if host.ndim == 0 else f"{host.shape[0]} samples"
        raise ValueError(f"y has {got} but X has {pred.shape[0]}")
    if host.ndim == 2 and host.shape[1] == 1 and pred.ndim == 1:
        host = host[:, 0]
    if tuple(host.shape) != tuple(pred.shape):
        raise ValueError(
            f"y has shape {tuple(host.shape)} but the predictions have shape "
            f"{tuple(pred.shape)}: pass y as it was given to fit"
        )
    return host


def r2_device(Y: Any, out: Any, W: Any = None) -> Any:
    """R^2 (averaged over outputs) of ``out`` against ``Y``, on the device, with the
    sums weighted by sample weights ``W`` if given (scikit-learn's ``r2_score``)."""
    xp = array_namespace(out)
    w = 1.0 if W is None else xp.reshape(W, (W.shape[0], 1))
    mean = xp.mean(Y, axis=0) if W is None else xp.sum(w * Y, axis=0) / xp.sum(W)
    ss_res = xp.sum(w * (Y - out) ** 2, axis=0)
    ss_tot = xp.sum(w * (Y - mean) ** 2, axis=0)
    # a constant target: 1 for a perfect fit, else 0 (scikit-learn's force_finite)
    constant = xp.astype(ss_res == 0, out.dtype)
    return xp.mean(
        xp.where(ss_tot == 0, constant, 1.0 - ss_res / xp.where(ss_tot == 0, 1.0, ss_tot))
    )


def r2_host(pred: Any, y: Any, sample_weight: Any = None) -> float:
    """Coefficient of determination R^2 (averaged over outputs), in float64 on the host,
    the sums weighted by ``sample_weight`` if given."""
    pred = to_numpy(pred).astype("float64")
    y = _like_predictions(y, pred).astype("float64")
    weights = check_sample_weight(sample_weight, pred.shape[0])
    w = 1.0 if weights is None else weights.reshape((-1,) + (1,) * (pred.ndim - 1))
    mean = y.mean(axis=0) if weights is None else (w * y).sum(axis=0) / weights.sum()
    ss_res = (w * (y - pred) ** 2).sum(axis=0)
    ss_tot = (w * (y - mean) ** 2).sum(axis=0)
    # per output; a constant target scores 1 for a perfect fit, else 0 (force_finite)
    constant = (ss_res == 0).astype("float64")
    r2 = [
        c if t == 0 else 1.0 - r / t
        for r, t, c in zip(ss_res.ravel(), ss_tot.ravel(), constant.ravel())
    ]
    return float(sum(r2) / len(r2))
