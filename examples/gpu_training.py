"""Training throughput on an MNIST-sized problem: the script to run on a GPU
=========================================================================

A synthetic stand-in for MNIST, drawn from a seed so that no download is needed:
60,000 training and 10,000 test samples of 784 features in 10 classes (each class a
random centroid plus Gaussian noise). It is drawn on the host and moved to the
backend's device once; an MLP 784-512-512-10 then trains in float32 with Adam on
batches of 256. A ``callbacks=`` function receives each epoch's record, and the script
prints samples/s per epoch (the first includes JIT compilation on JAX and warm-up
elsewhere) and the final test accuracy. The figure ``gpu_training.png`` plots
samples/s and the loss per epoch.

Run it::

    python examples/gpu_training.py --backend cupy     # or jax, torch; numpy for the CPU
    python examples/gpu_training.py --backend torch --samples 10000 --epochs 2
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np
from _common import parse_args, parser, plt, save_figure, title

import backendnn

N_FEATURES, N_CLASSES = 784, 10
SEPARATION = 0.12  # centroid scale against unit noise: hard enough that training shows


# %%
# The synthetic stand-in for MNIST.


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples (n, 784) float32 with labels (n,) in 10 classes: centroid + noise."""
    rng = np.random.default_rng(seed)
    centroids = SEPARATION * rng.standard_normal((N_CLASSES, N_FEATURES), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, size=n)
    X = centroids[y] + rng.standard_normal((n, N_FEATURES), dtype=np.float32)
    return X, y


# %%
# The fit with a per-epoch callback that times it, and the figure.


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, epochs=3, samples=60_000)
    p.add_argument("--batch-size", type=int, default=256, help="samples per Adam step")
    p.add_argument(
        "--precision",
        choices=("highest", "tf32"),
        default="highest",
        help="float32 matmul precision on GPUs (tf32: tensor cores); CPUs always use float32",
    )
    args = parse_args(p, argv)
    backendnn.set_matmul_precision(args.precision)
    n_test = max(args.samples // 6, 100)

    tic = time.perf_counter()
    X_host, y_host = make_data(args.samples + n_test)
    drawn = time.perf_counter() - tic
    tic = time.perf_counter()
    X = backendnn.to_backend(X_host[: args.samples], args.backend)
    y = backendnn.to_backend(y_host[: args.samples], args.backend)
    X_test = backendnn.to_backend(X_host[args.samples :], args.backend)
    moved = time.perf_counter() - tic
    where = getattr(X, "device", "cpu")
    print(
        f"data: {args.samples:,} training + {n_test:,} test samples x {N_FEATURES} features, "
        f"{N_CLASSES} classes, float32 ({X_host.nbytes / 2**20:.0f} MiB); drawn on the host in "
        f"{drawn:.2f} s, moved to {args.backend} (device {where}) in {moved:.2f} s"
    )

    records: list[dict] = []

    def on_epoch(record: dict) -> None:
        records.append({k: record[k] for k in ("epoch", "loss", "seconds", "samples_per_second")})
        print(
            f"epoch {record['epoch']}: loss {record['loss']:.4f}, {record['seconds']:.2f} s, "
            f"{record['samples_per_second']:,.0f} samples/s",
            flush=True,
        )

    model = backendnn.MLPClassifier(
        (512, 512),
        solver="adam",
        batch_size=args.batch_size,
        max_iter=args.epochs,
        tol=0.0,
        n_iter_no_change=args.epochs + 1,  # train exactly --epochs epochs
        random_state=0,
        backend=args.backend,
        dtype="float32",
    )
    print(
        f"MLP 784-512-512-10, Adam, batch {args.batch_size}, {args.epochs} epochs, "
        f"matmul precision {args.precision}"
    )
    with warnings.catch_warnings():  # a fixed epoch budget: not converging is expected
        warnings.simplefilter("ignore", backendnn.ConvergenceWarning)
        tic = time.perf_counter()
        model.fit(X, y, callbacks=[on_epoch])
        total = time.perf_counter() - tic
    predicted = backendnn.to_numpy(model.predict(X_test))
    accuracy = float(np.mean(predicted == y_host[args.samples :]))
    rates = [r["samples_per_second"] for r in records]
    steady = statistics.median(rates[1:]) if len(rates) > 1 else rates[0]
    print(
        f"{args.backend}: {steady:,.0f} samples/s "
        f"({'median of epochs 2+' if len(rates) > 1 else 'epoch 1, with warm-up'}); "
        f"fit took {total:.1f} s; test accuracy {accuracy:.4f}"
    )

    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    epochs = [r["epoch"] for r in records]
    bars = ax.bar(epochs, rates, color="C0", width=0.6, label="samples/s")
    ax.bar_label(bars, labels=[f"{r:,.0f}" for r in rates], fontsize=9, padding=2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training throughput (samples/s)")
    ax.set_xticks(epochs)
    ax.set_ylim(0, max(rates) * 1.18)
    loss_ax = ax.twinx()
    loss_ax.plot(epochs, [r["loss"] for r in records], "o-", color="C3", label="training loss")
    loss_ax.set_ylabel("training loss (cross-entropy)", color="C3")
    loss_ax.set_ylim(bottom=0)
    fig.legend(
        handles=[bars, loss_ax.lines[0]],
        labels=["samples/s (bars)", "training loss (line)"],
        loc="outside lower center",
        ncols=2,
    )
    ax.set_title(
        title(args, f"training throughput, MLP 784-512-512-10, {args.samples:,} samples")
        + f"\ndevice {where}, float32 ({args.precision}), batch {args.batch_size}; "
        f"test accuracy {accuracy:.3f}",
        fontsize=11,
    )
    save_figure(fig, args, "gpu_training.png")


# %%
# Run from the command line; on this page, with the arguments of the note at the top.
# What it prints and draws:
if __name__ == "__main__":
    main()
