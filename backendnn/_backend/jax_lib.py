"""JAX: :class:`JaxLib`, compiled steps (``jax.jit``, ``lax.scan``), arrays sharded over a
mesh (through :mod:`backendnn._backend.sharding`) and XLA's own convolution.

Imports jax (lazily), array_api_compat and :mod:`backendnn._backend.sharding`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from . import sharding
from .library import ArrayLibrary, Sides, c_strides

_NCHW = ("NCHW", "OIHW", "NCHW")


class JaxLib(ArrayLibrary):
    """JAX through ``jax.numpy``: traced and compiled, immutable arrays, asynchronous
    dispatch; float64 only with ``JAX_ENABLE_X64``.

    A compiled step takes its host numbers as device scalars (a Python float would be
    converted at every call) and its loops as ``lax.scan`` (one dispatch per loop). An
    array spread over several devices of a mesh lives on the replicated sharding over them
    (:func:`backendnn._backend.sharding.placement`). The native convolution is
    ``lax.conv_general_dilated``, used for the forward and both gradient convolutions.
    Its ndtr is no fast path: erfc(-z/sqrt 2)/2 loses ~z^2 ulp in float64 (1.6e-13 at
    z = -30), 1.4e-5 in the float32 tail (Cody 4e-7), and it is slower under ``jit``.
    """

    install_hint = 'pip install ".[jax]" (for a GPU: pip install "jax[cuda12]")'
    dlpack = True
    immutable = True
    honours_read_only = True

    def __init__(self) -> None:
        super().__init__("jax")

    def owns(self, x: Any) -> bool:
        return array_api_compat.is_jax_array(x)

    def owns_namespace(self, xp: Any) -> bool:
        return array_api_compat.is_jax_namespace(xp)

    def load(self) -> Any:
        return importlib.import_module("jax.numpy")

    # ------------------------------------------------------------------ devices, moves

    def default_device(self) -> Any:
        return importlib.import_module("jax").devices()[0]

    def device(self, x: Any) -> Any:
        """The device of ``x`` (None for a tracer inside ``jit``); for an array spread over
        several devices, the replicated sharding over them."""
        d = array_api_compat.device(x)
        if hasattr(d, "device_set"):  # a jax.sharding.Sharding, not a Device
            return sharding.placement(d)
        return d

    def to_numpy(self, x: Any) -> np.ndarray:
        return sharding.host_copy(x)  # rows held by other processes are gathered

    def from_numpy(self, a: np.ndarray, xp: Any, device: Any, dtype: Any, copy: bool | None) -> Any:
        """``jax.device_put`` onto ``device``; a sharding is filled straight from the host
        (each process puts its own part). JAX aliases a read-only host array on the CPU
        (measured with JAX 0.10: half the time, as its alignment allows), and the array it
        views may still be written: with ``copy``, such an array is copied first."""
        a = np.asarray(a)
        if copy and not a.flags.writeable:
            a = np.array(a, copy=True)
        if device is None:
            return super().from_numpy(a, xp, device, dtype, copy)
        jax = importlib.import_module("jax")
        if hasattr(device, "device_set"):
            return jax.device_put(np.asarray(a, dtype=np.dtype(dtype)), device)
        return jax.device_put(xp.asarray(a, dtype=dtype), device)

    def writable(self, x: Any) -> bool:
        return False

    def takes_strides(self, shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
        """The C order only (XLA refuses other strides but for transpositions; axes of
        length 1 have any)."""
        return all(n == 1 or s == c for n, s, c in zip(shape, strides, c_strides(shape)))

    def dlpack_import(self, obj: Any, device: Any) -> Any:
        """``jnp.from_dlpack`` onto ``device``: XLA copies a buffer it cannot alias (another
        CPU device than the first, or, measured with JAX 0.10, memory not 64-byte aligned)."""
        return importlib.import_module("jax.numpy").from_dlpack(obj, device=device)

    def has_64bit(self) -> bool:
        return bool(importlib.import_module("jax").config.jax_enable_x64)

    # ------------------------------------------------------------------ compiled steps

    def jit(self, fn: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
        return importlib.import_module("jax").jit(fn, **kwargs)

    def scan(self, body: Callable[[Any, tuple], Any], carry: Any, xs: tuple) -> Any:
        """``jax.lax.scan``: a jitted caller compiles the whole loop once; every ``x`` must
        be an array (:meth:`step_scalars` makes one of host numbers)."""
        lax = importlib.import_module("jax.lax")
        carry, _ = lax.scan(lambda c, x: (body(c, x), None), carry, xs)
        return carry

    def step_scalar(self, value: float, like: Any) -> Any:
        return importlib.import_module("jax.numpy").asarray(value, dtype=like.dtype)

    def step_scalars(self, values: Sequence[float], like: Any) -> Any:
        return importlib.import_module("jax.numpy").asarray(values, dtype=like.dtype)

    def synchronize(self, x: Any) -> None:
        x.block_until_ready()

    def set_matmul_precision(self, precision: str) -> None:
        try:
            jax = importlib.import_module("jax")
        except ImportError:
            return
        value = "highest" if precision == "highest" else "tensorfloat32"
        jax.config.update("jax_default_matmul_precision", value)

    def ndtr(self) -> Callable[[Any], Any] | None:
        return importlib.import_module("jax.scipy.special").ndtr

    # ------------------------------------------------------------------ native convolution

    def conv2d(
        self, x: Any, w: Any, stride: tuple[int, ...], padding: Sides,
        dilation: tuple[int, ...], groups: int,
    ) -> Any:  # fmt: skip
        lax = importlib.import_module("jax.lax")
        return lax.conv_general_dilated(
            x, w, stride, list(padding), rhs_dilation=dilation, dimension_numbers=_NCHW,
            feature_group_count=groups,
        )  # fmt: skip

    def conv2d_input_grad(
        self, dy: Any, w: Any, input_shape: Sequence[int], stride: tuple[int, ...],
        padding: Sides, dilation: tuple[int, ...], groups: int,
    ) -> Any:  # fmt: skip
        """The correlation of dy, dilated by the stride and padded by e - 1 - p (e = d (k - 1)
        + 1 the window's extent, plus the rows the forward windows never reached), with w
        flipped, dilated, and its channel axes swapped within each group."""
        lax = importlib.import_module("jax.lax")
        o, c, kh, kw = w.shape
        rem = _remainders(input_shape[2:], w.shape[2:], stride, padding, dilation)
        extents = [d * (k - 1) + 1 for k, d in zip(w.shape[2:], dilation)]
        pads = [(e - 1 - a, e - 1 - b + r) for e, (a, b), r in zip(extents, padding, rem)]
        # (O, C/G) as (O/G, C): group g's output channels read the O/G inputs of group g
        w = w.reshape(groups, o // groups, c, kh, kw).transpose(1, 0, 2, 3, 4)
        flipped = lax.rev(w.reshape(o // groups, groups * c, kh, kw), (2, 3))
        return lax.conv_general_dilated(
            dy, flipped, (1, 1), pads, lhs_dilation=stride, rhs_dilation=dilation,
            dimension_numbers=("NCHW", "IOHW", "NCHW"), feature_group_count=groups,
        )  # fmt: skip

    def conv2d_weight_grad(
        self, x: Any, dy: Any, weight_shape: Sequence[int], stride: tuple[int, ...],
        padding: Sides, dilation: tuple[int, ...], groups: int,
    ) -> Any:  # fmt: skip
        """The correlation of the padded x with dy dilated by the stride, windows the
        dilation apart, the batch axis contracted; groups of x's channels meet the groups of
        dy's (``batch_group_count``)."""
        lax = importlib.import_module("jax.lax")
        rem = _remainders(x.shape[2:], weight_shape[2:], stride, padding, dilation)
        pads = [(a, b - r) for (a, b), r in zip(padding, rem)]  # the output is then (kh, kw)
        # x's batch axis is the contracted feature, its channels the "batch" of the result
        return lax.conv_general_dilated(
            x, dy, dilation, pads, rhs_dilation=stride,
            dimension_numbers=("CNHW", "IOHW", "CNHW"), batch_group_count=groups,
        )  # fmt: skip


def _remainders(
    size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sides,
    dilation: Sequence[int],
) -> list[int]:  # fmt: skip
    """Rows (columns) of the padded input past the last window: (H + pt + pb - e) mod s,
    e = d (k - 1) + 1 the window's extent."""
    return [
        (n + a + b - d * (k - 1) - 1) % s
        for n, k, s, (a, b), d in zip(size, kernel, stride, padding, dilation)
    ]
