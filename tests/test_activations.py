"""Tests of every registered activation, on every backend of the ``backend`` fixture.

The tests loop over ``activations.names()``: a newly registered activation is checked
against central differences, for finiteness at extreme inputs and under ``jax.jit``
with no new test code. Only the comparisons with JAX and torch need one reference
formula per name (in ``tests/_references.py``); a missing one fails loudly.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest

from backendnn import _backend, activations, special
from tests._references import jax_activation, torch_activation
from tests.conftest import assert_close

# Every registered name with its default parameters, plus non-default betas.
CASES = [(name, {}) for name in activations.names()] + [
    ("swish", {"beta": 1.5}),
    ("swiglu", {"beta": 1.5}),
]
CASE_IDS = [name + "".join(f"-{k}{v}" for k, v in params.items()) for name, params in CASES]

H = 2.0**-20  # ~9.5e-7; a power of two, so z +- H is exact for |z| < 2**32
EXTREMES = (1e4, -1e4, 1e3, -1e3, 0.0)

has_jax = importlib.util.find_spec("jax") is not None
has_torch = importlib.util.find_spec("torch") is not None


def _inputs(act, shape, seed, lo=-4.0, hi=4.0):
    """Host float64 arguments of ``act`` (one or two arrays) and an upstream gradient ``w``.

    Points within 1e-3 of 0 (the kink of relu and reglu) are moved away from it.
    """
    rng = np.random.default_rng(seed)
    n_args = 2 if activations.is_gated(act) else 1
    args = []
    for _ in range(n_args):
        z = rng.uniform(lo, hi, size=shape)
        args.append(np.where(np.abs(z) < 1e-3, 0.5, z))
    w = rng.standard_normal(shape)
    return args, w


def _apply(act, args, w):
    """(forward value, gradients of sum(forward * w) w.r.t. each argument) from backendnn."""
    if activations.is_gated(act):
        a, b = args
        return act.forward(a, b), act.backward(w, a, b)
    (z,) = args
    y = act.forward(z)
    return y, (act.backward(w, z, y),)


def _forward(act):
    return act.forward  # takes one array, or two (a, b) for the GLU family


def _central_difference(f, args, k, w, *, backend):
    """d/d args[k] of L = sum(f(*args) * w), by central differences with step H, in ``xp``.

    Every element of ``args[k]`` is perturbed by +-H at once along a new leading batch axis
    (batch item i perturbs element i), so it works for the non-element-wise softmax too.
    Written with Array API functions only: it runs on the backend under test.
    """
    xp = backend.xp
    z = args[k]
    n = math.prod(z.shape)
    steps = xp.reshape(xp.eye(n, dtype=z.dtype, device=backend.device) * H, (n, *z.shape))

    def at(delta):
        batched = [xp.expand_dims(a, axis=0) for a in args]
        batched[k] = batched[k] + delta
        return f(*batched)

    # Differences before the sum: the rounding error is that of the changed elements only.
    diff = (at(steps) - at(-steps)) * w
    return xp.reshape(xp.sum(diff, axis=tuple(range(1, z.ndim + 1))), z.shape) / (2 * H)


def _jacobian_diagonal(f, z, *, backend):
    """d f(z)_i / d z_i by central differences, in ``xp``."""
    xp = backend.xp
    n = math.prod(z.shape)
    eye = xp.eye(n, dtype=z.dtype, device=backend.device)
    steps = xp.reshape(eye * H, (n, *z.shape))
    diff = f(xp.expand_dims(z, axis=0) + steps) - f(xp.expand_dims(z, axis=0) - steps)
    return xp.reshape(xp.sum(xp.reshape(diff, (n, n)) * eye, axis=1), z.shape) / (2 * H)


# --------------------------------------------------------------------------- central differences


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_backward_matches_central_differences(backend, name, params):
    act = activations.get(name, **params)
    args_np, w_np = _inputs(act, (3, 5), seed=1)
    args = [backend.asarray(a, "float64") for a in args_np]
    w = backend.asarray(w_np, "float64")
    _, grads = _apply(act, args, w)
    assert len(grads) == len(args)
    for k, grad in enumerate(grads):  # dz; or (da, db) for the GLU family
        fd = _central_difference(_forward(act), args, k, w, backend=backend)
        # rtol 1e-7; atol covers the rounding error eps*|f|/H (~1e-10 per changed element)
        # where a gradient element is near 0.
        assert_close(
            grad, _backend.to_numpy(fd), backend=backend, rtol=1e-7, atol=1e-8, dtype="float64"
        )


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_derivative_is_jacobian_diagonal(backend, name, params):
    """``derivative(z)`` is f' for element-wise activations, the Jacobian diagonal for softmax."""
    act = activations.get(name, **params)
    if activations.is_gated(act):
        pytest.skip("the GLU family has no derivative(); its backward is checked above")
    (z_np,), _ = _inputs(act, (3, 5), seed=2)
    z = backend.asarray(z_np, "float64")
    diag = _backend.to_numpy(_jacobian_diagonal(act.forward, z, backend=backend))
    assert_close(act.derivative(z), diag, backend=backend, rtol=1e-7, atol=1e-8, dtype="float64")
    y = act.forward(z)
    assert_close(act.derivative(z, y), diag, backend=backend, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_backward_without_y_equals_backward_with_y(backend, name, params):
    act = activations.get(name, **params)
    if activations.is_gated(act):
        pytest.skip("GLU backward takes (dy, a, b) only")
    (z_np,), w_np = _inputs(act, (3, 5), seed=3)
    z, w = backend.asarray(z_np), backend.asarray(w_np)
    expected = _backend.to_numpy(act.backward(w, z, act.forward(z)))
    assert_close(act.backward(w, z), expected, backend=backend, rtol=1e-15, dtype="float64")


# ---------------------------------------------------------------------- JAX and torch references


def _jax_value_and_grads(ref, args_np, w_np):
    import jax
    import jax.numpy as jnp

    if not jax.config.jax_enable_x64:
        pytest.skip("the float64 JAX reference needs JAX_ENABLE_X64=1")
    out, vjp = jax.vjp(ref, *(jnp.asarray(a, dtype=jnp.float64) for a in args_np))
    grads = vjp(jnp.asarray(w_np, dtype=jnp.float64))
    assert out.dtype == jnp.float64
    return np.asarray(out), [np.asarray(g) for g in grads]


def _torch_value_and_grads(ref, args_np, w_np):
    import torch

    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args_np]
    out = ref(*ts)
    (out * torch.tensor(w_np, dtype=torch.float64)).sum().backward()
    return out.detach().numpy().copy(), [t.grad.numpy().copy() for t in ts]


@pytest.mark.parametrize(
    "library",
    [
        pytest.param("jax", marks=pytest.mark.skipif(not has_jax, reason="jax not installed")),
        pytest.param(
            "torch", marks=pytest.mark.skipif(not has_torch, reason="torch not installed")
        ),
    ],
)
@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_matches_autodiff_reference(backend, name, params, library):
    """Value and gradient match jax.grad / torch autograd of independent formulas (float64)."""
    act = activations.get(name, **params)
    args_np, w_np = _inputs(act, (4, 6), seed=4)
    if library == "jax":
        ref_y, ref_grads = _jax_value_and_grads(jax_activation(name, **params), args_np, w_np)
    else:
        ref_y, ref_grads = _torch_value_and_grads(torch_activation(name, **params), args_np, w_np)
    args = [backend.asarray(a, "float64") for a in args_np]
    y, grads = _apply(act, args, backend.asarray(w_np, "float64"))
    assert_close(y, ref_y, backend=backend, rtol=1e-10, atol=1e-15, dtype="float64")
    assert len(grads) == len(ref_grads)
    for grad, ref_grad in zip(grads, ref_grads):
        assert_close(grad, ref_grad, backend=backend, rtol=1e-10, atol=1e-15, dtype="float64")


# --------------------------------------------------------------------------- exact GELU, erf, ndtr


def _phi_reference(x: float) -> float:
    """Phi(x) = erfc(-x/sqrt 2)/2 in float64 from math.erfc, correct to a few ulp.

    The rounding of the argument y = -x/sqrt(2) (relative error ~1e-16) is amplified by
    erfc's condition number 2y^2 (~900 at x = -30), so a plain
    ``0.5*math.erfc(-x/math.sqrt(2))`` is itself off by up to 1.6e-13 in the lower tail.
    The argument's rounding error dy is measured exactly with ``decimal`` and corrected
    to first order: erfc(y + dy) = erfc(y) - 2/sqrt(pi) exp(-y^2) dy.
    """
    y = -x / math.sqrt(2.0)
    with localcontext() as ctx:
        ctx.prec = 50
        dy = float(Decimal(-x) / Decimal(2).sqrt() - Decimal(y))
    e = math.erfc(y)
    return 0.5 * (e - 2.0 / math.sqrt(math.pi) * math.exp(-y * y) * dy) if e else 0.0


def _gelu_reference(x: float) -> float:
    """0.5*x*erfc(-x/sqrt 2) = x*Phi(x) in float64, correct to a few ulp."""
    return x * _phi_reference(x)


def _gelu_grid():
    cody_edges = [0.46875 * math.sqrt(2.0), 4.0 * math.sqrt(2.0)]  # Cody's branch boundaries
    edges = [s * math.nextafter(e, d) for e in cody_edges for d in (0, 10) for s in (1, -1)]
    tiny = [1e-300, -1e-300, 1e-10, -1e-10, 5e-324, -5e-324]
    x = np.concatenate([np.linspace(-30.0, 30.0, 4801), np.linspace(-30.0, -20.0, 2001)])
    return np.concatenate([x, edges, cody_edges, tiny])


def test_gelu_exact_matches_erfc_reference(backend):
    """Exact GELU to 1e-13 relative on [-30, 30], the lower tail included."""
    x = _gelu_grid()
    ref = np.array([_gelu_reference(v) for v in x])
    y = _backend.to_numpy(activations.get("gelu").forward(backend.asarray(x, "float64")))
    assert np.all(np.isfinite(y))
    assert np.all(np.sign(y) == np.sign(ref))
    np.testing.assert_allclose(y, ref, rtol=1e-13, atol=0)  # the lower tail included


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
    return z, np.array([_phi_reference(float(v)) for v in z])


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
    if native is None:
        pytest.skip(f"{backend.name} has no native ndtr here (NumPy needs SciPy)")
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


# --------------------------------------------------------------------------- extreme inputs, dtypes


def _extreme_args(act, dtype, backend):
    v = np.array(EXTREMES)
    if activations.is_gated(act):  # every (a, b) pair of the extreme values
        return [
            backend.asarray(np.repeat(v, 5)[None, :], dtype),
            backend.asarray(np.tile(v, 5)[None, :], dtype),
        ]
    return [backend.asarray(v[None, :], dtype)]  # one row: softmax sees all of them at once


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("layout", ["row", "column"])
def test_finite_at_extremes_and_dtype_kept(backend, name, params, layout):
    """f and f' are finite at z = +-1e4, +-1e3, 0 in float32 and float64; float32 stays
    float32 and agrees with the float64 result to float32 precision."""
    act = activations.get(name, **params)
    results = {}
    # NumPy (and array-api-strict, built on it) raise on any intermediate overflow, 0/0 or
    # inf-inf: the formulas are meant to be stable, not to produce inf and recover from it.
    # Underflow to 0 (exp(-1e4)) is expected.
    for dtype in ("float32", "float64"):
        args = _extreme_args(act, dtype, backend)
        if layout == "column":  # softmax over one element per row
            args = [backend.xp.reshape(a, (-1, 1)) for a in args]
        ones = backend.xp.ones_like(args[0])
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y, grads = _apply(act, args, ones)
            outs = [y, *grads]
            if not activations.is_gated(act):
                outs.append(act.derivative(args[0]))
        host = []
        for out in outs:
            assert out.dtype == backend.dtype(dtype), (out.dtype, dtype)
            assert _backend.namespace_name(_backend.array_namespace(out)) == backend.name
            h = _backend.to_numpy(out)
            assert np.all(np.isfinite(h)), (dtype, h)
            host.append(h)
        results[dtype] = host
    for h32, h64 in zip(results["float32"], results["float64"]):
        np.testing.assert_allclose(h32, h64, rtol=2e-6, atol=1e-30)


# --------------------------------------------------------------------------- registry, identities


def test_swish_beta_one_equals_silu(backend):
    z_np = np.linspace(-8.0, 8.0, 33)
    z, w = backend.asarray(z_np), backend.asarray(np.cos(z_np))
    silu, swish = activations.get("silu"), activations.get("swish", beta=1.0)
    expected_y = _backend.to_numpy(silu.forward(z))
    expected_dz = _backend.to_numpy(silu.backward(w, z, silu.forward(z)))
    assert_close(swish.forward(z), expected_y, backend=backend, rtol=1e-15, dtype="float64")
    assert_close(swish.backward(w, z, swish.forward(z)), expected_dz, backend=backend, rtol=1e-15)
    # and silu is z * sigmoid(z), computed here in NumPy
    np.testing.assert_allclose(expected_y, z_np / (1.0 + np.exp(-z_np)), rtol=1e-14)


def test_swish_beta_changes_the_function(backend):
    z_np = np.array([-2.0, -0.5, 0.5, 2.0])
    y = activations.get("swish", beta=1.5).forward(backend.asarray(z_np))
    assert_close(y, z_np / (1.0 + np.exp(-1.5 * z_np)), backend=backend, rtol=1e-14)


def test_logistic_is_sigmoid(backend):
    assert activations.get("logistic") == activations.get("sigmoid")
    z_np = np.linspace(-40.0, 40.0, 41)
    z = backend.asarray(z_np)
    y = activations.get("logistic").forward(z)
    assert_close(
        y, _backend.to_numpy(activations.get("sigmoid").forward(z)), backend=backend, rtol=0
    )
    assert_close(y, 1.0 / (1.0 + np.exp(-z_np)), backend=backend, rtol=1e-14)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="nope") as info:
        activations.get("nope")
    for name in activations.names():
        assert name in str(info.value)
    with pytest.raises(ValueError):
        activations.get(None)


def test_activation_objects_pass_through_get():
    for name, params in CASES:
        act = activations.get(name, **params)
        assert activations.get(act) is act
    with pytest.raises(TypeError):
        activations.get(activations.get("swish"), beta=2.0)
    with pytest.raises(TypeError):
        activations.get("relu", beta=2.0)


def test_registry_names_are_unique_and_include_the_documented_ones():
    names = activations.names()
    assert len(names) == len(set(names))
    for name in (
        "identity",
        "sigmoid",
        "tanh",
        "relu",
        "gelu",
        "silu",
        "softmax",
        *activations.GATED,
    ):
        assert name in names
    for name in names:
        assert activations.is_gated(activations.get(name)) == (name in activations.GATED)


def test_relu_derivative_at_zero_is_zero(backend):
    z = backend.asarray([-1.0, -0.0, 0.0, 1.0])
    ones = backend.xp.ones_like(z)
    relu = activations.get("relu")
    assert_close(relu.derivative(z), [0.0, 0.0, 0.0, 1.0], backend=backend, rtol=0)
    assert_close(
        relu.backward(ones, z, relu.forward(z)), [0.0, 0.0, 0.0, 1.0], backend=backend, rtol=0
    )
    da, db = activations.get("reglu").backward(ones, z, ones * 3.0)
    assert_close(da, [0.0, 0.0, 0.0, 3.0], backend=backend, rtol=0)
    assert_close(db, [0.0, 0.0, 0.0, 1.0], backend=backend, rtol=0)


def test_softmax_rows_sum_to_one_and_log_softmax_matches(backend):
    z_np = np.random.default_rng(5).normal(scale=30.0, size=(6, 7))
    z = backend.asarray(z_np)
    p = activations.get("softmax").forward(z)
    logp = activations.get("log_softmax").forward(z)
    assert_close(backend.xp.sum(p, axis=-1), np.ones(6), backend=backend, rtol=1e-14)
    m = z_np.max(axis=-1, keepdims=True)
    ref = z_np - m - np.log(np.sum(np.exp(z_np - m), axis=-1, keepdims=True))
    assert_close(logp, ref, backend=backend, rtol=1e-13, atol=1e-13)
    assert_close(p, np.exp(ref), backend=backend, rtol=1e-12, atol=1e-300)


# --------------------------------------------------------------------------- jax.jit


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_jit_equals_eager(backend, name, params):
    if backend.name != "jax":
        pytest.skip("jax.jit applies to the jax backend only")
    import jax

    act = activations.get(name, **params)
    args_np, w_np = _inputs(act, (4, 6), seed=6, lo=-6.0, hi=6.0)
    args = [backend.asarray(a) for a in args_np]
    w = backend.asarray(w_np)

    def step(w, *args):
        y, grads = _apply(act, args, w)
        return (y, *grads)

    eager = step(w, *args)
    jitted = jax.jit(step)(w, *args)
    assert len(jitted) == len(eager)
    for j, e in zip(jitted, eager):
        # XLA fuses under jit (e.g. 1 - t*t for tanh' becomes one FMA): equal to a few ulp
        # of the O(1) terms, hence the absolute tolerance for small, cancelled results.
        assert_close(
            j, _backend.to_numpy(e), backend=backend, rtol=1e-13, atol=1e-16, dtype="float64"
        )
