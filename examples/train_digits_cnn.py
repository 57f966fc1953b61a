"""Train a small convolutional network on scikit-learn's digits, as NCHW images
============================================================================

The same (N, 1, 8, 8) batches and stratified hold-out as ``train_digits.py``; the network
is two 3x3 convolutions (16 and 32 channels, ReLU, 2x2 max-pooling) and the output layer
the estimator appends. It prints the test accuracy, saves and reloads the model (the layer
stack is recorded in the file), and draws ``digits_cnn.png``: the loss curve, the 16
first-layer filters and the test digits it gets wrong.

Run it::

    python examples/train_digits_cnn.py                  # NumPy
    python examples/train_digits_cnn.py --backend jax    # or torch, cupy, array_api_strict
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from _common import parse_args, parser, plt, save_figure, title, why_it_stopped
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import backendnn
from backendnn.layers import Activation, Conv2d, Flatten, MaxPool2d

# %%
# The network and its training settings (``export_onnx.py`` uses them too).


LAYERS = [
    Conv2d(1, 16, 3, padding=1), Activation("relu"), MaxPool2d(2),  # (N, 16, 4, 4)
    Conv2d(16, 32, 3, padding=1), Activation("relu"), MaxPool2d(2),  # (N, 32, 2, 2)
    Flatten(),  # (N, 128), then the output Dense(128, 10) the estimator appends
]  # fmt: skip
# minibatch SGD with Nesterov momentum; it stops when the loss stops improving (~23 epochs)
SETTINGS = {
    "batch_size": 16,
    "solver": "sgd",
    "learning_rate_init": 0.05,
    "momentum": 0.9,
    "random_state": 4,
}


# %%
# The data, the fit, the saved and reloaded model, and the figure.


def main(argv: list[str] | None = None) -> None:
    args = parse_args(parser(__doc__, epochs=40), argv)
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    X_train, X_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )
    X_train_b = backendnn.to_backend(X_train, args.backend)
    y_train_b = backendnn.to_backend(y_train, args.backend)
    X_test_b = backendnn.to_backend(X_test, args.backend)

    model = backendnn.NeuralNetClassifier(
        LAYERS, max_iter=args.epochs, verbose="progress", **SETTINGS
    )
    tic = time.perf_counter()
    with warnings.catch_warnings():  # --epochs is a budget
        warnings.simplefilter("ignore", backendnn.ConvergenceWarning)
        model.fit(X_train_b, y_train_b)
    seconds = time.perf_counter() - tic
    predicted = backendnn.to_numpy(model.predict(X_test_b))
    accuracy = float(np.mean(predicted == y_test))
    print(why_it_stopped(model))
    print(
        f"trained {model.n_iter_} epochs in {seconds:.1f} s; test accuracy: {accuracy:.4f} "
        f"({int(np.sum(predicted != y_test))} mistakes in {len(y_test)})"
    )
    path = args.out / "digits_cnn.safetensors"
    backendnn.save(model, path)
    again = backendnn.to_numpy(backendnn.load(path, backend=args.backend).predict(X_test_b))
    same = bool(np.all(again == predicted))
    print(f"saved {path}; reloaded model: identical predictions: {same}")

    fig = plt.figure(figsize=(12, 4.6))
    grid = fig.add_gridspec(1, 3, width_ratios=(1.1, 1, 1.1), wspace=0.25)
    ax = fig.add_subplot(grid[0])
    ax.plot(np.arange(1, len(model.loss_curve_) + 1), model.loss_curve_)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title(f"loss; test accuracy {accuracy:.2%}")
    ax.grid(True, which="both", alpha=0.3)

    filters = backendnn.to_numpy(model.params_[0][0])[:, 0]  # (16, 3, 3)
    cells = grid[1].subgridspec(4, 4, wspace=0.08, hspace=0.08)
    limit = float(np.abs(filters).max())
    for k in range(16):
        a = fig.add_subplot(cells[k // 4, k % 4])
        a.imshow(filters[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
        a.set_xticks([])
        a.set_yticks([])
    fig.text(0.5, 0.93, "first-layer 3x3 filters (red +, blue -)", ha="center")

    wrong = np.flatnonzero(predicted != y_test)[:16]
    cells = grid[2].subgridspec(4, 4, wspace=0.1, hspace=0.5)
    for k, i in enumerate(wrong):
        a = fig.add_subplot(cells[k // 4, k % 4])
        a.imshow(X_test[i, 0], cmap="gray_r", vmin=0, vmax=1)
        a.set_title(f"{predicted[i]}/{y_test[i]}", fontsize=9, color="red")
        a.set_xticks([])
        a.set_yticks([])
    fig.text(0.83, 0.93, f"mistakes, predicted/true ({int(np.sum(predicted != y_test))})",
             ha="center")  # fmt: skip
    fig.suptitle(title(args, "CNN on 8x8 digits"), fontsize=13, y=1.02)
    save_figure(fig, args, "digits_cnn.png")


# %%
# Run from the command line; on this page, with the arguments of the note at the top.
# What it prints and draws:
if __name__ == "__main__":
    main()
