"""The residual block ``backendnn.layers.Residual`` on every backend: forward values, the
input gradient and every parameter gradient of networks holding residual blocks (a dense
block with the identity shortcut, a strided convolution block with a 1x1 projection
shortcut, blocks nested in blocks) against torch autograd (float64, 1e-10), the
declarations (names ``f.{j}.{name}``, initial draws), the per-sub-layer contexts and keys,
``check_gradients``, ``jax.jit``, shape checks and build, equality, hashing and the
model-file description, and an estimator that fits, saves and loads a residual stack.

The references are torch.nn modules given the same weights, matched by name as a torch
state dict names them (``1.f.0.weight`` for our ``layers[1].f.0.W``; a torch Linear's
weight is our W transposed): never backendnn code. Shapes stay small (the file runs on
four backends on a 2-core CI machine).

Blocks holding batch norm or dropout are tested with those layers (not in this file).
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import backendnn
from backendnn import Network, _backend, _random
from backendnn.estimators._constraints import LayerStack
from backendnn.layers import Activation, Conv2d, Dense, Flatten, Layer, Residual
from backendnn.layers.base import INFERENCE, Context, Param
from tests._helpers import close_to_scale, optional_import
from tests.conftest import assert_close

torch = optional_import("torch")


def _need_torch():
    if torch is None:
        pytest.skip("torch is not installed (the reference)")


# ---------------------------------------------------------------------------- cases
# name -> (layers, input shape of one sample, batch size)


def _cases():
    return {
        # y = x + W2 relu(W1 x + b1) + b2, inside a stack (its dx feeds the first Dense)
        "dense-identity": (
            [
                Dense(3, 4),
                Residual([Dense(4, 4), Activation("relu"), Dense(4, 4)]),
                Dense(4, 2),
            ],
            (3,),
            5,
        ),
        # a downsampling block: 3x3 stride-2 conv, ReLU, 3x3 conv; shortcut a 1x1 stride 2
        "conv-projection": (
            [
                Residual(
                    [
                        Conv2d(2, 3, 3, stride=2, padding=1),
                        Activation("relu"),
                        Conv2d(3, 3, 3, padding=1),
                    ],
                    shortcut=[Conv2d(2, 3, 1, stride=2)],
                ),
                Activation("tanh"),
                Flatten(),
                Dense(27, 2),
            ],
            (2, 6, 6),
            2,
        ),
        # a block inside a block, in f, with a dense projection shortcut around both
        "nested": (
            [
                Residual(
                    [
                        Dense(3, 4),
                        Residual([Activation("tanh"), Dense(4, 4)]),
                        Activation("tanh"),
                    ],
                    shortcut=[Dense(3, 4, bias=False)],
                ),
                Dense(4, 2),
            ],
            (3,),
            4,
        ),
    }


CASES = list(_cases())


def _layers(name):
    return _cases()[name][0]


@functools.cache
def _data(name):
    """Host parameters (drawn by ``Network.init``), inputs and dL/dy of the case."""
    layers, shape, n = _cases()[name]
    net = Network(layers)
    params = [tuple(np.asarray(a) for a in p) for p in net.init(0, xp=np, dtype=np.float64)]
    rng = np.random.default_rng(sum(map(ord, name)))
    x = rng.normal(size=(n, *shape))
    dy = rng.normal(size=(n, *net.output_shape(shape)))
    return params, x, dy


# ---------------------------------------------------------------------------- torch reference


def _torch_module(layer):
    """The torch module computing what ``layer`` does (weights set by name later)."""
    nn = torch.nn
    kw = dict(dtype=torch.float64)
    if isinstance(layer, Residual):
        return _TorchResidual(layer)
    if isinstance(layer, Dense):
        return nn.Linear(layer.n_in, layer.n_out, bias=layer.bias, **kw)
    if isinstance(layer, Conv2d):
        c = layer.config()
        return nn.Conv2d(
            c["in_channels"], c["out_channels"], c["kernel_size"], c["stride"], c["padding"],
            bias=c["bias"], **kw,
        )  # fmt: skip
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Activation):
        return {"relu": nn.ReLU, "tanh": nn.Tanh}[layer.activation.name]()
    raise AssertionError(f"no torch module for {layer!r}")


if torch is not None:

    class _TorchResidual(torch.nn.Module):
        """y = f(x) + shortcut(x), f and shortcut ``nn.Sequential``s (identity: None)."""

        def __init__(self, block):
            super().__init__()
            self.f = torch.nn.Sequential(*map(_torch_module, block.layers))
            self.shortcut = (
                None
                if block.shortcut is None
                else torch.nn.Sequential(*map(_torch_module, block.shortcut))
            )

        def forward(self, x):
            return self.f(x) + (x if self.shortcut is None else self.shortcut(x))


def _torch_name(name):
    """Our ``{i}.f.0.W`` as torch's ``{i}.f.0.weight`` (and the module it belongs to)."""
    module, _, leaf = name.rpartition(".")
    return module, f"{module}.{ {'W': 'weight', 'b': 'bias'}[leaf] }"


def _our_names(layers):
    return [f"{i}.{n}" for i, layer in enumerate(layers) for n in layer.param_names]


@functools.cache
def _reference(name):
    """y, dL/dx and dL/dparams (by our names, in our layout) of sum(y * dy) from autograd."""
    _need_torch()
    layers = _layers(name)
    params, x, dy = _data(name)
    model = torch.nn.Sequential(*map(_torch_module, layers))
    ours = dict(zip(_our_names(layers), (a for p in params for a in p)))
    torch_params = dict(model.named_parameters())
    assert len(torch_params) == len(ours)  # every torch parameter is set below
    with torch.no_grad():
        for our, a in ours.items():
            module, tname = _torch_name(our)
            linear = isinstance(model.get_submodule(module), torch.nn.Linear)
            torch_params[tname].copy_(torch.tensor(a.T if linear else a))
    tx = torch.tensor(x, requires_grad=True)
    y = model(tx)
    (y * torch.tensor(dy)).sum().backward()
    grads = {}
    for our in ours:
        module, tname = _torch_name(our)
        g = torch_params[tname].grad.numpy()
        grads[our] = g.T if isinstance(model.get_submodule(module), torch.nn.Linear) else g
    return y.detach().numpy(), tx.grad.numpy(), grads


# ---------------------------------------------------------------------------- against torch


def _on(backend, params):
    return [tuple(backend.asarray(a, dtype="float64") for a in p) for p in params]


@pytest.mark.parametrize("name", CASES)
def test_network_with_residual_blocks_matches_torch_autograd(backend, name):
    ref_y, ref_dx, ref_grads = _reference(name)
    layers = _layers(name)
    net = Network(layers)
    params, x, dy = _data(name)
    ps = _on(backend, params)
    y, caches = net.forward_train(ps, backend.asarray(x, dtype="float64"))
    close_to_scale(y, ref_y, backend)
    close_to_scale(net.forward(ps, backend.asarray(x, dtype="float64")), ref_y, backend)
    grads = net.backward(ps, caches, backend.asarray(dy, dtype="float64"))
    names = _our_names(layers)
    flat = [g for gs in grads for g in gs]
    assert len(flat) == len(names) == len(ref_grads)
    for n, g in zip(names, flat):
        close_to_scale(g, ref_grads[n], backend)
    # dL/dx: the layers backpropagated by hand with need_dx everywhere (Network spares
    # its first layer the input gradient)
    d = backend.asarray(dy, dtype="float64")
    for layer, p, c in reversed(list(zip(net.layers, ps, caches))):
        d, _ = layer.backward(p, c, d)
    close_to_scale(d, ref_dx, backend)


def test_first_layer_skips_dx_and_gives_the_same_grads(backend):
    block = _layers("conv-projection")[0]
    params, x, _ = _data("conv-projection")
    p = _on(backend, params)[0]
    y, cache = block.forward(p, backend.asarray(x, dtype="float64"))
    dx, grads = block.backward(p, cache, y, need_dx=False)
    dx_full, grads_full = block.backward(p, cache, y)
    assert dx is None and dx_full is not None and len(grads) == len(grads_full) == 6
    for g, h in zip(grads, grads_full):
        assert_close(g, _backend.to_numpy(h), backend=backend, dtype="float64")


def test_loss_and_grad_and_check_gradients(backend):
    net = Network(_layers("nested"))
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    _, x, dy = _data("nested")
    X, Y = backend.asarray(x, dtype="float64"), backend.asarray(dy, dtype="float64")
    value, grads = net.loss_and_grad(params, X, Y, "squared_error", alpha=0.1)
    assert value.shape == () and [len(g) for g in grads] == [5, 2]
    errors = backendnn.check_gradients(net, params, X, Y, "squared_error", alpha=0.1)
    assert list(errors) == net.param_names()
    assert net.param_names()[:3] == ["layers[0].f.0.W", "layers[0].f.0.b", "layers[0].f.1.f.1.W"]
    assert max(errors.values()) < 1e-6, errors


def test_check_gradients_on_a_conv_block(backend):
    net = Network(_layers("conv-projection"))
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    _, x, _ = _data("conv-projection")
    X, y = backend.asarray(x, dtype="float64"), backend.asarray(np.array([0, 1]))
    errors = backendnn.check_gradients(
        net, params, X, y, "softmax_cross_entropy", alpha=0.1, max_checks=8
    )
    assert max(errors.values()) < 1e-6, errors


def test_residual_under_jit_equals_eager(backend):
    if backend.name != "jax":
        pytest.skip("jax.jit applies to the jax backend only")
    import jax

    net = Network(_layers("nested"))
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    _, x, dy = _data("nested")
    X, Y = backend.asarray(x, dtype="float64"), backend.asarray(dy, dtype="float64")
    eager = net.loss_and_grad(params, X, Y)
    jitted = jax.jit(lambda p: net.loss_and_grad(p, X, Y))(params)
    for a, b in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------- declarations


def test_declarations_are_the_sub_layers_renamed():
    block = Residual(
        [Conv2d(2, 3, 3, stride=2, padding=1), Activation("relu"), Conv2d(3, 3, 3, padding=1)],
        shortcut=[Conv2d(2, 3, 1, stride=2, bias=False)],
    )
    assert block.param_names == ("f.0.W", "f.0.b", "f.2.W", "f.2.b", "shortcut.0.W")
    assert block.penalized == (True, False, True, False, True)
    assert block.param_shapes() == ((3, 2, 3, 3), (3,), (3, 3, 3, 3), (3,), (3, 2, 1, 1))
    assert block.fans() == (18, 27) and block.buffers() == ()
    assert not block.random and not block.uses_mode
    nested = Residual([Dense(2, 2), Residual([Dense(2, 2)], shortcut=[Dense(2, 2)])])
    assert nested.param_names == (
        "f.0.W", "f.0.b", "f.1.f.0.W", "f.1.f.0.b", "f.1.shortcut.0.W", "f.1.shortcut.0.b",
    )  # fmt: skip


def test_init_draws_each_weight_with_its_bias_as_the_flat_stack():
    """A block's initial parameters are those of its sub-layers laid out in one stack (the
    same host draws in the same order: each weight with the bias after it)."""
    f, s = [Dense(3, 4), Activation("relu"), Dense(4, 4, bias=False)], [Dense(3, 4)]
    (block,) = Network([Residual(f, s)]).init(3, xp=np, dtype=np.float64)
    flat = Network(f + s).init(3, xp=np, dtype=np.float64)
    expected = [a for p in flat for a in p]
    assert len(block) == len(expected) == 5
    for a, b in zip(block, expected):
        np.testing.assert_array_equal(a, b)
    assert np.any(block[1] != 0)  # Glorot-uniform draws the biases too


# ---------------------------------------------------------------------------- contexts and state


class _Probe(Layer):
    """A layer that reads its context: y = x + u (u uniform under its key, in training),
    one buffer counting its training passes; its cache records the context."""

    random = True
    uses_mode = True

    def __init__(self, width: int):
        self.width = width

    def config(self):
        return {"width": self.width}

    def buffers(self):
        return (Param("count", (self.width,)),)

    def forward(self, params, x, ctx=INFERENCE):
        if not ctx.training:
            return x, ctx
        return x + _random.uniform(ctx.key, tuple(x.shape), x.dtype), ctx

    def backward(self, params, cache, dy, need_dx=True):
        return dy, ()

    def next_state(self, state, cache, exact=False):
        (count,) = state
        return (count + (10.0 if exact else 1.0),)


def test_sub_layers_get_their_own_context_key_and_state(backend):
    xp = backend.xp
    block = Residual([Dense(2, 2), _Probe(2), _Probe(2)], shortcut=[_Probe(2)])
    assert block.random and block.uses_mode
    assert [b.name for b in block.buffers()] == ["f.1.count", "f.2.count", "shortcut.0.count"]
    net = Network([Dense(2, 2), block])
    assert net.is_random and net.has_state
    params = net.init(0, xp=xp, device=backend.device, dtype=xp.float64)
    state = net.init_state(xp=xp, device=backend.device, dtype=xp.float64)
    state = [state[0], tuple(s + float(k) for k, s in enumerate(state[1]))]
    key = _random.new_key(5, 7, xp, backend.device)
    weights = backend.asarray([1.0, 2.0, 0.0], dtype="float64")
    X = backend.asarray(np.ones((3, 2)), dtype="float64")
    _, caches = net.forward_train(params, X, state, key, weights)
    f_caches, (s_cache,) = caches[1]
    contexts = {"f.1": f_caches[1], "f.2": f_caches[2], "shortcut.0": s_cache}
    block_key = _random.fold_in(key, 1)
    for (name, ctx), k in zip(contexts.items(), range(3)):
        branch, j = (0, int(name[-1])) if name.startswith("f") else (1, 0)
        expected = _random.fold_in(_random.fold_in(block_key, branch), j)
        assert ctx.training and ctx.weights is weights
        assert_close(ctx.key, _backend.to_numpy(expected), backend=backend)
        assert_close(ctx.state[0], [float(k)] * 2, backend=backend, dtype="float64")
    new = net.next_state(state, caches)
    assert new[0] == () and [_backend.to_numpy(a).tolist() for a in new[1]] == [
        [1.0, 1.0], [2.0, 2.0], [3.0, 3.0],
    ]  # fmt: skip
    exact = block.next_state(state[1], caches[1], exact=True)
    assert _backend.to_numpy(exact[2]).tolist() == [12.0, 12.0]
    # inference: training off, no key, each sub-layer's own state
    _, inference = block.forward(params[1], X, Context(state=state[1]))
    f_ctx, (s_ctx,) = inference[0][1:], inference[1]
    for k, ctx in enumerate([*f_ctx, s_ctx]):
        assert not ctx.training and ctx.key is None and ctx.weights is None
        assert_close(ctx.state[0], [float(k)] * 2, backend=backend, dtype="float64")


def test_a_block_of_layers_without_context_is_called_without_one(backend):
    """Sub-layers without ``uses_mode`` get ``forward(p, x)`` (a Context would be refused
    by a layer that takes none); need_dx reaches the first sub-layer of each branch."""

    asked = []

    class NoContext(Layer):
        def forward(self, params, x):  # type: ignore[override]
            return x * 2.0, None

        def backward(self, params, cache, dy, need_dx=True):
            asked.append(need_dx)
            return (dy * 2.0 if need_dx else None), ()

    block = Residual([NoContext(), NoContext()], shortcut=[NoContext()])
    x = backend.asarray(np.ones((2, 3)), dtype="float64")
    y, cache = block.forward((), x, Context(training=True))
    assert_close(y, np.full((2, 3), 6.0), backend=backend, dtype="float64")
    dx, grads = block.backward((), cache, x)
    assert_close(dx, np.full((2, 3), 6.0), backend=backend, dtype="float64")
    assert grads == () and asked == [True, True, True]
    # need_dx=False: the first sub-layer of each branch forms no dx, the others must
    asked.clear()
    assert block.backward((), cache, x, need_dx=False) == (None, ())
    assert asked == [True, False, False]


# ---------------------------------------------------------------------------- shapes


def test_branch_shapes_must_agree():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\).*projection shortcut"):
        Residual([Dense(4, 3)]).output_shape((4,))
    strided = Residual([Conv2d(2, 2, 3, stride=2, padding=1)])
    with pytest.raises(ValueError, match=r"\(2, 3, 3\).*\(2, 6, 6\).*projection shortcut"):
        strided.output_shape((2, 6, 6))
    wrong = Residual([Conv2d(2, 4, 3, padding=1)], shortcut=[Conv2d(2, 4, 1, stride=2)])
    with pytest.raises(ValueError, match=r"\(4, 6, 6\).*shortcut's \(4, 3, 3\)"):
        wrong.output_shape((2, 6, 6))
    with pytest.raises(ValueError, match=r"layer 1 .*Residual.*projection shortcut"):
        Network([Dense(3, 4), Residual([Dense(4, 2)])]).build((3,))
    with pytest.raises(ValueError, match=r"f\.1 \(Dense\(5, 4\)\).*expects 5 input features"):
        Residual([Dense(4, 4), Dense(5, 4)]).output_shape((4,))
    ok = Residual([Conv2d(2, 4, 3, stride=2, padding=1)], shortcut=[Conv2d(2, 4, 1, stride=2)])
    assert ok.output_shape((2, 6, 6)) == (4, 3, 3)


def test_build_infers_the_sub_layers_widths():
    lazy = Residual([Dense(8), Activation("relu"), Dense(4)], shortcut=[Dense(4)])
    built = Network([lazy, Residual([Dense(4)])]).build((3,))
    assert built.layers == (
        Residual([Dense(3, 8), Activation("relu"), Dense(8, 4)], shortcut=[Dense(3, 4)]),
        Residual([Dense(4, 4)]),
    )
    block = Residual([Dense(3, 3)])
    assert block.build((3,)) is block
    with pytest.raises(ValueError, match="build it first"):
        lazy.parameters()


def test_arguments_are_checked():
    with pytest.raises(TypeError, match=r"list of layers.*\[Dense\(3, 3\)\]"):
        Residual(Dense(3, 3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="backendnn.layers objects"):
        Residual([Dense(3, 3), "relu"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one layer"):
        Residual([])


# ---------------------------------------------------------------------------- value semantics


def _block():
    inner = Residual([Activation("tanh"), Dense(4, 4)])
    return Residual(
        [Conv2d(2, 4, 3, stride=2, padding=1), Flatten(), Dense(36, 4), inner],
        shortcut=[Conv2d(2, 4, 3, stride=2, padding=1), Flatten(), Dense(36, 4, bias=False)],
    )


def test_equality_hash_and_repr():
    assert _block() == _block() and hash(_block()) == hash(_block())
    assert Residual([Dense(2, 2)]) == Residual([Dense(2, 2)], shortcut=[])
    assert Residual([Dense(2, 2)]) != Residual([Dense(2, 2)], shortcut=[Dense(2, 2)])
    assert Residual([Dense(2, 2)]) != Residual([Dense(2, 2, bias=False)])
    assert repr(Residual([Dense(2, 2)], shortcut=[Dense(2, 2)])) == (
        "Residual([Dense(2, 2)], shortcut=[Dense(2, 2)])"
    )
    assert repr(Residual([Dense(2, 2), Residual([Activation("relu")])])) == (
        "Residual([Dense(2, 2), Residual([Activation(ReLU())])])"
    )
    assert Residual([Dense(2, 2)]).config() == {"layers": [Dense(2, 2)], "shortcut": None}


def test_model_file_description_round_trips():
    stack = [_block(), Activation("relu"), Residual([Dense(4, 4)])]
    raw = json.loads(json.dumps(LayerStack().to_json(stack)))
    assert raw[0]["layer"] == "Residual" and raw[0]["layers"][3]["layer"] == "Residual"
    assert raw[2]["shortcut"] is None
    again = LayerStack().from_json(raw)
    assert again == stack and [hash(a) for a in again] == [hash(b) for b in stack]
    assert Network(again).output_shape((2, 6, 6)) == (4,)


@pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")
def test_an_estimator_fits_saves_and_loads_a_residual_stack(tmp_path):
    """A layer-stack estimator trains a Residual; its model file names the block's arrays
    as a torch state dict (``layers.2.f.0.W``) and loads to the same predictions."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 2, 4, 4)), np.arange(12) % 3
    block = Residual(
        [Conv2d(3, 3, 3, stride=2, padding=1), Activation("relu"), Conv2d(3, 3, 3, padding=1)],
        shortcut=[Conv2d(3, 3, 1, stride=2)],
    )
    stack = [Conv2d(2, 3, 3, padding=1), Activation("relu"), block, Flatten()]
    model = backendnn.NeuralNetClassifier(stack, max_iter=2, random_state=0).fit(X, y)
    path = tmp_path / "model.safetensors"
    backendnn.save(model, path)
    again = backendnn.load(path)
    assert again.get_params()["layers"] == stack
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    names = sorted(load_file(str(path)))
    assert "layers.2.f.0.W" in names and "layers.2.shortcut.0.b" in names
