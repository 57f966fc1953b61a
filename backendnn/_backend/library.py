"""What an array library does where the Array API standard is silent: :class:`ArrayLibrary`.

One object per array library (as thinc's ``Ops``): ``NumpyLib``, ``CupyLib``, ``JaxLib``,
``TorchLib`` and ``StrictLib``, each in a module of its own, hold its namespace quirks,
native fast paths, device moves, synchronisation, compilation, 64-bit support and matmul
precision. This base class is the portable behaviour they share, written with the
standard (and host NumPy) only: a library overrides what it does otherwise. A library
backendnn does not know (an array type with ``__array_namespace__``) gets this base
class itself, named after its module.

Imports NumPy and array_api_compat; nothing of backendnn.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

#: zeros (before, after) on each spatial axis of a convolution: ((top, bottom), (left, right))
Sides = tuple[tuple[int, int], ...]


class ArrayLibrary:
    """The portable behaviour of an array library; each method says what a library
    overrides it for.

    Parameters
    ----------
    name : str
        The backend name (one of ``BACKENDS`` for the known libraries, else the module
        name of the array type).
    """

    #: the command that installs the library, for the error of a missing one
    install_hint = ""
    #: dtype names for which :meth:`ndtr` is the fast path of ``special.ndtr``: measured
    #: faster than the portable ``special.ndtr_cody`` AND as accurate as the tests demand
    #: of it (benchmarks/NOTES.md, "Native ndtr fast path"; ``python benchmarks/ndtr.py``)
    ndtr_fast_dtypes: tuple[str, ...] = ()

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # ------------------------------------------------------------------ recognising

    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this library (decided once per array type)."""
        return False

    def owns_namespace(self, xp: Any) -> bool:
        """Whether ``xp`` is a namespace of this library (decided once per namespace)."""
        return False

    def load(self) -> Any:
        """Import the library and return its Array API namespace (any exception if it
        cannot be used here)."""
        raise ImportError(f"backendnn does not know how to load {self.name!r}")

    def namespace(self) -> Any:
        """The Array API namespace, imported at each call (a library removed from
        ``sys.modules`` is then missing).

        Raises
        ------
        ImportError
            If the library is not installed or has no device here; the message names the
            package to install.
        """
        try:
            return self.load()
        except Exception as exc:  # ImportError, or CUDA runtime errors from CuPy
            raise ImportError(
                f"backend {self.name!r} is not available here ({type(exc).__name__}: {exc}); "
                f"install it with: {self.install_hint}"
            ) from exc

    # ------------------------------------------------------------------ devices, moves

    def default_device(self) -> Any:
        """The device new arrays go to: the GPU where the library has one."""
        return array_api_compat.device(self.namespace().asarray(0.0))

    def device(self, x: Any) -> Any:
        """The device ``x`` lives on."""
        return array_api_compat.device(x)

    def to_numpy(self, x: Any) -> np.ndarray:
        """Array ``x`` of this library as a NumPy array on the host."""
        return np.asarray(x)

    def package(self, purpose: str) -> Any:
        """The library's own package (its module of the same name), for code that reads
        and builds its objects (``torch.nn`` modules); ``ImportError`` naming ``purpose``
        and the install hint without it."""
        try:
            return importlib.import_module(self.name)
        except ImportError:
            raise ImportError(f"{purpose} needs {self.name}: {self.install_hint}") from None

    def from_numpy(self, a: np.ndarray, xp: Any, device: Any, dtype: Any, copy: bool | None) -> Any:
        """Host array ``a`` as an array of namespace ``xp`` of dtype ``dtype`` on ``device``;
        ``copy=None`` lets the result share ``a``'s memory where the library can."""
        host = np.ascontiguousarray(a).reshape(np.shape(a))  # a 0-d array stays 0-d
        return xp.asarray(host, dtype=dtype, device=device, copy=copy)

    # ------------------------------------------------------------------ sharing memory (DLPack)
    # The facts :mod:`backendnn._backend.moves` decides from whether a move may share memory.

    #: whether moves may share memory with the library through DLPack (the known libraries
    #: that can say so; an unknown one is copied)
    dlpack = False
    #: whether its arrays are immutable by contract (JAX): another library must not write
    #: into them, nor may their buffer be one another library writes into
    immutable = False
    #: whether an import of a read-only buffer comes back read-only (or is never written)
    honours_read_only = False

    def writable(self, x: Any) -> bool:
        """Whether the memory of ``x`` may be written (a read-only NumPy array may not)."""
        return True

    def lazy_view(self, x: Any) -> str | None:
        """Why the export of ``x`` would be a new buffer, not its memory (None here)."""
        return None

    def strides(self, x: Any) -> tuple[int, ...] | None:
        """The strides of ``x`` in elements (None where one is no whole number of them):
        here those of the C order, for a library whose arrays have no other (JAX)."""
        return c_strides(tuple(x.shape))

    def takes_strides(self, shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
        """Whether :meth:`dlpack_import` takes a buffer of these strides (in elements)
        without copying or failing: non-negative ones here (torch aborts the process on a
        negative one, ``torch.from_dlpack`` of ``a[::-1]``: measured with torch 2.13)."""
        return all(s >= 0 for s in strides)

    def exported_device(self, x: Any) -> tuple[int, int] | None:
        """The DLPack ``(device type, id)`` of ``x``, or None where it cannot be exported."""
        try:
            kind, index = x.__dlpack_device__()
        except (AttributeError, BufferError, TypeError, ValueError, RuntimeError):
            return None
        return int(kind), int(index)

    def dlpack_device(self, device: Any) -> tuple[int, int] | None:
        """The DLPack ``(device type, id)`` of this library's ``device``, or None."""
        try:
            return self.exported_device(self.namespace().empty((0,), device=device))
        except (TypeError, ValueError, RuntimeError):
            return None

    def dtype_name(self, x: Any) -> str | None:
        """The standard's name of the dtype of ``x`` (None for another dtype)."""
        dtypes = self.namespace().__array_namespace_info__().dtypes()
        return next((name for name, dtype in dtypes.items() if dtype == x.dtype), None)

    def dlpack_export(self, x: Any) -> Any:
        """What ``from_dlpack`` takes of ``x``: ``x`` itself in most libraries."""
        return x

    def dlpack_import(self, obj: Any, device: Any) -> Any:
        """An array of this library sharing ``obj``'s memory (``obj`` is on ``device``)."""
        return self.namespace().from_dlpack(obj)

    def contiguous_copy(self, x: Any) -> Any:
        """A C-ordered copy of ``x`` on its device, which nothing else references."""
        return self.namespace().asarray(x, copy=True)

    def copy(self, x: Any) -> Any:
        """A copy of ``x`` (an array of this library) on its device."""
        return self.namespace().asarray(x, copy=True)

    def has_64bit(self) -> bool:
        """Whether the library stores 64-bit types."""
        return True

    def index_dtype(self, xp: Any) -> Any:
        """The default integer dtype of namespace ``xp``."""
        return xp.__array_namespace_info__().default_dtypes()["integral"]

    # ------------------------------------------------------------------ compiled steps

    def jit(self, fn: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
        """``fn`` compiled: unchanged in an eager library (``kwargs`` ignored)."""
        return fn

    def scan(self, body: Callable[[Any, tuple], Any], carry: Any, xs: tuple) -> Any:
        """``carry = body(carry, (x0[i], x1[i], ...))`` over the leading axis of ``xs``: a
        Python loop in an eager library."""
        for i in range(xs[0].shape[0]):
            carry = body(carry, tuple(x[i] if isinstance(x, list) else x[i, ...] for x in xs))
        return carry

    def step_scalar(self, value: float, like: Any) -> Any:
        """Host number ``value`` as a compiled step's argument: the number itself (a device
        scalar would cost a host-to-device copy per step)."""
        return value

    def step_scalars(self, values: Sequence[float], like: Any) -> Any:
        """Host numbers to scan over (see :meth:`scan`): the list itself."""
        return list(values)

    def synchronize(self, x: Any) -> None:
        """Block until the device work producing ``x`` is done: nothing to wait for in a
        library that computes synchronously."""

    def set_matmul_precision(self, precision: str) -> None:
        """Apply ``"highest"`` or ``"tf32"`` float32 products: nothing to set where the
        library has no TF32 path."""

    # ------------------------------------------------------------------ native fast paths

    def ndtr(self) -> Callable[[Any], Any] | None:
        """The library's own standard normal CDF, or None (the standard has none)."""
        return None

    def conv2d(
        self, x: Any, w: Any, stride: tuple[int, ...], padding: Sides,
        dilation: tuple[int, ...], groups: int,
    ) -> Any:  # fmt: skip
        """The library's own 2-d convolution of NCHW ``x`` by (O, C/G, kh, kw) ``w`` (operands
        of one dtype; ``padding`` ((pt, pb), (pl, pr))), or None: the caller then takes the
        portable im2col path."""
        return None

    def conv2d_input_grad(
        self, dy: Any, w: Any, input_shape: Sequence[int], stride: tuple[int, ...],
        padding: Sides, dilation: tuple[int, ...], groups: int,
    ) -> Any:  # fmt: skip
        """dL/dx of :meth:`conv2d` from dL/dy ``dy`` by the library's own convolution, or None."""
        return None

    def conv2d_weight_grad(
        self, x: Any, dy: Any, weight_shape: Sequence[int], stride: tuple[int, ...],
        padding: Sides, dilation: tuple[int, ...], groups: int,
    ) -> Any:  # fmt: skip
        """dL/dw of :meth:`conv2d` from dL/dy ``dy`` by the library's own convolution, or None."""
        return None

    def max_pool2d(self, x: Any, kernel: Sequence[int], stride: Sequence[int]) -> Any:
        """``(y, indices)`` from the library's own max-pool of NCHW ``x``, or None."""
        return None

    def max_pool2d_backward(
        self, dy: Any, x: Any, indices: Any, kernel: Sequence[int], stride: Sequence[int]
    ) -> Any:
        """dL/dx of :meth:`max_pool2d` from dL/dy ``dy`` and its ``indices``."""
        raise TypeError(
            f"{self.name} has no native max-pool: its backward needs the indices of "
            "native_max_pool2d's result"
        )


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The strides (in elements) of the C order of ``shape``."""
    return tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))


def element_strides(x: Any) -> tuple[int, ...] | None:
    """The byte strides of a NumPy or CuPy array ``x`` in elements (None if one is no
    whole number of elements)."""
    size = x.itemsize
    return None if any(s % size for s in x.strides) else tuple(s // size for s in x.strides)
