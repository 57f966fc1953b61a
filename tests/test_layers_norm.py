"""Normalisation layers (``backendnn.layers.norm``) on every backend: ``BatchNorm1d``,
``BatchNorm2d`` and ``LayerNorm`` forward values, hand-written gradients and running
statistics against torch (modules and autograd, float64, 1e-10), in training and
inference; weighted batch statistics against torch run on the rows kept (weights 0/1)
or repeated (integer weights); argument checks, shapes and reprs.

The references are ``torch.nn.BatchNorm1d/2d`` and ``torch.nn.LayerNorm`` with their
gradients from autograd: never backendnn code.
"""

from __future__ import annotations

import numpy as np
import pytest

from backendnn import Network, _backend
from backendnn.layers import BatchNorm1d, BatchNorm2d, Dense, LayerNorm
from backendnn.layers.base import Context
from tests._helpers import optional_import
from tests.conftest import assert_close

torch = optional_import("torch")
TOL = dict(rtol=1e-10, atol=1e-10)


def _need_torch():
    if torch is None:
        pytest.skip("torch is not installed (the reference)")


def _torch_module(layer):
    """The torch module of ``layer``'s class and arguments, in float64."""
    cfg = layer.config()
    if isinstance(layer, LayerNorm):
        return torch.nn.LayerNorm(**cfg, dtype=torch.float64)
    cls = {BatchNorm1d: torch.nn.BatchNorm1d, BatchNorm2d: torch.nn.BatchNorm2d}[type(layer)]
    return cls(**cfg, dtype=torch.float64)


def _host_params(layer, rng):
    return tuple(
        (1.0 + 0.3 * rng.standard_normal(p.shape)) if p.name == "weight"
        else 0.5 * rng.standard_normal(p.shape)
        for p in layer.parameters()
    )  # fmt: skip


def _host_state(layer, rng):
    if not layer.buffers():
        return ()
    c = layer.num_features
    return (rng.standard_normal(c), 0.5 + rng.random(c), np.asarray(3.0))


def _torch_load(module, params, state):
    with torch.no_grad():
        for name, value in zip(("weight", "bias"), params):
            getattr(module, name).copy_(torch.from_numpy(value))
        if state:
            module.running_mean.copy_(torch.from_numpy(state[0]))
            module.running_var.copy_(torch.from_numpy(state[1]))
            module.num_batches_tracked.fill_(int(state[2]))


def _torch_run(module, x, dy, training):
    """torch's y, dx and parameter gradients (autograd) for the loss sum(y dy)."""
    module.train(training)
    xt = torch.from_numpy(x).requires_grad_(True)
    y = module(xt)
    (y * torch.from_numpy(dy)).sum().backward()
    grads = [p.grad.numpy() for p in module.parameters()]
    return y.detach().numpy(), xt.grad.numpy(), grads


def _torch_state(module):
    if module.running_mean is None:
        return ()
    return (
        module.running_mean.numpy(),
        module.running_var.numpy(),
        np.asarray(float(module.num_batches_tracked)),
    )


def _arr(backend, a):
    """``backend.asarray``, 0-d arrays kept 0-d (``_backend.from_numpy`` makes them 1-d:
    ``np.ascontiguousarray`` returns at least one axis)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return backend.xp.asarray(float(a), dtype=backend.dtype("float64"), device=backend.device)
    return backend.asarray(a)


def _ours(backend, layer, params, state, x, dy, training, weights=None):
    """Our y, dx, grads and next state on ``backend`` (host arrays in)."""
    P = tuple(backend.asarray(p) for p in params)
    S = tuple(_arr(backend, s) for s in state)
    W = None if weights is None else backend.asarray(weights)
    ctx = Context(training, S, None, W)
    y, cache = layer.forward(P, backend.asarray(x), ctx)
    dx, grads = layer.backward(P, cache, backend.asarray(dy))
    new_state = layer.next_state(S, cache) if training else S
    return y, dx, grads, new_state


BN_CASES = [
    (BatchNorm1d(3), (5, 3)),
    (BatchNorm1d(3), (4, 3, 5)),
    (BatchNorm2d(2), (3, 2, 3, 4)),
    (BatchNorm1d(3, affine=False), (4, 3, 2)),
    (BatchNorm2d(2, bias=False), (2, 2, 2, 3)),
    (BatchNorm2d(2, track_running_stats=False), (2, 2, 3, 3)),
    (BatchNorm1d(3, momentum=None, eps=1e-3), (6, 3)),
]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("layer", "shape"), BN_CASES, ids=lambda c: repr(c))
def test_batch_norm_matches_torch(backend, layer, shape, training):
    """y, dx, dweight, dbias and the next running statistics equal torch's (autograd
    through the batch statistics in training; the running ones in inference, or the
    batch's without running statistics)."""
    _need_torch()
    rng = np.random.default_rng(0)
    params, state = _host_params(layer, rng), _host_state(layer, rng)
    x = 2.0 + 3.0 * rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    module = _torch_module(layer)
    _torch_load(module, params, state)
    y_ref, dx_ref, grads_ref = _torch_run(module, x, dy, training)
    y, dx, grads, new_state = _ours(backend, layer, params, state, x, dy, training)
    assert_close(y, y_ref, backend=backend, dtype="float64", **TOL)
    assert_close(dx, dx_ref, backend=backend, dtype="float64", **TOL)
    assert len(grads) == len(grads_ref) == len(layer.parameters())
    for g, ref in zip(grads, grads_ref):
        assert_close(g, ref, backend=backend, dtype="float64", **TOL)
    assert len(new_state) == len(_torch_state(module))
    for s, ref in zip(new_state, _torch_state(module)):
        assert_close(s, ref, backend=backend, dtype="float64", **TOL)


@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
def test_running_statistics_follow_torch_over_steps(backend, momentum):
    """Four training steps on the same batches leave the running mean, the (unbiased)
    running variance and the batch count equal to torch's; inference then agrees."""
    _need_torch()
    layer = BatchNorm1d(3, momentum=momentum)
    module = _torch_module(layer)
    rng = np.random.default_rng(1)
    state = tuple(_arr(backend, s) for s in (np.zeros(3), np.ones(3), 0.0))
    params = tuple(backend.asarray(p) for p in (np.ones(3), np.zeros(3)))
    for step in range(4):
        x = rng.normal(step, 1.0 + step, size=(5 + step, 3, 2))
        module.train()
        module(torch.from_numpy(x))
        _, cache = layer.forward(params, backend.asarray(x), Context(True, state))
        state = layer.next_state(state, cache)
    for s, ref in zip(state, _torch_state(module)):
        assert_close(s, ref, backend=backend, dtype="float64", **TOL)
    x = rng.standard_normal((4, 3, 2))
    module.eval()
    y, _ = layer.forward(params, backend.asarray(x), Context(False, state))
    assert_close(y, module(torch.from_numpy(x)).detach().numpy(), backend=backend, **TOL)


def test_exact_state_is_the_batch_statistics(backend):
    """``next_state(exact=True)`` sets the running statistics to the batch's mean and
    unbiased variance (after L-BFGS on the whole data set) and counts the batch."""
    layer = BatchNorm2d(2)
    x = np.random.default_rng(2).standard_normal((3, 2, 2, 2))
    state = tuple(_arr(backend, s) for s in (np.full(2, 5.0), np.full(2, 7.0), 4.0))
    _, cache = layer.forward((backend.asarray(np.ones(2)), backend.asarray(np.zeros(2))),
                             backend.asarray(x), Context(True, state))  # fmt: skip
    mean, var, count = layer.next_state(state, cache, exact=True)
    assert_close(mean, x.mean(axis=(0, 2, 3)), backend=backend, **TOL)
    assert_close(var, x.var(axis=(0, 2, 3), ddof=1), backend=backend, **TOL)
    assert_close(count, 5.0, backend=backend)


WEIGHT_CASES = [
    (BatchNorm1d(3), (6, 3)),
    (BatchNorm1d(3), (6, 3, 2)),
    (BatchNorm2d(2), (5, 2, 2, 3)),
]


@pytest.mark.parametrize(("layer", "shape"), WEIGHT_CASES, ids=lambda c: repr(c))
def test_zero_weight_rows_do_not_count(backend, layer, shape):
    """Weights 0/1: outputs, gradients and running statistics on the kept rows equal
    torch's on the kept rows alone (a mesh's padding rows have weight 0); the dropped rows'
    gradient dy is 0, as a weighted loss gives."""
    _need_torch()
    rng = np.random.default_rng(3)
    n = shape[0]
    weights = np.ones(n)
    weights[[1, n - 1]] = 0.0
    keep = weights > 0
    params, state = _host_params(layer, rng), _host_state(layer, rng)
    x = 1.0 + 2.0 * rng.standard_normal(shape)
    x[~keep] = 1e3  # far off: they would move the statistics if they counted
    dy = rng.standard_normal(shape) * weights.reshape((n,) + (1,) * (len(shape) - 1))
    module = _torch_module(layer)
    _torch_load(module, params, state)
    y_ref, dx_ref, grads_ref = _torch_run(module, x[keep], dy[keep], True)
    y, dx, grads, new_state = _ours(backend, layer, params, state, x, dy, True, weights)
    y_host, dx_host = _backend.to_numpy(y), _backend.to_numpy(dx)
    np.testing.assert_allclose(y_host[keep], y_ref, **TOL)
    np.testing.assert_allclose(dx_host[keep], dx_ref, **TOL)
    assert np.all(np.isfinite(y_host)) and np.all(np.isfinite(dx_host))
    for g, ref in zip(grads, grads_ref):
        assert_close(g, ref, backend=backend, **TOL)
    for s, ref in zip(new_state, _torch_state(module)):
        assert_close(s, ref, backend=backend, **TOL)


def test_integer_weights_are_repeated_rows(backend):
    """Weight k counts a row as k copies in the mean and variance: y, the dweight and
    dbias, and dx (the copies' gradients summed) equal torch's on the repeated rows."""
    _need_torch()
    layer = BatchNorm1d(3, track_running_stats=False)
    rng = np.random.default_rng(4)
    weights = np.array([1.0, 3.0, 2.0, 1.0])
    params = _host_params(layer, rng)
    x, dy = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    reps = weights.astype(int)
    module = _torch_module(layer)
    _torch_load(module, params, ())
    x_rep, dy_rep = np.repeat(x, reps, 0), np.repeat(dy, reps, 0)
    y_ref, dx_rep, grads_ref = _torch_run(module, x_rep, dy_rep, True)
    dx_ref = np.add.reduceat(dx_rep, np.concatenate([[0], np.cumsum(reps)[:-1]]), axis=0)
    dy_weighted = dy * weights[:, None, None]
    y, dx, grads, _ = _ours(backend, layer, params, (), x, dy_weighted, True, weights)
    assert_close(y, y_ref[np.cumsum(reps) - 1], backend=backend, **TOL)
    assert_close(dx, dx_ref, backend=backend, **TOL)
    for g, ref in zip(grads, grads_ref):
        assert_close(g, ref, backend=backend, **TOL)


def test_weights_are_frequencies_and_zero_weights_give_no_nan(backend):
    """Weights all 1 give the unweighted pass; integer weights give the outputs and the
    running statistics of the rows repeated that many times (scikit-learn's frequency
    weights); weights all 0 give statistics 0 (finite outputs, gradients, state)."""
    layer = BatchNorm1d(3)
    rng = np.random.default_rng(5)
    params, state = _host_params(layer, rng), _host_state(layer, rng)
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    plain = _ours(backend, layer, params, state, x, dy, True)
    ones = _ours(backend, layer, params, state, x, dy, True, np.ones(4))
    flat = [(out[0], out[1], *out[2], *out[3]) for out in (plain, ones)]
    for a, b in zip(*flat):
        assert_close(a, _backend.to_numpy(b), backend=backend, **TOL)
    rows = [0, 0, 1, 2, 3, 3, 3]
    weighted = _ours(backend, layer, params, state, x, dy, True, np.array([2.0, 1, 1, 3]))
    repeated = _ours(backend, layer, params, state, x[rows], dy[rows], True)
    assert_close(weighted[0], _backend.to_numpy(repeated[0])[[0, 2, 3, 4]], backend=backend, **TOL)
    for a, b in zip(weighted[3][:2], repeated[3][:2]):  # running mean and variance
        assert_close(a, _backend.to_numpy(b), backend=backend, **TOL)
    zero = _ours(backend, layer, params, state, x, dy, True, np.zeros(4))
    for a in (zero[0], zero[1], *zero[2], *zero[3]):
        assert np.all(np.isfinite(_backend.to_numpy(a)))


def test_one_value_per_channel_is_refused_in_training(backend):
    """A training batch with one value per channel raises (torch does too), never NaN;
    BatchNorm2d on one image of several pixels is fine, and inference on one row too."""
    layer = BatchNorm1d(3)
    P = (backend.asarray(np.ones(3)), backend.asarray(np.zeros(3)))
    S = tuple(_arr(backend, s) for s in (np.zeros(3), np.ones(3), 0.0))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer.forward(P, backend.asarray(np.ones((1, 3))), Context(True, S))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(3, track_running_stats=False).forward(P, backend.asarray(np.ones((1, 3))))
    y, _ = layer.forward(P, backend.asarray(np.ones((1, 3))), Context(False, S))
    assert np.all(np.isfinite(_backend.to_numpy(y)))
    y, _ = BatchNorm2d(3).forward(P, backend.asarray(np.ones((1, 3, 2, 2))), Context(True, S))
    assert np.all(np.isfinite(_backend.to_numpy(y)))


LN_CASES = [
    (LayerNorm(5), (4, 5)),
    (LayerNorm((3, 4)), (2, 3, 4)),
    (LayerNorm(4, eps=1e-3), (2, 3, 4)),
    (LayerNorm(4, elementwise_affine=False), (3, 4)),
    (LayerNorm(4, bias=False), (3, 2, 4)),
]


@pytest.mark.parametrize(("layer", "shape"), LN_CASES, ids=lambda c: repr(c))
def test_layer_norm_matches_torch(backend, layer, shape):
    """y, dx, dweight and dbias equal torch's LayerNorm with autograd."""
    _need_torch()
    rng = np.random.default_rng(6)
    params = _host_params(layer, rng)
    x, dy = 1.0 + 2.0 * rng.standard_normal(shape), rng.standard_normal(shape)
    module = _torch_module(layer)
    _torch_load(module, params, ())
    y_ref, dx_ref, grads_ref = _torch_run(module, x, dy, True)
    P = tuple(backend.asarray(p) for p in params)
    y, cache = layer.forward(P, backend.asarray(x))
    dx, grads = layer.backward(P, cache, backend.asarray(dy))
    assert_close(y, y_ref, backend=backend, dtype="float64", **TOL)
    assert_close(dx, dx_ref, backend=backend, dtype="float64", **TOL)
    assert len(grads) == len(grads_ref) == len(layer.parameters())
    for g, ref in zip(grads, grads_ref):
        assert_close(g, ref, backend=backend, dtype="float64", **TOL)
    assert layer.backward(P, cache, backend.asarray(dy), need_dx=False)[0] is None


def test_declarations_reprs_and_equality():
    """Parameters and buffers as torch lays them out; reprs as torch's; equality and
    hashing from the constructor arguments."""
    bn = BatchNorm1d(4)
    assert [(p.name, p.shape, p.init, p.penalized) for p in bn.parameters()] == [
        ("weight", (4,), "ones", False), ("bias", (4,), "zeros", False)]  # fmt: skip
    assert [(b.name, b.shape, b.init) for b in bn.buffers()] == [
        ("running_mean", (4,), "zeros"), ("running_var", (4,), "ones"),
        ("num_batches_tracked", (), "zeros")]  # fmt: skip
    assert BatchNorm2d(4, affine=False).parameters() == ()
    assert BatchNorm2d(4, track_running_stats=False).buffers() == ()
    assert BatchNorm1d(2).uses_mode and not BatchNorm1d(2).random and not LayerNorm(2).uses_mode
    assert [p.shape for p in LayerNorm((2, 3)).parameters()] == [(2, 3), (2, 3)]
    assert bn == BatchNorm1d(4, eps=1e-5) and hash(bn) == hash(BatchNorm1d(4))
    assert bn != BatchNorm2d(4) and bn != BatchNorm1d(4, momentum=None)
    assert LayerNorm(3) == LayerNorm((3,))
    assert BatchNorm1d(4, momentum=None).config() == {
        "num_features": 4, "eps": 1e-5, "momentum": None, "affine": True,
        "track_running_stats": True, "bias": True}  # fmt: skip
    if torch is not None:
        for layer in (BatchNorm1d(4), BatchNorm2d(3, 1e-3, None, False, False), LayerNorm((2, 3)),
                      LayerNorm(4, elementwise_affine=False), LayerNorm(3, bias=False),
                      BatchNorm1d(2, bias=False)):  # fmt: skip
            assert repr(layer) == repr(_torch_module(layer))


@pytest.mark.parametrize(
    "make",
    [
        lambda: BatchNorm1d(2.5), lambda: BatchNorm1d(0), lambda: BatchNorm1d(True),
        lambda: BatchNorm2d(3, eps=-1.0), lambda: BatchNorm2d(3, momentum=1.5),
        lambda: BatchNorm2d(3, momentum="0.1"), lambda: BatchNorm1d(3, affine="yes"),
        lambda: BatchNorm1d(3, bias=1),
        lambda: LayerNorm(()), lambda: LayerNorm((2, 0)), lambda: LayerNorm(2.0),
        lambda: LayerNorm(3, eps=float("nan")),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused(make):
    with pytest.raises(ValueError, match="must be"):
        make()


def test_output_shapes_are_checked():
    assert BatchNorm1d(3).output_shape((3,)) == (3,)
    assert BatchNorm1d(3).output_shape((3, 7)) == (3, 7)
    assert BatchNorm2d(3).output_shape((3, 4, 5)) == (3, 4, 5)
    assert LayerNorm((4, 5)).output_shape((2, 4, 5)) == (2, 4, 5)
    for layer, shape, match in [
        (BatchNorm1d(3), (3, 4, 5), "BatchNorm1d"),
        (BatchNorm1d(3), (4,), "3 channels"),
        (BatchNorm2d(3), (3, 4), "BatchNorm2d"),
        (BatchNorm2d(3), (2, 4, 4), "3 channels"),
        (LayerNorm(4), (4, 5), "LayerNorm"),
        (LayerNorm((2, 3)), (3,), "LayerNorm"),
    ]:
        with pytest.raises(ValueError, match=match):
            layer.output_shape(shape)
    with pytest.raises(ValueError, match="layer 1"):
        Network([Dense(4, 3), BatchNorm1d(4)]).output_shape((4,))


def test_forward_checks_shapes_and_state(backend):
    layer = BatchNorm2d(3)
    P = (backend.asarray(np.ones(3)), backend.asarray(np.zeros(3)))
    with pytest.raises(ValueError, match="3 channels"):
        layer.forward(P, backend.asarray(np.ones((2, 4, 2, 2))), Context(True))
    with pytest.raises(ValueError, match="needs its state"):
        layer.forward(P, backend.asarray(np.ones((2, 3, 2, 2))))


def test_network_state_and_training_step(backend):
    """Network.init_state gives the buffers' initial values; a training step through
    loss_grad_state returns the moved running statistics."""
    net = Network([Dense(4, 3), BatchNorm1d(3), Dense(3, 2)])
    params = net.init(seed=0, xp=backend.xp, device=backend.device, dtype=backend.dtype("float64"))
    state = net.init_state(xp=backend.xp, device=backend.device, dtype=backend.dtype("float64"))
    assert [len(s) for s in state] == [0, 3, 0]
    assert_close(state[1][1], np.ones(3), backend=backend)
    assert [_backend.to_numpy(p).tolist() for p in params[1]] == [[1.0] * 3, [0.0] * 3]
    rng = np.random.default_rng(7)
    X = backend.asarray(rng.standard_normal((6, 4)))
    y = backend.asarray(rng.standard_normal((6, 2)))
    _, _, new_state = net.loss_grad_state(params, X, y, state=state)
    assert_close(new_state[1][2], 1.0, backend=backend)
    assert not np.allclose(_backend.to_numpy(new_state[1][0]), 0.0)
    assert net.forward(params, X, new_state).shape == (6, 2)
