"""The layer protocol (:class:`Layer`), and what the layers with products share: the
in-place bias add and the promotion of operands of two dtypes.

Imports nothing from backendnn.
"""

from __future__ import annotations

from typing import Any


def _add_bias(z: Any, b: Any) -> Any:
    """z + b, in place when that is the same: ``z`` must be the caller's new ``x @ W``, and
    b's dtype must not promote z's (float64 b on float32 z: a new float64 array)."""
    if b.dtype != z.dtype:
        return z + b
    z += b  # on JAX, Python rebinds z to z + b
    return z


def _promote(xp: Any, *arrays: Any) -> tuple[Any, ...]:
    """``arrays`` cast to their common dtype ``xp.result_type(*arrays)``: the standard's
    type promotion, which NumPy's and JAX's ``@`` apply and torch's (and its native
    convolution) refuse. Callers compare dtypes first: arrays of one dtype skip this."""
    dtype = xp.result_type(*arrays)
    return tuple(xp.astype(a, dtype, copy=False) for a in arrays)


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

    def __eq__(self, other: object) -> bool:
        """Layers are equal when they are of one class with equal settings (they hold no
        arrays), so ``get_params`` of an estimator survives a model file."""
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self)))))

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
