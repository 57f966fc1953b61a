"""Loss functions, each returning the loss and its gradient with respect to the network output.

Every loss has the signature ``value, dh = loss(y, h, sample_weight=None)`` with ``h``
the network output (logits for the classification losses) of shape (n_samples,
n_outputs) and ``value`` a 0-d array left on the device (read it with ``float`` once per
epoch, not per batch).

Sample weights s_i (scikit-learn's ``sample_weight``) turn each mean over samples into a
weighted mean: L = sum_i s_i l_i / sum_i s_i and dL/dh_i = s_i dl_i/dh_i / sum_i s_i
(the perceptron criterion, a sum, becomes sum_i s_i l_i). Without weights every s_i is 1
and the formulas below are computed as written, with no extra pass.
The output activation is fused into each classification loss, so its gradient is the
simple, stable ``p - y`` form rather than a Jacobian product.

Imports :mod:`backendnn._backend` only.
"""

from __future__ import annotations

from typing import Any

from ._backend import array_namespace, device


def _as_2d(y: Any, h: Any, xp: Any) -> Any:
    """Targets shaped like ``h``: a 1-d ``y`` against a one-column ``h`` becomes (n, 1)."""
    if y.ndim == 1 and h.ndim == 2:
        y = xp.reshape(y, (y.shape[0], 1))
    if tuple(y.shape) != tuple(h.shape):
        raise ValueError(
            f"y has shape {tuple(y.shape)} but the output h has shape {tuple(h.shape)}"
        )
    return xp.astype(y, h.dtype, copy=False)


def _weights(sample_weight: Any, h: Any, xp: Any) -> tuple[Any, Any]:
    """(s as an (n, 1) column of ``h``'s dtype, sum_i s_i), or (None, n) without weights.
    A batch whose weights are all 0 holds no data: its loss and gradient are 0."""
    if sample_weight is None:
        return None, h.shape[0]
    s = xp.astype(xp.reshape(sample_weight, (h.shape[0], 1)), h.dtype, copy=False)
    return s, weight_total(s, xp)


def weight_total(s: Any, xp: Any) -> Any:
    """sum_i s_i, or infinity when it is 0 (a weighted mean of nothing: 0, not 0/0)."""
    total = xp.sum(s)
    return xp.where(total > 0, total, xp.full_like(total, xp.inf))


def _weighted(terms: Any, s: Any) -> Any:
    """Per-sample ``terms`` (n, k) times the weights' column ``s`` (unchanged without)."""
    return terms if s is None else terms * s


def squared_error(y: Any, h: Any, sample_weight: Any = None) -> tuple[Any, Any]:
    """Half mean squared error over all elements (notes eq. 25, averaged; scikit-learn's
    ``squared_error``).

    L = 1/(2 n k) sum_ij (h_ij - y_ij)^2,   dL/dh = (h - y)/(n k)

    for n samples and k outputs. (scikit-learn's MLP back-propagates (h - y)/n, k times
    the true gradient of the value it reports; with one output the two agree.)
    """
    xp = array_namespace(y, h)
    y = _as_2d(y, h, xp)
    s, n = _weights(sample_weight, h, xp)
    count = n * (h.shape[1] if h.ndim == 2 else 1)
    diff = h - y
    return xp.sum(_weighted(diff * diff, s)) / (2.0 * count), _weighted(diff, s) / count


def poisson(y: Any, h: Any, sample_weight: Any = None) -> tuple[Any, Any]:
    """Half Poisson deviance with the log link (scikit-learn's ``MLPRegressor(loss="poisson")``):
    the mean mu = exp(h) of counts y >= 0 is predicted through its log h.

    L = 1/n sum_ij [y_ij log(y_ij / mu_ij) - y_ij + mu_ij],   dL/dh = (mu - y)/n

    summed over outputs (as scikit-learn's), with y log y = 0 at y = 0. Written with
    log mu = h, so neither a large h nor mu near 0 takes a log of a rounded value.
    """
    xp = array_namespace(y, h)
    y = _as_2d(y, h, xp)
    s, n = _weights(sample_weight, h, xp)
    mu = xp.exp(h)
    y_log_y = xp.where(y > 0, y * xp.log(xp.where(y > 0, y, 1.0)), 0.0)
    return xp.sum(_weighted(y_log_y - y * h - y + mu, s)) / n, _weighted(mu - y, s) / n


def log_softmax(h: Any, xp: Any) -> Any:
    """Row-wise log softmax with the row maximum subtracted."""
    return log_softmax_and_softmax(h, xp)[0]


def log_softmax_and_softmax(h: Any, xp: Any) -> tuple[Any, Any]:
    """Row-wise (log softmax(h), softmax(h)), the row maximum m subtracted:
    log softmax(h) = s - log sum exp(s) and softmax(h) = exp(s) / sum exp(s), s = h - m."""
    s = h - xp.max(h, axis=-1, keepdims=True)
    e = xp.exp(s)
    total = xp.sum(e, axis=-1, keepdims=True)
    return s - xp.log(total), e / total


def one_hot(y: Any, n_classes: int, dtype: Any) -> Any:
    """Integer labels of shape (n,) as a (n, n_classes) one-hot array of ``dtype``."""
    xp = array_namespace(y)
    classes = xp.arange(n_classes, dtype=y.dtype, device=device(y))
    return xp.astype(y[:, None] == classes[None, :], dtype)


def softmax_cross_entropy(y: Any, h: Any, sample_weight: Any = None) -> tuple[Any, Any]:
    """Softmax cross-entropy on logits ``h`` with integer labels (n,) or one-hot targets (n, k).

    L = -1/n sum_i sum_c y_ic log softmax(h_i)_c,   dL/dh = (softmax(h) - y)/n

    log softmax subtracts the row maximum, so extreme logits neither overflow nor
    produce log(0).
    """
    xp = array_namespace(y, h)
    s, n = _weights(sample_weight, h, xp)
    if y.ndim == 1:
        if xp.isdtype(y.dtype, "real floating"):
            raise TypeError(
                "integer class labels (n,) or one-hot targets (n, k) expected, got floats"
            )
        y = one_hot(y, h.shape[1], h.dtype)
    else:
        y = _as_2d(y, h, xp)
    logp, p = log_softmax_and_softmax(h, xp)
    return xp.sum(_weighted(y * logp, s)) * (-1.0 / n), _weighted(p - y, s) / n


def binary_log_loss(y: Any, h: Any, sample_weight: Any = None) -> tuple[Any, Any]:
    """Binary (or multi-label) log-loss on logits ``h``, the sigmoid fused in.

    L = -1/n sum [y log s + (1-y) log(1-s)] = 1/n sum [y softplus(-h) + (1-y) softplus(h)],
    s = sigmoid(h);   dL/dh = (s - y)/n = ((1-y) sigmoid(h) - y sigmoid(-h))/n.

    Both are written so that a confident, correct prediction keeps full relative
    precision (no 1 - s cancellation); softplus(h) = max(h, 0) + log1p(exp(-|h|)).
    """
    xp = array_namespace(y, h)
    y = _as_2d(y, h, xp)
    s, n = _weights(sample_weight, h, xp)
    e = xp.exp(-xp.abs(h))
    log1p_e = xp.log1p(e)
    r = 1.0 / (1.0 + e)
    s_pos, s_neg = xp.where(h >= 0, r, e * r), xp.where(h >= 0, e * r, r)  # sigmoid(h), (-h)
    sp_pos, sp_neg = xp.maximum(h, 0.0) + log1p_e, xp.maximum(-h, 0.0) + log1p_e
    value = xp.sum(_weighted(y * sp_neg + (1.0 - y) * sp_pos, s)) / n
    return value, _weighted((1.0 - y) * s_pos - y * s_neg, s) / n


def perceptron_criterion(y: Any, h: Any, sample_weight: Any = None) -> tuple[Any, Any]:
    """The perceptron criterion (notes eq. 1) with labels y in {-1, +1}:

    J = sum over misclassified i of -y_i h_i  (misclassified: y_i h_i <= 0),
    dJ/dh_i = -y_i if misclassified else 0,

    so that with h = w.x + b the chain rule gives the notes' eqs. 2 and 3.
    """
    xp = array_namespace(y, h)
    y = _as_2d(y, h, xp)
    s, _ = _weights(sample_weight, h, xp)
    margin = y * h
    wrong = margin <= 0
    return (
        xp.sum(_weighted(xp.where(wrong, -margin, 0.0), s)),
        _weighted(xp.where(wrong, -y, 0.0), s),
    )


_LOSSES = {
    "squared_error": squared_error,
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_log_loss": binary_log_loss,
    "perceptron": perceptron_criterion,
    "poisson": poisson,
}


def names() -> list[str]:
    """Every registered loss name."""
    return list(_LOSSES)


def get(loss: Any) -> Any:
    """The loss function called ``loss`` (a callable passes through)."""
    if callable(loss):
        return loss
    if loss not in _LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid names are: {', '.join(_LOSSES)}")
    return _LOSSES[loss]
