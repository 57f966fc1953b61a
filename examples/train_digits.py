"""Train an MLP on scikit-learn's bundled handwritten digits, seen as NCHW images
==============================================================================

1,797 grey 8x8 images ship with scikit-learn (no download). They go in as an
(N, 1, 8, 8) batch scaled to [0, 1]; a quarter is held out (stratified). The model
trains with a progress bar, prints its test accuracy, is saved to a safetensors file,
reloaded and checked to predict exactly the same. The figure ``digits.png`` shows the
loss curve and test digits labelled predicted/true, mistakes in red.

Run it::

    python examples/train_digits.py                  # NumPy
    python examples/train_digits.py --backend jax    # or torch, cupy, array_api_strict
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from _common import parse_args, parser, plt, save_figure, title, why_it_stopped
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import backendnn

# %%
# The data, the fit, the saved and reloaded model, and the figure.


def main(argv: list[str] | None = None) -> None:
    args = parse_args(parser(__doc__, epochs=200), argv)

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # NCHW, values in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )
    print(
        f"digits: {X_train.shape[0]} training and {X_test.shape[0]} test images of shape "
        f"{X_train.shape[1:]} (NCHW), backend {args.backend}"
    )

    # Move the data once; the model then computes where its input lives.
    X_train_b = backendnn.to_backend(X_train, args.backend)
    y_train_b = backendnn.to_backend(y_train, args.backend)
    X_test_b = backendnn.to_backend(X_test, args.backend)

    model = backendnn.MLPClassifier(
        hidden_layer_sizes=(64,),
        max_iter=args.epochs,
        random_state=0,
        verbose="progress",  # a tqdm progress bar, one tick per epoch
        backend=args.backend,
    )
    tic = time.perf_counter()
    with warnings.catch_warnings():  # --epochs is a budget: say so below instead of warning
        warnings.simplefilter("ignore", backendnn.ConvergenceWarning)
        model.fit(X_train_b, y_train_b)
    seconds = time.perf_counter() - tic
    predicted = backendnn.to_numpy(model.predict(X_test_b))
    accuracy = float(np.mean(predicted == y_test))
    print(
        f"trained {model.n_iter_} epochs in {seconds:.1f} s, final loss {model.loss_:.4f}; "
        f"test accuracy: {accuracy:.4f} ({int(np.sum(predicted != y_test))} mistakes "
        f"in {len(y_test)})"
    )
    print(why_it_stopped(model))

    path = args.out / "digits_mlp.safetensors"
    backendnn.save(model, path)
    reloaded = backendnn.load(path, backend=args.backend)
    again = backendnn.to_numpy(reloaded.predict(X_test_b))
    print(
        f"saved {path}; reloaded model: identical predictions: {bool(np.all(again == predicted))}"
    )

    # ------------------------------------------------------------------ the figure
    fig = plt.figure(figsize=(11, 5.2))
    grid = fig.add_gridspec(1, 2, width_ratios=(1, 1.25), wspace=0.15)
    ax = fig.add_subplot(grid[0])
    ax.plot(np.arange(1, len(model.loss_curve_) + 1), model.loss_curve_, color="C0")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy + L2, log scale)")
    ax.set_title(f"loss curve, {model.n_iter_} epochs")
    ax.grid(True, which="both", alpha=0.3)
    ax.text(
        0.97,
        0.95,
        f"test accuracy {accuracy:.2%}",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=11,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8},
    )

    # 40 test digits: every mistake first (up to 40), then correctly classified ones
    wrong = np.flatnonzero(predicted != y_test)
    right = np.flatnonzero(predicted == y_test)
    shown = np.concatenate([wrong, right])[:40]
    cells = grid[1].subgridspec(5, 8, wspace=0.1, hspace=0.45)
    for k, i in enumerate(shown):
        a = fig.add_subplot(cells[k // 8, k % 8])
        a.imshow(X_test[i, 0], cmap="gray_r", vmin=0, vmax=1)
        ok = predicted[i] == y_test[i]
        a.set_title(f"{predicted[i]}/{y_test[i]}", fontsize=9, color="black" if ok else "red")
        a.set_xticks([])
        a.set_yticks([])
        if not ok:
            for spine in a.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(2)
    fig.text(
        0.71,
        0.93,
        f"test digits, predicted/true ({len(wrong)} mistakes in red)",
        ha="center",
        fontsize=11,
    )
    fig.suptitle(title(args, "MLP (64 hidden) on 8x8 digits"), fontsize=13, y=1.02)
    save_figure(fig, args, "digits.png")


# %%
# Run from the command line; on this page, with the arguments of the note at the top.
# What it prints and draws:
if __name__ == "__main__":
    main()
