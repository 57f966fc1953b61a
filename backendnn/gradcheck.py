"""Numerical gradient checking by central differences (the notes' "Gradient checking").

For every parameter theta_j the analytic gradient of the penalised loss J_lambda is
compared with

    (J_lambda(theta + eps e_j) - J_lambda(theta - eps e_j)) / (2 eps),

all other parameters fixed. Works on any backend: the perturbed vectors are built on
the device; only the loss values come to the host.

Imports :mod:`backendnn._backend`, ``network`` and ``params``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._backend import array_namespace, device, host_rng, is_array, to_numpy
from ._random import new_key
from ._validation import check_param as _check
from ._validation import is_int, is_real
from .network import Network
from .params import Params, flatten_params, unflatten_params


def check_gradients(
    network: Network,
    params: Params,
    X: Any,
    y: Any,
    loss: Any = "squared_error",
    *,
    alpha: float = 0.0,
    eps: float | None = None,
    max_checks: int | None = None,
    seed: Any = 0,
    state: list | None = None,
    key: Any = None,
) -> dict[str, float]:
    """Largest relative error between analytic and central-difference gradients, per
    parameter array.

    For each checked entry theta_j, the analytic gradient g_j of the penalised loss
    J_lambda (:meth:`Network.loss_and_grad`) is compared with the central difference ::

        n_j = (J_lambda(theta + eps e_j) - J_lambda(theta - eps e_j)) / (2 eps),

    all other parameters fixed (the notes' "Gradient checking"). Each entry costs two
    evaluations of the loss; ``max_checks`` bounds the work on large arrays.
    See :ref:`notes-gradient-checking`.

    Parameters
    ----------
    network : Network
        The network whose backward pass is checked.
    params : list of tuple of arrays
        The parameters at which to check, as returned by ``network.init``. Use float64
        for tight results: in float32 the errors are about 1e-4.
    X : array of shape (n_samples, ...)
        The inputs, (n_samples, n_features) unless the network starts with a
        :class:`~backendnn.layers.Flatten`.
    y : array of shape (n_samples,) or (n_samples, n_outputs)
        The targets, in the form ``loss`` expects.
    loss : str or callable, default "squared_error"
        A name of :mod:`backendnn.losses` or a function ``value, dh = loss(y, h)``.
    alpha : float, default 0.0
        L2 penalty strength (scikit-learn's convention, see ``Network.penalty``).
    eps : float, optional
        The difference step; default 1e-3 in float32 (the notes' value) and 1e-6 in
        float64.
    max_checks : int, optional
        Check at most this many randomly chosen entries per array (all by default).
    seed : int, numpy.random.Generator or None, default 0
        Seed of the host generator that picks the entries when ``max_checks`` applies.
    state : list of tuple of arrays, optional
        The layers' state, where a layer has some (``network.init_state``). The loss is
        the training loss: batch norm normalises with the batch's statistics (which the
        differences move too).
    key : int32 array of shape (2,), optional
        The random key of the training pass; every evaluation uses the same one, so
        dropout's mask is fixed. Default, for a network that draws random numbers:
        ``_random.new_key(0, 0)`` on X's library and device.

    Returns
    -------
    errors : dict of str to float
        Maps ``"layers[i].W"``-style names (``network.param_names()``) to the relative
        error ``max_j |g_j - n_j| / max(max_j |g_j|, max_j |n_j|, tiny)`` over the
        checked entries j of that array (analytic g, numerical n; tiny the dtype's smallest
        normal number). The notes' "agree to 4 digits" is < 1e-4. Expect ~1e-3 in
        float32 (rounding of the loss limits central differences there) and ~1e-8 or
        below in float64. An array whose analytic or numerical gradient has a NaN or
        infinite entry reports NaN (so ``error < tol`` fails), never a finite number.

    Raises
    ------
    ValueError
        If ``loss`` is not a known loss name, or ``y``'s shape does not match the
        network output; if ``eps`` is not a positive finite number, ``max_checks`` not
        None or a positive integer, or ``alpha`` not a non-negative finite number; if the
        loss at ``params`` is not finite (NaN or infinity in X, y or params): there is
        nothing to compare then.
    TypeError
        If ``params`` holds no array, the arrays come from two libraries or devices,
        or the loss rejects ``y`` (float labels of shape (n_samples,) for
        ``"softmax_cross_entropy"``).

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import Network, check_gradients
    >>> net = Network.mlp(3, (4,), 2, activation="tanh")
    >>> params = net.init(seed=0, xp=np, dtype=np.float64)
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    >>> errors = check_gradients(net, params, X, y, alpha=1e-2)
    >>> sorted(errors)
    ['layers[0].W', 'layers[0].b', 'layers[2].W', 'layers[2].b']
    >>> max(errors.values()) < 1e-6
    True
    """
    for name, value in (("X", X), ("y", y)):
        if not is_array(value):
            raise TypeError(f"{name} must be an array; got {type(value).__name__}")
    xp = array_namespace(X, y, *[a for p in params for a in p])
    theta = flatten_params(params)
    dtype = theta.dtype
    if eps is None:
        eps = 1e-3 if dtype == xp.float32 else 1e-6
    _check("eps", eps, is_real(eps) and math.isfinite(eps) and eps > 0, "a positive finite number")
    _check(
        "max_checks",
        max_checks,
        max_checks is None or (is_int(max_checks) and max_checks >= 1),
        "None or a positive integer",
    )
    _check(
        "alpha", alpha, is_real(alpha) and math.isfinite(alpha) and alpha >= 0,
        "a non-negative finite number",
    )  # fmt: skip
    tiny = float(xp.finfo(dtype).smallest_normal)
    if key is None and network.is_random:
        key = new_key(0, 0, xp, device(X))
    run = {"state": state, "key": key}

    def J(vector: Any) -> float:
        value, _ = network.loss_and_grad(unflatten_params(vector, params), X, y, loss, alpha, **run)
        return float(value)

    value, grads = network.loss_and_grad(params, X, y, loss, alpha, **run)
    if not math.isfinite(float(value)):
        raise ValueError(
            f"the loss at params is {float(value)}: X, y or params hold NaN or infinity (or the "
            "loss overflows), so gradients cannot be compared; check the inputs"
        )
    analytic = [float(v) for v in to_numpy(flatten_params(grads))]
    index = xp.arange(theta.shape[0], device=device(theta))
    rng = host_rng(seed)
    result: dict[str, float] = {}
    start = 0
    for name, arr in zip(network.param_names(), (a for p in params for a in p)):
        size = math.prod(arr.shape)
        entries: Sequence[int] = range(start, start + size)
        if max_checks is not None and size > max_checks:
            entries = sorted(start + int(k) for k in rng.choice(size, max_checks, replace=False))
        worst, scale = 0.0, tiny
        for j in entries:
            e = eps * xp.astype(index == j, dtype)
            numeric = (J(theta + e) - J(theta - e)) / (2.0 * eps)
            if not (math.isfinite(analytic[j]) and math.isfinite(numeric)):
                worst = math.nan  # max() would drop a NaN: report it instead
                break
            worst = max(worst, abs(analytic[j] - numeric))
            scale = max(scale, abs(analytic[j]), abs(numeric))
        result[name] = worst / scale
        start += size
    return result
