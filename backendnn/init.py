"""Weight initialisers, drawn on the host from a seed.

Each takes a host generator (a ``numpy.random.Generator``, or the ``RandomState`` the
estimators draw from, see ``_backend.host_rng`` and ``check_random_state``), the layer's
fan-in and fan-out, and returns host float64 arrays ``(W, b)`` with W of shape
(fan_in, fan_out) (``b = None`` for zeros); the
network casts them on the host and moves them to the device, so one seed gives
identical starting weights on every backend.

A layer whose weight is not a (fan_in, fan_out) matrix (``Conv2d``: fans C kh kw and
O kh kw, weight (O, C, kh, kw)) is given ``shape=(C kh kw, O)`` too: W is drawn in that
shape with the scale of the fans, b of length shape[1], and ``Network.init`` transposes
and reshapes W. A custom initialiser used on such layers accepts ``shape``.

``network_params`` and ``network_state`` make a network's arrays from its layers'
declarations (``Network.init`` and ``Network.init_state`` call them).

Imports ``backendnn._backend``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._backend import from_numpy, host_rng

__all__ = [
    "normal",
    "glorot_uniform",
    "he_normal",
    "get",
    "names",
]


def normal(
    rng: Any,
    fan_in: int,
    fan_out: int,
    *,
    activation: Any = None,
    std: float = 0.01,
    shape: tuple[int, int] | None = None,
) -> tuple[Any, Any]:
    """W, b ~ N(0, std^2) with std = 0.01, the notes' initialisation.

    See :ref:`notes-algorithm` (notes, the backpropagation algorithm).
    """
    shape = shape or (fan_in, fan_out)
    return rng.normal(0.0, std, shape), rng.normal(0.0, std, shape[1])


def glorot_uniform(
    rng: Any,
    fan_in: int,
    fan_out: int,
    *,
    activation: Any = "relu",
    shape: tuple[int, int] | None = None,
) -> tuple[Any, Any]:
    """W, b ~ U(-r, r), r = sqrt(factor/(fan_in + fan_out)): scikit-learn's MLP scheme,
    factor 2 for the logistic activation and 6 for every other."""
    factor = 2.0 if activation in ("logistic", "sigmoid") else 6.0
    bound = math.sqrt(factor / (fan_in + fan_out))
    shape = shape or (fan_in, fan_out)
    return rng.uniform(-bound, bound, shape), rng.uniform(-bound, bound, shape[1])


def he_normal(
    rng: Any,
    fan_in: int,
    fan_out: int,
    *,
    activation: Any = None,
    shape: tuple[int, int] | None = None,
) -> tuple[Any, Any]:
    """W ~ N(0, 2/fan_in) (He et al., for ReLU-like activations), b = 0 (returned as None)."""
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape or (fan_in, fan_out)), None


_INITS = {"normal": normal, "glorot_uniform": glorot_uniform, "he_normal": he_normal}


def names() -> list[str]:
    """Every registered initialiser name."""
    return list(_INITS)


def get(name: Any) -> Any:
    """The initialiser called ``name`` (a callable passes through)."""
    if callable(name):
        return name
    if name not in _INITS:
        raise ValueError(f"unknown initialiser {name!r}; valid names are: {', '.join(_INITS)}")
    return _INITS[name]


def draw_weight(
    w_shape: tuple[int, ...], fans: tuple[int, int], draw: Any, rng: Any, act_name: Any
) -> tuple:
    """Host ``(W, b)`` of a weight of shape ``w_shape`` drawn by initialiser ``draw`` at
    ``fans`` (b: the bias drawn with it, of length w_shape's units, or None for zeros).

    A W of shape (fan_in, fan_out) (Dense) is drawn as is. Otherwise W is (units, *rest),
    PyTorch's layout (Conv2d: (O, C, kh, kw), fans C kh kw and O kh kw): W^T is drawn as
    a (prod(rest), units) matrix with the scale of the fans, then transposed and reshaped.
    """
    fan_in, fan_out = fans
    if tuple(w_shape) == (fan_in, fan_out):
        W, b = draw(rng, fan_in, fan_out, activation=act_name)
        return W, b
    units = w_shape[0]
    shape = (math.prod(w_shape[1:]), units)
    W, b = draw(rng, fan_in, fan_out, activation=act_name, shape=shape)
    return W.T.reshape(w_shape), b


def network_params(
    layers: Sequence[Any], seed: Any, scheme: Any, act_name: Any, xp: Any, device: Any, dtype: Any
) -> list:
    """The parameters of ``layers`` (one tuple per layer, in each one's ``parameters()``
    order) drawn on the host from ``seed`` by initialiser ``scheme`` (Glorot factor of
    activation ``act_name``), cast to ``dtype`` on the host and moved to ``xp`` on
    ``device``; a bias the initialiser leaves out, and every constant, made on ``xp``."""
    host_dtype = "float32" if dtype == xp.float32 else "float64"
    rng, draw = host_rng(seed), get(scheme)
    params: list = []
    for layer in layers:
        arrays, drawn_bias = [], None
        for p in layer.parameters():
            if p.init == "weight":
                assert p.fans is not None
                W, drawn_bias = draw_weight(p.shape, p.fans, draw, rng, act_name)
                arrays.append(from_numpy(W.astype(host_dtype), xp=xp, device=device, dtype=dtype))
            elif p.init == "bias" and drawn_bias is not None:
                b = drawn_bias.astype(host_dtype)
                arrays.append(from_numpy(b, xp=xp, device=device, dtype=dtype))
            else:
                value = 1.0 if p.init == "ones" else 0.0
                arrays.append(xp.full(p.shape, value, dtype=dtype, device=device))
        params.append(tuple(arrays))
    return params


def network_state(layers: Sequence[Any], xp: Any, device: Any, dtype: Any) -> list:
    """The initial buffers of ``layers`` (one tuple per layer, in each one's ``buffers()``
    order): their constants (``"ones"`` or zeros) on ``xp`` and ``device``."""
    return [
        tuple(
            xp.full(b.shape, 1.0 if b.init == "ones" else 0.0, dtype=dtype, device=device)
            for b in layer.buffers()
        )
        for layer in layers
    ]
