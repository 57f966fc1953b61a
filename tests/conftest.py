"""Test fixtures: one ``backend`` fixture (and its ``xp``) drives every backend-generic test.

Which backends run comes from ``BACKENDNN_BACKENDS`` (comma-separated; nox sets one per
session), default: every backend whose library is installed. A listed backend whose
library or device is missing is skipped with the reason. ``array_api_strict`` runs
twice: pinned to the 2024.12 standard, and in its strictest form (``device1``, no
boolean indexing, no data-dependent shapes), which proves the code uses the standard only.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 references need it; set before jax loads

import numpy as np
import pytest

from backendnn import _backend

# Full float32 matrix products everywhere: results are compared across backends to 1e-6,
# and JAX on NVIDIA GPUs otherwise defaults to TF32 (about 1e-3 relative).
_backend.set_matmul_precision("highest")

_ALL = ("numpy", "array_api_strict", "array_api_strict-strictest", "jax", "torch", "cupy")


def _requested() -> list[str]:
    env = os.environ.get("BACKENDNN_BACKENDS")
    names = [n.strip() for n in env.split(",") if n.strip()] if env else list(_ALL)
    if "array_api_strict" in names and "array_api_strict-strictest" not in names:
        names.append("array_api_strict-strictest")
    return names


@dataclass
class Backend:
    """A backend under test: its name, namespace and the device new arrays go to."""

    name: str
    xp: Any
    device: Any
    strictest: bool = False

    def asarray(self, a: Any, dtype: str | None = None) -> Any:
        """NumPy data (or lists) as an array of this backend; ``dtype`` by name."""
        a = np.asarray(a)
        return _backend.from_numpy(
            a, xp=self.xp, device=self.device, dtype=getattr(self.xp, dtype or a.dtype.name)
        )

    def dtype(self, name: str) -> Any:
        return getattr(self.xp, name)

    def __repr__(self) -> str:
        return self.name + ("-strictest" if self.strictest else "")


def _placed(xp: Any, device: Any) -> Any:
    """``device`` as the arrays made there report it (``_backend.device``), so that
    ``assert_close`` compares devices with ``==`` on every backend (torch's
    ``device("cuda")``, for one, reads back from its arrays as ``cuda:0``: unequal).

    JAX was exempt from the device check from the package skeleton on. The likely reason:
    ``jax.Array`` lost its ``device()`` method in JAX 0.4.27 and gained the ``device``
    property only in 0.4.31, and ``array_api_compat.device`` returns ``x.device`` or None,
    so on JAX 0.4.27-0.4.30 (pyproject allows 0.4.30) the device of every JAX array read
    as None. With the property, ``_backend.device`` of an array on one device is its
    ``jax.Device``, equal to ``jax.devices()[0]`` where the fixture puts arrays (inside
    ``jit`` a tracer still has none: the suite compares concrete arrays only).
    """
    return _backend.device(_backend.from_numpy(np.zeros(1), xp=xp, device=device))


@contextlib.contextmanager
def _activate(name: str):
    lib = name.split("-")[0]
    try:
        xp = _backend.namespace(lib)
    except ImportError as exc:
        pytest.skip(str(exc))
    if lib == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("jax tests need JAX_ENABLE_X64=1 (float64 references)")
    if lib != "array_api_strict":
        yield Backend(lib, xp, _placed(xp, _backend.default_device(lib)))
        return
    strict = xp
    if name.endswith("strictest"):
        flags = dict(api_version="2024.12", boolean_indexing=False, data_dependent_shapes=False)
        with strict.ArrayAPIStrictFlags(**flags):
            yield Backend(lib, xp, strict.Device("device1"), strictest=True)
    else:
        with strict.ArrayAPIStrictFlags(api_version="2024.12"):
            yield Backend(lib, xp, strict.Device("CPU_DEVICE"))


@pytest.fixture(params=_requested())
def backend(request):
    with _activate(request.param) as b:
        yield b


@pytest.fixture
def xp(backend):
    return backend.xp


@pytest.fixture(scope="module")
def one_blas_thread():
    """Small problems: BLAS threads only add contention (on a shared 2-core machine a
    multi-threaded OpenBLAS made these tests 10-20x slower)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture
def host_backend(backend):
    """The property-based (hypothesis) tests: ``backend`` where it is NumPy or
    array-api-strict (host libraries, fast enough for many examples), else skipped."""
    if backend.name not in ("numpy", "array_api_strict"):
        pytest.skip("property tests run on numpy and array_api_strict")
    return backend


@pytest.fixture
def registry(monkeypatch):
    """Activation registrations made in a test are undone after it."""
    from backendnn import activations

    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))


def assert_close(
    actual: Any, expected: Any, *, backend: Backend, rtol=1e-12, atol=0.0, dtype: str | None = None
) -> None:
    """Check namespace, dtype, shape and device of ``actual``, then its values against
    ``expected`` (NumPy) after moving to the host."""
    xp = backend.xp
    assert _backend.namespace_name(_backend.array_namespace(actual)) == backend.name
    if dtype is not None:
        assert actual.dtype == getattr(xp, dtype), (actual.dtype, dtype)
    expected = np.asarray(expected)
    assert tuple(actual.shape) == expected.shape
    dev = _backend.device(actual)
    assert dev == backend.device, (dev, backend.device)
    np.testing.assert_allclose(_backend.to_numpy(actual), expected, rtol=rtol, atol=atol)
