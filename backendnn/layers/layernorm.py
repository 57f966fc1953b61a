"""Layer normalisation: :class:`LayerNorm`, over the trailing axes of each sample.

Imports :mod:`backendnn._backend` and :mod:`backendnn.layers.base`.
"""

from __future__ import annotations

from typing import Any

from .._backend import array_namespace
from .base import (
    INFERENCE,
    Context,
    Layer,
    Param,
    check_bool,
    check_eps,
    positive_int,
    size,
)  # fmt: skip


class LayerNorm(Layer):
    """Layer normalisation over the trailing ``normalized_shape`` axes of each sample
    (PyTorch's ``LayerNorm``); the same in training and inference.

    Forward, over the D values of each normalised group: mu = mean x, var = mean (x - mu)^2
    (biased), xhat = (x - mu) / s with s = sqrt(var + eps), y = weight xhat + bias
    (weight and bias of shape ``normalized_shape``). Backward, with g = dy weight::

        dx = (g - mean g - xhat mean(g xhat)) / s,
        dweight = sum dy xhat,  dbias = sum dy   (sums over the leading axes).

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The shape of the trailing axes normalised together.
    eps : float, default 1e-5
        Added to the variance.
    elementwise_affine : bool, default True
        Whether the layer has ``weight`` (ones) and ``bias`` (zeros).
    bias : bool, default True
        Whether the affine layer has ``bias`` (PyTorch's ``bias=False``: weight only).

    Raises
    ------
    ValueError
        If an argument is out of range; in ``forward`` and ``output_shape``, if the
        samples' trailing axes are not ``normalized_shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import LayerNorm
    >>> layer = LayerNorm(4)
    >>> layer
    LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)
    >>> LayerNorm((4, 5)).output_shape((3, 4, 5))
    (3, 4, 5)
    >>> params = (np.ones(4), np.zeros(4))
    >>> y, cache = layer.forward(params, np.array([[1.0, 1.0, 3.0, 3.0]]))
    >>> np.round(y, 3).tolist()  # mu = 2, var = 1
    [[-1.0, -1.0, 1.0, 1.0]]
    >>> dx, (dweight, dbias) = layer.backward(params, cache, np.array([[1.0, 0.0, 0.0, 0.0]]))
    >>> (np.round(dx, 3) + 0.0).tolist(), np.round(dweight, 3).tolist(), dbias.tolist()
    ([[0.5, -0.5, 0.0, 0.0]], [-1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0])
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ):
        dims = (
            normalized_shape if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
        )
        if not dims:
            raise ValueError(
                "LayerNorm: normalized_shape must be a positive int or a non-empty tuple of "
                "them, got ()"
            )
        self.normalized_shape = tuple(
            positive_int("LayerNorm", "normalized_shape", d) for d in dims
        )
        self.eps = check_eps("LayerNorm", eps)
        self.elementwise_affine = check_bool("LayerNorm", "elementwise_affine", elementwise_affine)
        self.bias = check_bool("LayerNorm", "bias", bias)

    def config(self) -> dict[str, Any]:
        return {
            "normalized_shape": self.normalized_shape,
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
            "bias": self.bias,
        }

    def parameters(self) -> tuple[Param, ...]:
        """``weight`` (ones) and ``bias`` (zeros) of shape ``normalized_shape``, not
        penalised; none without ``elementwise_affine``, no bias with ``bias=False``."""
        if not self.elementwise_affine:
            return ()
        w = Param("weight", self.normalized_shape, init="ones")
        return (w, Param("bias", self.normalized_shape, init="zeros")) if self.bias else (w,)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The input shape, checked: it must end with ``normalized_shape``."""
        shape = tuple(shape)
        k = len(self.normalized_shape)
        if len(shape) < k or shape[len(shape) - k :] != self.normalized_shape:
            raise ValueError(
                f"{self!r} expects samples whose trailing axes are {self.normalized_shape}, "
                f"got samples of shape {shape}"
            )
        return shape

    def workspace(self, shape: tuple[int, ...]) -> int:
        """x - mu, (x - mu)^2, x_hat and x_hat * weight: three arrays of x's size at once."""
        return 3 * size(shape)

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = weight (x - mu) / sqrt(var + eps) + bias over the trailing axes."""
        self.output_shape(tuple(x.shape[1:]))
        xp = array_namespace(x)
        axes = tuple(range(x.ndim - len(self.normalized_shape), x.ndim))
        mean = xp.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        var = xp.mean(centred * centred, axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        xhat = centred * inv_std
        y = xhat
        if self.elementwise_affine:
            y = xhat * params[0]
            if self.bias:
                y = y + params[1]
        return y, (xhat, inv_std)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = (g - mean g - xhat mean(g xhat)) / s with g = dy weight; dweight = sum dy xhat,
        dbias = sum dy over the leading axes.
        """
        xhat, inv_std = cache
        xp = array_namespace(dy)
        k = len(self.normalized_shape)
        lead = tuple(range(dy.ndim - k))
        axes = tuple(range(dy.ndim - k, dy.ndim))
        grads: tuple = ()
        g = dy
        if self.elementwise_affine:
            grads = (xp.sum(dy * xhat, axis=lead),)
            if self.bias:
                grads += (xp.sum(dy, axis=lead),)
            g = dy * params[0]
        if not need_dx:
            return None, grads
        mean_g = xp.mean(g, axis=axes, keepdims=True)
        mean_gx = xp.mean(g * xhat, axis=axes, keepdims=True)
        return (g - mean_g - xhat * mean_gx) * inv_std, grads

    def __repr__(self) -> str:
        return (
            f"LayerNorm({self.normalized_shape}, eps={self.eps!r}, "
            f"elementwise_affine={self.elementwise_affine}, "
            f"bias={self.elementwise_affine and self.bias})"
        )
