"""Validation data, a cosine schedule, checkpoints, early stopping and resuming
============================================================================

Train with validation data, a cosine schedule and a checkpoint of the best epoch; stop
early; resume from the checkpoint.

A small CNN learns scikit-learn's bundled digits (8x8 NCHW images) with a held-out
validation set. ``CosineAnnealing`` warms the learning rate up for 3 epochs and anneals
it; ``ModelCheckpoint`` saves the run (weights, optimiser, generator, epoch) at every
improvement of the validation loss; ``EarlyStopping`` stops the fit once the validation
loss has not improved for ``--patience`` epochs, keeping the best weights; ``CSVLogger``
writes one row per epoch. The checkpoint is then loaded and resumed with ``resume=True``
for ``--more`` epochs at a smaller, constant learning rate (a ``LearningRateScheduler``: a
resumed run otherwise goes on at the rate it stopped at). The figure shows the training
and validation curves with the stopping and resuming epochs marked, and the learning rate.

Run it::

    python examples/callbacks_and_checkpoints.py                  # NumPy
    python examples/callbacks_and_checkpoints.py --backend jax    # or torch, cupy, ...
"""

from __future__ import annotations

import warnings

import numpy as np
from _common import parse_args, parser, plt, save_figure, title
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import backendnn
from backendnn.callbacks import (
    CosineAnnealing,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
)
from backendnn.layers import Activation, Conv2d, Dense, Flatten, MaxPool2d

# %%
# The fit with its callbacks, the resumed fit and the figure.


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, epochs=60)
    p.add_argument("--patience", type=int, default=6, help="EarlyStopping's patience")
    p.add_argument("--more", type=int, default=10, help="epochs trained after the resume")
    args = parse_args(p, argv)

    digits = load_digits()
    images = (digits.images / 16.0)[:, None, :, :]
    X_train, X_val, y_train, y_val = train_test_split(
        images, digits.target, test_size=0.3, stratify=digits.target, random_state=0
    )
    X_train_b, X_val_b = (backendnn.to_backend(a, args.backend) for a in (X_train, X_val))

    layers = [
        Conv2d(1, 8, 3, padding=1),
        Activation("relu"),
        MaxPool2d(2),
        Flatten(),
        Dense(32),
        Activation("relu"),
    ]
    model = backendnn.NeuralNetClassifier(
        layers, learning_rate_init=0.01, max_iter=args.epochs, batch_size=64, random_state=0
    )
    checkpoint = args.out / "best.safetensors"
    stop = EarlyStopping(monitor="validation_loss", patience=args.patience)
    keep_best = ModelCheckpoint(checkpoint, monitor="validation_loss")
    model.fit(
        X_train_b,
        y_train,
        validation_data=(X_val_b, y_val),
        callbacks=[
            CosineAnnealing(t_max=args.epochs, warmup=3),
            stop,
            keep_best,
            CSVLogger(args.out / "log.csv"),
        ],
    )
    rates = np.loadtxt(args.out / "log.csv", delimiter=",", skiprows=1, ndmin=2)[:, 4]
    best_epoch = keep_best.saved[-1][0]
    print(
        f"stopped at epoch {stop.stopped_epoch or model.n_iter_}; best validation loss "
        f"{stop.best:.4f} at epoch {best_epoch}; validation accuracy "
        f"{model.score(X_val_b, y_val):.4f} with its weights"
    )

    resumed = backendnn.load(checkpoint, backend=args.backend)
    resumed.set_params(max_iter=best_epoch + args.more)
    more_rates: list[float] = []
    with warnings.catch_warnings():  # it runs to max_iter by design
        warnings.simplefilter("ignore", backendnn.ConvergenceWarning)
        resumed.fit(
            X_train_b,
            y_train,
            resume=True,
            validation_data=(X_val_b, y_val),
            callbacks=[
                LearningRateScheduler(lambda epoch, lr: 0.002),
                lambda r: more_rates.append(r["learning_rate"]),
            ],
        )
    print(
        f"resumed from epoch {best_epoch} for {args.more} epochs: validation accuracy "
        f"{resumed.score(X_val_b, y_val):.4f}"
    )

    fig, (ax, ax_lr) = plt.subplots(1, 2, figsize=(11, 4))
    first = np.arange(1, model.n_iter_ + 1)
    ax.plot(first, model.loss_curve_, label="training loss")
    ax.plot(first, model.validation_loss_curve_, label="validation loss")
    after = np.arange(best_epoch + 1, resumed.n_iter_ + 1)
    ax.plot(after, resumed.loss_curve_[best_epoch:], "--", label="training loss (resumed)")
    ax.plot(
        after, resumed.validation_loss_curve_[best_epoch:], "--", label="validation loss (resumed)"
    )
    ax.axvline(model.n_iter_, color="grey", linestyle=":", label=f"stopped ({model.n_iter_})")
    ax.axvline(best_epoch, color="black", linestyle="-.", label=f"resumed from ({best_epoch})")
    ax.set(xlabel="epoch", ylabel="loss", yscale="log")
    ax.legend(fontsize=8)
    ax_lr.plot(first, rates, label="cosine schedule with warm-up")
    ax_lr.plot(after, more_rates, "--", label="after resuming")
    ax_lr.set(xlabel="epoch", ylabel="learning rate")
    ax_lr.legend(fontsize=8)
    fig.suptitle(title(args, "early stopping, a checkpoint of the best epoch, resuming"))
    save_figure(fig, args, "callbacks_and_checkpoints.png")


# %%
# Run from the command line; on this page, with the arguments of the note at the top.
# What it prints and draws:
if __name__ == "__main__":
    main()
