"""Layers with a forward that keeps what its backward needs (notes, eqs. 14-20 and 26-35).

Arrays are batch-major: a row is a sample, so the notes' column form
z = W a + b becomes z = a W + b with W of shape (n_in, n_out), and the backward
pass of eqs. 33-35 reads

    dW = a^T delta,   db = sum_rows delta,   d(a) = delta W^T.

No layer changes an array it is given. One it has just made itself (the result of
``x @ W``) it may update with an in-place operator where the dtype stays the same: the
standard defines them, and on JAX, whose arrays are immutable, Python rebinds the name
instead (same result, still one code path).

A layer holds no arrays. Its parameters are a tuple of arrays passed in and out, so
a network's parameters are plain data (flattened for L-BFGS and gradient checking)
and forward + backward is a pure function that ``jax.jit`` compiles::

    y, cache = layer.forward(params, x)
    dx, grads = layer.backward(params, cache, dy)   # grads matches params
"""

from __future__ import annotations

from typing import Any

from . import activations as _act
from ._backend import array_namespace


def _add_bias(z: Any, b: Any) -> Any:
    """z + b, in place when that is the same: ``z`` must be the caller's new ``x @ W``, and
    b's dtype must not promote z's (float64 b on float32 z: a new float64 array)."""
    if b.dtype != z.dtype:
        return z + b
    z += b  # on JAX, Python rebinds z to z + b
    return z


class Layer:
    """Base class: no parameters, identity shape."""

    #: names of the parameter arrays, in the order of the params tuple
    param_names: tuple[str, ...] = ()
    #: which parameters the L2 penalty applies to (weights, not biases)
    penalized: tuple[bool, ...] = ()

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ()

    def forward(self, params: tuple, x: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        raise NotImplementedError


class Dense(Layer):
    """Fully connected layer z = a W + b (eq. 14 for a batch); ``bias=False`` drops b.

    Backward (eqs. 30-31, 33-35 in matrix form): dW = a^T dz, db = sum over rows
    of dz, da = dz W^T.
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True):
        self.n_in, self.n_out, self.bias = int(n_in), int(n_out), bool(bias)
        self.param_names = ("W", "b") if bias else ("W",)
        self.penalized = (True, False) if bias else (True,)

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.n_in, self.n_out), (self.n_out,))[: len(self.param_names)]

    def forward(self, params: tuple, x: Any) -> tuple[Any, Any]:
        z = x @ params[0]
        return (_add_bias(z, params[1]) if self.bias else z), x

    def backward(
        self, params: tuple, cache: Any, dz: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        dx = dz @ params[0].T if need_dx else None
        dW = cache.T @ dz
        return dx, ((dW, array_namespace(dz).sum(dz, axis=0)) if self.bias else (dW,))

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}" + ("" if self.bias else ", bias=False") + ")"


class Activation(Layer):
    """Applies an activation of the registry: a = f(z) (eq. 16); backward dz = da * f'(z)."""

    def __init__(self, activation: Any):
        self.activation = _act.get(activation)
        if _act.is_gated(self.activation):
            raise ValueError(
                f"{self.activation.name} is a GLU gate acting on two halves; use GatedDense"
            )

    def forward(self, params: tuple, z: Any) -> tuple[Any, Any]:
        y = self.activation.forward(z)
        # keep one of z, f(z): whichever the derivative needs (half the activation memory)
        return y, ((None, y) if self.activation.from_output else (z, None))

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        z, y = cache
        return self.activation.backward(dy, z, y), ()

    def __repr__(self) -> str:
        return f"Activation({self.activation!r})"


class GatedDense(Layer):
    """A GLU-gated dense layer: one projection p = x W + c with W of shape (n_in, 2h);
    its columns [:h] give the gate input a, columns [h:] the value b, and the output
    is g(a) * b of width h (notes, GLU section: a = x W_a + b_a, b = x W_b + b_b).

    Backward: da = dy g'(a) b, db = dy g(a), dp = [da, db], then as :class:`Dense`:
    dW = x^T dp (so dW_a = x^T (g'(a) b dy) and dW_b = x^T (g(a) dy)).
    """

    param_names = ("W", "b")
    penalized = (True, False)

    def __init__(self, n_in: int, n_out: int, gate: Any = "swiglu"):
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.gate = _act.get(gate)
        if not _act.is_gated(self.gate):
            raise ValueError(f"GatedDense needs a GLU gate ({', '.join(_act.GATED)}), got {gate!r}")

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        return (self.n_in, 2 * self.n_out), (2 * self.n_out,)

    def forward(self, params: tuple, x: Any) -> tuple[Any, Any]:
        W, c = params
        p = _add_bias(x @ W, c)
        a, b = p[:, : self.n_out], p[:, self.n_out :]
        return self.gate.forward(a, b), (x, a, b)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        W, _ = params
        x, a, b = cache
        xp = array_namespace(dy)
        da, db = self.gate.backward(dy, a, b)
        dp = xp.concat([da, db], axis=1)
        dx = dp @ W.T if need_dx else None
        return dx, (x.T @ dp, xp.sum(dp, axis=0))

    def __repr__(self) -> str:
        return f"GatedDense({self.n_in}, {self.n_out}, {self.gate.name!r})"


class Flatten(Layer):
    """An image batch (N, C, H, W) (or any (N, ...)) to (N, C*H*W); backward restores the shape."""

    def forward(self, params: tuple, x: Any) -> tuple[Any, Any]:
        xp = array_namespace(x)
        return xp.reshape(x, (x.shape[0], -1)), tuple(x.shape)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        return array_namespace(dy).reshape(dy, cache), ()

    def __repr__(self) -> str:
        return "Flatten()"
