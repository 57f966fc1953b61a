"""``backendnn.activations``: every registered activation, on every backend of the
``backend`` fixture; the exact GELU; the registry; property-based checks (hypothesis).

The tests loop over ``activations.names()``: a newly registered activation is checked
against central differences, for finiteness at extreme inputs and under ``jax.jit``
with no new test code. Only the comparisons with JAX and torch need one reference
formula per name (in ``tests/_references.py``); a missing one fails loudly.
Cody's erf/erfc and ndtr, which the exact GELU uses, are in ``tests/test_special.py``;
activation objects inside estimators in ``tests/test_mlp.py``, in model files in
``tests/test_io.py``.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backendnn import _backend, activations
from tests._helpers import PROPERTY_SETTINGS, TwiceTanh
from tests._references import gelu_reference, jax_activation, torch_activation
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


# ---------------------------------------------------------------------------- central differences


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


# ------------------------------------------------------------------------- JAX and torch references


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


# ---------------------------------------------------------------------------- exact GELU


def _gelu_grid():
    cody_edges = [0.46875 * math.sqrt(2.0), 4.0 * math.sqrt(2.0)]  # Cody's branch boundaries
    edges = [s * math.nextafter(e, d) for e in cody_edges for d in (0, 10) for s in (1, -1)]
    tiny = [1e-300, -1e-300, 1e-10, -1e-10, 5e-324, -5e-324]
    x = np.concatenate([np.linspace(-30.0, 30.0, 4801), np.linspace(-30.0, -20.0, 2001)])
    return np.concatenate([x, edges, cody_edges, tiny])


def test_gelu_exact_matches_erfc_reference(backend):
    """Exact GELU to 1e-13 relative on [-30, 30], the lower tail included."""
    x = _gelu_grid()
    ref = np.array([gelu_reference(v) for v in x])
    y = _backend.to_numpy(activations.get("gelu").forward(backend.asarray(x, "float64")))
    assert np.all(np.isfinite(y))
    assert np.all(np.sign(y) == np.sign(ref))
    np.testing.assert_allclose(y, ref, rtol=1e-13, atol=0)  # the lower tail included


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


# ---------------------------------------------------------------------------- registry, identities


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
    # exact: the same activation, so the same computation
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


def test_register_refuses_builtin_names(registry):
    with pytest.raises(ValueError, match="built-in"):
        activations.register("tanh", TwiceTanh)


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


# ---------------------------------------------------------------------------- jax.jit


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


# -------------------------------------------------------------------------- properties (hypothesis)

ELEMENTWISE = [
    n for n in activations.names() if n not in ("softmax", "log_softmax", *activations.GATED)
]


def _values(dtype: str, extreme: float):
    width = 32 if dtype == "float32" else 64
    shape = st.tuples(st.integers(1, 5), st.integers(1, 6))
    return arrays(dtype, shape, elements=st.floats(-extreme, extreme, width=width))


@PROPERTY_SETTINGS
@given(
    name=st.sampled_from(activations.names()),
    dtype=st.sampled_from(["float32", "float64"]),
    data=st.data(),
)
def test_activations_finite_on_any_input(host_backend, name, dtype, data):
    z = data.draw(_values(dtype, 1e4))
    act = activations.get(name)
    Z = host_backend.asarray(z, dtype)
    if activations.is_gated(act):
        width = 32 if dtype == "float32" else 64
        b = data.draw(arrays(dtype, z.shape, elements=st.floats(-1e4, 1e4, width=width)))
        B = host_backend.asarray(b, dtype)
        outs = [act.forward(Z, B), *act.backward(Z * 0 + 1, Z, B)]
    else:
        y = act.forward(Z)
        outs = [y, act.backward(Z * 0 + 1, Z, y)]
    for out in outs:
        host = _backend.to_numpy(out)
        assert host.dtype == np.dtype(dtype)
        assert np.all(np.isfinite(host)), (name, z[~np.isfinite(host)])


@PROPERTY_SETTINGS
@given(name=st.sampled_from(ELEMENTWISE), data=st.data())
def test_elementwise_derivatives_match_central_differences(host_backend, name, data):
    z = data.draw(_values("float64", 8.0))
    z = np.where(np.abs(z) < 1e-3, 0.5, z)  # away from relu's kink
    act = activations.get(name)
    h = 1e-6
    numeric = (
        _backend.to_numpy(act.forward(host_backend.asarray(z + h)))
        - _backend.to_numpy(act.forward(host_backend.asarray(z - h)))
    ) / (2 * h)
    Z = host_backend.asarray(z)
    analytic = _backend.to_numpy(act.backward(Z * 0 + 1, Z, act.forward(Z)))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
