"""Dense layers: :class:`Dense` (z = a W + b) and :class:`GatedDense` (a GLU-gated
projection).

Imports :mod:`backendnn.activations`, ``_backend`` and :mod:`backendnn.layers.base`.
"""

from __future__ import annotations

from typing import Any

from .. import activations as _act
from .._backend import array_namespace
from .base import INFERENCE, Context, Layer, Param, _add_bias, _promote, bias, positive_int, weight


class Dense(Layer):
    """Fully connected layer z = a W + b (eq. 14 for a batch); ``bias=False`` drops b.

    Its input is rows (n_samples, n_in): other shapes are refused, not broadcast.

    Forward: z = a W + b with a of shape (n_samples, n_in), W of shape (n_in, n_out)
    and b of shape (n_out,) added to every row.

    Backward (eqs. 30-31, 33-35 in matrix form): dW = a^T dz, db = sum over rows
    of dz, da = dz W^T.

    Parameters
    ----------
    n_in : int or None
        Number of input features; None (or ``Dense(n_out)``, one argument) infers it
        from the input when the network is built.
    n_out : int
        Number of outputs (units).
    bias : bool, default True
        Whether the layer has a bias b; without one its parameters are ``(W,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import Dense
    >>> layer = Dense(3, 2)
    >>> layer, layer.param_names, layer.param_shapes()
    (Dense(3, 2), ('W', 'b'), ((3, 2), (2,)))
    >>> Dense(64)  # the input width is inferred at fit (or by Network.build)
    Dense(64)
    >>> W, b = np.ones((3, 2)), np.array([0.5, -0.5])
    >>> z, cache = layer.forward((W, b), np.array([[1.0, 2.0, 3.0]]))
    >>> z.tolist()
    [[6.5, 5.5]]
    >>> da, (dW, db) = layer.backward((W, b), cache, np.ones_like(z))
    >>> da.tolist(), dW.shape, db.tolist()
    ([[2.0, 2.0, 2.0]], (3, 2), [1.0, 1.0])
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
        """W of shape (n_in, n_out) (fans n_in, n_out) and b of shape (n_out,).

        Examples
        --------
        >>> from backendnn.layers import Dense
        >>> Dense(3, 2).param_shapes(), Dense(3, 2, bias=False).param_shapes()
        (((3, 2), (2,)), ((3, 2),))
        """
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
        """z = x W + b (eq. 14, one row per sample).

        Parameters
        ----------
        params : tuple of arrays
            ``(W, b)`` with W of shape (n_in, n_out) and b of shape (n_out,); ``(W,)``
            without a bias.
        x : array of shape (n_samples, n_in)
            The layer input a.

        Returns
        -------
        z : array of shape (n_samples, n_out)
            x W + b.
        cache : array of shape (n_samples, n_in)
            The input x itself, for dW = x^T dz. An x and W of two dtypes are first
            cast to ``result_type(x, W)`` (torch's ``@`` would refuse them).

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Dense
        >>> W, b = np.ones((3, 2)), np.array([0.5, -0.5])
        >>> z, cache = Dense(3, 2).forward((W, b), np.array([[1.0, 2.0, 3.0]]))
        >>> z.tolist()
        [[6.5, 5.5]]
        """
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
        """dx = dz W^T, dW = x^T dz (eq. 34), db = sum over rows of dz (eq. 35).

        Parameters
        ----------
        params : tuple of arrays
            ``(W, b)`` or ``(W,)``, as given to :meth:`forward`.
        cache : array of shape (n_samples, n_in)
            The input x, as returned by :meth:`forward`.
        dz : array of shape (n_samples, n_out)
            dL/dz, the notes' delta^(L+1) (eqs. 32-33) with one row per sample.
        need_dx : bool, default True
            Whether to form dx; False skips the product dz W^T (a network's first
            layer).

        Returns
        -------
        dx : array of shape (n_samples, n_in) or None
            dL/dx = dz W^T, or None when ``need_dx`` is False.
        grads : tuple of arrays
            ``(dW, db)`` with dW of shape (n_in, n_out) and db of shape (n_out,);
            ``(dW,)`` without a bias.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Dense
        >>> W, x = np.ones((3, 2)), np.array([[1.0, 2.0, 3.0]])
        >>> dx, (dW,) = Dense(3, 2, bias=False).backward((W,), x, np.array([[1.0, -1.0]]))
        >>> dx.tolist(), dW.tolist()
        ([[0.0, 0.0, 0.0]], [[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]])
        >>> Dense(3, 2, bias=False).backward((W,), x, np.ones((1, 2)), need_dx=False)[0] is None
        True
        """
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

    One projection p = x W + c with W of shape (n_in, 2h); its columns [:h] give the
    gate input a, columns [h:] the value b, and the output is g(a) * b of width h
    (notes, GLU section: a = x W_a + b_a, b = x W_b + b_b).

    Backward: da = dy g'(a) b, db = dy g(a), dp = [da, db], then as :class:`Dense`:
    dW = x^T dp (so dW_a = x^T (g'(a) b dy) and dW_b = x^T (g(a) dy)).

    Parameters
    ----------
    n_in : int
        Number of input features.
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
    >>> y.tolist()
    [[12.0, 0.0]]
    >>> dx, (dW, dc) = layer.backward((W, c), cache, np.ones_like(y))
    >>> dx.shape, dW.shape, dc.tolist()
    ((1, 3), (3, 4), [4.0, 0.0, 3.0, 0.0])
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
        """W = [W_a, W_b] of shape (n_in, 2 n_out) and c = [b_a, b_b] of shape (2 n_out,).

        Examples
        --------
        >>> from backendnn.layers import GatedDense
        >>> GatedDense(3, 2).param_shapes()
        ((3, 4), (4,))
        """
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

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = g(a) * b with [a, b] = x W + c.

        Parameters
        ----------
        params : tuple of arrays
            ``(W, c)`` with W of shape (n_in, 2 * n_out) and c of shape (2 * n_out,).
        x : array of shape (n_samples, n_in)
            The layer input.

        Returns
        -------
        y : array of shape (n_samples, n_out)
            g(a) * b.
        cache : tuple of arrays
            ``(x, a, b)``, a and b of shape (n_samples, n_out).

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import GatedDense
        >>> W, c = np.ones((3, 4)), np.zeros(4)
        >>> y, cache = GatedDense(3, 2, "reglu").forward((W, c), np.ones((5, 3)))
        >>> y.shape, [t.shape for t in cache]
        ((5, 2), [(5, 3), (5, 2), (5, 2)])
        """
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
        """dp = [dy g'(a) b, dy g(a)], then dx = dp W^T, dW = x^T dp, dc = sum over rows of dp.

        Parameters
        ----------
        params : tuple of arrays
            ``(W, c)``, as given to :meth:`forward`.
        cache : tuple of arrays
            ``(x, a, b)``, as returned by :meth:`forward`.
        dy : array of shape (n_samples, n_out)
            dL/dy, the gradient for the layer output.
        need_dx : bool, default True
            Whether to form dx; False skips the product dp W^T (a network's first
            layer).

        Returns
        -------
        dx : array of shape (n_samples, n_in) or None
            dL/dx = dp W^T, or None when ``need_dx`` is False.
        grads : tuple of arrays
            ``(dW, dc)`` with dW of shape (n_in, 2 * n_out) and dc of shape
            (2 * n_out,).

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import GatedDense
        >>> layer = GatedDense(3, 2, "reglu")
        >>> W, c = np.ones((3, 4)), np.zeros(4)
        >>> y, cache = layer.forward((W, c), np.ones((5, 3)))
        >>> dx, (dW, dc) = layer.backward((W, c), cache, np.ones_like(y), need_dx=False)
        >>> dx is None, dW.shape, dc.tolist()
        (True, (3, 4), [15.0, 15.0, 15.0, 15.0])
        """
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
