"""One training step of a small LeNet-like CNN: backendnn on NumPy, JAX and torch against a
plain PyTorch eager loop, side by side. A thin wrapper: the engines now live in the package,
and this script runs ``python -m backendnn.bench --model lenet`` with its options translated.

    python benchmarks/conv_step.py [--batch 64] [--steps 20] [--repeats 5] [--warmup 3]
                                   [--engines numpy,jax-jit,torch,torch-eager,...]
                                   [--threads N] [-- more bench options]

The old engine names map to the bench's: ``numpy`` -> ``backendnn-numpy``, ``jax-jit`` ->
``backendnn-jax``, ``jax-jit-im2col`` -> ``backendnn-jax-im2col``, ``torch`` ->
``backendnn-torch``, ``torch-im2col`` -> ``backendnn-torch-im2col``, ``torch-eager`` and
``jax-grad`` unchanged. ``--steps`` is per timed block as before (the bench's is over all
rounds: steps x repeats). Matmul precision "highest" as before. Unlike the old script, the
steps cycle over distinct batches (the bench's data), not one fixed batch, so the loss
printed differs from the figures in benchmarks/NOTES.md taken before the move; the timing
(interleaved rounds, rotated order, median) is the same method.
"""

from __future__ import annotations

import argparse
import sys

from backendnn.bench import main as bench_main

_NAMES = {
    "numpy": "backendnn-numpy",
    "jax-jit": "backendnn-jax",
    "jax-jit-im2col": "backendnn-jax-im2col",
    "torch": "backendnn-torch",
    "torch-im2col": "backendnn-torch-im2col",
}
DEFAULT_ENGINES = ("numpy", "jax-jit", "jax-jit-im2col", "torch", "torch-im2col", "torch-eager")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per engine")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES))
    parser.add_argument("--threads", type=int, default=None, help="torch and BLAS threads")
    args, rest = parser.parse_known_args(argv)
    engines = [_NAMES.get(e, e) for e in args.engines.split(",") if e]
    bench = ["--model", "lenet", "--batch", str(args.batch), "--repeats", str(args.repeats)]
    bench += ["--steps", str(args.steps * args.repeats), "--warmup", str(args.warmup)]
    bench += ["--engines", ",".join(engines), "--precision", "highest", "--cooldown", "0.2"]
    if args.threads is not None:
        bench += ["--threads", str(args.threads)]
    bench_main(bench + [a for a in rest if a != "--"])


if __name__ == "__main__":
    main(sys.argv[1:])
