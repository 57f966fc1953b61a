"""``backendnn.losses.Loss`` objects on every backend: label-smoothed cross-entropies and
the Huber loss against PyTorch (values and autograd gradients, weighted too), losses
written by a user, central differences through a network, the registry and file
descriptions, and the keys compiled steps are cached under."""

from __future__ import annotations

import math

import numpy as np
import pytest

import backendnn as bn
from backendnn import Network, _backend, losses
from backendnn._cache import freeze
from tests.conftest import assert_close

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(3)
H = RNG.normal(scale=3.0, size=(7, 4))
H[0, 0], H[1, 2] = 40.0, -40.0  # confident logits, right and wrong
LABELS = np.array([0, 1, 2, 3, 2, 0, 1])
ONE_HOT = np.eye(4)[LABELS]
INDICATOR = (RNG.random((7, 4)) > 0.5).astype(float)
WEIGHTS = np.array([1.0, 0.0, 2.5, 0.3, 1.0, 4.0, 0.7])


def _torch_value_and_grad(fn, h):
    """fn(h) and its gradient with respect to h by torch autograd, float64."""
    ht = torch.tensor(h, dtype=torch.float64, requires_grad=True)
    value = fn(ht)
    value.backward()
    return value.item(), ht.grad.numpy()


def _weighted_mean(per_sample, w):
    """sum_i w_i l_i / sum_i w_i of torch per-sample losses (w=None: the mean)."""
    if w is None:
        return per_sample.mean()
    wt = torch.tensor(w, dtype=torch.float64)
    return (wt * per_sample).sum() / wt.sum()


def _ours(backend, loss, y, h, w):
    args = [backend.asarray(y), backend.asarray(h, dtype="float64")]
    if w is not None:
        args.append(backend.asarray(w, dtype="float64"))
    value, grad = loss(*args)
    assert value.ndim == 0
    return float(_backend.to_numpy(value)), grad


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("targets", ["labels", "onehot"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.45])
def test_smoothed_softmax_cross_entropy_is_torchs(backend, eps, targets, weighted):
    """PyTorch's cross_entropy(label_smoothing=eps), per sample (reduction='none') and
    averaged with the sample weights as the built-ins weigh them."""
    w = WEIGHTS if weighted else None
    y = LABELS if targets == "labels" else ONE_HOT
    ref_value, ref_grad = _torch_value_and_grad(
        lambda ht: _weighted_mean(
            F.cross_entropy(ht, torch.tensor(LABELS), label_smoothing=eps, reduction="none"), w
        ),
        H,
    )
    value, grad = _ours(backend, losses.SoftmaxCrossEntropy(eps), y, H, w)
    assert value == pytest.approx(ref_value, rel=1e-12, abs=1e-14)
    assert_close(grad, ref_grad, backend=backend, dtype="float64", rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("columns", [1, 4])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_smoothed_binary_log_loss_is_torchs(backend, eps, columns, weighted):
    """binary_cross_entropy_with_logits on targets (1 - eps) y + eps/2, summed over the
    outputs of a sample (one logistic unit, or multi-label) and averaged over samples."""
    w = WEIGHTS if weighted else None
    y, h = INDICATOR[:, :columns], H[:, :columns]
    smoothed = torch.tensor((1 - eps) * y + eps / 2)
    ref_value, ref_grad = _torch_value_and_grad(
        lambda ht: _weighted_mean(
            F.binary_cross_entropy_with_logits(ht, smoothed, reduction="none").sum(dim=1), w
        ),
        h,
    )
    value, grad = _ours(backend, losses.BinaryLogLoss(eps), y, h, w)
    assert value == pytest.approx(ref_value, rel=1e-12, abs=1e-14)
    assert_close(grad, ref_grad, backend=backend, dtype="float64", rtol=1e-12, atol=1e-15)


def test_no_smoothing_is_the_fused_function_exactly(backend):
    for loss, fn, y in [
        (losses.SoftmaxCrossEntropy(), losses.softmax_cross_entropy, ONE_HOT),
        (losses.BinaryLogLoss(), losses.binary_log_loss, INDICATOR),
    ]:
        ours = _ours(backend, loss, y, H, WEIGHTS)
        fused = _ours(backend, fn, y, H, WEIGHTS)
        assert ours[0] == fused[0]
        np.testing.assert_array_equal(_backend.to_numpy(ours[1]), _backend.to_numpy(fused[1]))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_is_torchs(backend, delta, weighted):
    """PyTorch's huber_loss: the mean over every element (weighted over samples)."""
    w = WEIGHTS if weighted else None
    y = RNG.normal(scale=2.0, size=H.shape)
    k = H.shape[1]
    ref_value, ref_grad = _torch_value_and_grad(
        lambda ht: _weighted_mean(
            F.huber_loss(ht, torch.tensor(y), delta=delta, reduction="none").sum(dim=1) / k, w
        ),
        H,
    )
    value, grad = _ours(backend, losses.Huber(delta), y, H, w)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert_close(grad, ref_grad, backend=backend, dtype="float64", rtol=1e-12, atol=1e-15)
    assert losses.get("huber") == losses.Huber(1.0)


# ---------------------------------------------------------------------------- user losses


class HalfSquare(losses.Loss):
    """A user's half squared error summed over outputs: l = (h - y)^2 / 2."""

    def __call__(self, y, h, sample_weight=None):
        d = h - y
        return losses.weighted_mean(0.5 * d * d, d, sample_weight)


class LogCosh(losses.Loss):
    """A user's log-cosh loss with a parameter: l = s log cosh((h - y)/s)."""

    name = "log_cosh"

    def __init__(self, scale=1.0):
        self.scale = float(scale)

    def __call__(self, y, h, sample_weight=None):
        xp = bn.array_namespace(y, h)
        u = (h - y) / self.scale
        a = xp.abs(u)
        logcosh = a + xp.log1p(xp.exp(-2.0 * a)) - math.log(2.0)
        return losses.weighted_mean(self.scale * logcosh, xp.tanh(u), sample_weight)


def _net_and_data(backend, n_out):
    net = Network.mlp(3, (5,), n_out, "tanh")
    params = net.init(0, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    X = backend.asarray(RNG.normal(size=(9, 3)), dtype="float64")
    return net, params, X


@pytest.mark.parametrize(
    "loss, targets",
    [
        (HalfSquare(), "real"),
        (LogCosh(0.7), "real"),
        (losses.Huber(0.3), "real"),
        (losses.SoftmaxCrossEntropy(0.2), "onehot"),
        (losses.BinaryLogLoss(0.3), "indicator"),
    ],
    ids=["half_square", "log_cosh", "huber", "smoothed_softmax", "smoothed_binary"],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_objects_pass_central_differences(backend, loss, targets, weighted):
    net, params, X = _net_and_data(backend, 3)
    y = {
        "real": RNG.normal(size=(9, 3)),
        "onehot": np.eye(3)[np.arange(9) % 3],
        "indicator": (RNG.random((9, 3)) > 0.5).astype(float),
    }[targets]
    w = RNG.random(9) + 0.1 if weighted else None
    Y = backend.asarray(y, dtype="float64")
    W = None if w is None else backend.asarray(w, dtype="float64")
    fn = loss if W is None else (lambda y_, h_: loss(y_, h_, W))
    errors = bn.check_gradients(net, params, X, Y, fn, alpha=0.1)
    assert max(errors.values()) < 1e-6, errors


def test_log_cosh_of_the_test_is_right(backend):
    """The user loss above is itself checked against torch (it stands in for a user's)."""
    y = RNG.normal(size=H.shape)
    ref_value, ref_grad = _torch_value_and_grad(
        lambda ht: (0.7 * torch.log(torch.cosh((ht - torch.tensor(y)) / 0.7))).sum(dim=1).mean(),
        H / 10,
    )
    value, grad = _ours(backend, LogCosh(0.7), y, H / 10, None)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert_close(grad, ref_grad, backend=backend, dtype="float64", rtol=1e-11, atol=1e-15)


# ---------------------------------------------------------------------------- registry


@pytest.fixture
def loss_registry(monkeypatch):
    """Loss registrations made in a test are undone after it."""
    monkeypatch.setattr(losses, "_REGISTRY", dict(losses._REGISTRY))


def test_get_builds_objects_by_name_and_refuses_what_it_does_not_know():
    assert losses.get("softmax_cross_entropy") is losses.softmax_cross_entropy
    assert losses.get("softmax_cross_entropy", label_smoothing=0.1) == losses.SoftmaxCrossEntropy(
        0.1
    )
    assert losses.get("binary_log_loss", label_smoothing=0.2) == losses.BinaryLogLoss(0.2)
    assert losses.get("huber", delta=2) == losses.Huber(2.0)
    with pytest.raises(TypeError, match="does not take parameters"):
        losses.get("huber", label_smoothing=0.1)
    with pytest.raises(TypeError, match="'poisson' does not take parameters"):
        losses.get("poisson", scale=2)  # a function: no parameters
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        losses.get("hinge", margin=1)
    with pytest.raises(TypeError, match="only be given with a loss name"):
        losses.get(losses.Huber(), delta=2)
    for bad in (1.0, -0.1, float("nan"), "0.1", True):
        with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\)"):
            losses.SoftmaxCrossEntropy(bad)
        with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\)"):
            losses.BinaryLogLoss(bad)
    for bad in (0.0, -1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="delta must be a number > 0"):
            losses.Huber(bad)


def test_loss_objects_are_values_keyed_by_value():
    assert losses.Huber(2.0) == losses.Huber(2.0) != losses.Huber(1.0)
    assert hash(losses.Huber(2.0)) == hash(losses.Huber(2.0))
    assert freeze(losses.Huber(2.0)) == freeze(losses.Huber(2.0))
    assert freeze(losses.Huber(2.0)) != freeze(losses.Huber(1.0))
    assert freeze(LogCosh(0.5)) == freeze(LogCosh(0.5)) != freeze(LogCosh(0.6))
    assert freeze(losses.SoftmaxCrossEntropy(0.1)) != freeze(losses.BinaryLogLoss(0.1))
    assert repr(losses.Huber(2.0)) == "Huber(delta=2.0)"


def test_register_describe_and_rebuild(loss_registry):
    for builtin in (losses.Huber(0.5), losses.SoftmaxCrossEntropy(0.1), losses.BinaryLogLoss()):
        assert losses.from_description(losses.describe(builtin)) == builtin
    with pytest.raises(ValueError, match=r"register\(name, cls\)"):
        losses.describe(LogCosh(0.5))  # not registered yet
    losses.register("my_log_cosh", LogCosh)
    spec = losses.describe(LogCosh(0.5))
    assert spec["name"] == "my_log_cosh" and spec["scale"] == 0.5
    assert losses.from_description(spec) == LogCosh(0.5)
    assert losses.get("my_log_cosh", scale=0.5) == LogCosh(0.5)
    with pytest.raises(ValueError, match="built-in loss"):
        losses.register("huber", LogCosh)
    with pytest.raises(ValueError, match="register the same class"):
        losses.from_description({**spec, "class": "elsewhere.LogCosh"})
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        losses.from_description({"name": "nope"})
    with pytest.raises(ValueError, match="does not take parameters"):
        losses.from_description({"name": "my_log_cosh", "width": 3})
