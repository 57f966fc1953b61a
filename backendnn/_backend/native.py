"""Native fast paths of the array libraries, each behind one function that returns
``None`` where a library has none, so the caller falls back to its portable Array API code:
the normal CDF (``special.ndtr``'s fast path), the 2-d convolution with both of its
gradient convolutions (``layers.Conv2d``) and the max-pool (``layers.MaxPool2d``).

Part of the backend layer: it may import array libraries by name (lazily). Imports
:mod:`backendnn._backend` only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from . import _library_name, namespace_name

# --------------------------------------------------------------------------- native normal CDF

# Where the library's own ndtr is the fast path of ``special.ndtr``, by dtype name: measured
# faster than the portable ``special.ndtr_cody`` AND as accurate as the tests demand of it
# (benchmarks/NOTES.md, "Native ndtr fast path"; ``python benchmarks/ndtr.py``). Only SciPy's
# float32 ndtr qualifies (it computes in float64: 2-7x faster, 6e-8 relative). Not: float64
# SciPy and JAX (erfc(-z/sqrt 2)/2 loses ~z^2 ulp, 1.6e-13 at z = -30 against the 1e-13 bar;
# JAX's is also slower under jit), float32 JAX (1.4e-5 in the tail, Cody 4e-7), torch
# ((1 + erf)/2 cancels to 0 below z = -5.4 in float32, -8.4 in float64), CuPy (not measured).
_NDTR_FAST_PATH: dict[str, tuple[str, ...]] = {"numpy": ("float32",)}
_ndtr_cache: dict[tuple[Any, Any], Callable[[Any], Any] | None] = {}


def _library_ndtr(name: str) -> Callable[[Any], Any] | None:
    try:
        if name == "numpy":
            return importlib.import_module("scipy.special").ndtr
        if name == "cupy":
            return importlib.import_module("cupyx.scipy.special").ndtr
        if name == "jax":
            return importlib.import_module("jax.scipy.special").ndtr
        if name == "torch":
            return importlib.import_module("torch.special").ndtr
    except ImportError:  # NumPy without SciPy
        return None
    return None  # array-api-strict: the standard has none


def native_ndtr(xp: Any, dtype: Any = None) -> Callable[[Any], Any] | None:
    """The array library's own standard normal CDF (ndtr) for namespace ``xp``, or ``None``.

    ``scipy.special.ndtr`` for NumPy (``None`` if SciPy is not installed),
    ``cupyx.scipy.special.ndtr``, ``jax.scipy.special.ndtr``, ``torch.special.ndtr``;
    ``None`` for array-api-strict.

    With ``dtype`` (an ``xp`` dtype), only where that function is the fast path of
    :func:`backendnn.special.ndtr` for the dtype: measured faster than the portable
    ``special.ndtr_cody`` and accurate to the same bar; ``None`` elsewhere.
    """
    key = (xp, dtype)
    if key not in _ndtr_cache:
        name = namespace_name(xp)
        fn = _library_ndtr(name)
        if dtype is not None and not any(
            dtype == getattr(xp, d) for d in _NDTR_FAST_PATH.get(name, ())
        ):
            fn = None
        _ndtr_cache[key] = fn
    return _ndtr_cache[key]


# --------------------------------------------------------------------------- native convolution

# The library's own 2-d convolution (NCHW input, (out, in, kh, kw) weights, zero padding),
# used by ``layers.Conv2d`` for its forward and both backward convolutions; ``None`` where a
# library has none (NumPy, CuPy, array-api-strict) or the operands' dtypes differ (the
# portable im2col path then promotes as ``@`` does). Each result equals the portable path's
# (tests/test_conv.py, 1e-12 in float64). Not the autograd of the library: each backward is
# the convolution its gradient is, written out.


def _native_conv_library(*arrays: Any) -> str | None:
    """The library of ``arrays[0]`` where it has a native convolution ("torch", "jax") and
    every array shares its dtype; else None."""
    name = _library_name(arrays[0])
    if name not in ("torch", "jax") or any(a.dtype != arrays[0].dtype for a in arrays[1:]):
        return None
    return name


def _remainders(
    size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int]
) -> list[int]:
    """Rows (columns) of the padded input past the last window: (H + 2p - k) mod s."""
    return [(n + 2 * p - k) % s for n, k, s, p in zip(size, kernel, stride, padding)]


def native_conv2d(x: Any, w: Any, stride: tuple[int, int], padding: tuple[int, int]) -> Any:
    """y[n, o] = sum_c x[n, c] (cross-correlated with) w[o, c], or ``None`` (no native path).

    ``x`` of shape (N, C, H, W), ``w`` of shape (O, C, kh, kw); zero padding ``padding``
    on each side, ``stride`` between windows; y of shape (N, O, H', W'),
    H' = (H + 2 ph - kh) // sh + 1. ``torch.nn.functional.conv2d`` or
    ``jax.lax.conv_general_dilated``; no bias (the layer adds it).
    """
    lib = _native_conv_library(x, w)
    if lib == "torch":
        F = importlib.import_module("torch.nn.functional")
        return F.conv2d(x, w, None, stride, padding)
    if lib == "jax":
        lax = importlib.import_module("jax.lax")
        pads = [(p, p) for p in padding]
        return lax.conv_general_dilated(x, w, stride, pads, dimension_numbers=_NCHW)
    return None


def native_conv2d_input_grad(
    dy: Any, w: Any, input_shape: Sequence[int], stride: tuple[int, int], padding: tuple[int, int]
) -> Any:
    """dx = the transposed convolution of dy by w, or ``None`` (no native path).

    dx[n, c, h, v] = sum_{o, i, j} dy[n, o, h', v'] w[o, c, i, j] over h = s h' + i - p:
    the correlation of dy, dilated by the stride and padded by k - 1 - p (plus the
    rows the forward windows never reached), with w flipped and its two channel axes
    swapped. ``torch.nn.grad.conv2d_input`` or ``jax.lax.conv_general_dilated``.
    """
    lib = _native_conv_library(dy, w)
    if lib == "torch":
        grad = importlib.import_module("torch.nn.grad")
        return grad.conv2d_input(tuple(input_shape), w, dy, stride, padding)
    if lib == "jax":
        lax = importlib.import_module("jax.lax")
        kernel = tuple(w.shape[2:])
        rem = _remainders(input_shape[2:], kernel, stride, padding)
        pads = [(k - 1 - p, k - 1 - p + r) for k, p, r in zip(kernel, padding, rem)]
        flipped = lax.rev(w, (2, 3))  # (O, C, kh, kw): O is the input feature here
        return lax.conv_general_dilated(
            dy, flipped, (1, 1), pads, lhs_dilation=stride,
            dimension_numbers=("NCHW", "IOHW", "NCHW"),
        )  # fmt: skip
    return None


def native_conv2d_weight_grad(
    x: Any, dy: Any, weight_shape: Sequence[int], stride: tuple[int, int], padding: tuple[int, int]
) -> Any:
    """dw[o, c, i, j] = sum_{n, h', v'} dy[n, o, h', v'] x_pad[n, c, s h' + i, s v' + j], or
    ``None`` (no native path).

    The correlation of the padded x with dy dilated by the stride, the batch axis
    contracted. ``torch.nn.grad.conv2d_weight`` or ``jax.lax.conv_general_dilated``.
    """
    lib = _native_conv_library(x, dy)
    if lib == "torch":
        grad = importlib.import_module("torch.nn.grad")
        return grad.conv2d_weight(x, tuple(weight_shape), dy, stride, padding)
    if lib == "jax":
        lax = importlib.import_module("jax.lax")
        rem = _remainders(x.shape[2:], weight_shape[2:], stride, padding)
        pads = [(p, p - r) for p, r in zip(padding, rem)]  # the output is then (kh, kw)
        # x's batch axis is the contracted feature, its channels the "batch" of the result
        return lax.conv_general_dilated(
            x, dy, (1, 1), pads, rhs_dilation=stride,
            dimension_numbers=("CNHW", "IOHW", "CNHW"),
        )  # fmt: skip
    return None


_NCHW = ("NCHW", "OIHW", "NCHW")


# --------------------------------------------------------------------------- native max-pool

# torch's own max-pool and its backward (one kernel each, where the portable path makes a
# pass per window offset); ``None`` elsewhere. Both keep the first maximum of a window in
# row-major order, as the portable ``MaxPool2d`` does (tests/test_conv.py checks they agree),
# and the backward accumulates where overlapping windows share their maximum.


def native_max_pool2d(x: Any, kernel: Sequence[int], stride: Sequence[int]) -> Any:
    """``(y, indices)`` from the library's max-pool of NCHW ``x`` (no padding), or ``None``."""
    if _library_name(x) != "torch":
        return None
    functional = importlib.import_module("torch.nn.functional")
    return functional.max_pool2d(x, tuple(kernel), tuple(stride), return_indices=True)


def native_max_pool2d_backward(
    dy: Any, x: Any, indices: Any, kernel: Sequence[int], stride: Sequence[int]
) -> Any:
    """dL/dx of :func:`native_max_pool2d` from dL/dy ``dy`` and its ``indices``."""
    aten = importlib.import_module("torch").ops.aten
    return aten.max_pool2d_with_indices_backward(
        dy, x, list(kernel), list(stride), [0, 0], [1, 1], False, indices
    )
