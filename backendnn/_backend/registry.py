"""The library objects, and finding the one an array or a namespace belongs to.

:data:`LIBRARIES` holds one object per known array library (by backend name);
:func:`library_of` finds an array's, :func:`library_for` a namespace's, each decided once
per array type (namespace) and then read from a dict: the lookup sits on the hot path of
every training step (each math function resolves its namespace from its inputs, measured
in benchmarks/NOTES.md). :func:`array_namespace` is that resolution, with its checks.

Imports the library modules of this package.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from .cupy_lib import CupyLib
from .jax_lib import JaxLib
from .library import ArrayLibrary
from .numpy_lib import NumpyLib
from .strict_lib import StrictLib
from .torch_lib import TorchLib

#: backend name -> its library object
LIBRARIES: dict[str, ArrayLibrary] = {
    lib.name: lib for lib in (NumpyLib(), CupyLib(), JaxLib(), TorchLib(), StrictLib())
}
BACKENDS = tuple(LIBRARIES)

_SCALARS = (bool, int, float, complex)
_BY_TYPE: dict[type, ArrayLibrary] = {}
_BY_NAMESPACE: dict[Any, ArrayLibrary] = {}
# array type -> namespace, for array_namespace's fast path
_NAMESPACES: dict[type, Any] = {}


def library(name: str) -> ArrayLibrary:
    """The library object of backend ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not one of ``BACKENDS``.
    """
    lib = LIBRARIES.get(name)
    if lib is None:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    return lib


def library_of(x: Any) -> ArrayLibrary:
    """The library object array ``x`` belongs to (a portable :class:`ArrayLibrary` named
    after its module for an array type backendnn does not know)."""
    lib = _BY_TYPE.get(type(x))
    if lib is None:
        known = (candidate for candidate in LIBRARIES.values() if candidate.owns(x))
        lib = next(known, None) or ArrayLibrary(type(x).__module__.split(".")[0])
        _BY_TYPE[type(x)] = lib
    return lib


def library_for(xp: Any) -> ArrayLibrary:
    """The library object of Array API namespace ``xp`` (a portable :class:`ArrayLibrary`
    named after it for a namespace backendnn does not know)."""
    lib = _BY_NAMESPACE.get(xp)
    if lib is None:
        known = (candidate for candidate in LIBRARIES.values() if candidate.owns_namespace(xp))
        lib = next(known, None) or ArrayLibrary(getattr(xp, "__name__", str(xp)))
        _BY_NAMESPACE[xp] = lib
    return lib


def is_array(x: Any) -> bool:
    """Whether ``x`` is an array of a supported library (not a list or scalar)."""
    # exact Python scalars only: NumPy's float64 scalar subclasses float but is an array here
    return array_api_compat.is_array_api_obj(x) and type(x) not in _SCALARS


def namespace_name(xp: Any) -> str:
    """The backend name (one of ``BACKENDS``) of namespace ``xp``."""
    return library_for(xp).name


def device(x: Any) -> Any:
    """The device ``x`` lives on (``None`` for a JAX tracer inside ``jit``).

    A JAX array spread over several devices (sharded over a ``jax.sharding.Mesh``) lives
    on the *replicated* sharding over those devices: arrays created there (weights,
    encoded targets) are replicated on the mesh, and arrays on one mesh count as one
    place whatever their partitioning (see :mod:`backendnn._backend.sharding`)."""
    return library_of(x).device(x)


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
    found = [a for a in arrays if a is not None and is_array(a)]
    if not found:
        raise TypeError(
            "expected at least one array (NumPy, CuPy, JAX, torch or array-api-strict); "
            f"received {[type(a).__name__ for a in arrays]}"
        )
    libs = {library_of(a).name for a in found}
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
