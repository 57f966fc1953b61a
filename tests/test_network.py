"""Network tests on every backend: hand-written backpropagation against central
differences, ``jax.grad`` and torch autograd; same-seed initialisation across backends;
``jax.jit``; ``check_gradients``; ``Flatten``; flat parameter vectors.

The references are written here from the formulas (dense layers x W + b, the activations
of jax.nn / torch.nn.functional or their explicit formulas, the L2 term
alpha/(2n) sum ||W||^2 over weights only, the loss formulas of the losses.py
docstrings), never from backendnn code. They depend only on (activation, loss, alpha), not
on the backend, so they are computed once and cached.
"""

from __future__ import annotations

import functools
import importlib
import math
import zlib

import numpy as np
import pytest
import scipy.special as sps

import backendnn
from backendnn import Network, _backend, activations, flatten_params, losses, unflatten_params
from backendnn import init as bn_init
from backendnn.layers import Activation, Dense, Flatten, GatedDense
from tests._references import jax_activation, torch_activation
from tests.conftest import assert_close


def _optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


jax = _optional("jax")
torch = _optional("torch")

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

# one sample count everywhere: JAX compiles each new operand shape (~30 ms each here)
N_SAMPLES, N_IN, HIDDEN, N_OUT = 6, 5, (4, 3), 3
IMAGE_SHAPE = (2, 3, 2)  # (C, H, W) of the flatten tests: a (6, 2, 3, 2) NCHW batch
INIT_SEED, DATA_SEED = 0, 1234
FD_EPS = 1e-6
KINK_MARGIN = 1e-4  # pre-activations and perceptron margins stay this far from 0


def _make_net(act: str, loss_case: str, flatten: bool = False) -> Network:
    if loss_case == "perceptron":
        return Network.mlp(N_IN, (), 1)
    n_in = math.prod(IMAGE_SHAPE) if flatten else N_IN
    return Network.mlp(n_in, HIDDEN, N_OUT, activation=act, flatten=flatten)


def _make_data(loss_case: str, flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Host data: X (n, 5) or an NCHW batch (6, 2, 3, 2), and targets for ``loss_case``."""
    rng = np.random.default_rng(DATA_SEED)
    n = N_SAMPLES
    X = rng.normal(size=(n, *(IMAGE_SHAPE if flatten else (N_IN,))))
    if loss_case == "squared_error":
        y = rng.normal(size=(n, N_OUT))
    elif loss_case == "sce_labels":
        y = rng.integers(0, N_OUT, size=n)
    elif loss_case == "sce_onehot":
        y = np.eye(N_OUT)[rng.integers(0, N_OUT, size=n)]
    elif loss_case == "binary_log_loss":
        y = rng.integers(0, 2, size=(n, N_OUT)).astype(np.float64)
    elif loss_case == "perceptron":
        y = rng.choice([-1.0, 1.0], size=n)
    else:  # pragma: no cover
        raise AssertionError(loss_case)
    return X, y


def _host_params(net: Network, dtype=np.float64, scheme="glorot_uniform") -> list:
    """The parameters NumPy's backend draws for ``INIT_SEED``, as host arrays."""
    xpn = _backend.namespace("numpy")
    params = net.init(INIT_SEED, xp=xpn, dtype=getattr(xpn, np.dtype(dtype).name), scheme=scheme)
    return [tuple(np.asarray(a) for a in p) for p in params]


def _to_host(params) -> list:
    return [tuple(_backend.to_numpy(a) for a in p) for p in params]


def _weights(params) -> list:
    """The (W, b) pairs of the layers that have parameters."""
    return [p for p in params if p]


def _rel_err(actual, expected) -> float:
    """max |actual - expected| / max(max |expected|, max |actual|)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.max(np.abs(expected)), np.max(np.abs(actual)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(actual - expected)) / scale)


# ---------------------------------------------------------------------------- NumPy forward

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _np_gelu(z):
    return 0.5 * z * sps.erfc(-z / math.sqrt(2.0))


_NP_ACT = {
    "identity": lambda z: z,
    "sigmoid": sps.expit,
    "logistic": sps.expit,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "gelu": _np_gelu,
    "gelu_tanh": lambda z: 0.5 * z * (1.0 + np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z**3))),
    "silu": lambda z: z * sps.expit(z),
    "swish": lambda z: z * sps.expit(z),
    "softplus": lambda z: np.logaddexp(0.0, z),
    # GLU family: the gate g acts on the first half a of the projection, y = g(a) * b
    "glu": sps.expit,
    "reglu": lambda z: np.maximum(z, 0.0),
    "geglu": _np_gelu,
    "swiglu": lambda z: z * sps.expit(z),
}


def _np_forward(act: str, weights, X, *, preacts: list | None = None):
    """h_{W,b}(X) in NumPy: hidden layers f(x W + b) (gated: g(a) * b), linear output."""
    f, gated = _NP_ACT[act], act in activations.GATED
    h = np.reshape(X, (X.shape[0], -1))
    for W, b in weights[:-1]:
        p = h @ W + b
        if gated:
            k = W.shape[1] // 2
            a = p[:, :k]
            h = f(a) * p[:, k:]
        else:
            a = p
            h = f(p)
        if preacts is not None:
            preacts.append(a)
    W, b = weights[-1]
    return h @ W + b


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
def _case(act: str, loss_case: str, alpha: float, flatten: bool = False):
    """Host data, parameters and the kink-free precondition of one case (cached)."""
    net = _make_net(act, loss_case, flatten)
    X, y = _make_data(loss_case, flatten)
    params = _host_params(net)
    preacts: list = []
    h = _np_forward(act, _weights(params), X, preacts=preacts)
    # central differences step by FD_EPS: keep relu kinks and perceptron margins away
    for z in preacts:
        assert np.min(np.abs(z)) > KINK_MARGIN
    if loss_case == "perceptron":
        assert np.min(np.abs(y * h[:, 0])) > KINK_MARGIN
    return net, X, y, params


@functools.cache
def _reference(ref: str, act: str, loss_case: str, alpha: float, flatten: bool = False):
    _, X, y, params = _case(act, loss_case, alpha, flatten)
    fn = _jax_reference if ref == "jax" else _torch_reference
    return fn(act, loss_case, alpha, _weights(params), X, y)


# ---------------------------------------------------------------------------- backend helpers


def _on_backend(backend, act, loss_case, alpha, flatten=False):
    """The case's network, its parameters from ``net.init`` and the data, on ``backend``."""
    net, X, y, host = _case(act, loss_case, alpha, flatten)
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    for p, q in zip(_to_host(params), host):  # same seed, same bits (see test_init_*)
        for a, b in zip(p, q):
            np.testing.assert_array_equal(a, b)
    return net, params, backend.asarray(X, dtype="float64"), backend.asarray(y)


def _perturbations(params, entries: dict | None = None) -> tuple[list, list]:
    """Host parameter sets theta + eps e_k and theta - eps e_k, stacked on a new leading
    axis (plus for every entry k first, then minus), and the (array, entry) of each k.
    ``entries`` maps (layer, array) to the flat entries to perturb (default: all)."""
    host = _to_host(params)
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
    net, params, X, y = _on_backend(backend, act, loss_case, alpha, flatten)
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
    net, params, X, y = _on_backend(backend, act, loss_case, alpha, flatten)
    value, grads = net.loss_and_grad(params, X, y, LOSS_NAME[loss_case], alpha)
    ref_value, ref_grads = _reference(ref, act, loss_case, alpha, flatten)
    assert _rel_err(float(value), ref_value) < 1e-10, (float(value), ref_value)
    grads = _weights(grads)
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
    net, params, X, y = _on_backend(backend, "tanh", loss_case, alpha)
    xp = backend.xp
    scale = xp.asarray(c, dtype=xp.float64, device=backend.device) if as_array else c
    value, grads = net.loss_and_grad(params, X, y, LOSS_NAME[loss_case], alpha, grad_scale=scale)
    ref_value, ref_grads = _reference(ref, "tanh", loss_case, alpha)
    assert _rel_err(float(value), ref_value) < 1e-10
    for (gW, gb), (rW, rb) in zip(_weights(grads), ref_grads):
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


# ---------------------------------------------------------------------------- 2. initialisation


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scheme", bn_init.names())
@pytest.mark.parametrize("act", ["relu", "swiglu"])
def test_init_is_bitwise_identical_across_backends(backend, act, scheme, dtype):
    net = Network.mlp(N_IN, HIDDEN, N_OUT, activation=act)
    expected = _host_params(net, dtype=np.dtype(dtype), scheme=scheme)
    params = net.init(
        INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.dtype(dtype), scheme=scheme
    )
    assert len(params) == len(expected)
    for p, e, layer in zip(params, expected, net.layers):
        assert len(p) == len(e) == len(layer.param_shapes())
        for a, b, shape in zip(p, e, layer.param_shapes()):
            assert b.dtype == np.dtype(dtype) and b.shape == shape
            assert_close(a, b, backend=backend, dtype=dtype, rtol=0.0)
            np.testing.assert_array_equal(_backend.to_numpy(a), b, strict=True)


def test_init_schemes_draw_what_they_say():
    net = Network.mlp(40, (30,), 20)
    for scheme in bn_init.names():
        params = _host_params(net, scheme=scheme)
        W, b = params[0]
        assert W.shape == (40, 30) and b.shape == (30,)
        if scheme == "he_normal":
            assert np.all(b == 0.0)
            assert 0.5 * math.sqrt(2 / 40) < W.std() < 1.5 * math.sqrt(2 / 40)
        elif scheme == "glorot_uniform":
            assert np.max(np.abs(W)) <= math.sqrt(6 / 70)
        elif scheme == "normal":
            assert 0.005 < W.std() < 0.015
    a = _host_params(net)
    b = _host_params(net)
    for p, q in zip(a, b):
        for x, z in zip(p, q):
            np.testing.assert_array_equal(x, z)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_forward_matches_numpy(backend, act):
    net = Network.mlp(N_IN, HIDDEN, N_OUT, activation=act)
    X, _ = _make_data("squared_error")
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    out = net.forward(params, backend.asarray(X, dtype="float64"))
    expected = _np_forward(act, _weights(_to_host(params)), X)
    assert_close(out, expected, backend=backend, dtype="float64", rtol=1e-12, atol=1e-14)
    # forward_train gives the same output
    out2, caches = net.forward_train(params, backend.asarray(X, dtype="float64"))
    assert len(caches) == len(net.layers)
    assert_close(out2, expected, backend=backend, dtype="float64", rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layer", [Dense(3, 2), GatedDense(3, 2, "reglu")], ids=repr)
def test_layers_leave_their_inputs_alone_and_promote_a_wider_bias(backend, layer):
    """The bias goes into x @ W in place only where z + b keeps z's dtype: a float64 bias
    on float32 weights gives float64, as z + b does; x, W and b are never written to."""
    rng = np.random.default_rng(3)
    x_host = rng.standard_normal((4, 3)).astype(np.float32)
    W_host = rng.standard_normal(layer.param_shapes()[0]).astype(np.float32)
    b_host = rng.standard_normal(layer.param_shapes()[1])  # float64
    for b_dtype in ("float32", "float64"):
        x, W = backend.asarray(x_host, dtype="float32"), backend.asarray(W_host, dtype="float32")
        b = backend.asarray(b_host.astype(b_dtype), dtype=b_dtype)
        y, _ = layer.forward((W, b), x)
        p = x_host.astype(b_dtype) @ W_host.astype(b_dtype) + b_host.astype(b_dtype)
        if isinstance(layer, GatedDense):
            p = np.maximum(p[:, :2], 0) * p[:, 2:]
        assert_close(y, p, backend=backend, dtype=b_dtype, rtol=1e-5)
        for arr, host in ((x, x_host), (W, W_host), (b, b_host.astype(b_dtype))):
            np.testing.assert_array_equal(_backend.to_numpy(arr), host)


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
    net, params, X, y = _on_backend(backend, act, loss_case, alpha)
    loss = LOSS_NAME[loss_case]
    jitted = jax.jit(lambda p, X, y: net.loss_and_grad(p, X, y, loss, alpha))
    value, grads = jitted(params, X, y)
    eager_value, eager_grads = net.loss_and_grad(params, X, y, loss, alpha)
    assert_close(value, _backend.to_numpy(eager_value), backend=backend, dtype="float64")
    for g, e in zip(grads, eager_grads):
        assert len(g) == len(e)
        for ga, ea in zip(g, e):
            assert_close(ga, _backend.to_numpy(ea), backend=backend, dtype="float64", atol=1e-15)


# ---------------------------------------------------------------------------- 4. check_gradients


class _ScaledWeightGradDense(Dense):
    """A planted bug: the weight gradient is 1.1 times too large."""

    def backward(self, params, cache, dz, need_dx=True):
        dx, (dW, db) = super().backward(params, cache, dz, need_dx)
        return dx, (1.1 * dW, db)


class _NoBiasGradDense(Dense):
    """A planted bug: the bias gradient is dropped (zeros)."""

    def backward(self, params, cache, dz, need_dx=True):
        dx, (dW, db) = super().backward(params, cache, dz, need_dx)
        return dx, (dW, 0.0 * db)


def _layered_net(second_dense=Dense) -> Network:
    return Network(
        [Dense(N_IN, 4), Activation("tanh"), second_dense(4, 3), Activation("tanh"), Dense(3, 3)]
    )


def _gradcheck_data(backend, dtype="float64"):
    X, y = _make_data("squared_error")
    return backend.asarray(X, dtype=dtype), backend.asarray(y, dtype=dtype)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_check_gradients_small_for_a_correct_network(backend, alpha):
    net = _layered_net()
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X, y = _gradcheck_data(backend)
    errors = backendnn.check_gradients(net, params, X, y, "squared_error", alpha=alpha)
    assert list(errors) == net.param_names()
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(
    "bad, flagged", [(_ScaledWeightGradDense, "layers[2].W"), (_NoBiasGradDense, "layers[2].b")]
)
def test_check_gradients_flags_a_broken_backward(backend, bad, flagged):
    net = _layered_net(bad)
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X, y = _gradcheck_data(backend)
    errors = backendnn.check_gradients(net, params, X, y, "squared_error", alpha=0.3)
    assert errors[flagged] > 1e-2, errors
    assert max(v for k, v in errors.items() if k != flagged) < 1e-6, errors


def test_check_gradients_float32_default_eps(backend):
    net = _layered_net()
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float32)
    X, y = _gradcheck_data(backend, "float32")
    errors = backendnn.check_gradients(net, params, X, y, "squared_error", alpha=0.3)
    assert max(errors.values()) < 1e-2, errors
    bad = _layered_net(_ScaledWeightGradDense)
    errors = backendnn.check_gradients(bad, params, X, y, "squared_error", alpha=0.3)
    assert errors["layers[2].W"] > 2e-2, errors


def test_check_gradients_max_checks(backend):
    net = _layered_net(_ScaledWeightGradDense)
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X, y = _gradcheck_data(backend)
    errors = backendnn.check_gradients(net, params, X, y, max_checks=3, seed=1)
    assert errors["layers[2].W"] > 1e-2
    assert errors["layers[0].W"] < 1e-6


# ---------------------------------------------------------------------------- 5. Flatten


def test_flatten_layer_nchw(backend):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, *IMAGE_SHAPE))
    layer = Flatten()
    assert layer.param_shapes() == () and layer.param_names == ()
    y, cache = layer.forward((), backend.asarray(x, dtype="float64"))
    # row i is sample i in C, H, W order
    assert_close(y, x.reshape(6, -1), backend=backend, dtype="float64", rtol=0.0)
    np.testing.assert_array_equal(_backend.to_numpy(y)[1, :6], x[1, 0].ravel())
    dy = rng.normal(size=(6, math.prod(IMAGE_SHAPE)))
    dx, grads = layer.backward((), cache, backend.asarray(dy, dtype="float64"))
    assert grads == ()
    assert_close(dx, dy.reshape(6, *IMAGE_SHAPE), backend=backend, dtype="float64", rtol=0.0)


def test_mlp_flatten_forward(backend):
    net = _make_net("tanh", "squared_error", flatten=True)
    assert isinstance(net.layers[0], Flatten)
    X, _ = _make_data("squared_error", flatten=True)
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    out = net.forward(params, backend.asarray(X, dtype="float64"))
    expected = _np_forward("tanh", _weights(_to_host(params)), X)
    assert_close(out, expected, backend=backend, dtype="float64", rtol=1e-12, atol=1e-14)


FLATTEN_CASES = [("tanh", "sce_labels"), ("geglu", "binary_log_loss")]


@pytest.mark.parametrize("act, loss_case", FLATTEN_CASES)
def test_mlp_flatten_gradients_match_central_differences(backend, act, loss_case):
    _assert_fd(backend, act, loss_case, 0.3, flatten=True)


@pytest.mark.parametrize("ref", REFERENCES)
@pytest.mark.parametrize("act, loss_case", FLATTEN_CASES)
def test_mlp_flatten_gradients_match_autograd(backend, ref, act, loss_case):
    _assert_autograd(backend, ref, act, loss_case, 0.3, flatten=True)


# ---------------------------------------------------------------------------- 6. flat vectors


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "net",
    [
        Network.mlp(N_IN, HIDDEN, N_OUT),
        Network.mlp(N_IN, HIDDEN, N_OUT, activation="swiglu"),
        Network.mlp(math.prod(IMAGE_SHAPE), (4,), 2, flatten=True),
        Network.mlp(N_IN, (), 1),
    ],
    ids=["relu", "swiglu", "flatten", "perceptron"],
)
def test_flatten_unflatten_params_round_trip(backend, net, dtype):
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.dtype(dtype))
    host = _to_host(params)
    vector = flatten_params(params)
    expected = np.concatenate([a.ravel() for p in host for a in p])
    assert_close(vector, expected, backend=backend, dtype=dtype, rtol=0.0)
    assert vector.ndim == 1
    back = unflatten_params(vector, params)
    assert len(back) == len(params)
    for p, q in zip(back, host):
        assert len(p) == len(q)
        for a, b in zip(p, q):
            assert_close(a, b, backend=backend, dtype=dtype, rtol=0.0)
            np.testing.assert_array_equal(_backend.to_numpy(a), b, strict=True)
    # a different vector lands in the right places
    other = backend.asarray(np.arange(expected.size, dtype=dtype), dtype=dtype)
    back = unflatten_params(other, params)
    np.testing.assert_array_equal(
        np.concatenate([a.ravel() for p in _to_host(back) for a in p]),
        np.arange(expected.size, dtype=dtype),
    )
    # param_names: one name per array, in flattening order
    names = net.param_names()
    assert len(names) == sum(len(p) for p in params)
    assert names == [f"layers[{i}].{n}" for i, p in enumerate(params) for n in ("W", "b")[: len(p)]]
    assert [n for i, layer in enumerate(net.layers) for n in layer.param_names] == [
        n.split(".")[1] for n in names
    ]


def test_param_names_of_the_standard_mlp():
    net = Network.mlp(N_IN, HIDDEN, N_OUT)
    assert net.param_names() == [
        "layers[0].W",
        "layers[0].b",
        "layers[2].W",
        "layers[2].b",
        "layers[4].W",
        "layers[4].b",
    ]
    net = Network.mlp(N_IN, HIDDEN, N_OUT, activation="glu", flatten=True)
    assert net.param_names() == [
        "layers[1].W",
        "layers[1].b",
        "layers[2].W",
        "layers[2].b",
        "layers[3].W",
        "layers[3].b",
    ]


def test_flatten_params_of_gradients_matches_params(backend):
    net, params, X, y = _on_backend(backend, "tanh", "squared_error", 0.3)
    _, grads = net.loss_and_grad(params, X, y, "squared_error", 0.3)
    gv = flatten_params(grads)
    assert tuple(gv.shape) == tuple(flatten_params(params).shape)
    back = unflatten_params(gv, params)
    for g, b in zip(grads, back):
        for ga, ba in zip(g, b):
            assert_close(ba, _backend.to_numpy(ga), backend=backend, dtype="float64", rtol=0.0)
