"""Dropout: :class:`Dropout`, inverted dropout with masks from :mod:`backendnn._random`
(the same mask on every array library for one key).

Imports :mod:`backendnn._backend`, ``_random``, ``_validation`` and
:mod:`backendnn.layers.base`.
"""

from __future__ import annotations

import math
from typing import Any

from .. import _random
from .._backend import array_namespace
from .._validation import is_real
from .base import INFERENCE, Context, Layer


class Dropout(Layer):
    """Inverted dropout (PyTorch's ``Dropout``): in training each value is zeroed with
    probability p and the others are scaled by 1 / (1 - p); in inference the identity.

    Forward (training): y = x m / (1 - p) with m = (u >= p), u uniform in [0, 1) drawn by
    ``_random.uniform(ctx.key, x.shape, x.dtype)``, so one key gives one mask on every
    library; p = 1 gives zeros. Backward: dx = dy m / (1 - p), the same mask.

    Parameters
    ----------
    p : float, default 0.5
        The probability of zeroing a value, in [0, 1].

    Raises
    ------
    ValueError
        If p is not in [0, 1]; in a training ``forward``, if ``ctx.key`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import _random
    >>> from backendnn.layers import Dropout
    >>> from backendnn.layers.base import Context
    >>> layer = Dropout(0.5)
    >>> layer
    Dropout(p=0.5)
    >>> key = _random.new_key(0, 0, np)
    >>> y, cache = layer.forward((), np.ones((2, 4)), Context(training=True, key=key))
    >>> y.tolist()  # the kept values scaled by 1 / (1 - p) = 2
    [[0.0, 2.0, 2.0, 0.0], [0.0, 2.0, 2.0, 0.0]]
    >>> dx, grads = layer.backward((), cache, np.ones((2, 4)))
    >>> bool((dx == y).all()), grads
    (True, ())
    >>> layer.forward((), np.ones((2, 4)))[0].tolist()  # inference: the identity
    [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    """

    random = True
    uses_mode = True

    def __init__(self, p: float = 0.5):
        if not is_real(p) or not math.isfinite(p) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1] (e.g. 0.5), got {p!r}")
        self.p = float(p)

    def config(self) -> dict[str, Any]:
        return {"p": self.p}

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = x m / (1 - p) in training (m = (u >= p)), y = x in inference and for p = 0."""
        if not ctx.training or self.p == 0.0:
            return x, None
        if ctx.key is None:
            raise ValueError(
                f"{self!r} draws a mask in training: pass a random key "
                "(Network.forward_train(..., key=_random.new_key(seed, step, xp)))"
            )
        xp = array_namespace(x)
        u = _random.uniform(ctx.key, tuple(x.shape), x.dtype)
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        multiplier = xp.astype(u >= self.p, x.dtype) * scale
        return x * multiplier, multiplier

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = dy m / (1 - p), with the forward's mask (dx = dy in inference)."""
        if not need_dx:
            return None, ()
        return (dy if cache is None else dy * cache), ()
