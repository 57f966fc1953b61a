"""Dense layers: :class:`Dense` (z = a W + b) and :class:`GatedDense` (a GLU-gated
projection).

Imports :mod:`backendnn.activations`, ``_backend`` and :mod:`backendnn.layers.base`.
"""

from __future__ import annotations

from typing import Any

from .. import activations as _act
from .._backend import array_namespace
from .activation import temporaries
from .base import INFERENCE, Context, Layer, Param, _add_bias, _promote, bias, positive_int, weight


class Dense(Layer):
    """Fully connected layer z = a W + b (eq. 14 for a batch); ``bias=False`` drops b.

    Forward: z = a W + b, a of shape (n_samples, n_in) (rows only: other shapes are
    refused, not broadcast), W of shape (n_in, n_out), b of shape (n_out,) added to every
    row. An a and W of two dtypes are first cast to ``result_type(a, W)`` (torch's ``@``
    would refuse them). The cache is a.

    Backward (eqs. 30-31, 33-35 in matrix form), dz = dL/dz::

        da = dz W^T,   dW = a^T dz,   db = sum over rows of dz

    (``need_dx=False``, a network's first layer, skips the product dz W^T: da is None).
    See :ref:`notes-eq-14` (notes' eqs. 12-15) and :ref:`notes-eq-34` (eqs. 30-35).

    Parameters
    ----------
    n_in : int or None
        Number of input features; None (or ``Dense(n_out)``, one argument) infers it
        from the input when the network is built.
    n_out : int
        Number of outputs (units).
    bias : bool, default True
        Whether the layer has a bias b; without one its parameters are ``(W,)``.

    Raises
    ------
    ValueError
        If a width is not a positive int; in ``forward`` and ``output_shape``, if the
        input is not rows of n_in features.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import Dense
    >>> layer = Dense(3, 2)
    >>> layer, layer.param_names, layer.param_shapes()
    (Dense(3, 2), ('W', 'b'), ((3, 2), (2,)))
    >>> Dense(64), Dense(3, 2, bias=False).param_shapes()  # Dense(64): n_in inferred at fit
    (Dense(64), ((3, 2),))
    >>> W, b = np.ones((3, 2)), np.array([0.5, -0.5])
    >>> z, cache = layer.forward((W, b), np.array([[1.0, 2.0, 3.0]]))
    >>> z.tolist()
    [[6.5, 5.5]]
    >>> da, (dW, db) = layer.backward((W, b), cache, np.array([[1.0, -1.0]]))
    >>> da.tolist(), dW.tolist(), db.tolist()
    ([[0.0, 0.0, 0.0]], [[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]], [1.0, -1.0])
    """

    def __init__(self, n_in: int | None, n_out: int | None = None, bias: bool = True):
        if n_out is None:  # Dense(units): the input width is inferred (Keras, LazyLinear)
            n_in, n_out = None, n_in
        self.n_in = positive_int("Dense", "n_in", n_in, allow_none=True)
        self.n_out = positive_int("Dense", "n_out", n_out)
        self.bias = bool(bias)

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "bias": self.bias}

    def parameters(self) -> tuple[Param, ...]:
        """W of shape (n_in, n_out) (fans n_in, n_out) and b of shape (n_out,)."""
        n_in = _built(self, self.n_in)
        W = weight("W", (n_in, self.n_out), (n_in, self.n_out))
        return (W, bias("b", (self.n_out,))) if self.bias else (W,)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        _check_rows(self, shape, self.n_in)
        return (self.n_out,)

    def build(self, shape: tuple[int, ...]) -> Dense:
        _check_rows(self, shape, self.n_in)
        return self if self.n_in is not None else Dense(shape[0], self.n_out, self.bias)

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """z = x W + b; the cache is x."""
        shape = tuple(x.shape)  # read once: a torch_function call per read
        _check_rows(self, shape[1:], self.n_in, ndim=len(shape))
        W = params[0]
        if x.dtype != W.dtype:
            x, W = _promote(array_namespace(x, W), x, W)
        z = x @ W
        return (_add_bias(z, params[1]) if self.bias else z), x

    def backward(
        self, params: tuple, cache: Any, dz: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = dz W^T (None without ``need_dx``), dW = x^T dz, db = sum over rows of dz."""
        x, W = cache, params[0]
        if not x.dtype == W.dtype == dz.dtype:
            x, W, dz = _promote(array_namespace(x, W, dz), x, W, dz)
        dx = dz @ W.T if need_dx else None
        dW = x.T @ dz
        return dx, ((dW, array_namespace(dz).sum(dz, axis=0)) if self.bias else (dW,))

    def __repr__(self) -> str:
        sizes = f"{self.n_out}" if self.n_in is None else f"{self.n_in}, {self.n_out}"
        return f"Dense({sizes}" + ("" if self.bias else ", bias=False") + ")"


class GatedDense(Layer):
    """A GLU-gated dense layer: y = g(x W_a + b_a) * (x W_b + b_b), of width h.

    Forward: one projection p = x W + c with W of shape (n_in, 2h); its columns [:h] give
    the gate input a, columns [h:] the value b, and y = g(a) * b of width h (notes, GLU
    section: a = x W_a + b_a, b = x W_b + b_b). The cache is (x, a, b).

    Backward: the gate's two halves, then as :class:`Dense` on p::

        da = dy g'(a) b,   db = dy g(a),   dp = [da, db],
        dx = dp W^T,   dW = x^T dp,   dc = sum over rows of dp

    (so dW_a = x^T (g'(a) b dy) and dW_b = x^T (g(a) dy)).
    See :ref:`notes-glu` (notes, GLU section).

    Parameters
    ----------
    n_in : int or None
        Number of input features; None infers it from the input when the network is built.
    n_out : int
        Output width h (the projection has 2h columns).
    gate : str or GLU object, default "swiglu"
        A GLU-family activation: ``"glu"``, ``"reglu"``, ``"geglu"`` or ``"swiglu"``
        (or an object returned by ``activations.get``).

    Raises
    ------
    ValueError
        If ``gate`` is not a known name or not a GLU-family activation.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import GatedDense
    >>> layer = GatedDense(3, 2, "reglu")
    >>> layer, layer.param_shapes()
    (GatedDense(3, 2, 'reglu'), ((3, 4), (4,)))
    >>> W, c = np.ones((3, 4)), np.array([0.0, -10.0, 1.0, 1.0])
    >>> y, cache = layer.forward((W, c), np.array([[1.0, 1.0, 1.0]]))
    >>> y.tolist()  # relu([3, -7]) * [4, 4]
    [[12.0, 0.0]]
    >>> dx, (dW, dc) = layer.backward((W, c), cache, np.ones_like(y))
    >>> dx.tolist(), dW.shape, dc.tolist()  # dc = [relu'(a) b, relu(a)]
    ([[7.0, 7.0, 7.0]], (3, 4), [4.0, 0.0, 3.0, 0.0])
    """

    def __init__(self, n_in: int | None, n_out: int, gate: Any = "swiglu"):
        self.n_in = positive_int("GatedDense", "n_in", n_in, allow_none=True)
        self.n_out = positive_int("GatedDense", "n_out", n_out)
        self.gate = _act.get(gate)
        if not _act.is_gated(self.gate):
            raise ValueError(f"GatedDense needs a GLU gate ({', '.join(_act.GATED)}), got {gate!r}")

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "gate": self.gate}

    def parameters(self) -> tuple[Param, ...]:
        """W = [W_a, W_b] of shape (n_in, 2 n_out) and c = [b_a, b_b] of shape (2 n_out,)."""
        n_in = _built(self, self.n_in)
        return (
            weight("W", (n_in, 2 * self.n_out), (n_in, 2 * self.n_out)),
            bias("b", (2 * self.n_out,)),
        )

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        _check_rows(self, shape, self.n_in)
        return (self.n_out,)

    def build(self, shape: tuple[int, ...]) -> GatedDense:
        _check_rows(self, shape, self.n_in)
        return self if self.n_in is not None else GatedDense(shape[0], self.n_out, self.gate)

    def workspace(self, shape: tuple[int, ...]) -> int:
        """[a, b] (2 n_out), g(a) and the gate's temporaries."""
        return (3 + temporaries(self.gate.gate)) * self.n_out

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = g(a) * b with [a, b] = x W + c; the cache is (x, a, b)."""
        shape = tuple(x.shape)  # read once: a torch_function call per read
        _check_rows(self, shape[1:], self.n_in, ndim=len(shape))
        W, c = params
        if x.dtype != W.dtype:
            x, W = _promote(array_namespace(x, W), x, W)
        p = _add_bias(x @ W, c)
        a, b = p[:, : self.n_out], p[:, self.n_out :]
        return self.gate.forward(a, b), (x, a, b)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dp = [dy g'(a) b, dy g(a)], then dx = dp W^T, dW = x^T dp, dc = sum over rows of dp."""
        W, _ = params
        x, a, b = cache
        xp = array_namespace(dy)
        da, db = self.gate.backward(dy, a, b)
        dp = xp.concat([da, db], axis=1)
        if not x.dtype == W.dtype == dp.dtype:
            x, W, dp = _promote(xp, x, W, dp)
        dx = dp @ W.T if need_dx else None
        return dx, (x.T @ dp, xp.sum(dp, axis=0))

    def __repr__(self) -> str:
        sizes = "None" if self.n_in is None else f"{self.n_in}"
        return f"GatedDense({sizes}, {self.n_out}, {self.gate.name!r})"


def _built(layer: Layer, n_in: int | None) -> int:
    if n_in is None:
        raise ValueError(
            f"{layer!r} infers its input width from its input: build it first "
            "(Network.build, or an estimator's fit)"
        )
    return n_in


def _check_rows(layer: Layer, shape: tuple[int, ...], n_in: int | None, ndim: int = 2) -> None:
    """ValueError unless samples of ``shape`` are rows of ``n_in`` features (any if None)."""
    if len(shape) != 1 or ndim != 2:
        raise ValueError(
            f"{layer!r} expects rows (n_samples, n_features), got samples of shape "
            f"{tuple(shape)}; put Flatten() or a global pool before it"
        )
    if n_in is not None and shape[0] != n_in:
        raise ValueError(f"{layer!r} expects {n_in} input features, got {shape[0]}")
