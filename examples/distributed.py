"""Data-parallel training with JAX: one process on many devices, then many processes
=================================================================================

1. Every JAX device of this machine in one mesh (on a laptop, 4 forced CPU devices;
   on a multi-GPU host, the GPUs, unchanged): the rows of X and y are sharded over the
   mesh, the weights replicated; the fit equals the one-device fit.
2. Two processes on 127.0.0.1 (``jax.distributed``, 2 devices each), each holding half
   of the rows: both end with the same weights, equal to the one-process fit; process 0
   saves the model (to a temporary folder, removed at the end) and this process reloads it.
3. Out of core with Dask: a child process caps its own address space, then fits a dask
   array four times larger than the memory it left itself, chunk by chunk (``pip install
   "backendnn[dask]"``; skipped without dask). A NumPy memmap, zarr or HDF5 dataset works
   the same through ``dask.array.from_array``.

Run it::

    python examples/distributed.py               # every part; --parts 2 3 for some
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import warnings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--parts", type=int, nargs="+", choices=(1, 2, 3), default=[1, 2, 3],
        help="which parts to run (default: all three)",
    )  # fmt: skip
    # the child processes this script starts: --worker PID PORT FOLDER, --dask MIB
    p.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--dask", type=int, help=argparse.SUPPRESS)
    return p


PARSER = _parser()
ARGS = PARSER.parse_args()  # --help and usage errors exit here, before JAX starts
if "XLA_FLAGS" not in os.environ and ARGS.worker is None:  # before JAX starts
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"  # CPU only

try:
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
except ModuleNotFoundError as exc:
    if exc.name != "jax":
        raise
    PARSER.error('this example needs JAX: pip install ".[jax]" (from a clone) or pip install jax')
import numpy as np  # noqa: E402

import backendnn as bn  # noqa: E402

warnings.filterwarnings("ignore", category=bn.ConvergenceWarning)  # epochs fixed on purpose
PARAMS = dict(hidden_layer_sizes=(32,), solver="adam", batch_size=64, max_iter=20, random_state=0)


# %%
# Part 1: one process, every device of this machine in one mesh.


def data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)[:1792]  # 1792 rows: divides over 2, 4 or 8 devices
    return X, y[:1792]


def one_process() -> None:
    X, y = data()
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    rows = NamedSharding(mesh, PartitionSpec("batch"))
    sharded = bn.MLPClassifier(**PARAMS).fit(jax.device_put(X, rows), jax.device_put(y, rows))
    single = bn.MLPClassifier(**PARAMS).fit(jax.numpy.asarray(X), y)
    gap = np.max(np.abs(np.array(sharded.loss_curve_) - single.loss_curve_))
    accuracy = sharded.score(jax.device_put(X, rows), jax.device_put(y, rows))
    print(f"1. {len(jax.devices())} devices ({jax.devices()[0].platform}): final loss "
          f"{sharded.loss_:.6f}, one device {single.loss_:.6f} (largest gap {gap:.1e}); "
          f"weights replicated: {sharded.coefs_[0].sharding.is_fully_replicated}; "
          f"accuracy {accuracy:.3f}")  # fmt: skip


# %%
# Part 2: two processes, each holding half of the rows.


def worker(pid: int, port: str, out: str) -> None:
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    X, y = data()
    mesh = Mesh(np.array(jax.devices()), ("batch",))  # every device of both processes
    rows = NamedSharding(mesh, PartitionSpec("batch"))
    half = slice(pid * len(X) // 2, (pid + 1) * len(X) // 2)  # this process's rows
    Xg = jax.make_array_from_process_local_data(rows, X[half])
    yg = jax.make_array_from_process_local_data(rows, y[half])
    model = bn.MLPClassifier(**PARAMS).fit(Xg, yg)  # the same call in every process
    checksum = float(np.sum(bn.to_numpy(model.coefs_[0])))
    print(f"   process {pid}: final loss {model.loss_:.6f}, weights checksum {checksum:.10f}")
    if jax.process_index() == 0:  # every process holds the weights: one saves
        bn.save(model, os.path.join(out, "distributed.safetensors"))
    jax.distributed.shutdown()


#: seconds two workers may take (10-15 s here); past it they are stopped and started
#: again once: XLA's CPU collectives over gloo were seen to hang, rarely, on a loaded
#: 2-core machine (both processes waiting in the same all-reduce of the same epoch)
WORKER_TIMEOUT = 90


def _workers(out: str) -> list[int]:
    """Run the two workers, writing into folder ``out``; their exit codes."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["JAX_PLATFORMS"] = "cpu"
    for attempt in (1, 2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = str(s.getsockname()[1])
        procs = []
        for i in range(2):
            with open(os.path.join(out, f"process{i}.log"), "w") as f:  # the child keeps a copy
                cmd = [sys.executable, __file__, "--worker", str(i), port, out]
                procs.append(subprocess.Popen(cmd, env=env, stdout=f))
        try:
            return [p.wait(timeout=WORKER_TIMEOUT) for p in procs]
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
                p.wait()
            print(f"   (attempt {attempt}: the workers did not finish in {WORKER_TIMEOUT} s, "
                  "stopped; a known rare hang of XLA's CPU collectives)")  # fmt: skip
    sys.exit("the workers hung twice")


def two_processes() -> None:
    print("2. two processes on 127.0.0.1, 2 CPU devices each:")
    with tempfile.TemporaryDirectory(prefix="backendnn-distributed-") as out:
        codes = _workers(out)
        for i in range(2):  # the workers' lines, without gloo's "[Gloo] Rank 0 is connected"
            with open(os.path.join(out, f"process{i}.log")) as f:
                print("".join(line for line in f if not line.startswith("[Gloo] ")), end="")
        if any(codes):
            sys.exit("a worker process failed")
        saved = bn.load(os.path.join(out, "distributed.safetensors"))
        print(f"   saved by process 0, reloaded here: weights checksum "
              f"{float(np.sum(saved.coefs_[0])):.10f}")  # fmt: skip
    X, y = data()
    single = bn.MLPClassifier(**PARAMS).fit(jax.numpy.asarray(X), y)
    print(f"   one process, one device: final loss {single.loss_:.6f}, weights checksum "
          f"{float(np.sum(bn.to_numpy(single.coefs_[0]))):.10f}")  # fmt: skip


# %%
# Part 3: out of core with Dask, in a child process that caps its memory.


def out_of_core_child(budget_mib: int) -> None:
    """Fit a generated dask array 4x ``budget_mib`` after capping this process's address
    space at what it uses now plus ``budget_mib`` (Linux)."""
    import resource

    import dask
    import dask.array as da

    dask.config.set(scheduler="threads", num_workers=1)
    n, d, chunk = budget_mib * 2**20 * 4 // (64 * 8), 64, 16_384  # float64 rows, 4x budget

    def rows(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        start = block_info[None]["array-location"][0][0]  # type: ignore[index]
        x = np.random.default_rng(start).standard_normal((block.shape[0], d))
        x[:, 0] += np.where(np.arange(start, start + block.shape[0]) % 2, 1.5, -1.5)
        return x  # each chunk made when read: nothing is stored

    X = da.zeros((n, d), chunks=(chunk, d)).map_blocks(rows, dtype="float64")
    y = np.arange(n) % 2
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", batch_size=4096, max_iter=1)
    bn.MLPClassifier(**kw).fit(X[: 4 * chunk], y[: 4 * chunk])  # warm up threads, imports
    with open("/proc/self/status") as f:
        used = int(next(line for line in f if line.startswith("VmSize")).split()[1]) * 1024
    limit = used + budget_mib * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    model = bn.MLPClassifier(**kw, random_state=0).fit(X, y)
    accuracy = model.score(X[:chunk], y[:chunk])
    print(f"3. a {X.nbytes / 2**20:.0f} MiB dask array fitted with {budget_mib} MiB to spare "
          f"({X.nbytes / 2**20 / budget_mib:.0f}x): accuracy {accuracy:.3f}")  # fmt: skip


def out_of_core() -> None:
    try:
        import dask.array  # noqa: F401
    except ImportError:
        print("3. skipped: pip install 'backendnn[dask]' for the out-of-core part")
        return
    if not sys.platform.startswith("linux"):
        print("3. skipped: capping the address space needs Linux")
        return
    env = dict(os.environ, MALLOC_ARENA_MAX="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, __file__, "--dask", "128"], env=env)
    if done.returncode != 0:
        sys.exit("the out-of-core child failed")


# %%
# The parts chosen by ``--parts``, or a child process's part (``--worker``, ``--dask``).
if __name__ == "__main__":
    if ARGS.worker:
        worker(int(ARGS.worker[0]), ARGS.worker[1], ARGS.worker[2])
    elif ARGS.dask:
        out_of_core_child(ARGS.dask)
    else:
        parts = {1: one_process, 2: two_processes, 3: out_of_core}
        for part in sorted(set(ARGS.parts)):
            parts[part]()
