"""``backendnn.special``: Cody's erf and erfc, and the standard normal CDF (ndtr), portable
and each library's native one, on every backend of the ``backend`` fixture.

The references are ``math.erf``/``math.erfc`` and Phi from ``math.erfc`` with its
argument's rounding corrected (``tests/_references.py``); the exact GELU built on them is
tested in ``tests/test_activations.py``.
"""

from __future__ import annotations

import functools
import importlib.util
import math

import numpy as np
import pytest

from backendnn import _backend, special
from tests._references import phi_reference
from tests.conftest import assert_close

# ---------------------------------------------------------------------------- erf, erfc


def _erf_grid():
    return np.concatenate(
        [
            np.linspace(-30.0, 30.0, 6001),
            np.geomspace(1e-300, 0.5, 200),
            -np.geomspace(1e-300, 0.5, 200),
            [0.46875, -0.46875, 4.0, -4.0, 26.543, -26.543, 0.0, -0.0],
        ]
    )


@pytest.mark.parametrize(("fn", "ref_fn"), [("erf_cody", math.erf), ("erfc_cody", math.erfc)])
def test_cody_erf_erfc_match_math(backend, fn, ref_fn):
    x = _erf_grid()
    ref = np.array([ref_fn(v) for v in x])
    y = getattr(special, fn)(backend.asarray(x, "float64"))
    assert_close(
        y,
        np.where(np.abs(ref) > 1e-300, ref, 0.0),
        backend=backend,
        rtol=1e-14,
        atol=1e-300,
        dtype="float64",
    )


def test_cody_special_values(backend):
    x = backend.asarray([np.nan, 30.0, -30.0, 27.0, -27.0, 0.0, np.inf, -np.inf], "float64")
    erfc = _backend.to_numpy(special.erfc_cody(x))
    erf = _backend.to_numpy(special.erf_cody(x))
    assert np.isnan(erfc[0]) and np.isnan(erf[0])
    assert erfc[1] == 0.0 and erfc[2] == 2.0
    assert erfc[3] == 0.0 and erfc[4] == 2.0  # past Cody's XBIG = 26.543
    assert erfc[5] == 1.0 and erf[5] == 0.0
    assert erfc[6] == 0.0 and erfc[7] == 2.0
    np.testing.assert_array_equal(erf[1:5], [1.0, -1.0, 1.0, -1.0])
    np.testing.assert_array_equal(erf[6:], [1.0, -1.0])


# ---------------------------------------------------------------------------- ndtr


@functools.cache
def _ndtr_grid(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """z over [-38, 10] (where Phi(z) leaves the float64 range at the low end), denser in
    the lower tail, Cody's branch edges in z, tiny values; and Phi at those (rounded) z."""
    rng = np.random.default_rng(7)
    edges = [s * e * math.sqrt(2.0) for e in (0.46875, 4.0, 26.543) for s in (1, -1)]
    z = np.concatenate(
        [
            np.linspace(-38.0, 10.0, 4801),
            rng.uniform(-30.0, -20.0, 1001),
            edges,
            [0.0, -0.0, 1e-300, -1e-300, 1e-10, -1e-10],
        ]
    ).astype(dtype)
    return z, np.array([phi_reference(float(v)) for v in z])


# Measured agreement of each library's native ndtr with the portable ndtr_cody over
# _ndtr_grid (benchmarks/NOTES.md, "Native ndtr fast path"), relative where Phi is a normal
# number: SciPy and JAX compute erfc(-z/sqrt 2)/2 and lose ~z^2 ulp to the rounding of the
# argument (2.3e-13 in float64; in float32 SciPy computes in float64, 4.9e-7 is Cody's own
# float32 error, JAX 1.4e-5). torch computes (1 + erf(z/sqrt 2))/2, which cancels to 0 in the
# lower tail: relative agreement for z >= 0 only. Absolutely, all agree to eps of the dtype.
_NATIVE_NDTR_RTOL = {
    ("numpy", "float32"): (6e-7, -np.inf),  # measured 4.9e-7
    ("numpy", "float64"): (2.5e-13, -np.inf),  # measured 2.3e-13 (z = -37.3); 1.5e-13 down to -30
    ("jax", "float32"): (1.5e-5, -np.inf),  # measured 1.4e-5 (z = -13)
    ("jax", "float64"): (2.5e-13, -np.inf),  # measured 2.3e-13
    ("torch", "float32"): (1.2e-7, 0.0),  # measured 9.9e-8 for z >= 0; 4e-2 at z = -5
    ("torch", "float64"): (2.5e-16, 0.0),  # measured 2.0e-16 for z >= 0; 1 below z = -8.4
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_ndtr_equals_portable(backend, dtype):
    """Each library's own ndtr (``_backend.native_ndtr``) agrees with ``special.ndtr_cody``:
    to eps of the dtype absolutely everywhere, and relatively as measured (the table above)."""
    native = _backend.native_ndtr(backend.xp)
    if backend.name == "array_api_strict":
        assert native is None  # the standard has no ndtr
        return
    if backend.name == "numpy" and importlib.util.find_spec("scipy") is None:
        pytest.skip("NumPy's native ndtr is SciPy's, and SciPy is not installed")
    assert native is not None, f"{backend.name} lost its native ndtr"
    z_np, ref = _ndtr_grid(dtype)
    z = backend.asarray(z_np, dtype)
    portable = _backend.to_numpy(special.ndtr_cody(z))
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    assert_close(native(z), portable, backend=backend, rtol=0, atol=eps, dtype=dtype)
    rtol, z_min = _NATIVE_NDTR_RTOL.get((backend.name, dtype), (None, None))
    if rtol is None:
        pytest.skip(f"no measured relative tolerance for {backend.name}'s ndtr in {dtype}")
    kept = (ref >= tiny) & (z_np >= z_min)  # relative errors where Phi(z) is a normal number
    y = _backend.to_numpy(native(z))
    np.testing.assert_allclose(y[kept], portable[kept], rtol=rtol, atol=0)
    nan = _backend.to_numpy(native(backend.asarray([np.nan], dtype)))
    assert np.isnan(nan[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fn", ["ndtr", "ndtr_cody"])
def test_ndtr_matches_reference(backend, fn, dtype):
    """``special.ndtr`` (the native fast path where ``_backend`` offers one for the dtype, else
    Cody) and the portable ``ndtr_cody`` against Phi from math.erfc over z in [-38, 10]:
    1e-13 relative in float64 (the bar of exact GELU above, which decides the fast path),
    1e-6 (8 ulp) in float32, where Phi is a normal number (tiny absolutely below it)."""
    z_np, ref = _ndtr_grid(dtype)
    y = getattr(special, fn)(backend.asarray(z_np, dtype))
    rtol = 1e-13 if dtype == "float64" else 1e-6
    assert_close(y, ref, backend=backend, rtol=rtol, atol=np.finfo(dtype).tiny, dtype=dtype)
    nan = _backend.to_numpy(getattr(special, fn)(backend.asarray([np.nan, 0.0], dtype)))
    assert np.isnan(nan[0]) and nan[1] == 0.5


def test_ndtr_fast_path_is_the_native_ndtr(backend):
    """Where ``native_ndtr(xp, dtype)`` offers a fast path, it is the library's own ndtr."""
    native = _backend.native_ndtr(backend.xp)
    for dtype in ("float32", "float64"):
        fast = _backend.native_ndtr(backend.xp, backend.dtype(dtype))
        assert fast is None or fast is native
