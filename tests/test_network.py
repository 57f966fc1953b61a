"""``backendnn.network.Network`` on every backend: hand-written backpropagation against
central differences, ``jax.grad`` and torch autograd (dense and gated layers, every loss,
the L2 penalty, ``grad_scale``, the perceptron criterion, ``Flatten`` in front); the
forward pass against NumPy; ``jax.jit``; property-based checks (hypothesis).

The references are written from the formulas (dense layers x W + b, the activations
of jax.nn / torch.nn.functional or their explicit formulas, the L2 term
alpha/(2n) sum ||W||^2 over weights only, the loss formulas of the losses.py
docstrings), never from backendnn code. They depend only on (activation, loss, alpha), not
on the backend, so they are computed once and cached. The cases' networks and data are in
``tests/_helpers.py``; initialisation is tested in ``tests/test_init.py``,
``check_gradients`` in ``tests/test_gradcheck.py``, flat parameter vectors in
``tests/test_params.py``, the layers themselves in ``tests/test_layers_*.py``.
"""

from __future__ import annotations

import functools
import math
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import backendnn as bn
from backendnn import Network, _backend, activations, losses
from backendnn.layers import Activation, Dense, Flatten, GatedDense
from tests._helpers import (
    HIDDEN,
    INIT_SEED,
    N_IN,
    N_OUT,
    PROPERTY_SETTINGS,
    case,
    make_data,
    make_net,
    on_backend,
    optional_import,
    to_host,
    weight_layers,
)
from tests._references import jax_activation, np_forward, torch_activation
from tests.conftest import assert_close

jax = optional_import("jax")
torch = optional_import("torch")

# ---------------------------------------------------------------------------- the cases

ACTIVATIONS = [a for a in activations.names() if a not in ("softmax", "log_softmax")]
LOSS_CASES = ("squared_error", "sce_labels", "sce_onehot", "binary_log_loss")
LOSS_NAME = {
    "squared_error": "squared_error",
    "sce_labels": "softmax_cross_entropy",
    "sce_onehot": "softmax_cross_entropy",
    "binary_log_loss": "binary_log_loss",
    "perceptron": "perceptron",
}
ALPHAS = (0.0, 0.3)
REFERENCES = ("jax", "torch")

FD_EPS = 1e-6  # central differences' step; the cases keep kinks KINK_MARGIN away (_helpers)


def _rel_err(actual, expected) -> float:
    """max |actual - expected| / max(max |expected|, max |actual|)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.max(np.abs(expected)), np.max(np.abs(actual)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(actual - expected)) / scale)


# ---------------------------------------------------------------------------- autograd references


def _objective(lib, act_fn, gated, loss_case, alpha, weights, X, y):
    """The penalised loss written with ``lib`` (jax.numpy or torch) ops from the formulas."""
    n = X.shape[0]
    h = lib.reshape(X, (n, -1))
    for W, b in weights[:-1]:
        p = h @ W + b
        if gated:
            k = W.shape[1] // 2
            h = act_fn(p[:, :k], p[:, k:])  # g(a) * b
        else:
            h = act_fn(p)
    W, b = weights[-1]
    h = h @ W + b
    if loss_case == "squared_error":  # 1/(2 n k) sum (h - y)^2
        value = lib.sum((h - y) ** 2) / (2.0 * h.shape[0] * h.shape[1])
    elif loss_case in ("sce_labels", "sce_onehot"):  # -1/n sum y log softmax(h)
        if lib is torch:
            logp = torch.log_softmax(h, dim=1)
        else:
            logp = jax.nn.log_softmax(h, axis=1)
        value = -lib.sum(y * logp) / n
    elif loss_case == "binary_log_loss":  # 1/n sum softplus(h) - y h
        sp = torch.logaddexp(h, torch.zeros_like(h)) if lib is torch else jax.nn.softplus(h)
        value = lib.sum(sp - y * h) / n
    elif loss_case == "perceptron":  # sum over y h <= 0 of -y h
        m = lib.reshape(y, (n, 1)) * h
        value = lib.sum(lib.where(m <= 0, -m, lib.zeros_like(m)))
    else:  # pragma: no cover
        raise AssertionError(loss_case)
    return value + alpha / (2.0 * n) * sum(lib.sum(W * W) for W, _ in weights)


def _one_hot_targets(loss_case: str, y: np.ndarray) -> np.ndarray:
    return np.eye(N_OUT)[y] if loss_case == "sce_labels" else y


def _jax_reference(act, loss_case, alpha, weights, X, y):
    if jax is None:
        pytest.skip("jax is not installed")
    if not jax.config.jax_enable_x64:
        pytest.skip("the jax reference needs JAX_ENABLE_X64=1")
    jnp = jax.numpy
    ws = [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights]
    Y = jnp.asarray(_one_hot_targets(loss_case, y))

    def objective(ws):
        return _objective(
            jnp,
            jax_activation(act),
            act in activations.GATED,
            loss_case,
            alpha,
            ws,
            jnp.asarray(X),
            Y,
        )

    value, grads = jax.value_and_grad(objective)(ws)
    return float(value), [tuple(np.asarray(g) for g in gs) for gs in grads]


def _torch_reference(act, loss_case, alpha, weights, X, y):
    if torch is None:
        pytest.skip("torch is not installed")
    ws = [
        tuple(torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in pair)
        for pair in weights
    ]
    Y = torch.tensor(_one_hot_targets(loss_case, y), dtype=torch.float64)
    value = _objective(
        torch,
        torch_activation(act),
        act in activations.GATED,
        loss_case,
        alpha,
        ws,
        torch.tensor(X, dtype=torch.float64),
        Y,
    )
    value.backward()
    return float(value.detach()), [tuple(a.grad.numpy().copy() for a in pair) for pair in ws]


@functools.cache
def _reference(ref: str, act: str, loss_case: str, alpha: float, flatten: bool = False):
    _, X, y, params = case(act, loss_case, alpha, flatten)
    fn = _jax_reference if ref == "jax" else _torch_reference
    return fn(act, loss_case, alpha, weight_layers(params), X, y)


# ---------------------------------------------------------------------------- backend helpers


def _perturbations(params, entries: dict | None = None) -> tuple[list, list]:
    """Host parameter sets theta + eps e_k and theta - eps e_k, stacked on a new leading
    axis (plus for every entry k first, then minus), and the (array, entry) of each k.
    ``entries`` maps (layer, array) to the flat entries to perturb (default: all)."""
    host = to_host(params)
    where = [
        (i, j, k)
        for i, p in enumerate(host)
        for j, a in enumerate(p)
        for k in (range(a.size) if entries is None else entries[i, j])
    ]
    stacked = []
    for i, p in enumerate(host):
        arrays = []
        for j, a in enumerate(p):
            stack = np.repeat(a[None], 2 * len(where), axis=0)
            for m, (li, lj, k) in enumerate(where):
                if (li, lj) == (i, j):
                    stack[m].flat[k] += FD_EPS
                    stack[len(where) + m].flat[k] -= FD_EPS
            arrays.append(stack)
        stacked.append(tuple(arrays))
    return stacked, where


def _central_differences(backend, J, params, entries=None) -> list:
    """(J(theta + eps e_k) - J(theta - eps e_k)) / (2 eps) for the chosen entries k of every
    parameter array (all by default; NaN elsewhere), J evaluated on the backend.

    On JAX, J is mapped over the stacked perturbations with ``jax.vmap`` (one eager call
    instead of hundreds); elsewhere it is called once per perturbation."""
    stacked, where = _perturbations(params, entries)
    m = 2 * len(where)
    if backend.name == "jax":
        moved = [tuple(backend.asarray(a, dtype="float64") for a in p) for p in stacked]
        values = np.asarray(_backend.to_numpy(jax.vmap(J)(moved)), dtype=np.float64)
    else:
        values = np.empty(m)
        for r in range(m):
            row = [tuple(backend.asarray(a[r], dtype="float64") for a in p) for p in stacked]
            values[r] = float(J(row))
    # the actual steps, as rounded in theta +- eps
    out = [tuple(np.full(tuple(a.shape), np.nan) for a in p) for p in params]
    for r, (i, j, k) in enumerate(where):
        step = stacked[i][j][r].flat[k] - stacked[i][j][len(where) + r].flat[k]
        out[i][j].flat[k] = (values[r] - values[len(where) + r]) / step
    return out


# array-api-strict spends ~0.7 ms per network evaluation in its dtype and device checks
# (~4 ms with the pure Array API normal CDF of GELU): it checks a seeded random sample of entries
# per array. Every entry is still compared with the autograd references below, and NumPy's
# backend (which array-api-strict wraps) checks every entry by central differences.
FD_SAMPLED_ENTRIES = {"array_api_strict": 2}


def _fd_entries(backend, params, seed):
    count = FD_SAMPLED_ENTRIES.get(backend.name)
    if count is None:
        return None
    rng = np.random.default_rng(seed)
    return {
        (i, j): sorted(rng.choice(math.prod(a.shape), min(count, math.prod(a.shape)), False))
        for i, p in enumerate(params)
        for j, a in enumerate(p)
    }


def _check_grad_structure(backend, params, grads, dtype="float64"):
    assert len(grads) == len(params)
    for p, g in zip(params, grads):
        assert len(g) == len(p)
        for a, ga in zip(p, g):
            assert_close(ga, _backend.to_numpy(ga), backend=backend, dtype=dtype)
            assert tuple(ga.shape) == tuple(a.shape)


def _assert_fd(backend, act, loss_case, alpha, flatten=False):
    net, params, X, y = on_backend(backend, act, loss_case, alpha, flatten)
    loss = LOSS_NAME[loss_case]
    value, grads = net.loss_and_grad(params, X, y, loss, alpha)
    # a 0-d value (NumPy's backend returns a NumPy scalar: see test_losses.py)
    assert _backend.to_numpy(value).shape == () and value.dtype == backend.xp.float64
    _check_grad_structure(backend, params, grads)

    def J(ps):
        """The penalised loss J_lambda from the forward pass alone (no backward to pay for)."""
        value, _ = losses.get(loss)(y, net.forward(ps, X))
        return value + net.penalty(ps, alpha, X.shape[0])[0] if alpha else value

    np.testing.assert_allclose(float(J(params)), float(value), rtol=1e-14)

    seed = zlib.crc32(repr((act, loss_case, alpha, flatten)).encode())
    numeric = _central_differences(backend, J, params, _fd_entries(backend, params, seed))
    analytic = [_backend.to_numpy(a) for g in grads for a in g]
    for name, ga, na in zip(net.param_names(), analytic, [a for n in numeric for a in n]):
        checked = ~np.isnan(na)
        assert checked.any()
        diff = np.max(np.abs(ga[checked] - na[checked]))
        scale = max(np.max(np.abs(ga)), np.max(np.abs(na[checked])), np.finfo(float).tiny)
        assert diff / scale < 1e-6, (name, diff / scale)


def _assert_autograd(backend, ref, act, loss_case, alpha, flatten=False):
    net, params, X, y = on_backend(backend, act, loss_case, alpha, flatten)
    value, grads = net.loss_and_grad(params, X, y, LOSS_NAME[loss_case], alpha)
    ref_value, ref_grads = _reference(ref, act, loss_case, alpha, flatten)
    assert _rel_err(float(value), ref_value) < 1e-10, (float(value), ref_value)
    grads = weight_layers(grads)
    assert len(grads) == len(ref_grads)
    for layer, (g, r) in enumerate(zip(grads, ref_grads)):
        for name, ga, ra in zip("Wb", g, r):
            err = _rel_err(_backend.to_numpy(ga), ra)
            assert err < 1e-10, (f"dense layer {layer}, {name}", err)


# ---------------------------------------------------------------------------- 1. gradients


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("loss_case", LOSS_CASES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradients_match_central_differences(backend, act, loss_case, alpha):
    _assert_fd(backend, act, loss_case, alpha)


@pytest.mark.parametrize("ref", REFERENCES)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("loss_case", LOSS_CASES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradients_match_autograd(backend, ref, act, loss_case, alpha):
    _assert_autograd(backend, ref, act, loss_case, alpha)


@pytest.mark.parametrize("ref", REFERENCES)
@pytest.mark.parametrize("as_array", [False, True], ids=["number", "array"])
@pytest.mark.parametrize("loss_case, alpha", [("sce_labels", 0.3), ("squared_error", 0.0)])
def test_grad_scale_scales_the_gradients_not_the_value(backend, ref, loss_case, alpha, as_array):
    """SGD folds its learning rate into backpropagation: grad_scale c gives J and c grad J
    (the penalty's gradient too), c a host number or, as jit passes it, a 0-d array."""
    c = 0.37
    net, params, X, y = on_backend(backend, "tanh", loss_case, alpha)
    xp = backend.xp
    scale = xp.asarray(c, dtype=xp.float64, device=backend.device) if as_array else c
    value, grads = net.loss_and_grad(params, X, y, LOSS_NAME[loss_case], alpha, grad_scale=scale)
    ref_value, ref_grads = _reference(ref, "tanh", loss_case, alpha)
    assert _rel_err(float(value), ref_value) < 1e-10
    for (gW, gb), (rW, rb) in zip(weight_layers(grads), ref_grads):
        assert _rel_err(_backend.to_numpy(gW), c * np.asarray(rW)) < 1e-10
        assert _rel_err(_backend.to_numpy(gb), c * np.asarray(rb)) < 1e-10


@pytest.mark.parametrize("alpha", ALPHAS)
def test_perceptron_gradients_match_central_differences(backend, alpha):
    _assert_fd(backend, "identity", "perceptron", alpha)


@pytest.mark.parametrize("ref", REFERENCES)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_perceptron_gradients_match_autograd(backend, ref, alpha):
    _assert_autograd(backend, ref, "identity", "perceptron", alpha)


def test_mlp_builds_gated_layers_for_the_glu_family():
    for act in ACTIVATIONS:
        net = Network.mlp(N_IN, HIDDEN, N_OUT, activation=act)
        kinds = [type(layer) for layer in net.layers]
        if act in activations.GATED:
            assert kinds == [GatedDense, GatedDense, Dense]
            assert net.layers[0].param_shapes() == ((N_IN, 8), (8,))
        else:
            assert kinds == [Dense, Activation, Dense, Activation, Dense]
    assert [type(layer) for layer in Network.mlp(N_IN, (), 1).layers] == [Dense]


# ---------------------------------------------------------------------------- 2. forward


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_matches_numpy(backend, act):
    net = Network.mlp(N_IN, HIDDEN, N_OUT, activation=act)
    X, _ = make_data("squared_error")
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    out = net.forward(params, backend.asarray(X, dtype="float64"))
    expected = np_forward(act, weight_layers(to_host(params)), X)
    assert_close(out, expected, backend=backend, dtype="float64", rtol=1e-12, atol=1e-14)
    # forward_train gives the same output
    out2, caches = net.forward_train(params, backend.asarray(X, dtype="float64"))
    assert len(caches) == len(net.layers)
    assert_close(out2, expected, backend=backend, dtype="float64", rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------- 3. jax.jit

# each jax.jit compilation takes ~0.5 s here: a few cases covering every loss and layer kind
JIT_CASES = [
    ("relu", "sce_labels", 0.3),
    ("gelu", "squared_error", 0.0),
    ("swiglu", "binary_log_loss", 0.3),
    ("tanh", "sce_onehot", 0.0),
    ("identity", "perceptron", 0.3),
]


@pytest.mark.parametrize("act, loss_case, alpha", JIT_CASES)
def test_jit_equals_eager(backend, act, loss_case, alpha):
    if backend.name != "jax":
        pytest.skip("jax.jit applies to the jax backend only")
    net, params, X, y = on_backend(backend, act, loss_case, alpha)
    loss = LOSS_NAME[loss_case]
    jitted = jax.jit(lambda p, X, y: net.loss_and_grad(p, X, y, loss, alpha))
    value, grads = jitted(params, X, y)
    eager_value, eager_grads = net.loss_and_grad(params, X, y, loss, alpha)
    assert_close(value, _backend.to_numpy(eager_value), backend=backend, dtype="float64")
    for g, e in zip(grads, eager_grads):
        assert len(g) == len(e)
        for ga, ea in zip(g, e):
            assert_close(ga, _backend.to_numpy(ea), backend=backend, dtype="float64", atol=1e-15)


# ---------------------------------------------------------------------------- 4. Flatten in front


def test_mlp_flatten_forward(backend):
    net = make_net("tanh", "squared_error", flatten=True)
    assert isinstance(net.layers[0], Flatten)
    X, _ = make_data("squared_error", flatten=True)
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    out = net.forward(params, backend.asarray(X, dtype="float64"))
    expected = np_forward("tanh", weight_layers(to_host(params)), X)
    assert_close(out, expected, backend=backend, dtype="float64", rtol=1e-12, atol=1e-14)


FLATTEN_CASES = [("tanh", "sce_labels"), ("geglu", "binary_log_loss")]


@pytest.mark.parametrize("act, loss_case", FLATTEN_CASES)
def test_mlp_flatten_gradients_match_central_differences(backend, act, loss_case):
    _assert_fd(backend, act, loss_case, 0.3, flatten=True)


@pytest.mark.parametrize("ref", REFERENCES)
@pytest.mark.parametrize("act, loss_case", FLATTEN_CASES)
def test_mlp_flatten_gradients_match_autograd(backend, ref, act, loss_case):
    _assert_autograd(backend, ref, act, loss_case, 0.3, flatten=True)


# ----------------------------------------------------------------------- 5. properties (hypothesis)

ELEMENTWISE = [
    n for n in activations.names() if n not in ("softmax", "log_softmax", *activations.GATED)
]


@PROPERTY_SETTINGS
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


@PROPERTY_SETTINGS
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
