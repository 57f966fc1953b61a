"""The data-parallel epoch's cost on a JAX mesh against one device:
``python -m backendnn.bench.sharded`` (``--help`` for the options).

One subprocess per device count (``XLA_FLAGS=--xla_force_host_platform_device_count=D``
must be set before JAX starts), each timing the compiled SGD epoch of a ReLU MLP on the
same data: on one device (:class:`backendnn.data.ArrayData`) and with the rows sharded
over D devices (:class:`backendnn.data.ShardedData`: the batch's reduce-scatter and the
gradients' all-reduce). Forced CPU devices share the machine's cores, so on a CPU the
ratio measures the overhead of the sharded program, not a speed-up; on a multi-GPU host
(``--devices`` at most the GPU count, no forcing) it is the scaling.

Imports backendnn's ``_backend``, ``data``, ``network``, ``optim`` and ``train``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any


def _child(args: argparse.Namespace) -> dict[str, Any]:
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from .. import Network
    from .._backend import namespace, synchronize
    from ..data import as_source
    from ..optim import SGD
    from ..train import make_step

    xp = namespace("jax")
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, sizes[0])).astype("float32")
    Y = np.eye(sizes[-1], dtype="float32")[rng.integers(0, sizes[-1], args.rows)]
    devices = jax.devices()[: args.n_devices]
    if len(devices) > 1:
        mesh = Mesh(np.array(devices), ("batch",))
        rows, rep = (
            NamedSharding(mesh, PartitionSpec("batch")),
            NamedSharding(mesh, PartitionSpec()),
        )
    else:
        rows = rep = devices[0]
    data = as_source(jax.device_put(X, rows), jax.device_put(Y, rows))
    net = Network.mlp(sizes[0], tuple(sizes[1:-1]), sizes[-1], activation="relu")
    params = jax.device_put(net.init(seed=0, xp=xp, dtype=xp.float32), rep)
    opt = SGD(0.9, True)
    state = opt.init(params)
    step = make_step(net, "softmax_cross_entropy", 1e-4, opt, xp)
    n_batches = -(-args.rows // args.batch)
    rates = [1e-3] * n_batches
    times = []
    for i in range(args.repeats + 1):  # the first epoch compiles
        order = data.permutation(rng)
        tic = time.perf_counter()
        params, state, total = data.epoch(step, params, state, rates, args.batch, order)
        synchronize(total)
        if i:
            times.append(time.perf_counter() - tic)
    return {"devices": len(devices), "ms_per_epoch": 1e3 * statistics.median(times)}


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m backendnn.bench.sharded", description=__doc__)
    parser.add_argument("--devices", default="1,4", help="device counts (default: 1,4)")
    parser.add_argument("--sizes", default="64,64,10", help="layer sizes (default: 64,64,10)")
    parser.add_argument("--rows", type=int, default=20000, help="samples (default: 20000)")
    parser.add_argument("--batch", type=int, default=256, help="batch size (default: 256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs (default: 5)")
    parser.add_argument("--force-cpu", action="store_true", help="force CPU devices (XLA flag)")
    parser.add_argument("--n-devices", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n_devices is not None:  # a child: one device count
        print(json.dumps(_child(args)))
        return []
    results = []
    for count in (int(c) for c in args.devices.split(",")):
        env = dict(os.environ)
        if args.force_cpu:
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={max(count, 1)}"
            env["JAX_PLATFORMS"] = "cpu"
        cmd = [sys.executable, "-m", "backendnn.bench.sharded", "--n-devices", str(count)]
        cmd += ["--sizes", args.sizes, "--rows", str(args.rows), "--batch", str(args.batch)]
        cmd += ["--repeats", str(args.repeats)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = results[0]["ms_per_epoch"]
    print(f"{'devices':>7} {'ms/epoch':>9} {'x first':>8}")
    for r in results:
        print(f"{r['devices']:>7} {r['ms_per_epoch']:>9.1f} {r['ms_per_epoch'] / base:>8.2f}")
    return results


if __name__ == "__main__":
    main()
