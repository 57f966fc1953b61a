"""The problem every engine solves: the network (``--model``: the ReLU MLP of ``--sizes``,
or the LeNet-like CNN of :func:`lenet`), the host data and the timing plan
(:class:`Problem`, :func:`make_problem`), its FLOP count (:func:`step_flops` for the MLP,
:func:`lenet_flops` for the CNN, :attr:`Problem.flops` for either), the default number of
timed steps (:func:`auto_steps`) and the same settings spelled as ``MLPClassifier``
arguments (:func:`mlp_settings`).

Imports: backendnn's ``_backend``, ``network`` and ``layers`` only; no other module of the
bench.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import _backend
from ..layers import (
    Activation,
    BatchNorm2d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    MaxPool2d,
    Residual,
)
from ..network import Network

_MAX_DATA_BYTES = 128 * 2**20  # distinct data per engine; step engines cycle through it
_STEPS_FLOP_BUDGET = 4e11  # --steps auto: counted FLOPs per engine (1e11 was noisy)

MODELS = ("mlp", "lenet", "resnet", "resnet-plain")
CNNS = ("lenet", "resnet", "resnet-plain")  # the models on (N, 1, 28, 28) images
RESNETS = ("resnet", "resnet-plain")
LENET_INPUT = (1, 28, 28)  # (channels, height, width) of the CNNs' images
LENET_CLASSES = 10
# (in channels, out channels, output height = width) of the CNN's two 3x3 convolutions
_LENET_CONVS = ((1, 16, 28), (16, 32, 14))
_LENET_DENSE = (32 * 7 * 7, LENET_CLASSES)


def lenet() -> Network:
    """Issue 17's LeNet-like CNN: (N, 1, 28, 28) -> Conv2d(1->16, 3, padding 1) -> ReLU ->
    MaxPool2d(2) -> Conv2d(16->32, 3, padding 1) -> ReLU -> MaxPool2d(2) -> Flatten ->
    Dense(1568->10)."""
    return Network(
        [
            Conv2d(1, 16, 3, padding=1),
            Activation("relu"),
            MaxPool2d(2),
            Conv2d(16, 32, 3, padding=1),
            Activation("relu"),
            MaxPool2d(2),
            Flatten(),
            Dense(*_LENET_DENSE),
        ]
    )


# (in, out, kernel, output height = width) of the residual CNN's convolutions, in order
_RESNET_CONVS = (
    (1, 16, 3, 28),  # stem
    (16, 16, 3, 28),  # block 1
    (16, 16, 3, 28),
    (16, 32, 3, 14),  # block 2, stride 2
    (32, 32, 3, 14),
    (16, 32, 1, 14),  # block 2's shortcut, 1x1 stride 2
)
RESNET_DROPOUT = 0.2


def resnet(norm: bool = True) -> Network:
    """The residual CNN of the layers stage (``examples/train_resnet.py``'s on 28x28):
    (N, 1, 28, 28) -> Conv2d(1->16, 3, padding 1) -> BN -> ReLU -> Residual[Conv(16->16) ->
    BN -> ReLU -> Conv(16->16) -> BN] -> ReLU -> Residual[Conv(16->32, stride 2) -> BN ->
    ReLU -> Conv(32->32) -> BN; shortcut Conv(16->32, 1x1, stride 2) -> BN] -> ReLU ->
    GlobalAvgPool2d -> Dropout(0.2) -> Dense(32->10). ``norm=False`` (``--model
    resnet-plain``): the same without the batch norms and the dropout."""

    def bn(c: int) -> list:
        return [BatchNorm2d(c)] if norm else []

    relu = Activation("relu")
    return Network(
        [
            Conv2d(1, 16, 3, padding=1), *bn(16), relu,
            Residual([
                Conv2d(16, 16, 3, padding=1), *bn(16), relu,
                Conv2d(16, 16, 3, padding=1), *bn(16),
            ]),
            relu,
            Residual(
                [
                    Conv2d(16, 32, 3, stride=2, padding=1), *bn(32), relu,
                    Conv2d(32, 32, 3, padding=1), *bn(32),
                ],
                shortcut=[Conv2d(16, 32, 1, stride=2), *bn(32)],
            ),
            relu,
            GlobalAvgPool2d(),
            *([Dropout(RESNET_DROPOUT)] if norm else []),
            Dense(32, LENET_CLASSES),
        ]
    )  # fmt: skip


@dataclass
class Problem:
    """The network, the host data and the timing plan shared by every engine."""

    sizes: tuple[int, ...]
    batch: int
    steps: int
    warmup: int
    repeats: int
    lr: float
    seed: int
    X: Any  # host float32 (n_batches * batch, sizes[0])
    y: Any  # host int64 labels (n_batches * batch,)
    Y: Any  # host float32 one-hot (n_batches * batch, sizes[-1])
    model: str = "mlp"  # a CNN (CNNS): X is (n, 1, 28, 28) and sizes (784, 10) name its ends

    @property
    def n_batches(self) -> int:
        return self.X.shape[0] // self.batch

    @property
    def steps_per_block(self) -> int:
        return max(1, self.steps // self.repeats)

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(self.sizes[1:-1])

    @property
    def network_name(self) -> str:
        if self.model in CNNS:
            return f"{self.model}-" + "x".join(str(s) for s in LENET_INPUT)
        return "-".join(str(s) for s in self.sizes)

    @property
    def flops(self) -> int:
        """Counted FLOPs of one step (see the package docstring)."""
        return model_flops(self.model, self.sizes, self.batch)

    def network(self) -> Network:
        if self.model == "lenet":
            return lenet()
        if self.model in RESNETS:
            return resnet(norm=self.model == "resnet")
        return Network.mlp(self.sizes[0], self.hidden, self.sizes[-1], "relu")

    def host_params(self) -> list[tuple[Any, Any]]:
        """backendnn's initial (W, b) per layer with parameters, NumPy float32: a dense
        layer's W is (n_in, n_out), a convolution's (out, in, kh, kw) as PyTorch's (a
        residual block's tuple holds its sub-layers' arrays in order, batch norm's
        weight and bias included)."""
        xp = _backend.namespace("numpy")
        params = self.network().init(self.seed, xp=xp, dtype=xp.float32)
        return [tuple(p) for p in params if p]


def step_flops(sizes: Sequence[int], batch: int) -> int:
    """Matrix-product FLOPs of one training step (see the package docstring)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return 6 * batch * sum(a * b for a, b in pairs) - 2 * batch * sizes[0] * sizes[1]


def lenet_flops(batch: int) -> int:
    """Convolution and dense-layer FLOPs of one step of :func:`lenet` (see the package
    docstring): 2 N C_out H_out W_out C_in 9 per convolution and 2 N 1568 10 for the dense
    layer, each three times (forward, dW, dx) but the first convolution's dx."""
    convs = [2 * batch * o * h * h * i * 9 for i, o, h in _LENET_CONVS]
    forward = sum(convs) + 2 * batch * _LENET_DENSE[0] * _LENET_DENSE[1]
    return 3 * forward - convs[0]


def resnet_flops(batch: int) -> int:
    """Convolution and dense-layer FLOPs of one step of :func:`resnet` (either variant):
    2 N C_out H_out W_out C_in k k per convolution and 2 N 32 10 for the dense layer, each
    three times (forward, dW, dx) but the first convolution's dx. Batch norm, dropout,
    ReLU, the pool, the residual adds, loss and update are not counted."""
    convs = [2 * batch * o * h * h * i * k * k for i, o, k, h in _RESNET_CONVS]
    forward = sum(convs) + 2 * batch * 32 * LENET_CLASSES
    return 3 * forward - convs[0]


def model_flops(model: str, sizes: Sequence[int], batch: int) -> int:
    """Counted FLOPs of one step of ``model`` (``sizes``: the MLP's widths)."""
    if model == "lenet":
        return lenet_flops(batch)
    if model in RESNETS:
        return resnet_flops(batch)
    return step_flops(sizes, batch)


def auto_steps(sizes: Sequence[int], batch: int, model: str = "mlp") -> int:
    """Timed steps when ``--steps`` is not given: about 4e11 FLOPs, 50 to 500 steps."""
    flops = model_flops(model, sizes, batch)
    return int(min(500, max(50, round(_STEPS_FLOP_BUDGET / flops))))


def make_problem(
    sizes: Sequence[int],
    batch: int,
    steps: int,
    warmup: int = 5,
    repeats: int = 7,
    lr: float = 0.01,
    seed: int = 0,
    model: str = "mlp",
) -> Problem:
    """Host data for ``steps`` distinct batches (fewer if they would pass 128 MiB). With
    a CNN ``model`` (lenet, resnet) the images are (n, 1, 28, 28) and ``sizes`` is ignored."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if model in CNNS:
        c, h, w = LENET_INPUT
        sizes = (c * h * w, LENET_CLASSES)
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"--sizes needs at least two positive layer widths, got {sizes}")
    if batch < 1 or steps < 1 or repeats < 1 or warmup < 0:
        raise ValueError("batch, steps and repeats must be positive, warmup >= 0")
    xp = _backend.namespace("numpy")
    rng = _backend.host_rng(seed)
    d, k = sizes[0], sizes[-1]
    n_batches = max(1, min(steps, _MAX_DATA_BYTES // (4 * batch * d)))
    n = n_batches * batch
    X = rng.standard_normal((n, d), dtype="float32")
    # every batch holds each class about equally often (all k once batch >= k)
    labels = xp.tile(xp.arange(batch, dtype=xp.int64) % k, (n_batches, 1))
    y = xp.reshape(rng.permuted(labels, axis=1), (n,))
    Y = xp.astype(y[:, None] == xp.arange(k, dtype=xp.int64)[None, :], xp.float32)
    if model in CNNS:
        X = xp.reshape(X, (n, *LENET_INPUT))
    sizes = tuple(int(s) for s in sizes)
    return Problem(sizes, batch, steps, warmup, repeats, lr, seed, X, y, Y, model)


def mlp_settings(p: Problem) -> dict[str, Any]:
    """MLPClassifier settings shared by scikit-learn's and backendnn's: plain SGD, same batches."""
    return dict(
        hidden_layer_sizes=p.hidden,
        activation="relu",
        solver="sgd",
        alpha=0.0,
        batch_size=p.batch,
        learning_rate="constant",
        learning_rate_init=p.lr,
        max_iter=1,
        shuffle=False,
        tol=0.0,
        momentum=0.0,
        nesterovs_momentum=False,
        random_state=p.seed,
    )
