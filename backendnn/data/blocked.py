"""The loss of a data set held as blocks of rows, summed block by block: for L-BFGS on
sources that never hold every row on the device at once (``sparse.py``, ``dask.py``).

Imports nothing of backendnn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def blocked_objective(
    make: Callable[[float], Callable],
    alpha: float,
    sizes: list[float],
    blocks: Callable[[list[bool]], Iterable[tuple[Any, Any, Any]]],
) -> Callable[[Any], tuple[Any, Any]]:
    """The penalised loss over all samples and its flat gradient, as a function of the
    parameter vector. ``make(a)`` is the objective ``(vector, X, Y, W) -> (value,
    gradient)`` of one batch at penalty ``a``; ``sizes[b]`` is block b's weight sum S_b
    (its row count when unweighted; S in all); ``blocks(used)`` yields the device arrays
    (X, Y, W) of the blocks whose ``used`` flag is set, in order.

    With B blocks of positive weight, block b's result at penalty alpha/B scaled by S_b/S
    sums to the whole set's: its weighted mean loss times S_b/S, and
    alpha/(2 S_b) ||W||^2 / B times S_b/S = alpha/(2 S) ||W||^2 / B. Blocks of zero
    weight are left out.
    """
    total = sum(sizes)
    used = [size > 0 for size in sizes]
    shares = [size / total for size in sizes if size > 0]
    f = make(alpha / len(shares))

    def objective(vector: Any) -> tuple[Any, Any]:
        value = grad = None
        for (X, Y, W), share in zip(blocks(used), shares):
            v, g = f(vector, X, Y, W)
            value = v * share if value is None else value + v * share
            grad = g * share if grad is None else grad + g * share
        return value, grad

    return objective
