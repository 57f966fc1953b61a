"""The backend layer: the one package of backendnn that knows array libraries by name.

Everything else is written against the Python Array API standard (2024.12) and
gets its namespace ``xp`` from its input arrays through :func:`array_namespace`.
What the standard lacks and every algorithm needs lives here, behind one
function each: choosing a backend by name, moving arrays between libraries,
host random numbers, compilation (``jax.jit``), device synchronisation and matmul
precision here; the libraries' native fast paths (normal CDF, convolutions, max-pool) in
:mod:`backendnn._backend.native`.

Imports array libraries (by name, lazily) and nothing from backendnn.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import array_api_compat
import numpy as np

from . import sharding

BACKENDS = ("numpy", "cupy", "jax", "torch", "array_api_strict")

# backendnn is installed from a clone (it is on no registry): the hints name its extras as
# a path, run from the clone's folder
_INSTALL_HINT = {
    "numpy": "pip install numpy",
    "cupy": 'pip install ".[cuda12]" (or ".[cuda13]") on a machine with an NVIDIA GPU',
    "jax": 'pip install ".[jax]" (for a GPU: pip install "jax[cuda12]")',
    "torch": 'pip install torch (or ".[torch]")',
    "array_api_strict": "pip install array-api-strict",
}

_current: contextvars.ContextVar[str] = contextvars.ContextVar("backendnn_backend", default="numpy")


# --------------------------------------------------------------------------- namespaces


def _library_name(x: Any) -> str:
    """Name of the array library ``x`` belongs to (one of ``BACKENDS`` or its module name)."""
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    if array_api_compat.is_cupy_array(x):
        return "cupy"
    if array_api_compat.is_jax_array(x):
        return "jax"
    if array_api_compat.is_torch_array(x):
        return "torch"
    get_namespace = getattr(x, "__array_namespace__", None)
    if get_namespace is not None and array_api_compat.is_array_api_strict_namespace(
        get_namespace()
    ):
        return "array_api_strict"
    return type(x).__module__.split(".")[0]


_SCALARS = (bool, int, float, complex)
# array type -> namespace: every math function resolves xp from its inputs, so this
# lookup sits on the hot path of each training step (measured in benchmarks/NOTES.md)
_NAMESPACES: dict[type, Any] = {}


def _is_array(x: Any) -> bool:
    # exact Python scalars only: NumPy's float64 scalar subclasses float but is an array here
    return array_api_compat.is_array_api_obj(x) and type(x) not in _SCALARS


def array_namespace(*arrays: Any) -> Any:
    """Return the Array API namespace shared by ``arrays`` (``None`` and Python scalars ignored).

    Raises
    ------
    TypeError
        If the arrays come from two libraries, or live on two devices: backendnn
        never moves data behind the caller's back. Move one with :func:`to_backend`.
    """
    kinds = {type(a) for a in arrays if a is not None and type(a) not in _SCALARS}
    if len(kinds) == 1:
        (kind,) = kinds
        xp = _NAMESPACES.get(kind)
        if xp is not None:  # one known array type: only devices can differ
            if kind is np.ndarray or sum(a is not None and type(a) is kind for a in arrays) < 2:
                return xp
            _check_devices([a for a in arrays if type(a) is kind])
            return xp
    found = [a for a in arrays if a is not None and _is_array(a)]
    if not found:
        raise TypeError(
            "expected at least one array (NumPy, CuPy, JAX, torch or array-api-strict); "
            f"received {[type(a).__name__ for a in arrays]}"
        )
    libs = {_library_name(a) for a in found}
    if len(libs) > 1:
        raise TypeError(
            f"arrays from two libraries in one call: {sorted(libs)}; move them to one library "
            "first, e.g. backendnn.to_backend(x, 'numpy')"
        )
    _check_devices(found)
    xp = array_api_compat.array_namespace(*found)
    if len({type(a) for a in found}) == 1:
        _NAMESPACES[type(found[0])] = xp
    return xp


def _check_devices(found: list) -> None:
    devices: list[Any] = []
    for a in found:
        d = device(a)
        if d is not None and all(d != e for e in devices):
            devices.append(d)
    if len(devices) > 1:
        raise TypeError(
            f"arrays on two devices in one call: {devices}; move them to one device first, "
            "e.g. backendnn.to_backend(x, name, device=...)"
        )


def device(x: Any) -> Any:
    """The device ``x`` lives on (``None`` for a JAX tracer inside ``jit``).

    A JAX array spread over several devices (sharded over a ``jax.sharding.Mesh``) lives
    on the *replicated* sharding over those devices: arrays created there (weights,
    encoded targets) are replicated on the mesh, and arrays on one mesh count as one
    place whatever their partitioning (see :mod:`backendnn._backend.sharding`)."""
    d = array_api_compat.device(x)
    if hasattr(d, "device_set"):  # a jax.sharding.Sharding, not a Device
        return sharding.placement(d)
    return d


_device = device  # for functions with a parameter named device


def namespace_name(xp: Any) -> str:
    """The backend name (one of ``BACKENDS``) of namespace ``xp``."""
    for name, test in (
        ("numpy", array_api_compat.is_numpy_namespace),
        ("cupy", array_api_compat.is_cupy_namespace),
        ("jax", array_api_compat.is_jax_namespace),
        ("torch", array_api_compat.is_torch_namespace),
        ("array_api_strict", array_api_compat.is_array_api_strict_namespace),
    ):
        if test(xp):
            return name
    return getattr(xp, "__name__", str(xp))


def is_array(x: Any) -> bool:
    """Whether ``x`` is an array of a supported library (not a list or scalar)."""
    return _is_array(x)


# --------------------------------------------------------------------------- choosing a backend


def _check_name(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    return name


def namespace(name: str | None = None) -> Any:
    """The Array API namespace of backend ``name`` (default: the current backend).

    Raises
    ------
    ImportError
        If the library is not installed or (CuPy) no CUDA device is visible; the
        message says which package to install.
    """
    name = _check_name(name or get_backend())
    try:
        if name == "numpy":
            return importlib.import_module("array_api_compat.numpy")
        if name == "torch":
            importlib.import_module("torch")
            return importlib.import_module("array_api_compat.torch")
        if name == "jax":
            return importlib.import_module("jax.numpy")
        if name == "array_api_strict":
            return importlib.import_module("array_api_strict")
        cupy = importlib.import_module("cupy")
        count = cupy.cuda.runtime.getDeviceCount()
        if count == 0:  # pragma: no cover - depends on the machine
            raise ImportError("no CUDA device")
        return importlib.import_module("array_api_compat.cupy")
    except Exception as exc:  # ImportError, or CUDA runtime errors from CuPy
        raise ImportError(
            f"backend {name!r} is not available here ({type(exc).__name__}: {exc}); "
            f"install it with: {_INSTALL_HINT[name]}"
        ) from exc


def default_device(name: str | None = None) -> Any:
    """The device new arrays of backend ``name`` go to: the GPU where the library has one."""
    name = _check_name(name or get_backend())
    xp = namespace(name)
    if name == "torch":
        torch = importlib.import_module("torch")
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if name == "jax":
        return importlib.import_module("jax").devices()[0]
    if name == "cupy":
        return importlib.import_module("cupy").cuda.Device()
    return array_api_compat.device(xp.asarray(0.0))


def set_backend(name: str) -> None:
    """Make ``name`` the backend used where no input array decides it.

    Raises ``ImportError`` naming the package to install if the library is missing.
    """
    namespace(_check_name(name))
    _current.set(name)


def get_backend() -> str:
    """The name of the current backend (``"numpy"`` unless changed)."""
    return _current.get()


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Any]:
    """Context manager selecting backend ``name`` inside its block; yields its namespace."""
    xp = namespace(_check_name(name))
    token = _current.set(name)
    try:
        yield xp
    finally:
        _current.reset(token)


# --------------------------------------------------------------------------- moving arrays


def to_numpy(x: Any) -> np.ndarray:
    """Any supported array (or a nested list) as a NumPy array on the host; a NumPy
    array is returned as is, and a CPU torch tensor's result shares its memory."""
    if isinstance(x, np.ndarray):
        return x
    if not _is_array(x):
        return np.asarray(x)
    lib = _library_name(x)
    if lib == "cupy":
        return x.get()
    if lib == "torch":
        return x.detach().cpu().numpy()
    if lib == "array_api_strict":
        strict = importlib.import_module("array_api_strict")
        x = strict.asarray(x, device=strict.Device("CPU_DEVICE"), copy=True)
        return np.from_dlpack(x)
    if lib == "jax":
        return sharding.host_copy(x)  # rows held by other processes are gathered
    return np.asarray(x)


def from_numpy(a: Any, *, xp: Any, device: Any = None, dtype: Any = None) -> Any:
    """Move host data ``a`` (NumPy array or nested lists) into namespace ``xp`` on ``device``.

    The dtype is kept (or set to ``dtype``, given as an ``xp`` dtype) explicitly:
    torch's ``asarray`` would otherwise turn float64 into float32.
    """
    a = np.asarray(a)
    if dtype is None:
        name = a.dtype.name
        if not has_64bit(xp):  # JAX without JAX_ENABLE_X64: 32-bit types, no warnings
            name = name.replace("64", "32")
        dtype = getattr(xp, name)
    if namespace_name(xp) == "jax" and device is not None:
        jax = importlib.import_module("jax")
        if hasattr(device, "device_set"):  # a sharding: straight from the host (processes)
            return jax.device_put(np.asarray(a, dtype=np.dtype(dtype)), device)
        return jax.device_put(xp.asarray(a, dtype=dtype), device)
    return xp.asarray(np.ascontiguousarray(a), dtype=dtype, device=device, copy=True)


def has_64bit(xp: Any) -> bool:
    """Whether namespace ``xp`` stores 64-bit types (JAX only with ``JAX_ENABLE_X64``)."""
    if namespace_name(xp) == "jax":
        return bool(importlib.import_module("jax").config.jax_enable_x64)
    return True


def index_dtype(xp: Any) -> Any:
    """The default integer dtype of ``xp`` (int64, or int32 on JAX without x64)."""
    return xp.__array_namespace_info__().default_dtypes()["integral"]


def to_backend(x: Any, name: str | None = None, device: Any = None) -> Any:
    """Move array ``x`` to backend ``name`` (default: the current one) and ``device``.

    A no-op if it is already there. Between libraries the data goes through the host.
    """
    name = _check_name(name or get_backend())
    xp = namespace(name)
    if _is_array(x) and _library_name(x) == name:
        if device is None or _device(x) == device:
            return x
        return array_api_compat.to_device(x, device)
    if device is None:
        device = default_device(name)
    return from_numpy(to_numpy(x), xp=xp, device=device)


def to_namespace_of(x: Any, like: Any) -> Any:
    """Move ``x`` into the library and onto the device of array ``like``."""
    if _is_array(x) and _library_name(x) == _library_name(like):
        if _device(x) == _device(like):
            return x
    return to_backend(x, _library_name(like), _device(like))


def host_numpy() -> Any:
    """NumPy itself, for host-side bookkeeping outside the backend layer: the row indices,
    chunk offsets and staging buffers of data sources that stream from the host (dask).
    The maths never uses it: it runs on the compute namespace."""
    return np


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
    if _library_name(like) == "jax":
        return importlib.import_module("jax.numpy").asarray(value, dtype=like.dtype)
    return value


def step_scalars(values: Sequence[float], like: Any) -> Any:
    """Host numbers to scan over inside a compiled loop (see :func:`scan`): a 1-d device
    array of ``like``'s dtype on JAX, the list itself elsewhere (as :func:`step_scalar`)."""
    if _library_name(like) == "jax":
        return importlib.import_module("jax.numpy").asarray(values, dtype=like.dtype)
    return list(values)


def scan(body: Callable[[Any, tuple], Any], carry: Any, xs: tuple, xp: Any) -> Any:
    """Fold ``carry = body(carry, (x0[i], x1[i], ...))`` over the leading axis of the
    array ``x0`` and the sequences ``x1, ...`` in ``xs`` and return the final carry.

    On JAX this is ``jax.lax.scan``, so a jitted caller compiles the whole loop once (one
    dispatch instead of one per iteration), and every ``x`` must be an array
    (:func:`step_scalars` makes one of host numbers); elsewhere it is the plain Python loop.
    """
    if namespace_name(xp) == "jax":
        lax = importlib.import_module("jax.lax")
        carry, _ = lax.scan(lambda c, x: (body(c, x), None), carry, xs)
        return carry
    for i in range(xs[0].shape[0]):
        carry = body(carry, tuple(x[i] if isinstance(x, list) else x[i, ...] for x in xs))
    return carry


def jit(fn: Callable[..., Any], xp: Any, **kwargs: Any) -> Callable[..., Any]:
    """``jax.jit(fn)`` when ``xp`` is JAX, else ``fn`` unchanged (eager libraries)."""
    if namespace_name(xp) == "jax":
        return importlib.import_module("jax").jit(fn, **kwargs)
    return fn


def synchronize(x: Any) -> Any:
    """Block until the device work producing ``x`` (an array or a list of them) is done."""
    items = x if isinstance(x, (list, tuple)) else [x]
    for a in items:
        if not _is_array(a):
            continue
        lib = _library_name(a)
        if lib == "jax":
            a.block_until_ready()
        elif lib == "cupy":
            importlib.import_module("cupy").cuda.get_current_stream().synchronize()
        elif lib == "torch" and a.device.type == "cuda":
            importlib.import_module("torch").cuda.synchronize(a.device)
    return x


# --------------------------------------------------------------------------- matmul precision

_PRECISIONS = ("highest", "tf32")


def set_matmul_precision(precision: str) -> None:
    """Choose the float32 matrix-product precision, with one meaning on every backend.

    ``"highest"``: full IEEE float32 products (PyTorch's and CuPy's default; JAX's
    ``"highest"``). ``"tf32"``: TensorFloat-32 tensor cores on NVIDIA GPUs (10-bit
    mantissa inputs, float32 accumulation), JAX's default on GPUs. CPUs always
    compute full float32. Affects JAX, PyTorch and CuPy where installed.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"matmul precision must be one of {_PRECISIONS}, not {precision!r}")
    try:
        jax = importlib.import_module("jax")
        jax.config.update(
            "jax_default_matmul_precision", "highest" if precision == "highest" else "tensorfloat32"
        )
    except ImportError:
        pass
    try:
        torch = importlib.import_module("torch")
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    except ImportError:
        pass
    # CuPy reads this variable when it creates a cuBLAS handle (at its first product).
    os.environ["CUPY_TF32"] = "1" if precision == "tf32" else "0"
    _precision[0] = precision


_precision = ["default"]


def get_matmul_precision() -> str:
    """The precision last chosen by :func:`set_matmul_precision` (``"default"`` if never)."""
    return _precision[0]


# the library-specific fast paths (native ndtr, convolutions) live in a module of their own
from .native import (  # noqa: E402
    native_conv2d as native_conv2d,
)
from .native import (  # noqa: E402
    native_conv2d_input_grad as native_conv2d_input_grad,
)
from .native import (  # noqa: E402
    native_conv2d_weight_grad as native_conv2d_weight_grad,
)
from .native import (  # noqa: E402
    native_max_pool2d as native_max_pool2d,
)
from .native import (  # noqa: E402
    native_max_pool2d_backward as native_max_pool2d_backward,
)
from .native import (  # noqa: E402
    native_ndtr as native_ndtr,
)
