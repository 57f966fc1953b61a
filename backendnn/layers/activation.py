"""The element-wise activation layer: a = f(z) for any activation of the registry.

Imports :mod:`backendnn.activations` and :mod:`backendnn.layers.base`.
"""

from __future__ import annotations

from typing import Any

from .. import activations as _act
from .base import INFERENCE, Context, Layer


class Activation(Layer):
    """Applies an activation of the registry: a = f(z) (eq. 16); backward dz = da * f'(z).

    f is applied element-wise (softmax and log_softmax along each row); the backward
    pass is the Hadamard product of eq. 33, dz = da * f'(z), or the vector-Jacobian
    product for softmax and log_softmax. The layer keeps one of z and f(z), whichever
    the derivative needs. It has no parameters.

    Parameters
    ----------
    activation : str or activation object
        A name of :mod:`backendnn.activations` (``"relu"``, ``"tanh"``, ...) or an
        object returned by ``activations.get``; not a GLU-family gate.

    Raises
    ------
    ValueError
        If ``activation`` is not a known name, or is a GLU-family gate (use
        :class:`GatedDense`).

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import Activation
    >>> layer = Activation("relu")
    >>> layer
    Activation(ReLU())
    >>> a, cache = layer.forward((), np.array([[-1.0, 2.0]]))
    >>> a.tolist()
    [[0.0, 2.0]]
    >>> dz, grads = layer.backward((), cache, np.array([[3.0, 3.0]]))
    >>> dz.tolist(), grads
    ([[0.0, 3.0]], ())
    """

    def __init__(self, activation: Any):
        self.activation = _act.get(activation)
        if _act.is_gated(self.activation):
            raise ValueError(
                f"{self.activation.name} is a GLU gate acting on two halves; use GatedDense"
            )

    def config(self) -> dict[str, Any]:
        return {"activation": self.activation}

    def forward(self, params: tuple, z: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """a = f(z) (eq. 16).

        Parameters
        ----------
        params : tuple
            ``()``: the layer has no parameters.
        z : array of shape (n_samples, n_features)
            The pre-activation.

        Returns
        -------
        a : array of shape (n_samples, n_features)
            f(z).
        cache : tuple
            ``(None, a)`` when f' is computed from the output (``from_output``:
            sigmoid, tanh, relu, ...), ``(z, None)`` otherwise.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Activation
        >>> a, cache = Activation("tanh").forward((), np.array([[0.0, 1.0]]))
        >>> np.round(a, 4).tolist(), cache[0] is None
        ([[0.0, 0.7616]], True)
        """
        y = self.activation.forward(z)
        # keep one of z, f(z): whichever the derivative needs (half the activation memory)
        return y, ((None, y) if self.activation.from_output else (z, None))

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dz = da * f'(z) (the Hadamard product of eqs. 32-33).

        Parameters
        ----------
        params : tuple
            ``()``: the layer has no parameters.
        cache : tuple
            The cache :meth:`forward` returned.
        dy : array of shape (n_samples, n_features)
            dL/da, the gradient for the layer output.
        need_dx : bool, default True
            Ignored: dz is the whole result, always formed.

        Returns
        -------
        dz : array of shape (n_samples, n_features)
            dL/dz = dy * f'(z) (the vector-Jacobian product for softmax and
            log_softmax).
        grads : tuple
            ``()``.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Activation
        >>> layer = Activation("tanh")
        >>> a, cache = layer.forward((), np.array([[0.0, 1.0]]))
        >>> dz, grads = layer.backward((), cache, np.ones_like(a))
        >>> np.round(dz, 4).tolist(), grads
        ([[1.0, 0.42]], ())
        """
        z, y = cache
        return self.activation.backward(dy, z, y), ()

    def __repr__(self) -> str:
        return f"Activation({self.activation!r})"
