"""What every example shares: the command line (--backend, --out, ...) and saving figures.

Each example is a script run from anywhere (``python examples/xor.py --backend jax``);
Python puts the script's folder on ``sys.path``, which is how they import this module.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no window: runs the same on a laptop, a server or in CI

import matplotlib.pyplot as plt  # noqa: E402

import backendnn  # noqa: E402

BACKENDS = backendnn.BACKENDS


def parser(
    doc: str | None, *, epochs: int | None = None, samples: int | None = None
) -> argparse.ArgumentParser:
    """An argument parser with ``--backend`` and ``--out``, and ``--epochs``/``--samples``
    when the example has a default for them. ``doc`` is the example's docstring: its first
    line, the title, describes the command (the gallery runs the examples with an empty
    ``__doc__``; ``python -OO`` leaves None)."""
    p = argparse.ArgumentParser(
        description=(doc or "").partition("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="numpy",
        help="array library that does the computing",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="folder the PNG (and model files) go to (default: a new temporary folder)",
    )
    if epochs is not None:
        p.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    if samples is not None:
        p.add_argument("--samples", type=int, default=samples, help="number of samples")
    return p


def parse_args(p: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; exit with backendnn's install hint if the backend is missing,
    and create ``--out`` (by default a new temporary folder, whose name is printed)."""
    args = p.parse_args(argv)
    for name in ("epochs", "samples"):
        if getattr(args, name, 1) < 1:
            p.error(f"--{name} must be a positive integer")
    try:
        backendnn.set_backend(args.backend)
    except ImportError as exc:
        p.error(str(exc))
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix=f"backendnn-{Path(p.prog).stem}-"))
        print(f"writing files to {args.out} (a new temporary folder; choose one with --out)")
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def why_it_stopped(model: Any) -> str:
    """Why ``model.fit`` (stochastic solvers) ended: the epoch budget ``max_iter`` ran out, or
    scikit-learn's rule stopped it early."""
    if model.n_iter_ >= model.max_iter:
        return f"used all {model.n_iter_} of {model.max_iter} epochs (--epochs): more may help"
    watched = "validation score" if model.early_stopping else "training loss"
    return (
        f"stopped after {model.n_iter_} of {model.max_iter} epochs: the {watched} did not "
        f"improve by tol={model.tol:g} for n_iter_no_change={model.n_iter_no_change} "
        "consecutive epochs"
    )


def title(args: argparse.Namespace, what: str) -> str:
    """A figure title that says what the figure shows and which backend computed it."""
    return f"{what} — backend: {args.backend}"


def save_figure(fig: Any, args: argparse.Namespace, name: str) -> Path:
    """Write ``fig`` as ``<out>/<name>`` (PNG), close it and print where it went."""
    path = args.out / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {os.fspath(path)}")
    return path


__all__ = ["BACKENDS", "parser", "parse_args", "plt", "save_figure", "title", "why_it_stopped"]
