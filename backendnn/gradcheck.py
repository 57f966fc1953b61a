"""Numerical gradient checking by central differences (the notes' "Gradient checking").

For every parameter theta_j the analytic gradient of the penalised loss J_lambda is
compared with

    (J_lambda(theta + eps e_j) - J_lambda(theta - eps e_j)) / (2 eps),

all other parameters fixed. Works on any backend: the perturbed vectors are built on
the device; only the loss values come to the host.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._backend import array_namespace, device, host_rng, to_numpy
from .network import Network, Params, flatten_params, unflatten_params


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
) -> dict[str, float]:
    """Largest relative error between analytic and central-difference gradients, per
    parameter array.

    Parameters
    ----------
    network : Network
    params : list of tuples of arrays, as returned by ``network.init``
    X : array of shape (n_samples, ...)
    y : array of targets for ``loss``
    loss : str or callable, a loss of :mod:`backendnn.losses`
    alpha : float, L2 penalty (scikit-learn's convention, see ``Network.penalty``)
    eps : float, the difference step; default 1e-3 in float32 (the notes' value) and
        1e-6 in float64
    max_checks : int, optional; check at most this many randomly chosen entries per
        array (all by default)

    Returns
    -------
    dict mapping ``"layers[i].W"``-style names to the relative error
    max_j |g_j - n_j| / max(max_j |g_j|, max_j |n_j|, tiny) over the checked entries j
    of that array (analytic g, numerical n). The notes' "agree to 4 digits" is < 1e-4.
    """
    xp = array_namespace(X, y, *[a for p in params for a in p])
    theta = flatten_params(params)
    dtype = theta.dtype
    if eps is None:
        eps = 1e-3 if dtype == xp.float32 else 1e-6
    tiny = float(xp.finfo(dtype).smallest_normal)

    def J(vector: Any) -> float:
        value, _ = network.loss_and_grad(unflatten_params(vector, params), X, y, loss, alpha)
        return float(value)

    _, grads = network.loss_and_grad(params, X, y, loss, alpha)
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
            worst = max(worst, abs(analytic[j] - numeric))
            scale = max(scale, abs(analytic[j]), abs(numeric))
        result[name] = worst / scale
        start += size
    return result
