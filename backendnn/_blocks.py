"""Prediction in bounded memory: X split into blocks of rows whose forward pass fits in
the memory budget (:mod:`backendnn._memory`), each block's output computed alone and
the outputs concatenated.

A block of b rows holds at once, per sample, at most: its input (a copy where slicing
copies, as JAX's), and for the layer running, that layer's input, output and workspace
(:meth:`~backendnn.layers.Layer.workspace`: im2col patches, padded copies, a pool's
running maximum, an activation's temporaries). With s elements per sample and itemsize
bytes an element, ``rows = max(1, budget // (s * itemsize))``. Inference treats every
sample alone (batch norm uses its running statistics), so the blocks' outputs are one
pass's to rounding.

Imports :mod:`backendnn._backend`, ``_memory`` and ``layers.base``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

from ._backend import array_namespace
from ._memory import get_memory_budget
from .layers.base import Layer, build_chain, size


def sample_elements(layers: Sequence[Layer], input_shape: tuple[int, ...], extra: int = 0) -> int:
    """The elements one sample's inference forward through ``layers`` holds at once: its
    input, plus the largest sum over the layers of input, output and workspace, plus
    ``extra`` (what the caller does with the output)."""
    shape = tuple(int(d) for d in input_shape)
    built, _ = build_chain(layers, shape, "layer ")
    peak = 0
    for layer in built:
        next_shape = tuple(layer.output_shape(shape))
        peak = max(peak, size(shape) + size(next_shape) + layer.workspace(shape))
        shape = next_shape
    return size(input_shape) + peak + extra


def check_batch_size(batch_size: Any) -> int | None:
    """``batch_size`` if it is a positive int or None, else a ValueError saying so."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise ValueError(
            f"batch_size must be a positive int (rows per block) or None (blocks that fit "
            f"in the memory budget, backendnn.get_memory_budget()); got {batch_size!r}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}")
    return int(batch_size)


def block_rows(
    layers: Sequence[Layer],
    input_shape: tuple[int, ...],
    itemsize: int,
    batch_size: Any = None,
    extra: int = 0,
) -> int:
    """The rows of a block: ``batch_size`` if given, else as many as fit in the memory
    budget (at least one), ``itemsize`` bytes an element (see :func:`sample_elements`)."""
    rows = check_batch_size(batch_size)
    if rows is not None:
        return rows
    per_sample = sample_elements(layers, input_shape, extra) * itemsize
    return max(1, get_memory_budget() // max(1, per_sample))


def itemsize(xp: Any, *arrays: Any) -> int:
    """The bytes of the widest element of ``arrays`` (8 for integers and booleans: the
    computation runs in the parameters' floating dtype, at most 8 bytes)."""
    return max(
        (xp.finfo(a.dtype).bits // 8 if xp.isdtype(a.dtype, "real floating") else 8) for a in arrays
    )


def map_rows(fn: Callable[[Any], Any], X: Any, rows: int) -> Any:
    """``fn`` (rows of X -> an array with one row per sample) applied to blocks of ``rows``
    rows of X, the outputs concatenated along the first axis (one call when X has no
    more rows)."""
    n = X.shape[0]
    if n <= rows:
        return fn(X)
    # the stop clamped: the standard leaves out-of-bounds stops unspecified
    outs = [fn(X[start : min(start + rows, n), ...]) for start in range(0, n, rows)]
    return array_namespace(outs[0]).concat(outs, axis=0)
