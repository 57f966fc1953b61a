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

Losses with parameters (label smoothing, Huber's delta) and losses of your own are
:class:`Loss` objects: value and gradient written out side by side, the output activation
named, registered by name (:func:`register`) so that model files can hold them.

Imports ``backendnn._backend`` only.
"""

from __future__ import annotations

from typing import Any

from ._backend import array_namespace, device

__all__ = [
    "Loss",
    "SoftmaxCrossEntropy",
    "BinaryLogLoss",
    "Huber",
    "squared_error",
    "poisson",
    "softmax_cross_entropy",
    "binary_log_loss",
    "perceptron_criterion",
    "log_softmax",
    "log_softmax_and_softmax",
    "one_hot",
    "weighted_mean",
    "weight_total",
    "get",
    "names",
    "register",
]


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
    See :ref:`notes-eq-25` (notes' eq. 25) and :ref:`notes-mse`.
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
    See :ref:`notes-cross-entropy`.
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
    precision (no 1 - s cancellation); ``softplus(h) = max(h, 0) + log1p(exp(-|h|))``.
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
    See :ref:`notes-eq-1` (notes' eqs. 1-3).
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


def weighted_mean(terms: Any, dterms: Any, sample_weight: Any = None) -> tuple[Any, Any]:
    """The loss of per-element ``terms`` l_ij (n, k) and their derivatives ``dterms``
    dl_ij/dh_ij, as the built-in losses weigh samples (a helper for :class:`Loss`):

    L = sum_i s_i sum_j l_ij / sum_i s_i,   dL/dh_ij = s_i dl_ij/dh_ij / sum_i s_i,

    every s_i = 1 without ``sample_weight`` (a mean over samples, a sum over outputs).
    """
    xp = array_namespace(terms, dterms)
    s, n = _weights(sample_weight, dterms, xp)
    return xp.sum(_weighted(terms, s)) / n, _weighted(dterms, s) / n


class Loss:
    """A loss of the network output h with its gradient written out: the estimators'
    ``loss=`` and :meth:`backendnn.Network.loss_and_grad` take one as a built-in name.

    Subclasses implement ``__call__(y, h, sample_weight=None) -> (value, dL/dh)``: ``y``
    the targets as the estimator encodes them, (n_samples, n_outputs) floats; ``h`` the
    network's raw output of the same shape; ``value`` a 0-d array, the weighted mean
    over samples (:func:`weighted_mean` computes it as the built-ins do); ``dL/dh`` of
    the shape of ``h``. They set ``output``, the output activation the loss fuses and
    predictions apply to h: ``"identity"`` (regression, predictions h), ``"exp"``
    (regression, predictions exp(h)), ``"logistic"`` (classes as 0/1 columns, one unit
    for two classes, probabilities sigmoid(h)) or ``"softmax"`` (one-hot targets over
    three classes or more, probabilities softmax(h)).

    A loss is defined by its class and instance attributes (its parameters): equal
    objects compute the same function, which keys compiled steps. Register the class
    with :func:`register` to save a model that uses it.
    """

    name = "loss"
    output = "identity"
    formula = ""

    def __call__(self, y: Any, h: Any, sample_weight: Any = None) -> tuple[Any, Any]:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this loss: its instance attributes."""
        return dict(vars(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


def _smoothing(eps: Any) -> float:
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0.0 <= eps < 1.0:
        raise ValueError(f"label_smoothing must be a number in [0, 1); got {eps!r}")
    return float(eps)


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy against targets smoothed by eps = ``label_smoothing``:
    t = (1 - eps) y + eps/K for K classes (PyTorch's ``cross_entropy(label_smoothing=)``),

    L = -1/n sum_i sum_c t_ic log softmax(h_i)_c,   dL/dh = (softmax(h) - t)/n.
    """

    name = "softmax_cross_entropy"
    output = "softmax"
    formula = "L = -mean_i sum_c t_ic log softmax(h_i)_c, t = (1-eps) y + eps/K"

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = _smoothing(label_smoothing)

    def __call__(self, y: Any, h: Any, sample_weight: Any = None) -> tuple[Any, Any]:
        xp = array_namespace(y, h)
        if y.ndim == 1 and not xp.isdtype(y.dtype, "real floating"):
            y = one_hot(y, h.shape[1], h.dtype)
        y = _as_2d(y, h, xp)
        eps = self.label_smoothing
        return softmax_cross_entropy((1.0 - eps) * y + eps / h.shape[1], h, sample_weight)


class BinaryLogLoss(Loss):
    """Binary (or multi-label) log-loss against targets smoothed by eps =
    ``label_smoothing``: t = (1 - eps) y + eps/2, each output a two-class problem,

    L = 1/n sum [t softplus(-h) + (1-t) softplus(h)],   dL/dh = (sigmoid(h) - t)/n.
    """

    name = "binary_log_loss"
    output = "logistic"
    formula = "L = mean_i sum_j [t log s + (1-t) log(1-s)], s = sigmoid(h), t = (1-eps) y + eps/2"

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = _smoothing(label_smoothing)

    def __call__(self, y: Any, h: Any, sample_weight: Any = None) -> tuple[Any, Any]:
        y = _as_2d(y, h, array_namespace(y, h))
        eps = self.label_smoothing
        return binary_log_loss((1.0 - eps) * y + eps / 2.0, h, sample_weight)


class Huber(Loss):
    """Huber loss of an identity output, averaged over all elements (PyTorch's
    ``huber_loss``), with d = h - y::

        l = d^2/2 if |d| <= delta else delta (|d| - delta/2),   dl/dh = clip(d, -delta, delta),
        L = 1/(n k) sum_ij l_ij.

    Quadratic near 0 (as ``squared_error``), linear in the tails, so outliers pull less.
    """

    name = "huber"
    output = "identity"
    formula = "l = d^2/2 if |d| <= delta else delta*(|d| - delta/2), d = h - y"

    def __init__(self, delta: float = 1.0):
        if not isinstance(delta, (int, float)) or isinstance(delta, bool) or not delta > 0:
            raise ValueError(f"delta must be a number > 0; got {delta!r}")
        self.delta = float(delta)

    def __call__(self, y: Any, h: Any, sample_weight: Any = None) -> tuple[Any, Any]:
        xp = array_namespace(y, h)
        d = h - _as_2d(y, h, xp)
        a, k = xp.abs(d), h.shape[1] if h.ndim == 2 else 1
        terms = xp.where(a <= self.delta, 0.5 * d * d, self.delta * (a - 0.5 * self.delta))
        return weighted_mean(terms / k, xp.clip(d, -self.delta, self.delta) / k, sample_weight)


_LOSSES = {
    "squared_error": squared_error,
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_log_loss": binary_log_loss,
    "perceptron": perceptron_criterion,
    "poisson": poisson,
}
#: the output activation each loss function fuses
_OUTPUTS = {
    "squared_error": "identity",
    "softmax_cross_entropy": "softmax",
    "binary_log_loss": "logistic",
    "perceptron": "identity",
    "poisson": "exp",
}
#: the loss objects by name: get(name, **params) builds one
_REGISTRY: dict[str, Any] = {
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "binary_log_loss": BinaryLogLoss,
    "huber": Huber,
}
BUILTIN = frozenset(_LOSSES) | frozenset(_REGISTRY)  # names register() cannot take


def names() -> list[str]:
    """Every registered loss name."""
    return [*_LOSSES, *(name for name in _REGISTRY if name not in _LOSSES)]


def get(loss: Any, **params: Any) -> Any:
    """The loss called ``loss``: a function of this module, or with ``params`` (or for a
    name only a :class:`Loss` has, as ``"huber"``) the object ``cls(**params)``
    (``get("softmax_cross_entropy", label_smoothing=0.1)``). A callable passes through.

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    if callable(loss):
        if params:
            raise TypeError("parameters can only be given with a loss name")
        return loss
    if isinstance(loss, str) and loss in _LOSSES and not params:
        return _LOSSES[loss]
    if not isinstance(loss, str) or loss not in _REGISTRY:
        if loss in _LOSSES:
            raise TypeError(f"loss {loss!r} does not take parameters {params}")
        raise ValueError(f"unknown loss {loss!r}; valid names are: {', '.join(names())}")
    try:
        return _REGISTRY[loss](**params)
    except TypeError as exc:
        raise TypeError(f"loss {loss!r} does not take parameters {params}: {exc}") from None


def output_of(loss: Any) -> str:
    """The output activation loss ``loss`` (a name or a :class:`Loss`) fuses; a plain
    function of your own fuses none (``"identity"``)."""
    loss = get(loss)
    found = [name for name, fn in _LOSSES.items() if fn is loss]
    return _OUTPUTS[found[0]] if found else getattr(loss, "output", "identity")


def register(name: str, factory: Any) -> None:
    """Make ``get(name, **params)`` build ``factory(**params)``: a model using a
    :class:`Loss` of your own can then be saved, and loaded by a program that registered
    it too. Built-in names cannot be replaced.

    Examples
    --------
    >>> class HalfSquare(Loss):
    ...     def __call__(self, y, h, sample_weight=None):
    ...         d = h - y
    ...         return weighted_mean(0.5 * d * d, d, sample_weight)
    >>> register("half_square", HalfSquare)
    >>> get("half_square"), describe(HalfSquare())["name"]
    (HalfSquare(), 'half_square')
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"a loss name must be a non-empty string; got {name!r}")
    if name in BUILTIN:
        raise ValueError(f"{name!r} is a built-in loss; register under another name")
    if not callable(factory):
        raise TypeError(f"factory must be callable (a Loss class); got {factory!r}")
    _REGISTRY[name] = factory


def describe(loss: Loss) -> dict[str, Any]:
    """A JSON description of ``loss`` that :func:`from_description` turns back into an
    equal object: its registered name (the first name its class was registered under,
    else ``loss.name``), its parameters and its class.

    Raises
    ------
    ValueError
        If the name and parameters do not rebuild ``loss`` (an unregistered class,
        parameters that are not JSON numbers or strings).
    """
    found = (n for n, f in _REGISTRY.items() if f is type(loss) and n not in BUILTIN)
    spec = {"name": next(found, loss.name), **loss.params()}
    for key, value in spec.items():
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(
                f"loss {loss!r}: parameter {key}={value!r} cannot be written to a file"
            )
    try:
        rebuilt = _REGISTRY[spec["name"]](**loss.params()) if spec["name"] in _REGISTRY else None
    except (ValueError, TypeError):
        rebuilt = None
    if rebuilt != loss:
        raise ValueError(
            f"loss {loss!r} ({_class_name(type(loss))}) cannot be written to a file under its "
            f"name {spec['name']!r}: register its class under a name of its own with "
            "backendnn.losses.register(name, cls) in the programs that save and load it"
        )
    return {**spec, "class": _class_name(type(loss))}


def from_description(spec: Any) -> Loss:
    """The :class:`Loss` a :func:`describe` description stands for.

    Raises
    ------
    ValueError
        For an unknown name or parameters, or when the registered class differs from the
        one recorded (the file would otherwise bring back another function).
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"a loss description is a dict with 'name'; got {spec!r}")
    name = spec["name"]
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown loss {name!r}: register its class with backendnn.losses.register"
            f"({name!r}, cls) before loading"
        )
    params = {k: v for k, v in spec.items() if k not in ("name", "class")}
    try:
        loss = _REGISTRY[name](**params)
    except TypeError as exc:
        raise ValueError(f"loss {name!r} does not take parameters {params}: {exc}") from None
    recorded = spec.get("class")
    if not isinstance(loss, Loss) or (recorded is not None and recorded != _class_name(type(loss))):
        raise ValueError(
            f"loss {name!r} was saved as {recorded} but is {_class_name(type(loss))} here; "
            "register the same class before loading"
        )
    return loss


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
