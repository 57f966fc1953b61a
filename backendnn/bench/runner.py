"""How one engine is timed: :class:`Runner` (a prepared, warmed-up engine), the block
timers every engine builds its runner from (:func:`step_runner` for engines that run
steps, :func:`fit_runner` for those that run a whole ``fit``), the device and
precision labels of a result row (:func:`device_info`), ``--threads``
(:func:`limit_threads`), and the thread pools and cores a run has (:func:`thread_pools`,
:func:`available_cores`).

Imports: :mod:`.problem` only. The precision labels look up torch and JAX through
``importlib`` when asked about them, so this module imports no array library.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .problem import Problem

_GPU_KINDS = ("cuda", "gpu", "rocm")

BlockTimer = Callable[[], tuple[float, float]]


@dataclass
class Runner:
    """A prepared (warmed-up) engine: ``block()`` runs one timed block and returns its
    wall-clock and process CPU seconds per step, device work synchronised before the
    clock is read."""

    block: BlockTimer
    precision: str
    device: str
    loss: Callable[[], float | None]
    epoch_times: list[float] | None = None  # fit engines: the epoch alone, s per step


def step_runner(
    one: Callable[[int], Any],
    sync: Callable[[], Any],
    p: Problem,
    context: Callable[[], Any] = contextlib.nullcontext,
) -> BlockTimer:
    """Warm up ``one(batch_index)`` for ``p.warmup`` steps, then return the block timer."""
    nb, per_block = p.n_batches, p.steps_per_block
    counter = [0]

    def run(n: int) -> None:
        for _ in range(n):
            one(counter[0] % nb)
            counter[0] += 1

    with context():
        run(p.warmup)
        sync()

    def block() -> tuple[float, float]:
        with context():
            c0, t0 = time.process_time(), time.perf_counter()
            run(per_block)
            sync()
            return (time.perf_counter() - t0) / per_block, (time.process_time() - c0) / per_block

    return block


def fit_runner(fit: Callable[[int], float | None], p: Problem, epochs: list[float]) -> BlockTimer:
    """One untimed warm-up ``fit``, then the block timer: a whole one-epoch ``fit`` over
    every batch, its seconds divided by the batches. ``fit(n_batches)`` trains and
    synchronises, returning its epoch's seconds or None. The warm-up fit sees the same
    batches as the timed ones: JAX compiles its epoch for each data shape, and a shorter
    warm-up left that compilation in the first timed round."""
    nb = p.n_batches
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=1 reached: convergence warnings
        fit(nb)

    def block() -> tuple[float, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c0, t0 = time.process_time(), time.perf_counter()
            epoch = fit(nb)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        if epoch is not None:
            epochs.append(epoch / nb)
        return seconds / nb, cpu / nb

    return block


def _gpu_precision(lib: str) -> str:
    """The float32 matmul precision a GPU engine of library ``lib`` uses now."""
    if lib == "torch":
        torch = importlib.import_module("torch")
        return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "fp32"
    if lib == "jax":
        value = importlib.import_module("jax").config.jax_default_matmul_precision
        if value in (None, "default"):
            return "tf32 (jax default)"
        if value in ("highest", "float32"):
            return "fp32"
        return "tf32" if value in ("high", "tensorfloat32") else str(value)
    if lib == "cupy":
        return "tf32" if os.environ.get("CUPY_TF32", "0") == "1" else "fp32"
    return "fp32"


def device_info(lib: str, dev: Any) -> tuple[str, str]:
    """(device label, precision label) for an engine of library ``lib`` on ``dev``."""
    text = str(dev).lower()
    on_gpu = lib == "cupy" or any(kind in text for kind in _GPU_KINDS)
    return ("gpu" if on_gpu else "cpu"), (_gpu_precision(lib) if on_gpu else "fp32")


def available_cores() -> int:
    """The cores this process may run on: its affinity mask where the OS has one (a
    container's or ``taskset``'s share), else every CPU."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def thread_pools() -> dict[str, int]:
    """Threads by pool loaded now: the BLAS and OpenMP pools ``threadpoolctl`` finds (if
    installed; the most threads per library) and torch's intra-op pool (if loaded)."""
    pools: dict[str, int] = {}
    with contextlib.suppress(ImportError):
        for pool in importlib.import_module("threadpoolctl").threadpool_info():
            name = pool["internal_api"]
            pools[name] = max(pools.get(name, 0), pool["num_threads"])
    if "torch" in sys.modules:
        pools["torch"] = sys.modules["torch"].get_num_threads()
    return pools


def limit_threads(n: int) -> None:
    """``--threads n``: at most ``n`` threads per library from now on. The BLAS and OpenMP
    pools already loaded through ``threadpoolctl`` (if installed), torch's intra-op
    threads (``torch.set_num_threads`` if loaded, else ``OMP_NUM_THREADS``, which it reads
    on import), the environment variables of the BLAS libraries not yet loaded, and with
    ``n == 1`` XLA's Eigen pool (``--xla_cpu_multi_thread_eigen=false`` in ``XLA_FLAGS``,
    if JAX is not yet loaded; XLA has no flag for another count)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    if n == 1 and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    with contextlib.suppress(ImportError):
        importlib.import_module("threadpoolctl").threadpool_limits(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
