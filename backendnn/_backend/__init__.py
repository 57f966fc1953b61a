"""The backend layer: the one package of backendnn that knows array libraries by name.

Everything else is written against the Python Array API standard (2024.12) and gets its
namespace ``xp`` from its input arrays through :func:`array_namespace`. What the standard
lacks and every algorithm needs is one function here, which asks the array's (or the
namespace's) library object: choosing a backend by name, moving arrays between
libraries, host random numbers, compilation (``jax.jit``, ``lax.scan``), device
synchronisation, matmul precision, and the libraries' native fast paths (normal CDF,
convolutions, max-pool), each with its portable fallback in the caller.

The modules, ground floor first (each imports only those above it in this list):

- ``sharding``: JAX meshes (placement, the row gather of a sharded epoch);
- ``splits``: scikit-learn's early-stopping split, on host NumPy;
- ``library``: :class:`ArrayLibrary`, the portable behaviour of an array library;
- ``numpy_lib``, ``cupy_lib``, ``jax_lib``, ``torch_lib``, ``strict_lib``: one object per
  library (``NumpyLib``, ...), overriding what it does otherwise;
- ``registry``: the objects by backend name, array type and namespace, and
  :func:`array_namespace`;
- ``moves``: whether a move between libraries shares memory (DLPack) or copies;
- this module: the public functions.

Imports array libraries (by name, lazily) and nothing from the rest of backendnn.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import array_api_compat
import numpy as np

from . import moves
from . import sharding as sharding
from .library import ArrayLibrary as ArrayLibrary
from .library import Sides
from .registry import BACKENDS as BACKENDS
from .registry import LIBRARIES as LIBRARIES
from .registry import array_namespace as array_namespace
from .registry import device as device
from .registry import is_array as is_array
from .registry import library as library
from .registry import library_for as library_for
from .registry import library_of as library_of
from .registry import namespace_name as namespace_name

_current: contextvars.ContextVar[str] = contextvars.ContextVar("backendnn_backend", default="numpy")
_device = device  # for functions with a parameter named device


# --------------------------------------------------------------------------- choosing a backend


def namespace(name: str | None = None) -> Any:
    """The Array API namespace of backend ``name`` (default: the current backend).

    Raises
    ------
    ValueError
        If ``name`` is not one of ``BACKENDS``.
    ImportError
        If the library is not installed or (CuPy) no CUDA device is visible; the
        message says which package to install.
    """
    return library(name or get_backend()).namespace()


def default_device(name: str | None = None) -> Any:
    """The device new arrays of backend ``name`` go to: the GPU where the library has one."""
    lib = library(name or get_backend())
    lib.namespace()  # the install hint if it is missing
    return lib.default_device()


def set_backend(name: str) -> None:
    """Make ``name`` the backend used where no input array decides it.

    Raises ``ImportError`` naming the package to install if the library is missing.
    """
    library(name).namespace()
    _current.set(name)


def get_backend() -> str:
    """The name of the current backend (``"numpy"`` unless changed)."""
    return _current.get()


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Any]:
    """Context manager selecting backend ``name`` inside its block; yields its namespace."""
    xp = library(name).namespace()
    token = _current.set(name)
    try:
        yield xp
    finally:
        _current.reset(token)


# --------------------------------------------------------------------------- moving arrays


def to_numpy(x: Any) -> np.ndarray:
    """Any supported array (or a nested list) as a NumPy array on the host; a NumPy
    array is returned as is.

    A host array shares its memory (DLPack) where :func:`to_backend` would: a CPU torch
    tensor's result is writable and shares, a JAX array's on the CPU shares read-only
    (the README's table "Which moves share memory"). Elsewhere a copy.
    """
    if isinstance(x, np.ndarray):
        return x
    if not is_array(x):
        return np.asarray(x)
    shared = moves.move(x, library("numpy"), "cpu", None)
    return library_of(x).to_numpy(x) if shared is None else shared


def from_numpy(
    a: Any, *, xp: Any, device: Any = None, dtype: Any = None, copy: bool | None = True
) -> Any:
    """Move host data ``a`` (NumPy array or nested lists) into namespace ``xp`` on ``device``.

    The dtype is kept (or set to ``dtype``, given as an ``xp`` dtype) explicitly:
    torch's ``asarray`` would otherwise turn float64 into float32. ``copy=None``: the
    result may share ``a``'s memory (NumPy, torch on the CPU), for a host array that
    nothing changes afterwards.
    """
    a = np.asarray(a)
    if not a.dtype.isnative:  # torch and JAX take native byte order only
        a = a.astype(a.dtype.newbyteorder("="))
    lib = library_for(xp)
    if dtype is None:
        name = a.dtype.name
        if not lib.has_64bit():  # JAX without JAX_ENABLE_X64: 32-bit types, no warnings
            name = name.replace("64", "32")
        dtype = getattr(xp, name)
    return lib.from_numpy(a, xp, device, dtype, copy)


def has_64bit(xp: Any) -> bool:
    """Whether namespace ``xp`` stores 64-bit types (JAX only with ``JAX_ENABLE_X64``)."""
    return library_for(xp).has_64bit()


def index_dtype(xp: Any) -> Any:
    """The default integer dtype of ``xp`` (int64, or int32 on JAX without x64)."""
    return library_for(xp).index_dtype(xp)


def to_backend(
    x: Any, name: str | None = None, device: Any = None, *, copy: bool | None = None
) -> Any:
    """Move array ``x`` to backend ``name`` (default: the current one) and ``device``
    (default: the backend's default device).

    ``copy=None``: ``x`` itself if it is already there; between libraries on one device
    the result shares ``x``'s memory through DLPack where that is safe (NumPy and torch
    on the CPU, CuPy and torch on a GPU), and is a copy where not: another device or
    dtype (JAX without x64 stores float64 as float32), strides the target cannot take
    (a negatively strided NumPy array into torch), a read-only NumPy array into torch or
    CuPy (they could write into it), and any move into or out of JAX but JAX to NumPy
    (read-only): a ``jax.Array`` is immutable, and sharing would let torch, CuPy or
    NumPy change it, or its source change behind JAX's back. The README's table "Which
    moves share memory" lists the pairs.

    ``copy=True``: always a copy. ``copy=False``: share or raise ``ValueError`` saying
    why not; it also shares into and out of JAX, on the caller's promise that nothing
    writes into the shared memory (XLA still copies a CPU buffer that is not 64-byte
    aligned).
    """
    lib = library(name or get_backend())
    xp = lib.namespace()
    if is_array(x) and library_of(x) is lib:
        if device is None or _device(x) == device:
            return lib.copy(x) if copy else x
        if copy is False:
            raise ValueError(f"moving to device {device} copies: pass copy=None")
        return array_api_compat.to_device(x, device)
    if device is None:
        device = lib.default_device()
    if is_array(x):
        moved = moves.move(x, lib, device, copy)
        if moved is not None:
            return moved
    if copy is False:
        raise ValueError(f"{type(x).__name__} cannot share memory with {lib.name}: pass copy=None")
    return from_numpy(to_numpy(x), xp=xp, device=device)


def torch_package(purpose: str) -> Any:
    """The ``torch`` package, for code that converts ``torch.nn`` modules (not arrays);
    ``ImportError`` saying that ``purpose`` needs torch, and how to install it."""
    return library("torch").package(purpose)


def to_namespace_of(x: Any, like: Any) -> Any:
    """Move ``x`` into the library and onto the device of array ``like``."""
    lib = library_of(like)
    if is_array(x) and library_of(x) is lib and _device(x) == _device(like):
        return x
    return to_backend(x, lib.name, _device(like))


# --------------------------------------------------------------------------- random numbers


def host_rng(seed: Any = None) -> Any:
    """A host random generator from an int seed, a Generator, a RandomState or ``None``.

    The standard has no random numbers: backendnn draws on the host and moves the
    draws with :func:`from_numpy`, so one seed gives the same numbers on every backend.
    An int or ``None`` gives a new ``numpy.random.Generator``; a ``Generator`` or a
    legacy ``numpy.random.RandomState`` (scikit-learn's) is drawn from directly.
    """
    if isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed
    return np.random.default_rng(seed)


def check_random_state(seed: Any = None) -> Any:
    """The host random generator of an estimator's ``random_state``, by scikit-learn's
    rule (``sklearn.utils.check_random_state``): an int seeds a new legacy
    ``numpy.random.RandomState``, ``None`` is NumPy's global RandomState (the one
    ``numpy.random.seed`` seeds), a RandomState is itself. A ``numpy.random.Generator``
    (which scikit-learn refuses) is drawn from directly. The estimators then draw the
    initial weights, the early-stopping split and the epoch shuffles with scikit-learn's
    calls in scikit-learn's order, so an integer seed gives scikit-learn's numbers.
    """
    if seed is None or seed is np.random:
        return np.random.mtrand._rand  # what numpy.random.seed/random draw from
    if isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed
    return np.random.RandomState(seed)


# --------------------------------------------------------------------------- compilation, sync


def step_scalar(value: float, like: Any) -> Any:
    """A host number to pass into a compiled step: a device scalar of ``like``'s dtype on
    JAX (a Python float would be converted on every call), the number itself elsewhere
    (a CuPy or torch scalar would cost a host-to-device copy per step)."""
    return library_of(like).step_scalar(value, like)


def step_scalars(values: Sequence[float], like: Any) -> Any:
    """Host numbers to scan over inside a compiled loop (see :func:`scan`): a 1-d device
    array of ``like``'s dtype on JAX, the list itself elsewhere (as :func:`step_scalar`)."""
    return library_of(like).step_scalars(values, like)


def scan(body: Callable[[Any, tuple], Any], carry: Any, xs: tuple, xp: Any) -> Any:
    """Fold ``carry = body(carry, (x0[i], x1[i], ...))`` over the leading axis of the
    array ``x0`` and the sequences ``x1, ...`` in ``xs`` and return the final carry.

    On JAX this is ``jax.lax.scan``, so a jitted caller compiles the whole loop once (one
    dispatch instead of one per iteration), and every ``x`` must be an array
    (:func:`step_scalars` makes one of host numbers); elsewhere it is the plain Python loop.
    """
    return library_for(xp).scan(body, carry, xs)


def jit(fn: Callable[..., Any], xp: Any, **kwargs: Any) -> Callable[..., Any]:
    """``jax.jit(fn)`` when ``xp`` is JAX, else ``fn`` unchanged (eager libraries)."""
    return library_for(xp).jit(fn, **kwargs)


def synchronize(x: Any) -> Any:
    """Block until the device work producing ``x`` (an array or a list of them) is done."""
    for a in x if isinstance(x, (list, tuple)) else [x]:
        if is_array(a):
            library_of(a).synchronize(a)
    return x


# --------------------------------------------------------------------------- matmul precision

_PRECISIONS = ("highest", "tf32")
_precision = ["default"]


def set_matmul_precision(precision: str) -> None:
    """Choose the float32 matrix-product precision, with one meaning on every backend.

    ``"highest"``: full IEEE float32 products (PyTorch's and CuPy's default; JAX's
    ``"highest"``). ``"tf32"``: TensorFloat-32 tensor cores on NVIDIA GPUs (10-bit
    mantissa inputs, float32 accumulation), JAX's default on GPUs. CPUs always
    compute full float32. Affects JAX, PyTorch and CuPy where installed.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"matmul precision must be one of {_PRECISIONS}, not {precision!r}")
    for lib in LIBRARIES.values():
        lib.set_matmul_precision(precision)
    _precision[0] = precision


def get_matmul_precision() -> str:
    """The precision last chosen by :func:`set_matmul_precision` (``"default"`` if never)."""
    return _precision[0]


# --------------------------------------------------------------------------- native fast paths

_ndtr_cache: dict[tuple[Any, Any], Callable[[Any], Any] | None] = {}


def native_ndtr(xp: Any, dtype: Any = None) -> Callable[[Any], Any] | None:
    """The array library's own standard normal CDF (ndtr) for namespace ``xp``, or ``None``.

    ``scipy.special.ndtr`` for NumPy (``None`` if SciPy is not installed),
    ``cupyx.scipy.special.ndtr``, ``jax.scipy.special.ndtr``, ``torch.special.ndtr``;
    ``None`` for array-api-strict.

    With ``dtype`` (an ``xp`` dtype), only where that function is the fast path of
    :func:`backendnn.special.ndtr` for the dtype (the library object's
    ``ndtr_fast_dtypes``): measured faster than the portable ``special.ndtr_cody`` and
    accurate to the same bar; ``None`` elsewhere.
    """
    key = (xp, dtype)
    if key not in _ndtr_cache:
        lib = library_for(xp)
        fn = lib.ndtr()
        if dtype is not None and not any(dtype == getattr(xp, d) for d in lib.ndtr_fast_dtypes):
            fn = None
        _ndtr_cache[key] = fn
    return _ndtr_cache[key]


# The library's own 2-d convolution (NCHW input, (O, C/G, kh, kw) weights, zero padding),
# used by ``layers.Conv2d`` (and Conv1d through it) for its forward and both backward
# convolutions; ``None`` where a library has none (NumPy, CuPy, array-api-strict) or the
# operands' dtypes differ. Each takes the geometry ``stride`` (sh, sw), ``padding``
# ((pt, pb), (pl, pr)) (zeros before and after each axis), ``dilation`` (dh, dw) and
# ``groups`` G, and equals the portable path's result (tests/test_layers_conv.py, 1e-12 in
# float64). Not the library's autograd: each backward is the convolution its gradient is,
# written out.


def native_conv2d(
    x: Any, w: Any, stride: tuple[int, ...], padding: Sides, dilation: tuple[int, ...],
    groups: int,
) -> Any:  # fmt: skip
    """y[n, o] = sum_c x[n, g C/G + c] (cross-correlated with) w[o, c], g = o // (O/G), or
    ``None`` (no native path).

    ``x`` of shape (N, C, H, W), ``w`` of shape (O, C/G, kh, kw); y of shape
    (N, O, H', W'), H' = (H + pt + pb - dh (kh - 1) - 1) // sh + 1.
    ``torch.nn.functional.conv2d`` or ``jax.lax.conv_general_dilated``; no bias (the layer
    adds it).
    """
    if x.dtype != w.dtype:
        return None
    return library_of(x).conv2d(x, w, stride, padding, dilation, groups)


def native_conv2d_input_grad(
    dy: Any, w: Any, input_shape: Sequence[int], stride: tuple[int, ...], padding: Sides,
    dilation: tuple[int, ...], groups: int,
) -> Any:  # fmt: skip
    """dx = the transposed convolution of dy by w, or ``None`` (no native path).

    dx[n, g C/G + c, h, v] = sum_{o in group g, i, j} dy[n, o, h', v'] w[o, c, i, j] over
    h = sh h' + dh i - pt, v = sw v' + dw j - pl. ``torch.nn.functional.conv_transpose2d`` or
    ``jax.lax.conv_general_dilated``.
    """
    if dy.dtype != w.dtype:
        return None
    return library_of(dy).conv2d_input_grad(dy, w, input_shape, stride, padding, dilation, groups)


def native_conv2d_weight_grad(
    x: Any, dy: Any, weight_shape: Sequence[int], stride: tuple[int, ...], padding: Sides,
    dilation: tuple[int, ...], groups: int,
) -> Any:  # fmt: skip
    """dw[o, c, i, j] = sum_{n, h', v'} dy[n, o, h', v'] x_pad[n, g C/G + c, sh h' + dh i,
    sw v' + dw j], g = o // (O/G), or ``None`` (no native path).
    ``torch.nn.grad.conv2d_weight`` or ``jax.lax.conv_general_dilated``.
    """
    if x.dtype != dy.dtype:
        return None
    return library_of(x).conv2d_weight_grad(x, dy, weight_shape, stride, padding, dilation, groups)


def native_max_pool2d(x: Any, kernel: Sequence[int], stride: Sequence[int]) -> Any:
    """``(y, indices)`` from the library's max-pool of NCHW ``x`` (no padding), or ``None``
    (torch's ``max_pool2d``; the first maximum of a window in row-major order)."""
    return library_of(x).max_pool2d(x, kernel, stride)


def native_max_pool2d_backward(
    dy: Any, x: Any, indices: Any, kernel: Sequence[int], stride: Sequence[int]
) -> Any:
    """dL/dx of :func:`native_max_pool2d` from dL/dy ``dy`` and its ``indices``."""
    return library_of(x).max_pool2d_backward(dy, x, indices, kernel, stride)
