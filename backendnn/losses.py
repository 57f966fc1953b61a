"""Loss functions, each returning the loss and its gradient with respect to the network output.

Every loss has the signature ``value, dh = loss(y, h)`` with ``h`` the network output
(logits for the classification losses) of shape (n_samples, n_outputs) and ``value`` a
0-d array left on the device (read it with ``float`` once per epoch, not per batch).
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


def squared_error(y: Any, h: Any) -> tuple[Any, Any]:
    """Half mean squared error over all elements (notes eq. 25, averaged; scikit-learn's
    ``squared_error``).

    L = 1/(2 n k) sum_ij (h_ij - y_ij)^2,   dL/dh = (h - y)/(n k)

    for n samples and k outputs. (scikit-learn's MLP back-propagates (h - y)/n, k times
    the true gradient of the value it reports; with one output the two agree.)
    """
    xp = array_namespace(y, h)
    y = _as_2d(y, h, xp)
    count = h.shape[0] * (h.shape[1] if h.ndim == 2 else 1)
    diff = h - y
    return xp.sum(diff * diff) / (2.0 * count), diff / count


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


def softmax_cross_entropy(y: Any, h: Any) -> tuple[Any, Any]:
    """Softmax cross-entropy on logits ``h`` with integer labels (n,) or one-hot targets (n, k).

    L = -1/n sum_i sum_c y_ic log softmax(h_i)_c,   dL/dh = (softmax(h) - y)/n

    log softmax subtracts the row maximum, so extreme logits neither overflow nor
    produce log(0).
    """
    xp = array_namespace(y, h)
    n = h.shape[0]
    if y.ndim == 1:
        if xp.isdtype(y.dtype, "real floating"):
            raise TypeError(
                "integer class labels (n,) or one-hot targets (n, k) expected, got floats"
            )
        y = one_hot(y, h.shape[1], h.dtype)
    else:
        y = _as_2d(y, h, xp)
    logp, p = log_softmax_and_softmax(h, xp)
    return xp.sum(y * logp) * (-1.0 / n), (p - y) / n


def binary_log_loss(y: Any, h: Any) -> tuple[Any, Any]:
    """Binary (or multi-label) log-loss on logits ``h``, the sigmoid fused in.

    L = -1/n sum [y log s + (1-y) log(1-s)] = 1/n sum [y softplus(-h) + (1-y) softplus(h)],
    s = sigmoid(h);   dL/dh = (s - y)/n = ((1-y) sigmoid(h) - y sigmoid(-h))/n.

    Both are written so that a confident, correct prediction keeps full relative
    precision (no 1 - s cancellation); softplus(h) = max(h, 0) + log1p(exp(-|h|)).
    """
    xp = array_namespace(y, h)
    y = _as_2d(y, h, xp)
    n = h.shape[0]
    e = xp.exp(-xp.abs(h))
    log1p_e = xp.log1p(e)
    r = 1.0 / (1.0 + e)
    s_pos, s_neg = xp.where(h >= 0, r, e * r), xp.where(h >= 0, e * r, r)  # sigmoid(h), (-h)
    sp_pos, sp_neg = xp.maximum(h, 0.0) + log1p_e, xp.maximum(-h, 0.0) + log1p_e
    value = xp.sum(y * sp_neg + (1.0 - y) * sp_pos) / n
    return value, ((1.0 - y) * s_pos - y * s_neg) / n


def perceptron_criterion(y: Any, h: Any) -> tuple[Any, Any]:
    """The perceptron criterion (notes eq. 1) with labels y in {-1, +1}:

    J = sum over misclassified i of -y_i h_i  (misclassified: y_i h_i <= 0),
    dJ/dh_i = -y_i if misclassified else 0,

    so that with h = w.x + b the chain rule gives the notes' eqs. 2 and 3.
    """
    xp = array_namespace(y, h)
    y = _as_2d(y, h, xp)
    margin = y * h
    wrong = margin <= 0
    return xp.sum(xp.where(wrong, -margin, 0.0)), xp.where(wrong, -y, 0.0)


_LOSSES = {
    "squared_error": squared_error,
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_log_loss": binary_log_loss,
    "perceptron": perceptron_criterion,
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
