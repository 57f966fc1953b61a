"""Networks to and from PyTorch modules (``backendnn.interop.torch``), against torch itself:
a module trained a few steps in torch (running statistics moved), converted, computes what
``module.eval()`` computes (float64, 1e-12 of the output's scale) on every backend; a round
trip gives the module back (types, hyper-parameters, state_dict); a backendnn network sent
to torch computes its own output; an unsupported module is named; a converted network
fine-tuned by an estimator takes torch.optim.SGD's step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import backendnn as bn
from backendnn import _backend
from backendnn.layers import (
    Activation,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    GatedDense,
    GlobalAvgPool2d,
    Layer,
    LayerNorm,
    MaxPool1d,
    Residual,
)
from tests._helpers import close_to_scale

torch = pytest.importorskip("torch")
nn = torch.nn


def _residual(body, shortcut=None):
    from backendnn.interop.torch import Residual as TorchResidual

    short = None if shortcut is None else nn.Sequential(*shortcut)
    return TorchResidual(nn.Sequential(*body), short)


# Every supported module, in five networks: (builder, input shape of one sample).
MODULES = {
    "mlp": (
        lambda: nn.Sequential(
            nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(8, 8, bias=False), nn.BatchNorm1d(8, momentum=None, affine=False),
            nn.Tanh(), nn.Linear(8, 6), nn.LayerNorm(6), nn.Sigmoid(),
            nn.Linear(6, 6), nn.LayerNorm(6, elementwise_affine=True, bias=False), nn.GELU(),
            nn.Linear(6, 6), nn.BatchNorm1d(6, track_running_stats=False), nn.SiLU(),
            nn.Linear(6, 6), nn.BatchNorm1d(6, bias=False), nn.GELU(approximate="tanh"),
            nn.Linear(6, 6), nn.Softplus(), nn.Identity(), nn.Linear(6, 8), nn.GLU(),
            nn.Linear(4, 3), nn.LogSoftmax(dim=-1),
        ),
        (5,),
    ),
    "cnn2d": (
        lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(1, 1), groups=2, bias=False),
            nn.BatchNorm2d(6, momentum=0.3, eps=1e-3), nn.Tanh(), nn.AvgPool2d(2, stride=1),
            nn.Conv2d(6, 6, 3, padding="same", dilation=2), nn.MaxPool2d((2, 1), stride=(1, 1)),
            nn.Dropout(0.2), nn.Flatten(), nn.Linear(6 * 2 * 1, 4), nn.Softmax(dim=-1),
        ),
        (2, 8, 6),
    ),
    "cnn1d": (
        lambda: nn.Sequential(
            nn.Conv1d(3, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(4, 4, 3, stride=2, dilation=2, groups=4, padding=2), nn.GELU(),
            nn.AvgPool1d(2, stride=1), nn.Conv1d(4, 6, 2, padding="valid", bias=False),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 2),
        ),
        (3, 16),
    ),
    "residual": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
            _residual([nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                       nn.Conv2d(4, 4, 3, padding=1)]),
            _residual([nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6)],
                      [nn.Conv2d(4, 6, 1, stride=2), nn.BatchNorm2d(6)]),
            nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            _residual([nn.Linear(6, 6), nn.Tanh(), nn.Dropout(0.1), nn.Linear(6, 6)]),
            nn.Linear(6, 3),
        ),
        (1, 8, 8),
    ),
    "nested": (
        lambda: nn.Sequential(
            nn.Sequential(nn.Conv2d(1, 3, 3), nn.Sequential(nn.BatchNorm2d(3), nn.ReLU())),
            nn.MaxPool2d(2), nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 3, 4)),
            nn.Sequential(), nn.Tanh(), nn.Linear(4, 2),
        ),
        (1, 8, 8),
    ),
}  # fmt: skip


def _trained(name):
    """The module ``name`` in float64 after three SGD steps in training mode (batch
    statistics used and the running ones moved, dropout active), then in eval mode; an
    input batch."""
    build, shape = MODULES[name]
    torch.manual_seed(0)
    module = build().double()
    x = torch.randn(12, *shape, dtype=torch.float64)
    opt = torch.optim.SGD(module.parameters(), lr=0.05)
    module.train()
    for _ in range(3):
        opt.zero_grad()
        module(x).square().mean().backward()
        opt.step()
    module.eval()
    return module, torch.randn(7, *shape, dtype=torch.float64)


_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)


def _hyper(m):
    """A module's hyper-parameters; a pool's window as pairs (``MaxPool2d(2)`` comes back
    with kernel_size=2, ``MaxPool2d((2, 2))`` too)."""
    if not isinstance(m, _POOLS):
        return m.extra_repr()
    hyper = {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"}
    for k in ("kernel_size", "stride"):
        v = hyper[k]
        hyper[k] = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    return hyper


def _leaves(module):
    """(type, hyper-parameters) of every module that is no Sequential, in order."""
    return [(type(m), _hyper(m)) for m in module.modules() if type(m) is not nn.Sequential]


@pytest.mark.parametrize("name", MODULES)
def test_converted_network_computes_the_module(backend, name):
    module, x = _trained(name)
    network, params, state = bn.from_torch(module, backend=backend.name, device=backend.device)
    assert network.has_state == (state is not None)
    y = network.forward(params, backend.asarray(x.numpy()), state)
    with torch.no_grad():
        expected = module(x).numpy()
    close_to_scale(y, expected, backend, tol=1e-12)


@pytest.mark.parametrize("name", MODULES)
def test_round_trip_gives_the_module_back(backend, name):
    module, x = _trained(name)
    network, params, state = bn.from_torch(module, backend=backend.name, device=backend.device)
    back = bn.to_torch(network, params, state)
    # nested Sequentials come back as one: the leaves and the arrays in order are the same
    assert _leaves(back) == _leaves(module)
    old, new = module.state_dict(), back.state_dict()
    if name != "nested":
        assert list(new) == list(old)
    assert len(new) == len(old)
    for a, b in zip(old.values(), new.values()):
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert not back.training
    with torch.no_grad():
        np.testing.assert_array_equal(back(x).numpy(), module(x).numpy())


def _random_state(network, seed):
    """Running statistics of every layer, drawn (means, positive variances, counts)."""
    rng = np.random.default_rng(seed)
    state = []
    for layer in network.layers:
        arrays = []
        for b in layer.buffers():
            if b.name.endswith("running_var"):
                arrays.append(rng.uniform(0.5, 2.0, b.shape))
            elif b.name.endswith("running_mean"):
                arrays.append(rng.normal(size=b.shape))
            else:
                arrays.append(np.asarray(float(rng.integers(1, 9))))
        state.append(tuple(arrays))
    return state


def test_network_sent_to_torch_computes_its_output(backend):
    network = bn.Network(
        [
            Conv2d(2, 4, 3, padding=1), BatchNorm2d(4), Activation("relu"),
            Residual([Conv2d(4, 4, 3, padding="same"), BatchNorm2d(4)]),
            Residual([Conv2d(4, 6, 3, stride=2, padding=1)], [Conv2d(4, 6, 1, stride=2)]),
            Activation(bn.activations.get("swish")), GlobalAvgPool2d(), Dropout(0.5),
            GatedDense(6, 5, "glu"), LayerNorm(5), Dense(5, 4), Activation("softplus"),
            Dense(4, 3, bias=False), Activation("log_softmax"),
        ]
    )  # fmt: skip
    params = network.init(seed=1, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    state = [tuple(backend.asarray(a) for a in s) for s in _random_state(network, 2)]
    module = bn.to_torch(network, params, state)
    x = np.random.default_rng(3).normal(size=(6, 2, 7, 7))
    with torch.no_grad():
        y = module(torch.from_numpy(x)).numpy()
    close_to_scale(network.forward(params, backend.asarray(x), state), y, backend, tol=1e-12)
    assert module.training is False
    for p in module.parameters():
        assert p.dtype == torch.float64


def test_sequences_and_state_free_networks(backend):
    network = bn.Network(
        [Conv1d(2, 3, 3, padding=1), Activation("tanh"), MaxPool1d(2, stride=1), Flatten()]
    )
    params = network.init(seed=0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    module = bn.to_torch(network, params)
    x = np.random.default_rng(1).normal(size=(4, 2, 9))
    with torch.no_grad():
        y = module(torch.from_numpy(x)).numpy()
    close_to_scale(network.forward(params, backend.asarray(x)), y, backend, tol=1e-12)
    again, _, state = bn.from_torch(module, backend=backend.name, device=backend.device)
    assert again.layers == network.layers and state is None


def test_dtype_follows_the_module_or_the_argument():
    module = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    _, params, state = bn.from_torch(module, backend="numpy")
    assert params[0][0].dtype == np.float32 and state[1][2].dtype == np.float32
    assert float(state[1][2]) == 0.0
    _, params, _ = bn.from_torch(module, backend="numpy", dtype="float64")
    np.testing.assert_array_equal(params[0][0], module[0].weight.detach().numpy().T)
    assert params[0][0].dtype == np.float64
    assert bn.to_torch(bn.Network([Flatten()]), [()]).state_dict() == {}


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("module", "match"),
    [
        (nn.Sequential(nn.Linear(3, 4), nn.LSTM(4, 4)), r"LSTM at '1'"),
        (nn.Sequential(nn.ReLU(), _residual([nn.Unflatten(1, (3, 1))])), r"n at '1.body.0'"),
        (nn.Sequential(nn.Sequential(nn.ReLU(), nn.ELU())), r"ELU at '0.1'"),
        (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), r"'0'.*ceil_mode must be False"),
        (nn.Sequential(nn.MaxPool2d(2, padding=1)), r"padding must be \(0, 0\)"),
        (nn.Sequential(nn.MaxPool1d(2, dilation=2)), r"dilation must be \(1,\)"),
        (nn.Sequential(nn.AvgPool1d(2, padding=1)), r"padding must be \(0,\)"),
        (nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), r"divisor_override must be None"),
        (nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")), "'reflect'"),
        (nn.Sequential(nn.Softmax(dim=1)), r"dim=-1"),
        (nn.Sequential(nn.Softplus(beta=2)), r"beta=1"),
        (nn.Sequential(nn.AdaptiveAvgPool2d(1)), r"followed by Flatten"),
        (nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten()), r"AdaptiveAvgPool\(1\)"),
        (nn.Sequential(nn.Flatten(2)), r"start_dim=1"),
        (nn.Sequential(nn.Linear(3, 4, bias=False), nn.GLU()), r"bias"),
        (nn.Sequential(nn.GLU()), r"GLU at '0'"),
    ],
)  # fmt: skip
def test_unsupported_modules_are_named(module, match):
    with pytest.raises((TypeError, ValueError), match=match):
        bn.from_torch(module, backend="numpy")


def test_adaptive_pool_then_a_partial_flatten_is_refused():
    """AdaptiveAvgPool2d(1), Flatten(start_dim=2) gives (N, C, 1): no global pool."""
    with pytest.raises(ValueError, match="followed by Flatten"):
        bn.from_torch(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(2)), backend="numpy")


def test_batch_norm_uses_the_statistics_torch_uses_in_eval():
    """torch's eval normalises by the running statistics wherever they exist, even after
    ``track_running_stats`` is set to False on the module (and by the batch's where there
    are none): the conversion once followed the flag and normalised by the batch's."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    module(torch.randn(16, 3, dtype=torch.float64))  # training mode: moves the statistics
    module[1].track_running_stats = False
    untracked = nn.Sequential(nn.BatchNorm1d(4, track_running_stats=False)).double()
    untracked[0].track_running_stats = True  # no buffers: batch statistics in eval
    inputs = (torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 4, dtype=torch.float64))
    for m, inp in zip((module, untracked), inputs):
        network, params, state = bn.from_torch(m, backend="numpy")
        with torch.no_grad():
            expected = m.eval()(inp).numpy()
        np.testing.assert_allclose(
            network.forward(params, inp.numpy(), state), expected, rtol=1e-12, atol=1e-12
        )


def test_modules_whose_output_is_not_their_weights_are_refused():
    """A forward hook (the old ``spectral_norm`` is one: it recomputes the weight from
    ``weight_orig`` at each call) changes the output; a lazy or meta module has no
    values; bfloat16 has no NumPy dtype: each a clear error, never a silent conversion."""
    hooked = nn.Sequential(nn.Linear(3, 3))
    hooked[0].register_forward_hook(lambda mod, args, out: 2 * out)
    pre = nn.Sequential(nn.ReLU(), nn.Sequential(nn.Linear(3, 3)))
    pre.register_forward_pre_hook(lambda mod, args: None)
    cases = [
        (hooked, r"'0'.*forward hooks"),
        (nn.Sequential(nn.utils.spectral_norm(nn.Linear(3, 3))), "forward hooks"),
        (pre, r"forward hooks"),
        (nn.Sequential(nn.LazyLinear(2)), "lazy module"),
        (nn.Sequential(nn.Linear(3, 2, device="meta")), "meta device"),
        (nn.Sequential(nn.Linear(3, 2)).bfloat16(), r"bfloat16.*module.float\(\)"),
    ]
    for module, match in cases:
        with pytest.raises(ValueError, match=match):
            bn.from_torch(module, backend="numpy")


def test_unsupported_module_type_is_a_type_error():
    class Mine(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match=r"Mine at '1'.*supported: Linear"):
        bn.from_torch(nn.Sequential(nn.ReLU(), Mine()), backend="numpy")
    with pytest.raises(TypeError, match=r"Mine at the top"):
        bn.from_torch(Mine(), backend="numpy")


class _Custom(Layer):
    pass


@pytest.mark.parametrize(
    ("layer", "match"),
    [
        (GatedDense(3, 2, "swiglu"), r"layer 0 \(GatedDense\(3, 2, 'swiglu'\)\) has no torch"),
        (Activation(bn.activations.get("swish", beta=2.0)), r"layer 0.*no module for this"),
        (_Custom(), r"layer 0 \(_Custom\(\)\) has no torch module"),
        (Residual([Dense(3, 3), _Custom()]), r"layer 0 f\[1\] \(_Custom\(\)\)"),
        (Dense(3), r"layer 0 \(Dense\(3\)\).*build it first"),
    ],
)
def test_layers_torch_lacks_are_named(layer, match):
    network = bn.Network([layer])
    try:
        params = network.init(seed=0, xp=np)
    except ValueError:
        params = [()]
    with pytest.raises((TypeError, ValueError), match=match):
        bn.to_torch(network, params)


def test_to_torch_refuses_missing_or_mismatched_arrays():
    network = bn.Network([Dense(3, 2), BatchNorm2d(2)])
    params = network.init(seed=0, xp=np)
    with pytest.raises(ValueError, match="pass state="):
        bn.to_torch(network, params)
    with pytest.raises(ValueError, match="params hold 1 tuples for 2 layers"):
        bn.to_torch(network, params[:1], network.init_state(xp=np))
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\(3, 2\)\) declares arrays of shapes"):
        bn.to_torch(network, [(params[0][0].T, params[0][1]), params[1]], network.init_state(xp=np))


def test_the_residual_module_is_a_torch_module():
    from backendnn.interop import torch as interop

    assert issubclass(interop.Residual, nn.Module)
    assert interop.Residual.__module__ == "backendnn.interop.torch"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        interop.Nope  # noqa: B018


# --------------------------------------------------------------------------- fine-tuning


def test_estimator_fine_tunes_a_converted_network(backend):
    """The README's recipe: the converted layers with output_layer="last", the weights
    assigned to params_ and buffers_, warm_start=True. One full-batch SGD step (no momentum,
    no penalty) equals torch.optim.SGD's on cross-entropy, running statistics included."""
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3)
    ).double()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    network, params, state = bn.from_torch(module, backend=backend.name, device=backend.device)
    clf = bn.NeuralNetClassifier(
        list(network.layers), output_layer="last", warm_start=True, solver="sgd",
        learning_rate_init=0.1, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
        batch_size=30, shuffle=False, max_iter=1, dtype="float64", backend=backend.name,
    )  # fmt: skip
    clf.params_, clf.buffers_ = params, state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        clf.fit(X, y)

    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    module.train()
    opt.zero_grad()
    nn.functional.cross_entropy(module(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    opt.step()
    tuned = bn.to_torch(network, clf.params_, clf.buffers_).state_dict()
    for key, expected in module.state_dict().items():
        np.testing.assert_allclose(tuned[key].numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)
    assert _backend.namespace_name(_backend.array_namespace(clf.params_[0][0])) == backend.name


def test_guide_fine_tuning_recipe_trains(tmp_path, monkeypatch):
    """The export guide's code up to its fine-tuning recipe (docs/guide/export.rst), as
    written: the converted network trains, and the module made from it predicts as it."""
    import contextlib
    import io
    from pathlib import Path

    from tests.test_docs_guide import blocks

    page = Path(__file__).parents[1] / "docs" / "guide" / "export.rst"
    code = [c for lang, c, _, run in blocks(page) if lang == "python" and run]
    torch_part = next(i for i, c in enumerate(code) if c.startswith("import torch"))
    recipe = next(i for i, c in enumerate(code) if "tuned.fit(X4, y4)" in c)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", bn.ConvergenceWarning)
        for block in [code[0], *code[torch_part : recipe + 1]]:  # setup, then the torch part
            exec(block, namespace)
    tuned, clf, X = namespace["back"], namespace["tuned"], namespace["X4"]
    score = clf.score(X, namespace["y4"])
    assert clf.n_iter_ == 50 and score > 0.9, score
    with torch.no_grad():
        logits = tuned(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(clf.classes_[logits.argmax(axis=1)], clf.predict(X))
