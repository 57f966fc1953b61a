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
    """Base class of the layers: no parameters, identity shape.

    A subclass sets ``param_names`` and ``penalized``, and implements
    ``param_shapes``, ``forward`` and ``backward`` with the signatures below. It holds
    no arrays: its parameters are passed in as a tuple, and its backward returns their
    gradients as a tuple of the same shapes::

        y, cache = layer.forward(params, x)
        dx, grads = layer.backward(params, cache, dy)

    Layer takes no constructor parameters.

    Attributes
    ----------
    param_names : tuple of str
        Names of the parameter arrays, in the order of the params tuple.
    penalized : tuple of bool
        Which parameters the L2 penalty applies to (weights, not biases).

    Examples
    --------
    >>> from backendnn.layers import Layer
    >>> layer = Layer()
    >>> layer.param_names, layer.penalized, layer.param_shapes()
    ((), (), ())
    """

    #: names of the parameter arrays, in the order of the params tuple
    param_names: tuple[str, ...] = ()
    #: which parameters the L2 penalty applies to (weights, not biases)
    penalized: tuple[bool, ...] = ()

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of each parameter array, in the order of ``param_names``.

        Returns
        -------
        shapes : tuple of tuple of int
            One shape per parameter; ``()`` for a layer without parameters.

        Examples
        --------
        >>> from backendnn.layers import Layer
        >>> Layer().param_shapes()
        ()
        """
        return ()

    def forward(self, params: tuple, x: Any) -> tuple[Any, Any]:
        """The layer output, and what backward needs (a subclass implements it).

        Parameters
        ----------
        params : tuple of arrays
            The layer's parameters, shaped as :meth:`param_shapes` says (``()`` for a
            layer without parameters).
        x : array of shape (n_samples, ...)
            The layer input, one row per sample.

        Returns
        -------
        y : array of shape (n_samples, ...)
            The layer output.
        cache : object
            What :meth:`backward` needs, to pass to it unchanged.

        Raises
        ------
        NotImplementedError
            Always, in the base class.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Layer
        >>> Layer().forward((), np.ones((2, 3)))
        Traceback (most recent call last):
        ...
        NotImplementedError
        """
        raise NotImplementedError

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """Gradients for the input and the parameters from dL/dy (a subclass implements it).

        Parameters
        ----------
        params : tuple of arrays
            The parameters given to :meth:`forward`.
        cache : object
            The cache :meth:`forward` returned.
        dy : array of shape (n_samples, ...)
            dL/dy, the gradient of the loss for the layer output (shaped like y).
        need_dx : bool, default True
            Whether to form dL/dx; a network's first layer passes False.

        Returns
        -------
        dx : array of shape (n_samples, ...) or None
            dL/dx, shaped like the input x; None may be returned if ``need_dx`` is False.
        grads : tuple of arrays
            dL/dparams, shaped as ``params`` (``()`` for a layer without parameters).

        Raises
        ------
        NotImplementedError
            Always, in the base class.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Layer
        >>> Layer().backward((), None, np.ones((2, 3)))
        Traceback (most recent call last):
        ...
        NotImplementedError
        """
        raise NotImplementedError


class Dense(Layer):
    """Fully connected layer z = a W + b (eq. 14 for a batch); ``bias=False`` drops b.

    Forward: z = a W + b with a of shape (n_samples, n_in), W of shape (n_in, n_out)
    and b of shape (n_out,) added to every row.

    Backward (eqs. 30-31, 33-35 in matrix form): dW = a^T dz, db = sum over rows
    of dz, da = dz W^T.

    Parameters
    ----------
    n_in : int
        Number of input features.
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
    >>> W, b = np.ones((3, 2)), np.array([0.5, -0.5])
    >>> z, cache = layer.forward((W, b), np.array([[1.0, 2.0, 3.0]]))
    >>> z.tolist()
    [[6.5, 5.5]]
    >>> da, (dW, db) = layer.backward((W, b), cache, np.ones_like(z))
    >>> da.tolist(), dW.shape, db.tolist()
    ([[2.0, 2.0, 2.0]], (3, 2), [1.0, 1.0])
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True):
        self.n_in, self.n_out, self.bias = int(n_in), int(n_out), bool(bias)
        self.param_names = ("W", "b") if bias else ("W",)
        self.penalized = (True, False) if bias else (True,)

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shapes of W and b.

        Returns
        -------
        shapes : tuple of tuple of int
            ``((n_in, n_out), (n_out,))``, or ``((n_in, n_out),)`` without a bias.

        Examples
        --------
        >>> from backendnn.layers import Dense
        >>> Dense(3, 2).param_shapes(), Dense(3, 2, bias=False).param_shapes()
        (((3, 2), (2,)), ((3, 2),))
        """
        return ((self.n_in, self.n_out), (self.n_out,))[: len(self.param_names)]

    def forward(self, params: tuple, x: Any) -> tuple[Any, Any]:
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
            The input x itself, for dW = x^T dz.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Dense
        >>> W, b = np.ones((3, 2)), np.array([0.5, -0.5])
        >>> z, cache = Dense(3, 2).forward((W, b), np.array([[1.0, 2.0, 3.0]]))
        >>> z.tolist()
        [[6.5, 5.5]]
        """
        z = x @ params[0]
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
        dx = dz @ params[0].T if need_dx else None
        dW = cache.T @ dz
        return dx, ((dW, array_namespace(dz).sum(dz, axis=0)) if self.bias else (dW,))

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}" + ("" if self.bias else ", bias=False") + ")"


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

    def forward(self, params: tuple, z: Any) -> tuple[Any, Any]:
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

    param_names = ("W", "b")
    penalized = (True, False)

    def __init__(self, n_in: int, n_out: int, gate: Any = "swiglu"):
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.gate = _act.get(gate)
        if not _act.is_gated(self.gate):
            raise ValueError(f"GatedDense needs a GLU gate ({', '.join(_act.GATED)}), got {gate!r}")

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shapes of W = [W_a, W_b] and c = [b_a, b_b].

        Returns
        -------
        shapes : tuple of tuple of int
            ``((n_in, 2 * n_out), (2 * n_out,))``.

        Examples
        --------
        >>> from backendnn.layers import GatedDense
        >>> GatedDense(3, 2).param_shapes()
        ((3, 4), (4,))
        """
        return (self.n_in, 2 * self.n_out), (2 * self.n_out,)

    def forward(self, params: tuple, x: Any) -> tuple[Any, Any]:
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
        W, c = params
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
        dx = dp @ W.T if need_dx else None
        return dx, (x.T @ dp, xp.sum(dp, axis=0))

    def __repr__(self) -> str:
        return f"GatedDense({self.n_in}, {self.n_out}, {self.gate.name!r})"


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

    def forward(self, params: tuple, x: Any) -> tuple[Any, Any]:
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
        return xp.reshape(x, (x.shape[0], -1)), tuple(x.shape)

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
