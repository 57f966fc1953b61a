"""Parameters as plain data: a list with one tuple of arrays per layer (empty for layers
without parameters), and their flat-vector form for L-BFGS and gradient checking.

Imports :mod:`backendnn._backend` only.
"""

from __future__ import annotations

from typing import Any

from ._backend import array_namespace

Params = list  # list[tuple[Array, ...]], one tuple per layer


def flatten_params(params: Params) -> Any:
    """All parameter arrays concatenated into one vector (layer order, W before b).

    Each array is flattened in row-major order. L-BFGS and gradient checking work on
    this vector; :func:`unflatten_params` gives the structure back.

    Parameters
    ----------
    params : list of tuple of arrays
        The parameters, as returned by ``Network.init`` (or gradients of that form).

    Returns
    -------
    vector : array of shape (n_params,)
        The concatenation, in the namespace and dtype of the arrays.

    Raises
    ------
    TypeError
        If ``params`` holds no array, or arrays of two libraries or devices.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import flatten_params
    >>> params = [(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0, 6.0])), ()]
    >>> flatten_params(params).tolist()
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    """
    arrays = [a for p in params for a in p]
    xp = array_namespace(*arrays)
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays])


def unflatten_params(vector: Any, like: Params) -> Params:
    """The inverse of :func:`flatten_params`: slices of ``vector`` shaped as ``like``.

    Parameters
    ----------
    vector : array of shape (n_params,)
        A vector laid out as :func:`flatten_params` lays out ``like``.
    like : list of tuple of arrays
        Parameters giving the structure and shapes (their values are not read).

    Returns
    -------
    params : list of tuple of arrays
        Arrays of ``vector``'s namespace and dtype, shaped as those of ``like``.

    Raises
    ------
    TypeError
        If ``vector`` is not an array of a supported library.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import flatten_params, unflatten_params
    >>> like = [(np.zeros((2, 2)), np.zeros(2)), ()]
    >>> params = unflatten_params(np.arange(6.0), like)
    >>> params[0][0].tolist(), params[0][1].tolist(), params[1]
    ([[0.0, 1.0], [2.0, 3.0]], [4.0, 5.0], ())
    >>> flatten_params(params).tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    xp = array_namespace(vector)
    out: Params = []
    start = 0
    for p in like:
        arrays = []
        for a in p:
            size = 1
            for d in a.shape:
                size *= d
            arrays.append(xp.reshape(vector[start : start + size], tuple(a.shape)))
            start += size
        out.append(tuple(arrays))
    return out
