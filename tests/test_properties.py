"""Property-based tests (hypothesis): random shapes, batch sizes, dtypes and values, extremes
included, for activations, losses and networks on numpy and array-api-strict."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backendnn as bn
from backendnn import _backend, activations, losses

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ELEMENTWISE = [
    n for n in activations.names() if n not in ("softmax", "log_softmax", *activations.GATED)
]


@pytest.fixture
def host_backend(backend):
    if backend.name not in ("numpy", "array_api_strict"):
        pytest.skip("property tests run on numpy and array_api_strict")
    return backend


@SETTINGS
@given(
    n=st.integers(1, 6),
    k=st.integers(2, 5),
    scale=st.sampled_from([1.0, 1e2, 1e4]),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_losses_finite_and_gradient_sums(host_backend, n, k, scale, dtype, seed):
    rng = np.random.default_rng(seed)
    h = host_backend.asarray(rng.normal(size=(n, k)) * scale, dtype)
    labels = host_backend.asarray(rng.integers(0, k, n))
    value, grad = losses.softmax_cross_entropy(labels, h)
    g = _backend.to_numpy(grad)
    assert np.isfinite(float(value)) and float(value) >= 0
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-5 if dtype == "float32" else 1e-12)
    targets = host_backend.asarray((rng.random((n, k)) > 0.5).astype(dtype), dtype)
    value, grad = losses.binary_log_loss(targets, h)
    assert np.isfinite(float(value)) and float(value) >= 0
    assert np.all(np.isfinite(_backend.to_numpy(grad)))


@SETTINGS
@given(
    activation=st.sampled_from(ELEMENTWISE + list(activations.GATED)),
    hidden=st.lists(st.integers(1, 4), min_size=0, max_size=2),
    n=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_network_gradients_match_central_differences(host_backend, activation, hidden, n, seed):
    rng = np.random.default_rng(seed)
    net = bn.Network.mlp(3, tuple(hidden), 2, activation=activation)
    params = net.init(
        seed, xp=host_backend.xp, device=host_backend.device, dtype=host_backend.xp.float64
    )
    X = host_backend.asarray(rng.normal(size=(n, 3)))
    y = host_backend.asarray(rng.integers(0, 2, n))
    errors = bn.check_gradients(net, params, X, y, "softmax_cross_entropy", alpha=0.1)
    # relu-like kinks can fall within eps of a sample on rare draws; allow the check's noise
    assert max(errors.values()) < 1e-4, errors


@SETTINGS
@given(
    n=st.integers(2, 40),
    split=st.integers(1, 39),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_predictions_invariant_to_batch_splitting(host_backend, n, split, dtype, seed):
    rng = np.random.default_rng(seed)
    net = bn.Network.mlp(4, (5,), 3, activation="tanh")
    params = net.init(
        seed, xp=host_backend.xp, device=host_backend.device, dtype=getattr(host_backend.xp, dtype)
    )
    X = rng.normal(size=(n, 4)).astype(dtype)
    split = min(split, n - 1)
    whole = _backend.to_numpy(net.forward(params, host_backend.asarray(X)))
    parts = np.concatenate(
        [
            _backend.to_numpy(net.forward(params, host_backend.asarray(part)))
            for part in (X[:split], X[split:])
        ]
    )
    tol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(parts, whole, rtol=tol, atol=tol)
