"""The backend layer: the one module of backendnn that knows array libraries by name.

Everything else is written against the Python Array API standard (2024.12) and
gets its namespace ``xp`` from its input arrays through :func:`array_namespace`.
What the standard lacks and every algorithm needs lives here, behind one
function each: choosing a backend by name, moving arrays between libraries,
host random numbers, ``erf``/``erfc``, compilation (``jax.jit``), device
synchronisation and matmul precision.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import array_api_compat
import numpy as np

BACKENDS = ("numpy", "cupy", "jax", "torch", "array_api_strict")

_INSTALL_HINT = {
    "numpy": "pip install numpy",
    "cupy": 'pip install "backendnn[cuda12]" (or [cuda13]) on a machine with an NVIDIA GPU',
    "jax": 'pip install "backendnn[jax]" (for a GPU: pip install "jax[cuda12]")',
    "torch": 'pip install "backendnn[torch]"',
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
        d = array_api_compat.device(a)
        if d is not None and all(d != e for e in devices):
            devices.append(d)
    if len(devices) > 1:
        raise TypeError(
            f"arrays on two devices in one call: {devices}; move them to one device first, "
            "e.g. backendnn.to_backend(x, name, device=...)"
        )


def device(x: Any) -> Any:
    """The device ``x`` lives on (``None`` for a JAX tracer inside ``jit``)."""
    return array_api_compat.device(x)


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
        if device is None or array_api_compat.device(x) == device:
            return x
        return array_api_compat.to_device(x, device)
    if device is None:
        device = default_device(name)
    return from_numpy(to_numpy(x), xp=xp, device=device)


def to_namespace_of(x: Any, like: Any) -> Any:
    """Move ``x`` into the library and onto the device of array ``like``."""
    if _is_array(x) and _library_name(x) == _library_name(like):
        if array_api_compat.device(x) == array_api_compat.device(like):
            return x
    return to_backend(x, _library_name(like), array_api_compat.device(like))


# --------------------------------------------------------------------------- random numbers


def host_rng(seed: Any = None) -> np.random.Generator:
    """A host ``numpy.random.Generator`` from an int seed, a Generator or ``None``.

    The standard has no random numbers: backendnn draws on the host and moves the
    draws with :func:`from_numpy`, so one seed gives the same numbers on every backend.
    A legacy ``numpy.random.RandomState`` (scikit-learn's) seeds a new Generator.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2**31 - 1))
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- erf / erfc

# W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969) 631-638, as in SPECFUN's CALERF. The standard has no erf, so
# this is written with standard functions only; each branch is fed inputs clipped
# to its own interval so that no branch over- or underflows (JAX differentiates
# through every branch of a ``where``).
_A = (
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
)
_B = (
    2.36012909523441209e01,
    2.44024637934444173e02,
    1.28261652607737228e03,
    2.84423683343917062e03,
)
_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
_Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
_THRESH = 0.46875
_XBIG = 26.543  # erfc(x) underflows float64 beyond this
_SQRPI = 0.56418958354775628695  # 1/sqrt(pi)


def _erf_small(x: Any, xp: Any) -> Any:
    """erf(x) for |x| <= 0.46875."""
    ysq = x * x
    num, den = _A[4] * ysq, ysq
    for i in range(3):
        num, den = (num + _A[i]) * ysq, (den + _B[i]) * ysq
    return x * (num + _A[3]) / (den + _B[3])


def _exp_neg_square(v: Any, xp: Any, scale: float = 1.0) -> Any:
    """exp(-scale * v**2) for v >= 0, with v split as Cody does, v = vs + (v - vs),
    vs = trunc(16 v)/16, so that vs**2 is exact and the exponent keeps full precision."""
    vs = xp.trunc(v * 16.0) / 16.0
    return xp.exp(-scale * vs * vs) * xp.exp(-scale * (v - vs) * (v + vs))


def _erfc_ratio(y: Any, xp: Any) -> Any:
    """erfc(y) * exp(y**2) for y >= 0.46875: Cody's rational forms on [0.46875, 4] and
    [4, 26.543], each fed only inputs of its own interval."""
    ym = xp.clip(y, _THRESH, 4.0)
    num, den = _C[8] * ym, ym
    for i in range(7):
        num, den = (num + _C[i]) * ym, (den + _D[i]) * ym
    mid = (num + _C[7]) / (den + _D[7])
    yl = xp.clip(y, 4.0, _XBIG)
    inv = 1.0 / (yl * yl)
    num, den = _P[5] * inv, inv
    for i in range(4):
        num, den = (num + _P[i]) * inv, (den + _Q[i]) * inv
    large = (_SQRPI - inv * (num + _P[4]) / (den + _Q[4])) / yl
    return xp.where(y <= 4.0, mid, large)


def _erfc_abs(y: Any, xp: Any) -> Any:
    """erfc(y) for y >= 0.46875 (0 past XBIG, where it underflows)."""
    tail = _exp_neg_square(xp.clip(y, 0.0, _XBIG), xp) * _erfc_ratio(y, xp)
    return xp.where(y < _XBIG, tail, 0.0)


def erf_cody(x: Any) -> Any:
    """erf(x) by Cody's rational approximations, standard functions only (~2 ulp in float64)."""
    xp = array_namespace(x)
    y = xp.abs(x)
    small = _erf_small(xp.clip(x, -_THRESH, _THRESH), xp)
    big = 1.0 - _erfc_abs(y, xp)
    out = xp.where(y <= _THRESH, small, xp.where(x < 0, -big, big))
    return xp.where(xp.isnan(x), x, out)


def erfc_cody(x: Any) -> Any:
    """erfc(x) = 1 - erf(x) by Cody's approximations, accurate in the tail (x up to 26.5)."""
    xp = array_namespace(x)
    y = xp.abs(x)
    small = 1.0 - _erf_small(xp.clip(x, -_THRESH, _THRESH), xp)
    tail = _erfc_abs(y, xp)
    out = xp.where(y <= _THRESH, small, xp.where(x < 0, 2.0 - tail, tail))
    return xp.where(xp.isnan(x), x, out)


def ndtr(x: Any) -> Any:
    """Phi(x), the standard normal CDF, = erfc(-x/sqrt 2)/2, accurate to a few ulp in
    float64 in both tails (standard functions only, every backend).

    The lower tail is not computed as erfc(-x/sqrt 2): rounding x/sqrt 2 would cost
    about x**2 ulp (1e-13 at x = -30). The rational part takes the rounded argument, but
    exp(-x**2/2) is formed from x itself.
    """
    xp = array_namespace(x)
    a = xp.abs(x)
    u = a * _INV_SQRT2
    small = 0.5 + 0.5 * _erf_small(xp.clip(x * _INV_SQRT2, -_THRESH, _THRESH), xp)
    half_tail = 0.5 * _exp_neg_square(xp.clip(a, 0.0, 40.0), xp, 0.5) * _erfc_ratio(u, xp)
    half_tail = xp.where(u < _XBIG, half_tail, 0.0)
    out = xp.where(u <= _THRESH, small, xp.where(x < 0, half_tail, 1.0 - half_tail))
    return xp.where(xp.isnan(x), x, out)


_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def _native_special(xp: Any, fname: str) -> Callable[[Any], Any] | None:
    """The library's own erf/erfc for namespace ``xp``, or None (array-api-strict, no SciPy)."""
    name = namespace_name(xp)
    try:
        if name == "numpy":
            return getattr(importlib.import_module("scipy.special"), fname)
        if name == "cupy":
            return getattr(importlib.import_module("cupyx.scipy.special"), fname)
        if name == "jax":
            return getattr(importlib.import_module("jax.scipy.special"), fname)
        if name == "torch":
            return getattr(importlib.import_module("torch.special"), fname)
    except ImportError:
        return None
    return None


def _use_native() -> bool:
    return os.environ.get("BACKENDNN_NATIVE_SPECIAL", "1") != "0"


def erf(x: Any) -> Any:
    """erf(x): the library's native erf where it has one (fast path), else :func:`erf_cody`.

    Set ``BACKENDNN_NATIVE_SPECIAL=0`` to always use the portable version.
    """
    fn = _native_special(array_namespace(x), "erf") if _use_native() else None
    return fn(x) if fn is not None else erf_cody(x)


def erfc(x: Any) -> Any:
    """erfc(x): native where available (see :func:`erf`), else :func:`erfc_cody`."""
    fn = _native_special(array_namespace(x), "erfc") if _use_native() else None
    return fn(x) if fn is not None else erfc_cody(x)


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
