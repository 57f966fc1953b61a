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
    The layer has no parameters and takes no constructor parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import Flatten
    >>> y, cache = Flatten().forward((), np.zeros((2, 1, 3, 3)))
    >>> y.shape, cache
    ((2, 9), (2, 1, 3, 3))
    >>> dx, grads = Flatten().backward((), cache, y)
    >>> dx.shape, grads
    ((2, 1, 3, 3), ())
    """

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(shape),)

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = x reshaped to (n_samples, n_features), n_features the product of x.shape[1:].

        Parameters
        ----------
        params : tuple
            ``()``: the layer has no parameters.
        x : array of shape (n_samples, ...)
            The input, e.g. images of shape (n_samples, C, H, W).

        Returns
        -------
        y : array of shape (n_samples, n_features)
            x with its trailing axes flattened in row-major order.
        cache : tuple of int
            ``x.shape``.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Flatten
        >>> y, cache = Flatten().forward((), np.arange(12.0).reshape(2, 2, 3))
        >>> y.tolist(), cache
        ([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]], (2, 2, 3))
        """
        xp = array_namespace(x)
        return xp.reshape(x, (x.shape[0], math.prod(x.shape[1:]))), tuple(x.shape)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = dy reshaped to the input's shape.

        Parameters
        ----------
        params : tuple
            ``()``: the layer has no parameters.
        cache : tuple of int
            The input shape, as returned by :meth:`forward`.
        dy : array of shape (n_samples, n_features)
            dL/dy, the gradient for the layer output.
        need_dx : bool, default True
            Ignored: dx is the whole result, always formed.

        Returns
        -------
        dx : array of shape ``cache``
            dL/dx.
        grads : tuple
            ``()``.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Flatten
        >>> dx, grads = Flatten().backward((), (2, 1, 3, 3), np.ones((2, 9)))
        >>> dx.shape, grads
        ((2, 1, 3, 3), ())
        """
        return array_namespace(dy).reshape(dy, cache), ()

    def __repr__(self) -> str:
        return "Flatten()"
