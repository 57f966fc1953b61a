"""The estimators' losses on every backend: the layer stacks' ``loss=`` (built-in names,
``backendnn.losses.Loss`` objects of the user's) and the classifiers' ``label_smoothing``,
checked against the built-ins and PyTorch's losses on the fitted weights; their model
files (older files included) and their errors."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import backendnn as bn
from backendnn import losses
from backendnn.layers import Activation, Dense
from tests.conftest import assert_close

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

RNG = np.random.default_rng(5)
X = RNG.normal(size=(40, 3))
Y_REAL = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * RNG.normal(size=40)
Y_COUNTS = RNG.poisson(np.exp(0.3 * X[:, 0]))
LABELS = np.arange(40) % 3
BINARY = (X[:, 0] > 0).astype(int)
MULTILABEL = (X[:, :2] > 0).astype(int)
FIT = dict(max_iter=8, random_state=0, dtype="float64", shuffle=False)


def _stack():
    return [Dense(6), Activation("tanh")]


class HalfSquare(losses.Loss):
    """A user's squared error: l = (h - y)^2 / 2 per output, averaged over elements, the
    built-in ``squared_error`` written again."""

    def __call__(self, y, h, sample_weight=None):
        d = h - y
        k = h.shape[1]
        return losses.weighted_mean(0.5 * d * d / k, d / k, sample_weight)


class UserHuber(losses.Loss):
    """A user's Huber loss (delta 1), written from its formula."""

    def __call__(self, y, h, sample_weight=None):
        xp = bn.array_namespace(y, h)
        d = h - y
        a = xp.abs(d)
        k = h.shape[1]
        terms = xp.where(a <= 1.0, 0.5 * d * d, a - 0.5) / k
        return losses.weighted_mean(terms, xp.clip(d, -1.0, 1.0) / k, sample_weight)


class UserPoisson(losses.Loss):
    """A user's Poisson deviance with the log link (output "exp"), without y log y."""

    output = "exp"

    def __call__(self, y, h, sample_weight=None):
        xp = bn.array_namespace(y, h)
        mu = xp.exp(h)
        return losses.weighted_mean(mu - y * h, mu - y, sample_weight)


class UserSoftmaxCE(losses.Loss):
    """A user's softmax cross-entropy on one-hot targets."""

    output = "softmax"

    def __call__(self, y, h, sample_weight=None):
        xp = bn.array_namespace(y, h)
        s = h - xp.max(h, axis=1, keepdims=True)
        logp = s - xp.log(xp.sum(xp.exp(s), axis=1, keepdims=True))
        return losses.weighted_mean(-y * logp, xp.exp(logp) - y, sample_weight)


@pytest.fixture
def loss_registry(monkeypatch):
    monkeypatch.setattr(losses, "_REGISTRY", dict(losses._REGISTRY))


def _fit(backend, model, y, w=None):
    args = [backend.asarray(X, dtype="float64"), backend.asarray(y)]
    return model.fit(*args, sample_weight=None if w is None else backend.asarray(w))


def _same_fit(a, b, rtol=1e-12):
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol)
    for p, q in zip(a.params_, b.params_):
        for u, v in zip(p, q):
            np.testing.assert_allclose(bn.to_numpy(u), bn.to_numpy(v), rtol=rtol, atol=1e-14)


# ---------------------------------------------------------------------------- loss=


@pytest.mark.parametrize(
    "user, builtin, y",
    [
        (HalfSquare(), "squared_error", Y_REAL),
        (UserHuber(), "huber", 3 * Y_REAL),
        (UserPoisson(), "poisson", Y_COUNTS),
    ],
    ids=["squared_error", "huber", "poisson"],
)
def test_a_user_loss_trains_as_the_builtin_it_computes(backend, user, builtin, y):
    w = RNG.random(40) + 0.5
    ours = _fit(backend, bn.NeuralNetRegressor(_stack(), loss=user, **FIT), y, w)
    ref = _fit(backend, bn.NeuralNetRegressor(_stack(), loss=builtin, **FIT), y, w)
    assert ours.out_activation_ == ref.out_activation_
    if builtin == "poisson":  # the user's drops y log y, a constant of the weights
        offset = ref.loss_curve_[0] - ours.loss_curve_[0]
        np.testing.assert_allclose(np.array(ours.loss_curve_) + offset, ref.loss_curve_, rtol=1e-12)
        assert ours.out_activation_ == "exp"
    else:
        _same_fit(ours, ref)
    Xb = backend.asarray(X, dtype="float64")
    assert_close(
        ours.predict(Xb), bn.to_numpy(ref.predict(Xb)), backend=backend, dtype="float64",
        rtol=1e-10, atol=1e-12,
    )  # fmt: skip


def test_huber_loss_curve_is_torchs_on_the_fitted_weights(backend):
    """loss_ of an L-BFGS fit (no penalty) is PyTorch's huber_loss of the fitted network."""
    y = 3 * Y_REAL
    model = bn.NeuralNetRegressor(_stack(), loss="huber", solver="lbfgs", alpha=0.0, **FIT)
    _fit(backend, model, y)
    (W0, b0), _, (W1, b1) = [tuple(torch.tensor(bn.to_numpy(a)) for a in p) for p in model.params_]
    h = torch.tanh(torch.tensor(X) @ W0 + b0) @ W1 + b1
    expected = F.huber_loss(h[:, 0], torch.tensor(y), delta=1.0).item()
    assert model.loss_ == pytest.approx(expected, rel=1e-12)


def test_a_user_classification_loss_trains_as_log_loss(backend):
    ours = _fit(backend, bn.NeuralNetClassifier(_stack(), loss=UserSoftmaxCE(), **FIT), LABELS)
    ref = _fit(backend, bn.NeuralNetClassifier(_stack(), **FIT), LABELS)
    _same_fit(ours, ref)
    Xb = backend.asarray(X, dtype="float64")
    assert_close(
        ours.predict_proba(Xb), bn.to_numpy(ref.predict_proba(Xb)), backend=backend,
        dtype="float64", rtol=1e-10,
    )  # fmt: skip


def test_label_smoothing_zero_is_todays_log_loss(backend):
    """eps = 0 trains exactly as the fused loss; so does the loss object without smoothing."""
    for y, obj in [(LABELS, losses.SoftmaxCrossEntropy()), (BINARY, losses.BinaryLogLoss())]:
        ref = _fit(backend, bn.NeuralNetClassifier(_stack(), **FIT), y)
        zero = _fit(backend, bn.NeuralNetClassifier(_stack(), label_smoothing=0.0, **FIT), y)
        as_object = _fit(backend, bn.NeuralNetClassifier(_stack(), loss=obj, **FIT), y)
        _same_fit(zero, ref, rtol=0)
        _same_fit(as_object, ref, rtol=0)


def _torch_logits(model):
    """The MLPClassifier's (tanh hidden layer) logits by torch, from its fitted weights."""
    W0, W1 = (torch.tensor(bn.to_numpy(a)) for a in model.coefs_)
    b0, b1 = (torch.tensor(bn.to_numpy(a)) for a in model.intercepts_)
    return torch.tanh(torch.tensor(X) @ W0 + b0) @ W1 + b1


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
def test_smoothed_loss_is_torchs_on_the_fitted_weights(backend, kind):
    """loss_ of an L-BFGS fit with label_smoothing = eps is PyTorch's loss of the fitted
    network: cross_entropy(label_smoothing=eps), or the binary cross-entropy on targets
    (1 - eps) y + eps/2 summed over labels; predict_proba is softmax/sigmoid as ever."""
    eps = 0.15
    y = {"multiclass": LABELS, "binary": BINARY, "multilabel": MULTILABEL}[kind]
    model = bn.MLPClassifier(
        (5,), activation="tanh", solver="lbfgs", alpha=0.0, label_smoothing=eps, **FIT
    )
    _fit(backend, model, y)
    h = _torch_logits(model)
    if kind == "multiclass":
        expected = F.cross_entropy(h, torch.tensor(y), label_smoothing=eps)
        proba = torch.softmax(h, dim=1)
    else:
        t = torch.tensor(y, dtype=torch.float64).reshape(h.shape)
        bce = F.binary_cross_entropy_with_logits(h, (1 - eps) * t + eps / 2, reduction="none")
        expected = bce.sum(dim=1).mean()
        proba = torch.sigmoid(h)
        if kind == "binary":
            proba = torch.cat([1 - proba, proba], dim=1)
    assert model.loss_ == pytest.approx(expected.item(), rel=1e-12)
    got = model.predict_proba(backend.asarray(X, dtype="float64"))
    assert_close(got, proba.numpy(), backend=backend, dtype="float64", rtol=1e-10, atol=1e-14)


def test_stack_label_smoothing_early_stopping_and_partial_fit(backend):
    """Smoothing keeps the binary split stratified and the score an accuracy."""
    model = bn.NeuralNetClassifier(
        _stack(), label_smoothing=0.1, early_stopping=True, solver="sgd", **FIT
    )
    _fit(backend, model, BINARY)
    assert all(0 <= s <= 1 for s in model.validation_scores_)
    model = bn.NeuralNetClassifier(_stack(), label_smoothing=0.1, solver="sgd", **FIT)
    Xb, yb = backend.asarray(X, dtype="float64"), backend.asarray(MULTILABEL)
    model.partial_fit(Xb, yb, classes=[0, 1])
    model.partial_fit(Xb, yb)
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 2


# ---------------------------------------------------------------------------- files


def test_save_and_load_losses_and_label_smoothing(backend, tmp_path, loss_registry):
    losses.register("user_huber", UserHuber)
    Xb = backend.asarray(X, dtype="float64")
    models = [
        _fit(backend, bn.NeuralNetRegressor(_stack(), loss=UserHuber(), **FIT), Y_REAL),
        _fit(backend, bn.NeuralNetRegressor(_stack(), loss=losses.Huber(0.5), **FIT), Y_REAL),
        _fit(backend, bn.NeuralNetRegressor(_stack(), loss="poisson", **FIT), Y_COUNTS),
        _fit(backend, bn.NeuralNetClassifier(_stack(), label_smoothing=0.2, **FIT), LABELS),
        _fit(backend, bn.MLPClassifier((4,), label_smoothing=0.1, **FIT), BINARY),
    ]
    for i, model in enumerate(models):
        path = tmp_path / f"m{i}.safetensors"
        bn.save(model, path)
        loaded = bn.load(path, backend=backend.name.split("-")[0])
        assert loaded.get_params().keys() == model.get_params().keys()
        for name, value in model.get_params().items():
            if name != "layers":
                assert loaded.get_params()[name] == value, name
        method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
        assert_close(
            getattr(loaded, method)(Xb), bn.to_numpy(getattr(model, method)(Xb)),
            backend=backend, dtype="float64", rtol=1e-12,
        )  # fmt: skip


def test_an_unregistered_loss_is_refused_at_save(tmp_path):
    model = bn.NeuralNetRegressor(_stack(), loss=UserHuber(), **FIT).fit(X, Y_REAL)
    with pytest.raises(ValueError, match=r"cannot save loss: .*backendnn.losses.register"):
        bn.save(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def _as_format_5(path, drop):
    """Rewrite a saved file's metadata as format 5 wrote it: version 5, ``drop`` absent."""
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["backendnn"])
    meta["version"] = 5
    for name in drop:
        del meta["params"][name]
    header["__metadata__"]["backendnn"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


@pytest.mark.parametrize(
    "model, y, drop",
    [
        (bn.NeuralNetClassifier(_stack(), **FIT), LABELS, ["loss", "label_smoothing"]),
        (bn.NeuralNetRegressor(_stack(), **FIT), Y_REAL, ["loss"]),
        (bn.MLPClassifier((4,), **FIT), BINARY, ["label_smoothing"]),
        (bn.MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), **FIT), Y_COUNTS, []),
    ],
    ids=["stack_classifier", "stack_regressor", "mlp_classifier", "mlp_regressor"],
)
def test_format_5_files_load_with_the_losses_they_meant(tmp_path, model, y, drop):
    model.fit(X, y)
    path = tmp_path / "m.safetensors"
    bn.save(model, path)
    _as_format_5(path, drop)
    loaded = bn.load(path)
    assert {k: v for k, v in loaded.get_params().items() if k != "layers"} == {
        k: v for k, v in model.get_params().items() if k != "layers"
    }
    np.testing.assert_array_equal(bn.to_numpy(loaded.predict(X)), bn.to_numpy(model.predict(X)))


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "cls, params, message",
    [
        (bn.NeuralNetClassifier, {"label_smoothing": 1.0}, "label_smoothing"),
        (bn.NeuralNetClassifier, {"label_smoothing": -0.1}, "label_smoothing"),
        (bn.MLPClassifier, {"label_smoothing": "0.1"}, "label_smoothing"),
        (bn.NeuralNetClassifier, {"loss": "squared_error"}, "'log_loss' or a backendnn"),
        (bn.NeuralNetRegressor, {"loss": "hinge"}, "'squared_error', 'poisson', 'huber'"),
        (bn.NeuralNetRegressor, {"loss": UserSoftmaxCE()}, "output 'identity' or 'exp'"),
        (bn.NeuralNetClassifier, {"loss": HalfSquare()}, "output 'logistic' or 'softmax'"),
        (bn.NeuralNetRegressor, {"loss": losses.squared_error}, "backendnn.losses.Loss"),
    ],
)
def test_bad_losses_are_clear_errors(cls, params, message):
    y = Y_REAL if cls is bn.NeuralNetRegressor else LABELS
    first = (_stack(),) if cls is not bn.MLPClassifier else ()
    with pytest.raises(ValueError, match=message):
        cls(*first, **params, **FIT).fit(X, y)


def test_a_classification_loss_must_fit_the_targets_outputs():
    model = bn.NeuralNetClassifier(_stack(), loss=UserSoftmaxCE(), **FIT)
    with pytest.raises(ValueError, match="has output 'softmax', but these targets take 'logistic'"):
        model.fit(X, BINARY)
    assert not hasattr(model, "n_features_in_")  # nothing half-changed
    smoothed = bn.NeuralNetClassifier(_stack(), loss=UserSoftmaxCE(), label_smoothing=0.1, **FIT)
    with pytest.raises(ValueError, match="smooths the built-in loss only"):
        smoothed.fit(X, LABELS)


def test_the_guide_loss_example_runs(loss_registry):
    """The training guide's own-loss block as written (docs/guide/training.rst), then its
    model fitted and its loss checked against log(cosh) and tanh."""
    from pathlib import Path

    from tests.test_docs_guide import blocks

    page = Path(__file__).parents[1] / "docs" / "guide" / "training.rst"
    (block,) = [code for _, code, _, _ in blocks(page) if "class LogCosh" in code]
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102 - the guide's own code
    reg = namespace["reg"].set_params(random_state=0).fit(X, Y_REAL)
    assert reg.score(X, Y_REAL) > 0.5
    d = np.linspace(-30, 30, 7)[:, None]
    value, grad = namespace["LogCosh"]()(np.zeros_like(d), d)
    expected = np.log(np.cosh(d)).mean()
    assert float(value) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(grad, np.tanh(d) / 7, rtol=1e-12)
