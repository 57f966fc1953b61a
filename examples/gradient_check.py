"""Gradient checking: hand-written backpropagation against central differences
===========================================================================

The notes' "Gradient checking", per activation: for every parameter theta_j of a small
network (4 inputs, 5 hidden units, 3 outputs), the analytic gradient from
backpropagation is compared with (J(theta + eps e_j) - J(theta - eps e_j)) / (2 eps). The
table shows, per hidden activation and loss, the largest relative error over all
parameters; the notes ask for agreement to 4 digits (< 1e-4). In float64 (eps = 1e-6)
they agree to about 9 digits; the float32 column (eps = 1e-3, the notes' value) shows why
float64 is used for checking. The figure ``gradient_check.png`` is a bar chart of the
errors.

Run it::

    python examples/gradient_check.py --backend jax
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 on JAX; must be set before JAX loads

import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import parse_args, parser, plt, save_figure, title  # noqa: E402

import backendnn  # noqa: E402
from backendnn import activations  # noqa: E402

N_IN, HIDDEN, N_OUT, N_SAMPLES = 4, 5, 3, 16
NOTES_TOLERANCE = 1e-4  # "agree to 4 digits"
# (column label, loss, dtype)
CHECKS = (
    ("softmax cross-entropy, float64", "softmax_cross_entropy", "float64"),
    ("squared error, float64", "squared_error", "float64"),
    ("softmax cross-entropy, float32", "softmax_cross_entropy", "float32"),
)


# %%
# One check: a small network's analytic gradient against central differences.


def worst_error(name: str, loss: str, dtype: str, backend: str, max_checks: int | None) -> float:
    """Largest relative error of ``check_gradients`` over every parameter array."""
    rng = np.random.default_rng(0)
    X = backendnn.to_backend(rng.normal(size=(N_SAMPLES, N_IN)).astype(dtype), backend)
    if loss == "softmax_cross_entropy":
        y = backendnn.to_backend(rng.integers(0, N_OUT, size=N_SAMPLES), backend)
    else:
        y = backendnn.to_backend(rng.normal(size=(N_SAMPLES, N_OUT)).astype(dtype), backend)
    xp = backendnn.array_namespace(X)
    if X.dtype != getattr(xp, dtype):
        raise SystemExit(
            f"{backend} gave {X.dtype} for {dtype} data; for JAX set JAX_ENABLE_X64=1 "
            "before it is imported"
        )
    net = backendnn.Network.mlp(N_IN, (HIDDEN,), N_OUT, activation=name)
    params = net.init(0, xp=xp, dtype=X.dtype, scheme="glorot_uniform", activation=name)
    # non-zero biases, so that their gradients are checked away from the initial zeros
    params = [
        tuple(p + 0.1 if p.ndim == 1 else p for p in layer) if layer else () for layer in params
    ]
    errors = backendnn.check_gradients(net, params, X, y, loss, max_checks=max_checks)
    return max(errors.values())


# %%
# Every hidden activation, each loss and dtype: the table and the bar chart.


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument(
        "--max-checks",
        type=int,
        default=None,
        help="check at most this many random entries per parameter array (default: all)",
    )
    args = parse_args(p, argv)
    if args.max_checks is not None and args.max_checks < 1:
        p.error("--max-checks must be a positive integer")
    # softmax and log_softmax act on whole rows: they are output functions, fused into the
    # losses, not hidden-layer activations; "logistic" is sigmoid's alias
    names = [n for n in activations.names() if n not in ("softmax", "log_softmax", "logistic")]
    print(
        f"check_gradients on Network.mlp({N_IN}, ({HIDDEN},), {N_OUT}), {N_SAMPLES} samples, "
        f"backend {args.backend}: largest relative error per activation"
    )
    header = f"{'activation':12s}" + "".join(f"{label:>32s}" for label, _, _ in CHECKS)
    print(header)
    print("-" * len(header))
    table = {}
    tic = time.perf_counter()
    for name in names:
        table[name] = [
            worst_error(name, loss, dtype, args.backend, args.max_checks)
            for _, loss, dtype in CHECKS
        ]
        print(f"{name:12s}" + "".join(f"{e:32.2e}" for e in table[name]))
    errors = np.array([table[n] for n in names])
    float64 = errors[:, :2]
    print("-" * len(header))
    print(
        f"float64: largest error {float64.max():.1e}, {int(np.sum(float64 < NOTES_TOLERANCE))} of "
        f"{float64.size} checks agree to 4 digits (< {NOTES_TOLERANCE:g}); "
        f"float32: largest {errors[:, 2].max():.1e} ({time.perf_counter() - tic:.1f} s)"
    )

    fig, ax = plt.subplots(figsize=(11, 4.8), layout="constrained")
    x = np.arange(len(names))
    width = 0.8 / len(CHECKS)
    for k, (label, _, _) in enumerate(CHECKS):
        ax.bar(x + (k - (len(CHECKS) - 1) / 2) * width, errors[:, k], width, label=label)
    ax.axhline(
        NOTES_TOLERANCE, color="k", ls="--", lw=1, label='the notes\' "agree to 4 digits" (1e-4)'
    )
    ax.text(
        0.99, 0.97,
        "expected: ~1e-3 in float32 (eps = 1e-3), ~1e-8 or less in float64 (eps = 1e-6);\n"
        "large inputs: check_gradients(..., max_checks=20) samples 20 entries per array",
        transform=ax.transAxes, ha="right", va="top", fontsize=8,
    )  # fmt: skip
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_xlabel("hidden-layer activation")
    ax.set_ylabel("largest relative error (log scale)")
    ax.legend(loc="upper left", ncols=2, fontsize=9)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.set_ylim(max(errors.min() / 5, 1e-16), 1.0)
    ax.set_title(title(args, "gradient check: backpropagation vs central differences (4-5-3 MLP)"))
    save_figure(fig, args, "gradient_check.png")


# %%
# Run from the command line; on this page, with the arguments of the note at the top.
# What it prints and draws:
if __name__ == "__main__":
    main()
