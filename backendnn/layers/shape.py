"""Layers that only change the shape of a batch: :class:`Flatten`.

Imports :mod:`backendnn._backend` and :mod:`backendnn.layers.base`.
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import array_namespace
from .base import INFERENCE, Context, Layer


class Flatten(Layer):
    """An image batch (N, C, H, W) (or any (N, ...)) to (N, C*H*W); backward restores the shape.

    Forward: y = reshape(x, (N, -1)), row-major. Backward: dx = reshape(dy, x.shape).

    Parameters
    ----------
    None
        The layer takes no constructor arguments and has no parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import Flatten
    >>> layer = Flatten()
    >>> layer.output_shape((2, 2, 3))
    (12,)
    >>> y, cache = layer.forward((), np.arange(12.0).reshape(2, 2, 3))
    >>> y.tolist(), cache
    ([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]], (2, 2, 3))
    >>> dx, grads = layer.backward((), cache, y)
    >>> dx.shape, grads
    ((2, 2, 3), ())
    """

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(shape),)

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = x reshaped to (n_samples, prod of x.shape[1:])."""
        xp = array_namespace(x)
        return xp.reshape(x, (x.shape[0], math.prod(x.shape[1:]))), tuple(x.shape)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = dy reshaped to the input shape."""
        return array_namespace(dy).reshape(dy, cache), ()

    def __repr__(self) -> str:
        return "Flatten()"
