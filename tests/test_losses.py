"""``backendnn.losses`` on every backend: values and gradients against NumPy/SciPy/
scikit-learn references (extreme logits included), shape checks, the L2 penalty, the
registry, sample weights, the Poisson loss, and property-based checks (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sps
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import mean_squared_error

from backendnn import Network, _backend, losses
from tests._helpers import PROPERTY_SETTINGS
from tests.conftest import assert_close

FLOATS = ("float64", "float32")
# value / gradient tolerances per dtype (float32: a few ulp of values up to 2e4)
RTOL = {"float64": 1e-12, "float32": 2e-6}
ATOL = {"float64": 1e-15, "float32": 1e-7}

# Logits at +-1e4 (exp overflows float64 past 709, float32 past 88) mixed with moderate ones;
# labels chosen so that some extreme logits are right and some badly wrong.
EXTREME = np.array(
    [
        [1e4, -1e4, 0.0],
        [-1e4, 1e4, 5.0],
        [1e4, 1e4, -1e4],
        [-1e4, -1e4, -1e4],
        [0.5, -2.0, 1e4],
        [100.0, -100.0, 30.0],
        [0.0, 0.0, 0.0],
    ]
)
LABELS = np.array([1, 1, 2, 0, 2, 1, 0])
BINARY = np.array(
    [[1, 0, 0], [0, 1, 1], [1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]], dtype=float
)


def _value_and_grad(backend, fn, y, h, dtype):
    value, grad = fn(y, backend.asarray(h, dtype=dtype))
    value_np = _backend.to_numpy(value)
    assert value_np.shape == () and value_np.dtype == np.dtype(dtype)
    assert np.isfinite(value_np)
    assert_close(grad, _backend.to_numpy(grad), backend=backend, dtype=dtype)
    assert np.all(np.isfinite(_backend.to_numpy(grad)))
    return float(value_np), grad


# ---------------------------------------------------------------------------- softmax CE


def _sce_reference(h, Y):
    """-1/n sum Y log softmax(h) and (softmax(h) - Y)/n in float64 via SciPy."""
    h = np.asarray(h, dtype=np.float64)
    n = h.shape[0]
    logp = h - sps.logsumexp(h, axis=1, keepdims=True)
    return -np.sum(Y * logp) / n, (sps.softmax(h, axis=1) - Y) / n


@pytest.mark.parametrize("targets", ["labels", "onehot"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_cross_entropy_extreme_logits(backend, dtype, targets):
    Y = np.eye(3)[LABELS]
    y = backend.asarray(LABELS) if targets == "labels" else backend.asarray(Y, dtype=dtype)
    value, grad = _value_and_grad(backend, losses.softmax_cross_entropy, y, EXTREME, dtype)
    ref_value, ref_grad = _sce_reference(EXTREME.astype(dtype), Y)
    assert ref_value > 1e3  # badly wrong +-1e4 logits dominate
    np.testing.assert_allclose(value, ref_value, rtol=RTOL[dtype])
    assert_close(grad, ref_grad, backend=backend, dtype=dtype, rtol=RTOL[dtype], atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_cross_entropy_confident_and_right_is_zero(backend, dtype):
    h = np.array([[1e4, -1e4], [-1e4, 1e4]])
    value, grad = _value_and_grad(
        backend, losses.softmax_cross_entropy, backend.asarray(np.array([0, 1])), h, dtype
    )
    assert value == 0.0
    assert_close(grad, np.zeros((2, 2)), backend=backend, dtype=dtype, rtol=0.0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_cross_entropy_labels_equal_one_hot(backend, dtype):
    rng = np.random.default_rng(5)
    h = rng.normal(size=(8, 4)) * 3
    labels = rng.integers(0, 4, size=8)
    v1, g1 = losses.softmax_cross_entropy(backend.asarray(labels), backend.asarray(h, dtype=dtype))
    v2, g2 = losses.softmax_cross_entropy(
        backend.asarray(np.eye(4)[labels], dtype=dtype), backend.asarray(h, dtype=dtype)
    )
    ref_value, ref_grad = _sce_reference(h.astype(dtype), np.eye(4)[labels])
    for v, g in ((v1, g1), (v2, g2)):
        np.testing.assert_allclose(float(v), ref_value, rtol=RTOL[dtype])
        assert_close(g, ref_grad, backend=backend, dtype=dtype, rtol=RTOL[dtype] * 10, atol=1e-8)


def test_softmax_cross_entropy_rejects_float_labels(backend):
    h = backend.asarray(np.zeros((3, 2)), dtype="float64")
    with pytest.raises(TypeError, match="integer class labels"):
        losses.softmax_cross_entropy(backend.asarray(np.array([0.0, 1.0, 1.0])), h)


# ---------------------------------------------------------------------------- binary log-loss


def _binary_reference(h, Y):
    """-1/n sum [y log s + (1-y) log(1-s)] via log_expit, and (s - y)/n."""
    h = np.asarray(h, dtype=np.float64)
    n = h.shape[0]
    value = -np.sum(Y * sps.log_expit(h) + (1 - Y) * sps.log_expit(-h)) / n
    return value, (sps.expit(h) - Y) / n


@pytest.mark.parametrize("dtype", FLOATS)
def test_binary_log_loss_extreme_logits(backend, dtype):
    value, grad = _value_and_grad(
        backend, losses.binary_log_loss, backend.asarray(BINARY, dtype=dtype), EXTREME, dtype
    )
    ref_value, ref_grad = _binary_reference(EXTREME.astype(dtype), BINARY)
    assert ref_value > 1e3
    np.testing.assert_allclose(value, ref_value, rtol=RTOL[dtype])
    assert_close(grad, ref_grad, backend=backend, dtype=dtype, rtol=RTOL[dtype], atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", FLOATS)
def test_binary_log_loss_single_output_1d_targets(backend, dtype):
    rng = np.random.default_rng(4)
    h = rng.normal(size=(6, 1)) * 3
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])  # 1-d targets against one output column
    value, grad = _value_and_grad(
        backend, losses.binary_log_loss, backend.asarray(y, dtype=dtype), h, dtype
    )
    ref_value, ref_grad = _binary_reference(h.astype(dtype), y[:, None])
    np.testing.assert_allclose(value, ref_value, rtol=RTOL[dtype] * 10)
    assert_close(grad, ref_grad, backend=backend, dtype=dtype, rtol=RTOL[dtype] * 10, atol=0.0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_binary_log_loss_right_and_confident_is_tiny(backend, dtype):
    """L = softplus(h) - y h cancels for y = 1, h >> 0: the loss e^-h is computed with an
    absolute (not relative) error of a few ulp of h, and never negative."""
    h = np.array([[30.0, -30.0], [1e4, -1e4], [80.0, -80.0]])
    y = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    value, grad = _value_and_grad(
        backend, losses.binary_log_loss, backend.asarray(y, dtype=dtype), h, dtype
    )
    ref_value, ref_grad = _binary_reference(h, y)
    eps = float(np.finfo(dtype).eps)
    assert 0.0 <= value <= ref_value + 4 * eps * 30
    assert abs(value - ref_value) <= 4 * eps * 30
    assert_close(grad, ref_grad, backend=backend, dtype=dtype, rtol=0.0, atol=4 * eps)


# ---------------------------------------------------------------------------- squared error


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("y_shape", ["(n,)", "(n, 1)"])
def test_squared_error_single_output_matches_sklearn(backend, dtype, y_shape):
    rng = np.random.default_rng(7)
    h = rng.normal(size=(9, 1))
    y = rng.normal(size=9)
    yb = backend.asarray(y if y_shape == "(n,)" else y[:, None], dtype=dtype)
    value, grad = _value_and_grad(backend, losses.squared_error, yb, h, dtype)
    h32, y32 = h.astype(dtype), y.astype(dtype)
    expected = mean_squared_error(y32.astype(float), h32[:, 0].astype(float)) / 2
    np.testing.assert_allclose(value, expected, rtol=RTOL[dtype])
    ref_grad = (h32.astype(float) - y32.astype(float)[:, None]) / 9
    assert_close(grad, ref_grad, backend=backend, dtype=dtype, rtol=RTOL[dtype], atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", FLOATS)
def test_squared_error_multi_output(backend, dtype):
    rng = np.random.default_rng(8)
    h = rng.normal(size=(6, 3)).astype(dtype)
    y = rng.normal(size=(6, 3)).astype(dtype)
    value, grad = _value_and_grad(
        backend, losses.squared_error, backend.asarray(y, dtype=dtype), h, dtype
    )
    h64, y64 = h.astype(float), y.astype(float)
    # sklearn averages the per-output MSEs: sum (h - y)^2 / (n k)
    np.testing.assert_allclose(value, mean_squared_error(y64, h64) / 2, rtol=RTOL[dtype])
    np.testing.assert_allclose(value, np.sum((h64 - y64) ** 2) / (2 * 6 * 3), rtol=RTOL[dtype])
    assert_close(
        grad, (h64 - y64) / (6 * 3), backend=backend, dtype=dtype, rtol=RTOL[dtype], atol=1e-15
    )


def test_squared_error_shape_mismatch_raises(backend):
    h = backend.asarray(np.zeros((4, 3)), dtype="float64")
    with pytest.raises(ValueError, match="shape"):
        losses.squared_error(backend.asarray(np.zeros(4), dtype="float64"), h)


def test_loss_shape_mismatch(backend):
    rng = np.random.default_rng(0)
    h = backend.asarray(rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="y has shape"):
        losses.squared_error(backend.asarray(rng.normal(size=(5, 3))), h)


# ---------------------------------------------------------------------------- perceptron


@pytest.mark.parametrize("y_shape", ["(n,)", "(n, 1)"])
def test_perceptron_criterion(backend, y_shape):
    h = np.array([[2.0], [-1.5], [0.0], [0.25], [-3.0]])
    y = np.array([1.0, 1.0, -1.0, -1.0, -1.0])
    yb = backend.asarray(y if y_shape == "(n,)" else y[:, None], dtype="float64")
    value, grad = _value_and_grad(backend, losses.perceptron_criterion, yb, h, "float64")
    margin = y * h[:, 0]
    wrong = margin <= 0  # y h = 0 counts as misclassified
    np.testing.assert_array_equal(wrong, [False, True, True, True, False])
    assert value == np.sum(-margin[wrong]) == 1.75
    assert_close(grad, np.where(wrong, -y, 0.0)[:, None], backend=backend, rtol=0.0)
    assert losses.get("perceptron") is losses.perceptron_criterion


# ---------------------------------------------------------------------------- L2 penalty


@pytest.mark.parametrize("alpha", [0.0, 0.3, 2.5])
@pytest.mark.parametrize(
    "net",
    [
        Network.mlp(5, (4, 3), 3),
        Network.mlp(5, (4, 3), 3, activation="swiglu"),
        Network.mlp(12, (4,), 2, flatten=True),
    ],
    ids=["relu", "swiglu", "flatten"],
)
def test_penalty_is_alpha_over_2n_sum_of_squared_weights(backend, net, alpha):
    params = net.init(3, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    n = 7
    value, grads = net.penalty(params, alpha, n)
    host = [tuple(_backend.to_numpy(a) for a in p) for p in params]
    weights = [p[0] for p in host if p]
    expected = alpha / (2 * n) * sum(np.sum(W * W) for W in weights)
    np.testing.assert_allclose(float(_backend.to_numpy(value)), expected, rtol=1e-13)
    assert len(grads) == len(params)
    for g, p, layer in zip(grads, host, net.layers):
        assert len(g) == len(p)
        for ga, a, penalized in zip(g, p, layer.penalized):
            if penalized:  # weights: (alpha / n) W
                assert_close(ga, alpha / n * a, backend=backend, dtype="float64", rtol=1e-15)
            else:  # biases are not penalised
                assert ga is None


def test_loss_and_grad_adds_the_penalty(backend):
    net = Network.mlp(5, (4,), 2, activation="tanh")
    params = net.init(1, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    rng = np.random.default_rng(2)
    X = backend.asarray(rng.normal(size=(6, 5)), dtype="float64")
    y = backend.asarray(rng.normal(size=(6, 2)), dtype="float64")
    v0, g0 = net.loss_and_grad(params, X, y, "squared_error", 0.0)
    v1, g1 = net.loss_and_grad(params, X, y, "squared_error", 0.4)
    pen, pgrads = net.penalty(params, 0.4, 6)
    np.testing.assert_allclose(float(v1), float(v0) + float(pen), rtol=1e-14)
    for a0, a1, pa in zip(g0, g1, pgrads):
        for x0, x1, px in zip(a0, a1, pa):
            expected = _backend.to_numpy(x0) + (0.0 if px is None else _backend.to_numpy(px))
            assert_close(x1, expected, backend=backend, dtype="float64", rtol=1e-14, atol=1e-16)


# ---------------------------------------------------------------------------- registry


def test_names_and_unknown_loss():
    assert losses.names() == [
        "squared_error",
        "softmax_cross_entropy",
        "binary_log_loss",
        "perceptron",
        "poisson",
        "huber",
    ]
    for name in losses.names():
        assert callable(losses.get(name))
    with pytest.raises(ValueError) as info:
        losses.get("hinge")
    message = str(info.value)
    assert "hinge" in message
    for name in losses.names():
        assert name in message
    custom = lambda y, h: (h, h)  # noqa: E731
    assert losses.get(custom) is custom


def test_unknown_loss_in_loss_and_grad(backend):
    net = Network.mlp(3, (), 2)
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X = backend.asarray(np.ones((2, 3)), dtype="float64")
    y = backend.asarray(np.ones((2, 2)), dtype="float64")
    with pytest.raises(ValueError, match="valid names are: squared_error, softmax_cross_entropy"):
        net.loss_and_grad(params, X, y, "mean_absolute_error")


# ---------------------------------------------------------------------------- value type


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", losses.names())
def test_loss_value_is_a_0d_array_of_the_backend(request, backend, name, dtype):
    """The docstring promises a 0-d array left on the device, usable with
    backendnn.array_namespace like any other array of the backend."""
    h = np.array([[0.5, -1.0], [2.0, 0.0]])
    y = {
        "squared_error": np.array([[1.0, 0.0], [0.0, 1.0]]),
        "softmax_cross_entropy": np.array([0, 1]),
        "binary_log_loss": np.array([[1.0, 0.0], [0.0, 1.0]]),
        "perceptron": np.array([[1.0, -1.0], [-1.0, 1.0]]),
        "poisson": np.array([[1.0, 0.0], [3.0, 2.0]]),
        "huber": np.array([[1.0, 0.0], [0.0, 3.0]]),
    }[name]
    yb = backend.asarray(y) if y.dtype.kind == "i" else backend.asarray(y, dtype=dtype)
    value, _ = losses.get(name)(yb, backend.asarray(h, dtype=dtype))
    assert_close(value, _backend.to_numpy(value), backend=backend, dtype=dtype)
    assert value.ndim == 0


# ---------------------------------------------------------------------------- weights, Poisson

_WEIGHTED_CASES = {
    "squared_error": np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]]),
    "softmax_cross_entropy": np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]),
    "binary_log_loss": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
    "perceptron": np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]),
    "poisson": np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0]]),
}


@pytest.mark.parametrize("name", sorted(_WEIGHTED_CASES))
def test_integer_sample_weights_equal_repeated_rows(backend, name):
    """Weights 2, 0, 3 give the value and the gradient of the batch with row 0 twice,
    row 1 dropped and row 2 three times (computed without weights)."""
    h = np.array([[0.5, -1.0], [2.0, 0.0], [-0.3, 0.8]])
    y = _WEIGHTED_CASES[name]
    w = np.array([2.0, 0.0, 3.0])
    rows = np.repeat(np.arange(3), w.astype(int))
    fn = losses.get(name)
    value, grad = fn(backend.asarray(y), backend.asarray(h), backend.asarray(w))
    ref_value, ref_grad = fn(backend.asarray(y[rows]), backend.asarray(h[rows]))
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    ref_grad = _backend.to_numpy(ref_grad)
    summed = np.zeros_like(h)
    np.add.at(summed, rows, ref_grad)  # each repeated row's gradient goes to its source row
    np.testing.assert_allclose(_backend.to_numpy(grad), summed, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", FLOATS)
def test_poisson_matches_sklearn_half_deviance_and_central_differences(backend, dtype):
    """Value: half of scikit-learn's mean Poisson deviance of mu = exp(h) per output,
    summed over outputs; gradient: (exp(h) - y)/n, checked by central differences."""
    from sklearn.metrics import mean_poisson_deviance

    rng = np.random.default_rng(0)
    h = rng.normal(size=(6, 2))
    y = rng.poisson(2.0, size=(6, 2)).astype(float)
    y[0, 0] = 0.0  # y log y at y = 0
    w = rng.uniform(0.5, 2.0, size=6)
    value, grad = losses.poisson(
        backend.asarray(y, dtype=dtype), backend.asarray(h, dtype=dtype), backend.asarray(w,
                dtype=dtype)
    )
    ref = sum(0.5 * mean_poisson_deviance(y[:, j], np.exp(h[:, j]),
            sample_weight=w) for j in range(2))
    assert float(value) == pytest.approx(ref, rel=RTOL[dtype] * 10)

    def f(hh):
        return float(losses.poisson(y, hh, w)[0])

    eps = 1e-6
    numeric = np.zeros_like(h)
    for idx in np.ndindex(h.shape):
        up, down = h.copy(), h.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (f(up) - f(down)) / (2 * eps)
    tol = 1e-7 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(_backend.to_numpy(grad), numeric, rtol=tol, atol=tol)


# -------------------------------------------------------------------------- properties (hypothesis)

@PROPERTY_SETTINGS
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
