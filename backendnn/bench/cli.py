"""The command line, ``python -m backendnn.bench``: the arguments and their checks
(every bad value is a usage error before any work), one subprocess per engine for
``--memory``, and :func:`main`, which runs the engines and prints and saves the results.

Imports: every other module of the bench, and backendnn's ``_backend``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import _backend
from .engines import ENGINES, default_engines, gpu_available
from .problem import MODELS, Problem, auto_steps, make_problem
from .report import derived, describe, format_table, machine, significant
from .rounds import blank_row, measure
from .runner import limit_threads

_DEFAULT_SIZES = "784,512,512,10"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m backendnn.bench",
        description="Train the same ReLU MLP (or LeNet-like CNN) with softmax cross-entropy "
        "and plain SGD on backendnn's backends, scikit-learn, PyTorch and JAX; print ms/step, "
        "samples/s, TFLOP/s and the speed-up against a baseline.",
        epilog="Engines: " + ", ".join(ENGINES),
    )
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="mlp",
        help="mlp: the ReLU MLP whose widths SIZES gives; lenet: (N, 1, 28, 28) -> two "
        "(3x3 convolution, ReLU, 2x2 max-pool) of 16 and 32 channels -> Dense(1568->10); "
        "resnet: examples/train_resnet.py's residual CNN on (N, 1, 28, 28); resnet-plain: "
        "the same without batch norm and dropout (default: %(default)s)",
    )
    parser.add_argument(
        "--sizes",
        default=_DEFAULT_SIZES,
        help="layer widths of the mlp model, input first (default: %(default)s)",
    )
    parser.add_argument(
        "--batch", type=int, default=256, help="samples per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per step engine, over all rounds (default: ~4e11 FLOPs, 50-500)",
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="untimed steps (default: %(default)s)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=7,
        help="interleaved timing rounds; fit engines fit once per round (default: %(default)s)",
    )
    parser.add_argument(
        "--cooldown",
        type=float,
        default=0.25,
        help="untimed pause in seconds before each block, so that the thread pools of the "
        "engine before have gone idle (default: %(default)s)",
    )
    parser.add_argument(
        "--lr", type=float, default=0.01, help="learning rate (default: %(default)s)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the data and the initial weights (default: %(default)s)",
    )
    parser.add_argument(
        "--engines", default=None, help="comma-separated (default: all that can run here)"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="the reference of the speed-up column, x BASELINE = BASELINE ms / engine ms "
        "(default: sklearn on CPU, torch-eager on GPU)",
    )
    parser.add_argument(
        "--precision",
        choices=("highest", "tf32"),
        default=None,
        help="float32 matmul precision for every engine, through "
        "backendnn.set_matmul_precision (default: each library's own)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="at most this many threads for BLAS, OpenMP and torch (with 1, XLA's Eigen "
        "pool too) (default: each library's own)",
    )
    parser.add_argument(
        "--json", default=None, help="write the results to this file (default: no file)"
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="peak memory; each engine in a subprocess (default: off)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing (default: off)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments, each checked: a bad one exits with a usage error that names it."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if len(sizes) < 2:
        parser.error(f"--sizes needs at least two layer widths (input, output), got {args.sizes!r}")
    if any(s < 1 for s in sizes):
        parser.error(f"--sizes must be positive layer widths, got {args.sizes!r}")
    if args.model != "mlp" and args.sizes != _DEFAULT_SIZES:
        parser.error(f"--sizes sets the widths of --model mlp, not of --model {args.model}")
    args.sizes = sizes
    checks = (("batch", 1), ("steps", 1), ("repeats", 1), ("warmup", 0), ("seed", 0))
    for name, least in checks + (("threads", 1),):
        value = getattr(args, name)
        if value is not None and value < least:
            parser.error(f"--{name} must be at least {least}, got {value}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if not (math.isfinite(args.cooldown) and args.cooldown >= 0):
        parser.error(f"--cooldown must be a number of seconds >= 0, got {args.cooldown}")
    if args.engines is not None:
        args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        if not args.engines:
            parser.error(f"--engines names no engine; choose from {', '.join(ENGINES)}")
        unknown = [e for e in args.engines if e not in ENGINES]
        if unknown:
            parser.error(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
        if len(set(args.engines)) != len(args.engines):
            parser.error(f"an engine is named twice in --engines {','.join(args.engines)}")
        other = [e for e in args.engines if args.model not in ENGINES[e].models]
        if other:
            parser.error(f"--engines {','.join(other)}: not for --model {args.model}")
    if args.baseline is not None and args.baseline not in ENGINES:
        parser.error(f"unknown baseline {args.baseline!r}; choose from {', '.join(ENGINES)}")
    if args.json is not None:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            parser.error(f"--json {args.json!r}: no directory {folder!r} to write it in")
    return args


def child_arguments(name: str, args: argparse.Namespace, p: Problem, out: str) -> list[str]:
    """The arguments of ``--memory``'s subprocess for engine ``name``, writing to ``out``."""
    cmd = ["--model", p.model]
    cmd += ["--sizes", ",".join(map(str, p.sizes))] if p.model == "mlp" else []
    cmd += ["--batch", str(p.batch), "--steps", str(p.steps), "--warmup", str(p.warmup)]
    cmd += ["--repeats", str(p.repeats), "--lr", repr(p.lr), "--seed", str(p.seed)]
    cmd += ["--cooldown", repr(args.cooldown)]
    cmd += ["--engines", name, "--memory", "--json", out, "--child"]
    if args.precision:
        cmd += ["--precision", args.precision]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def _run_in_subprocess(name: str, args: argparse.Namespace, p: Problem) -> dict[str, Any]:
    """Run one engine in a fresh interpreter (for --memory), return its row."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "row.json")
        cmd = [sys.executable, "-m", "backendnn.bench", *child_arguments(name, args, p, out)]
        env = dict(os.environ)
        root = str(Path(os.path.abspath(__file__)).parents[2])  # the folder above backendnn/
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not os.path.exists(out):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            row = blank_row(name, p)
            row["error"] = f"subprocess exited {proc.returncode}: {' | '.join(tail)}"
            return row
        with open(out) as f:
            return json.load(f)["results"][0]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (command-line arguments ``argv``); print the table, return the
    JSON document ``{"config", "machine", "results", "derived"}``."""
    args = _parse(argv)
    if "jax" not in sys.modules:
        # several GPU libraries share the device here: JAX must not claim 75 % of it upfront
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.threads:
        limit_threads(args.threads)
    if args.precision:
        _backend.set_matmul_precision(args.precision)
    steps = args.steps if args.steps is not None else auto_steps(args.sizes, args.batch, args.model)
    p = make_problem(
        args.sizes, args.batch, steps, args.warmup, args.repeats, args.lr, args.seed, args.model
    )
    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    gpu = False if args.child else gpu_available()
    names = args.engines if args.engines is not None else default_engines(gpu, p.model)
    baseline = args.baseline or ("torch-eager" if gpu or p.model != "mlp" else "sklearn")
    if args.memory and not args.child:
        results = []
        for name in names:
            results.append(_run_in_subprocess(name, args, p))
            if not args.quiet:
                row = results[-1]
                done = f"{row['ms_per_step']:.3f} ms/step" if "ms_per_step" in row else row["error"]
                print(f"  {name}: {done}", file=sys.stderr, flush=True)
    else:
        results = measure(names, p, memory=args.memory, cooldown=args.cooldown)
    by_name = {r["engine"]: r for r in results}
    base = by_name.get(baseline, {}).get("ms_per_step")
    for r in results:
        if "ms_per_step" in r:
            r["ratio"] = base / r["ms_per_step"] if base else None
    info = machine()
    info["load_average_before"] = load_before
    doc: dict[str, Any] = {
        "config": {
            "model": p.model,
            "network": p.network_name,
            "sizes": list(p.sizes),
            "batch": p.batch,
            "steps": p.steps,
            "steps_per_block": p.steps_per_block,
            "warmup": p.warmup,
            "repeats": p.repeats,
            "n_batches": p.n_batches,
            "lr": p.lr,
            "seed": p.seed,
            "precision": args.precision,
            "baseline": baseline,
            "flops_per_step": p.flops,
            "threads": args.threads,
            "memory": args.memory,
            "cooldown": args.cooldown,
            "command": "python -m backendnn.bench "
            + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        "machine": info,
        "results": results,
        "derived": derived(by_name),
    }
    if not args.quiet and not args.child:
        print(describe(doc))
        print(format_table(doc))
        for key, value in doc["derived"].items():
            print(f"{key}: {significant(value)}x")
        if base is None:
            print(f"(no ratio column: baseline {baseline} did not run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2, default=str)
    return doc
