"""The element-wise activation layer: a = f(z) for any activation of the registry.

Imports :mod:`backendnn.activations` and :mod:`backendnn.layers.base`.
"""

from __future__ import annotations

from typing import Any

from .. import activations as _act
from .base import INFERENCE, Context, Layer, size

# the temporaries of each built-in activation's forward as arrays of its input's size,
# besides its output (NumPy's, measured: tests/test_prediction_memory.py checks them)
_TEMPORARIES = {
    "identity": 0, "relu": 0, "tanh": 0, "sigmoid": 4, "logistic": 4, "gelu": 12,
    "gelu_tanh": 6, "silu": 5, "swish": 5, "softplus": 2, "softmax": 2, "log_softmax": 2,
}  # fmt: skip
_UNKNOWN = max(_TEMPORARIES.values())  # a registered activation: as the costliest built-in


def temporaries(activation: Any) -> int:
    """The arrays of z's size that ``activation.forward(z)`` holds at once besides its
    output (a registered activation of unknown cost: as the costliest built-in)."""
    return _TEMPORARIES.get(getattr(activation, "name", ""), _UNKNOWN)


class Activation(Layer):
    """Applies an activation of the registry: a = f(z) (eq. 16); backward dz = da * f'(z).

    Forward: a = f(z), element-wise (softmax and log_softmax along each row). The cache
    keeps one of z and f(z), whichever the derivative needs (``from_output``: sigmoid,
    tanh, relu... read f(z)): half the activation memory.

    Backward: the Hadamard product of eqs. 32-33, dz = da * f'(z) (the vector-Jacobian
    product for softmax and log_softmax). The layer has no parameters.
    See :ref:`notes-eq-16` (notes' eqs. 16-17) and :ref:`notes-eq-33` (eqs. 32-33).

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
    >>> tanh = Activation("tanh")
    >>> a, cache = tanh.forward((), np.array([[0.0, 1.0]]))
    >>> dz, _ = tanh.backward((), cache, np.ones_like(a))
    >>> np.round(a, 4).tolist(), np.round(dz, 4).tolist()  # dz = 1 - tanh(z)^2
    ([[0.0, 0.7616]], [[1.0, 0.42]])
    """

    def __init__(self, activation: Any):
        self.activation = _act.get(activation)
        if _act.is_gated(self.activation):
            raise ValueError(
                f"{self.activation.name} is a GLU gate acting on two halves; use GatedDense"
            )

    def config(self) -> dict[str, Any]:
        return {"activation": self.activation}

    def workspace(self, shape: tuple[int, ...]) -> int:
        """f's temporaries (the sigmoid's ``exp(-|z|)``, 1 + e, ...): a few arrays of z's size."""
        return temporaries(self.activation) * size(shape)

    def forward(self, params: tuple, z: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """a = f(z), keeping z or f(z) for backward, whichever f' reads."""
        y = self.activation.forward(z)
        # keep one of z, f(z): whichever the derivative needs (half the activation memory)
        return y, ((None, y) if self.activation.from_output else (z, None))

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dz = da * f'(z) (the vector-Jacobian product for softmax, log_softmax)."""
        z, y = cache
        return self.activation.backward(dy, z, y), ()

    def __repr__(self) -> str:
        return f"Activation({self.activation!r})"
