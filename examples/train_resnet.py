"""Train a small residual CNN with batch norm and dropout on scikit-learn's digits (NCHW)
======================================================================================

The network: Conv2d(1->16, 3x3) -> BatchNorm2d -> ReLU, a residual block
[Conv-BN-ReLU-Conv-BN] + identity -> ReLU, a downsampling block (16->32 channels, stride
2) whose shortcut is a 1x1 strided convolution and batch norm -> ReLU, a global average
pool, Dropout(0.2), and the output layer Dense(32, 10) the estimator appends. It is
trained by ``NeuralNetClassifier`` with Adam for a fixed number of epochs; early stopping
with a ``n_iter_no_change`` larger than the epochs never stops it, but holds out 10 % of
the training rows and scores them after every epoch (``validation_scores_``), and the
weights of the best epoch are kept. It prints the test accuracy on a held-out quarter of
the digits and draws ``resnet.png``: the training loss and the validation accuracy per
epoch.

``--compare-torch`` trains the same network in PyTorch on one CPU thread: the same initial
weights (backendnn's draw, copied), the same validation rows and batch order (the same
draws from the same generator), Adam with the same settings, the same L2 penalty, the same
best-epoch rule; only the dropout masks differ. It prints both test accuracies.

Run it::

    python examples/train_resnet.py                    # NumPy, 30 epochs (~15 s)
    python examples/train_resnet.py --backend torch    # or jax, cupy, array_api_strict
    python examples/train_resnet.py --quick            # 3 epochs, for tests
    python examples/train_resnet.py --compare-torch    # + the same network in PyTorch
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Any

import numpy as np
from _common import parse_args, parser, plt, save_figure, title
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import backendnn
from backendnn.layers import (
    Activation,
    BatchNorm2d,
    Conv2d,
    Dense,
    Dropout,
    GlobalAvgPool2d,
    Residual,
)

N_CLASSES = 10
INPUT_SHAPE = (1, 8, 8)


# %%
# The residual network, its training settings and the data.


def resnet_layers(dropout: float = 0.2) -> list:
    """The network up to its output layer (the estimator appends Dense(32, 10))."""
    return [
        Conv2d(1, 16, 3, padding=1), BatchNorm2d(16), Activation("relu"),  # (N, 16, 8, 8)
        Residual([
            Conv2d(16, 16, 3, padding=1), BatchNorm2d(16), Activation("relu"),
            Conv2d(16, 16, 3, padding=1), BatchNorm2d(16),
        ]),
        Activation("relu"),
        Residual(
            [
                Conv2d(16, 32, 3, stride=2, padding=1), BatchNorm2d(32), Activation("relu"),
                Conv2d(32, 32, 3, padding=1), BatchNorm2d(32),
            ],
            shortcut=[Conv2d(16, 32, 1, stride=2), BatchNorm2d(32)],
        ),  # (N, 32, 4, 4)
        Activation("relu"),
        GlobalAvgPool2d(),  # (N, 32)
        Dropout(dropout),
    ]  # fmt: skip


def settings(epochs: int, seed: int, lr: float = 0.002) -> dict[str, Any]:
    """The estimator's settings: Adam, fixed epochs, the validation score every epoch."""
    return {
        "solver": "adam",
        "learning_rate_init": lr,
        "batch_size": 64,
        "alpha": 1e-4,
        "max_iter": epochs,
        "early_stopping": True,
        "validation_fraction": 0.1,
        "n_iter_no_change": epochs + 1,  # never stops early: the scores are only recorded
        "random_state": seed,
    }


def load() -> tuple[np.ndarray, ...]:
    """Digits as float32 (N, 1, 8, 8) in [0, 1], a stratified quarter held out for the test."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    return tuple(
        train_test_split(
            images, digits.target, test_size=0.25, stratify=digits.target, random_state=0
        )
    )


# %%
# The PyTorch twin (``--compare-torch``).


def torch_twin(
    X_train, y_train, X_test, y_test, cfg: dict[str, Any], dropout: float = 0.2
) -> dict[str, Any]:
    """The same network, data, initial weights, split, batch order, optimiser and epochs in
    PyTorch on one CPU thread. Returns the loss curve, validation scores, test accuracy and
    seconds."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(cfg["random_state"])  # the dropout masks

    class Block(nn.Module):
        def __init__(self, f: list, shortcut: list | None = None):
            super().__init__()
            self.f = nn.Sequential(*f)
            self.shortcut = nn.Sequential(*shortcut) if shortcut else None

        def forward(self, x):
            return self.f(x) + (x if self.shortcut is None else self.shortcut(x))

    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        Block([nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
               nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)]),
        nn.ReLU(),
        Block([nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
               nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32)],
              [nn.Conv2d(16, 32, 1, stride=2), nn.BatchNorm2d(32)]),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(32, N_CLASSES),
    )  # fmt: skip

    # the estimator's draws from its generator, in its order: the initial weights, the
    # early-stopping split (scikit-learn's ShuffleSplit for more than two classes), then one
    # permutation per epoch, each permuting the order before
    rng = np.random.RandomState(cfg["random_state"])
    network = backendnn.Network([*resnet_layers(dropout), Dense(32, N_CLASSES)]).build(INPUT_SHAPE)
    initial = [a for layer in network.init(rng, xp=np, dtype=np.float32) for a in layer]
    tensors = list(model.parameters())
    assert len(initial) == len(tensors), (len(initial), len(tensors))
    with torch.no_grad():
        for t, a in zip(tensors, initial, strict=True):
            a = a.T if isinstance(a, np.ndarray) and a.ndim == 2 else a  # Dense W: (in, out)
            t.copy_(torch.from_numpy(np.ascontiguousarray(a)))
    penalized = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    n = len(X_train)
    n_val = math.ceil(cfg["validation_fraction"] * n)
    order = rng.permutation(n)
    train, val = order[n_val:], order[:n_val]
    Xt, yt = torch.from_numpy(X_train[train]), torch.from_numpy(y_train[train])
    Xv, yv = torch.from_numpy(X_train[val]), torch.from_numpy(y_train[val])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["learning_rate_init"], eps=1e-8)
    B, alpha = cfg["batch_size"], cfg["alpha"]

    losses: list[float] = []
    scores: list[float] = []
    best, best_state = -math.inf, None
    perm = None
    tic = time.perf_counter()
    for _ in range(cfg["max_iter"]):
        p = rng.permutation(len(train))
        perm = p if perm is None else perm[p]
        model.train()
        total = 0.0
        for i in range(0, len(train), B):
            idx = torch.from_numpy(perm[i : i + B])
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss = loss + alpha / (2 * len(idx)) * sum((w * w).sum() for w in penalized)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(train))
        model.eval()
        with torch.no_grad():
            score = float((model(Xv).argmax(1) == yv).float().mean())
        scores.append(score)
        if score > best:  # scikit-learn's rule: the first best epoch is kept
            best, best_state = score, copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - tic
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(X_test)).argmax(1).numpy()
    accuracy = float(np.mean(predicted == y_test))
    return {"loss": losses, "scores": scores, "accuracy": accuracy, "seconds": seconds}


# %%
# The fit on the chosen backend, the comparison if asked, and the figure.


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, epochs=30)
    p.add_argument("--quick", action="store_true", help="3 epochs (overrides --epochs), for tests")
    p.add_argument("--seed", type=int, default=0, help="random_state of the estimator")
    p.add_argument("--lr", type=float, default=0.002, help="Adam's learning rate")
    p.add_argument("--dropout", type=float, default=0.2, help="the dropout probability")
    p.add_argument(
        "--compare-torch",
        action="store_true",
        help="also train the same network in PyTorch (one CPU thread) and print both accuracies",
    )
    args = parse_args(p, argv)
    epochs = 3 if args.quick else args.epochs
    cfg = settings(epochs, args.seed, args.lr)
    X_train, X_test, y_train, y_test = load()

    model = backendnn.NeuralNetClassifier(resnet_layers(args.dropout), **cfg)
    tic = time.perf_counter()
    with warnings.catch_warnings():  # --epochs is a budget
        warnings.simplefilter("ignore", backendnn.ConvergenceWarning)
        model.fit(
            backendnn.to_backend(X_train, args.backend), backendnn.to_backend(y_train, args.backend)
        )
    seconds = time.perf_counter() - tic
    predicted = backendnn.to_numpy(model.predict(backendnn.to_backend(X_test, args.backend)))
    accuracy = float(np.mean(predicted == y_test))
    scores = list(model.validation_scores_)
    best = int(np.argmax(scores)) + 1
    print(
        f"backendnn ({args.backend}): trained {model.n_iter_} epochs in {seconds:.1f} s; best "
        f"validation accuracy {max(scores):.4f} at epoch {best}; test accuracy: {accuracy:.4f} "
        f"({int(np.sum(predicted != y_test))} mistakes in {len(y_test)})"
    )
    twin = None
    if args.compare_torch:
        twin = torch_twin(X_train, y_train, X_test, y_test, cfg, args.dropout)
        print(
            f"PyTorch (1 CPU thread): trained {epochs} epochs in {twin['seconds']:.1f} s; best "
            f"validation accuracy {max(twin['scores']):.4f}; test accuracy: "
            f"{twin['accuracy']:.4f}"
        )
        print(
            f"test accuracy: backendnn {accuracy:.4f}, PyTorch {twin['accuracy']:.4f} "
            f"(difference {100 * (accuracy - twin['accuracy']):+.2f} points)"
        )

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.arange(1, model.n_iter_ + 1)
    ax_loss.plot(x, model.loss_curve_, label=f"backendnn ({args.backend})")
    ax_val.plot(x, scores, label=f"backendnn: test accuracy {accuracy:.2%}")
    if twin is not None:
        ax_loss.plot(x, twin["loss"], "--", label="PyTorch")
        ax_val.plot(x, twin["scores"], "--", label=f"PyTorch: test accuracy {twin['accuracy']:.2%}")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (log scale)")
    ax_loss.set_title("training loss")
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("validation accuracy")
    n_val = math.ceil(cfg["validation_fraction"] * len(X_train))
    ax_val.set_title(f"validation accuracy ({n_val} held-out rows)")
    for ax in (ax_loss, ax_val):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(title(args, "residual CNN with batch norm and dropout on 8x8 digits"), y=1.02)
    save_figure(fig, args, "resnet.png")


# %%
# Run from the command line; on this page, with the arguments of the note at the top.
# What it prints and draws:
if __name__ == "__main__":
    main()
