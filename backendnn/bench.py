"""Benchmark: backendnn's training step beside scikit-learn, PyTorch and JAX.

Run it as a module::

    python -m backendnn.bench                                  # every installed engine
    python -m backendnn.bench --sizes 64,64,10 --batch 32
    python -m backendnn.bench --engines backendnn-numpy,sklearn,torch-eager --json out.json
    python -m backendnn.bench --memory          # + peak memory, one process per engine

What every engine does
----------------------
Each engine trains the same ReLU MLP (``--sizes``: dense layers with ReLU between
them and a linear output) with softmax cross-entropy and plain minibatch SGD (no
momentum, no weight decay, constant learning rate ``--lr``) on the same float32
data: batches of ``--batch`` samples drawn on the host from ``--seed`` (standard
normal features; labels balanced within each batch), moved to the engine's device
once before any clock starts. Engines whose initial weights can be set start from
backendnn's Glorot-uniform draw for that seed. The data set holds ``--steps`` batches, at
most 128 MiB of them (step engines cycle through them; a fit covers them all once, so
with big batches a fit is a few batches long and its fixed setup weighs more).

The peer engines (``torch-eager``, ``jax-grad``, ``sklearn``, ``numpy-matmuls``) are hand-written
competitors, not backendnn's math: they are the one place in the package outside
``_backend.py`` that imports array libraries by name, inside their own functions, so
that the module imports without any of them.

Engines
-------
``backendnn-<backend>``
    backendnn's own step, :func:`backendnn.train.make_step` with
    ``SGD(momentum=0.0, nesterov=False)`` (on JAX: the ``jax.jit``-compiled step), called
    over pre-sliced batches: forward, backward, update and nothing else.
``backendnn-jax-eager``
    the same step run op by op under ``jax.disable_jit()``.
``backendnn-<backend>-fit``
    a whole :class:`backendnn.MLPClassifier` ``fit`` (``solver="sgd"``, ``momentum=0``,
    ``shuffle=False``, ``max_iter=1``) over the same batches, its time divided by the
    number of batches: the bare loop plus everything the library adds.
``sklearn``
    scikit-learn's ``MLPClassifier`` with the same settings, one-epoch ``fit`` time
    divided by the number of batches.
``torch-eager``
    a plain PyTorch loop (``nn.Linear``, ``F.cross_entropy``, ``torch.optim.SGD``),
    on CUDA when available.
``jax-grad``
    a hand-written ``jax.value_and_grad`` + ``jax.jit`` step (learning rate a constant).
``numpy-matmuls``
    the floor of any NumPy engine: only the step's matrix products (forward a W, backward
    a^T dz and dz W^T), the same shapes and BLAS calls, and nothing else (no bias,
    activation, loss or update). ``x sklearn`` of this row bounds what a NumPy engine can
    reach against scikit-learn on the same BLAS.

Timing
------
Every engine is first prepared: data moved, ``--warmup`` untimed steps run (JAX compiles
here), or for the fit engines one untimed ``fit`` over the same batches as the timed
ones (JAX compiles the epoch for that shape here). Then ``--repeats`` rounds run the
engines interleaved, the order rotated each round, so that load from elsewhere on the
machine falls on all of them alike, with an untimed ``--cooldown`` pause before each
block (thread pools such as OpenBLAS's spin for a while after their last call and would
slow the engine that follows). In a round a step engine runs one block of ``--steps /
--repeats`` steps and a fit engine one whole ``fit`` (one epoch over every batch; its
time divided by the batches); device work is synchronised before the clock is read.
ms/step is the median over rounds.
``epoch_ms_per_step`` in the JSON output is the epoch alone as timed inside ``fit``.
The CPU ms/step column is the process's CPU time (all its threads) per step, median
over rounds: wall time far above CPU time / threads means the engine waited (for the
GPU, or for cores busy with other work; the header gives the load average).

FLOPs counted
-------------
Only matrix products, 2*m*n*k each, for batch m and a dense layer n_in -> n_out:
forward ``x @ W`` (2 m n_in n_out), backward ``dW = x^T dz`` (2 m n_in n_out) and
``dx = dz W^T`` (2 m n_in n_out) for every layer but the first, whose input gradient
no engine forms. Per step: 6 m sum(n_in n_out) - 2 m n_0 n_1. Element-wise work
(bias, ReLU, softmax, the update) is not counted. TFLOP/s = that / (s per step) / 1e12.

Matmul precision: ``--precision highest|tf32`` calls
:func:`backendnn.set_matmul_precision` before any engine runs (it sets JAX, PyTorch
and CuPy alike); the ``precision`` column says what each engine used. CPUs always
compute full float32.

Peak memory (``--memory``): each engine runs in its own subprocess so peaks do not mix.
Host: peak resident set size (Linux ``VmHWM``, reset after the engine's libraries are
imported; else ``resource.getrusage``) and its rise over the RSS at that point (the
data copies and everything the engine allocated).
GPU: the peak of bytes in use, from ``torch.cuda.max_memory_allocated`` (torch
engines), a CuPy memory hook on the memory pool (its callbacks slow CuPy's
allocations, so take timings from a run without ``--memory``), and JAX's
``memory_stats()["peak_bytes_in_use"]``.

Array libraries are imported inside the engine functions only: every peer is optional.
Several GPU libraries share one device in a run, so the bench sets
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (unless set) before JAX loads.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from . import _backend
from .network import Network
from .optim import SGD
from .train import make_step

_MAX_DATA_BYTES = 128 * 2**20  # distinct data per engine; step engines cycle through it
_STEPS_FLOP_BUDGET = 4e11  # --steps auto: counted FLOPs per engine (1e11 was noisy)
_GPU_KINDS = ("cuda", "gpu", "rocm")


# --------------------------------------------------------------------------- the problem


@dataclass
class Problem:
    """The network, the host data and the timing plan shared by every engine."""

    sizes: tuple[int, ...]
    batch: int
    steps: int
    warmup: int
    repeats: int
    lr: float
    seed: int
    X: Any  # host float32 (n_batches * batch, sizes[0])
    y: Any  # host int64 labels (n_batches * batch,)
    Y: Any  # host float32 one-hot (n_batches * batch, sizes[-1])

    @property
    def n_batches(self) -> int:
        return self.X.shape[0] // self.batch

    @property
    def steps_per_block(self) -> int:
        return max(1, self.steps // self.repeats)

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(self.sizes[1:-1])

    @property
    def network_name(self) -> str:
        return "-".join(str(s) for s in self.sizes)

    def network(self) -> Network:
        return Network.mlp(self.sizes[0], self.hidden, self.sizes[-1], "relu")

    def host_params(self) -> list[tuple[Any, Any]]:
        """backendnn's initial (W of shape (n_in, n_out), b) per dense layer, NumPy float32."""
        xp = _backend.namespace("numpy")
        params = self.network().init(self.seed, xp=xp, dtype=xp.float32)
        return [tuple(p) for p in params if p]


def step_flops(sizes: Sequence[int], batch: int) -> int:
    """Matrix-product FLOPs of one training step (see the module docstring)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return 6 * batch * sum(a * b for a, b in pairs) - 2 * batch * sizes[0] * sizes[1]


def auto_steps(sizes: Sequence[int], batch: int) -> int:
    """Timed steps when ``--steps`` is not given: about 4e11 FLOPs, 50 to 500 steps."""
    return int(min(500, max(50, round(_STEPS_FLOP_BUDGET / step_flops(sizes, batch)))))


def make_problem(
    sizes: Sequence[int],
    batch: int,
    steps: int,
    warmup: int = 5,
    repeats: int = 7,
    lr: float = 0.01,
    seed: int = 0,
) -> Problem:
    """Host data for ``steps`` distinct batches (fewer if they would pass 128 MiB)."""
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"--sizes needs at least two positive layer widths, got {sizes}")
    if batch < 1 or steps < 1 or repeats < 1 or warmup < 0:
        raise ValueError("batch, steps and repeats must be positive, warmup >= 0")
    xp = _backend.namespace("numpy")
    rng = _backend.host_rng(seed)
    d, k = sizes[0], sizes[-1]
    n_batches = max(1, min(steps, _MAX_DATA_BYTES // (4 * batch * d)))
    n = n_batches * batch
    X = rng.standard_normal((n, d), dtype="float32")
    # every batch holds each class about equally often (all k once batch >= k)
    labels = xp.tile(xp.arange(batch, dtype=xp.int64) % k, (n_batches, 1))
    y = xp.reshape(rng.permuted(labels, axis=1), (n,))
    Y = xp.astype(y[:, None] == xp.arange(k, dtype=xp.int64)[None, :], xp.float32)
    return Problem(tuple(int(s) for s in sizes), batch, steps, warmup, repeats, lr, seed, X, y, Y)


# --------------------------------------------------------------------------- runners


@dataclass
class Runner:
    """A prepared (warmed-up) engine: ``block()`` runs one timed block and returns its
    wall-clock and process CPU seconds per step, device work synchronised before the
    clock is read."""

    block: Callable[[], tuple[float, float]]
    precision: str
    device: str
    loss: Callable[[], float | None]
    epoch_times: list[float] | None = None  # fit engines: the epoch alone, s per step


def _step_runner(
    one: Callable[[int], Any],
    sync: Callable[[], Any],
    p: Problem,
    context: Callable[[], Any] = contextlib.nullcontext,
) -> Callable[[], tuple[float, float]]:
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


def _fit_runner(fit: Callable[[int], float | None], p: Problem, epochs: list[float]) -> Callable:
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


# --------------------------------------------------------------------------- engines


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


def _device_info(lib: str, dev: Any) -> tuple[str, str]:
    """(device label, precision label) for an engine of library ``lib`` on ``dev``."""
    text = str(dev).lower()
    on_gpu = lib == "cupy" or any(kind in text for kind in _GPU_KINDS)
    return ("gpu" if on_gpu else "cpu"), (_gpu_precision(lib) if on_gpu else "fp32")


def _flat(params: Any) -> list:
    return [a for layer in params for a in layer]


def _backendnn_step(p: Problem, name: str, eager: bool = False) -> Runner:
    xp = _backend.namespace(name)
    dev = _backend.default_device(name)
    net = p.network()
    params = net.init(p.seed, xp=xp, device=dev, dtype=xp.float32)
    sgd = SGD(momentum=0.0, nesterov=False)
    step = make_step(net, "softmax_cross_entropy", 0.0, sgd, xp)
    X = _backend.from_numpy(p.X, xp=xp, device=dev)
    Y = _backend.from_numpy(p.Y, xp=xp, device=dev)
    B = p.batch
    batches = [
        (X[i * B : (i + 1) * B, ...], Y[i * B : (i + 1) * B, ...]) for i in range(p.n_batches)
    ]
    carry = [params, sgd.init(params), None]
    lr = _backend.step_scalar(p.lr, X)  # as ``fit`` passes it: a device scalar on JAX

    def one(i: int) -> None:
        Xb, Yb = batches[i]
        carry[0], carry[1], carry[2] = step(carry[0], carry[1], Xb, Yb, lr)

    def sync() -> None:
        _backend.synchronize(_flat(carry[0]) + ([carry[2]] if carry[2] is not None else []))

    context = importlib.import_module("jax").disable_jit if eager else contextlib.nullcontext
    block = _step_runner(one, sync, p, context)
    label, precision = _device_info(name, dev)
    return Runner(block, precision, label, lambda: float(_backend.to_numpy(carry[2])) / B)


def _mlp_settings(p: Problem) -> dict[str, Any]:
    """MLPClassifier settings shared by scikit-learn's and backendnn's: plain SGD, same batches."""
    return dict(
        hidden_layer_sizes=p.hidden,
        activation="relu",
        solver="sgd",
        alpha=0.0,
        batch_size=p.batch,
        learning_rate="constant",
        learning_rate_init=p.lr,
        max_iter=1,
        shuffle=False,
        tol=0.0,
        momentum=0.0,
        nesterovs_momentum=False,
        random_state=p.seed,
    )


def _backendnn_fit(p: Problem, name: str) -> Runner:
    from .estimators import MLPClassifier

    xp = _backend.namespace(name)
    dev = _backend.default_device(name)
    X = _backend.from_numpy(p.X, xp=xp, device=dev)
    y = _backend.from_numpy(p.y, xp=xp, device=dev)
    last: list[Any] = [None]

    def fit(n_batches: int) -> float:
        n = n_batches * p.batch
        records: list[dict] = []
        model = MLPClassifier(**_mlp_settings(p))
        model.fit(X[:n, ...], y[:n], callbacks=[records.append])
        _backend.synchronize(list(model.coefs_))
        last[0] = model
        return records[-1]["seconds"]

    epochs: list[float] = []
    block = _fit_runner(fit, p, epochs)
    label, precision = _device_info(name, dev)
    return Runner(block, precision, label, lambda: float(last[0].loss_), epochs)


def _sklearn_fit(p: Problem) -> Runner:
    from sklearn.neural_network import MLPClassifier

    last: list[Any] = [None]

    def fit(n_batches: int) -> None:
        n = n_batches * p.batch
        last[0] = MLPClassifier(**_mlp_settings(p)).fit(p.X[:n], p.y[:n])
        if last[0].coefs_[0].dtype.name != "float32":  # pragma: no cover - old scikit-learn
            raise RuntimeError(f"scikit-learn trained in {last[0].coefs_[0].dtype}, not float32")

    block = _fit_runner(fit, p, [])
    return Runner(block, "fp32", "cpu", lambda: float(last[0].loss_))


def _torch_eager(p: Problem) -> Runner:
    import torch
    import torch.nn.functional as F

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    host = p.host_params()
    layers: list[Any] = []
    for i, (W, b) in enumerate(host):
        linear = torch.nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(linear)
        if i < len(host) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=0.0)
    X = torch.from_numpy(p.X).to(dev)
    y = torch.from_numpy(p.y).to(dev)
    B = p.batch
    batches = [(X[i * B : (i + 1) * B], y[i * B : (i + 1) * B]) for i in range(p.n_batches)]
    last: list[Any] = [None]

    def one(i: int) -> None:
        xb, yb = batches[i]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        last[0] = loss

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    block = _step_runner(one, sync, p)
    label, precision = _device_info("torch", dev)
    return Runner(block, precision, label, lambda: float(last[0].detach().cpu()))


def _jax_grad(p: Problem) -> Runner:
    import jax
    import jax.numpy as jnp

    dev = jax.devices()[0]
    params = [tuple(jax.device_put(a, dev) for a in layer) for layer in p.host_params()]
    lr = p.lr

    def loss_fn(params: list, x: Any, y: Any) -> Any:
        h = x
        for i, (W, b) in enumerate(params):
            h = h @ W + b
            if i < len(params) - 1:
                h = jax.nn.relu(h)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(h, axis=-1), axis=-1))

    @jax.jit
    def train_step(params: list, x: Any, y: Any) -> tuple[list, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return jax.tree.map(lambda w, g: w - lr * g, params, grads), loss

    X = jax.device_put(p.X, dev)
    Y = jax.device_put(p.Y, dev)
    B = p.batch
    batches = [(X[i * B : (i + 1) * B], Y[i * B : (i + 1) * B]) for i in range(p.n_batches)]
    carry: list[Any] = [params, None]

    def one(i: int) -> None:
        carry[0], carry[1] = train_step(carry[0], *batches[i])

    def sync() -> None:
        jax.block_until_ready(carry)

    block = _step_runner(one, sync, p)
    label, precision = _device_info("jax", dev)
    return Runner(block, precision, label, lambda: float(carry[1]))


def _numpy_matmuls(p: Problem) -> Runner:
    weights = [W for W, _ in p.host_params()]  # NumPy arrays, as the batches
    B = p.batch
    batches = [p.X[i * B : (i + 1) * B] for i in range(p.n_batches)]

    def one(i: int) -> None:
        acts = [batches[i]]
        for W in weights:  # forward: a_{l+1} = a_l W_l
            acts.append(acts[-1] @ W)
        dz = acts[-1]
        for j in range(len(weights) - 1, -1, -1):  # backward: dW = a^T dz, da = dz W^T
            acts[j].T @ dz
            if j:
                dz = dz @ weights[j].T

    block = _step_runner(one, lambda: None, p)
    return Runner(block, "fp32", "cpu", lambda: None)


@dataclass(frozen=True)
class Engine:
    name: str
    lib: str  # library whose device memory --memory reads
    prepare: Callable[[Problem], Runner]
    requires: str  # backend name, or a module to find


def _engines() -> dict[str, Engine]:
    table: dict[str, Engine] = {}
    for b in _backend.BACKENDS:
        table[f"backendnn-{b}"] = Engine(f"backendnn-{b}", b, partial(_backendnn_step, name=b), b)
    table["backendnn-jax-eager"] = Engine(
        "backendnn-jax-eager", "jax", lambda p: _backendnn_step(p, "jax", eager=True), "jax"
    )
    for b in _backend.BACKENDS:
        table[f"backendnn-{b}-fit"] = Engine(
            f"backendnn-{b}-fit", b, partial(_backendnn_fit, name=b), b
        )
    table["sklearn"] = Engine("sklearn", "numpy", _sklearn_fit, "module:sklearn")
    table["torch-eager"] = Engine("torch-eager", "torch", _torch_eager, "module:torch")
    table["jax-grad"] = Engine("jax-grad", "jax", _jax_grad, "module:jax")
    table["numpy-matmuls"] = Engine("numpy-matmuls", "numpy", _numpy_matmuls, "numpy")
    return table


ENGINES = _engines()


def unavailable(engine: Engine) -> str | None:
    """Why ``engine`` cannot run here, or None if it can."""
    if engine.requires.startswith("module:"):
        module = engine.requires.split(":", 1)[1]
        return None if importlib.util.find_spec(module) else f"{module} is not installed"
    try:
        _backend.namespace(engine.requires)
    except ImportError as exc:
        return str(exc).split(";")[0]
    return None


def _gpu_available() -> bool:
    """A CUDA device seen by torch or CuPy (JAX is not asked: that would claim GPU memory)."""
    if importlib.util.find_spec("torch"):
        if importlib.import_module("torch").cuda.is_available():
            return True
    return unavailable(ENGINES["backendnn-cupy"]) is None


def default_engines(gpu: bool) -> list[str]:
    """Every engine that can run here, a fit row for NumPy (and CuPy on a GPU), and on a CPU
    scikit-learn and the NumPy matmul floor."""
    names = [f"backendnn-{b}" for b in _backend.BACKENDS]
    names += ["backendnn-jax-eager", "backendnn-numpy-fit"]
    names += ["backendnn-cupy-fit"] if gpu else []
    names += ["torch-eager", "jax-grad"] + ([] if gpu else ["sklearn", "numpy-matmuls"])
    return [n for n in names if unavailable(ENGINES[n]) is None]


# --------------------------------------------------------------------------- memory


def _proc_status_bytes(field: str) -> int | None:
    """A ``kB`` field of Linux /proc/self/status (VmRSS, VmHWM) in bytes, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _rss_bytes() -> int | None:
    """Current resident set size, after resetting the peak where Linux allows it
    (``/proc/self/clear_refs``), so the peak read later covers the engine alone."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _proc_status_bytes("VmRSS")


def _peak_rss_bytes() -> int | None:
    """Peak resident set size: Linux's VmHWM, else ``getrusage`` (which on Linux also
    counts the parent's memory at fork time, hence VmHWM first)."""
    peak = _proc_status_bytes("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


_CUPY_PEAK: list[Any] = []  # the active CuPy memory hook of --memory


def _cupy_peak_hook() -> Any:
    """A CuPy memory hook tracking the peak of bytes in use from the memory pool (the
    pool keeps freed blocks, so its own ``total_bytes`` is a reservation, not a peak)."""
    cupy = importlib.import_module("cupy")

    class PeakHook(cupy.cuda.MemoryHook):  # type: ignore[name-defined]
        name = "backendnn_bench_peak"

        def __init__(self) -> None:
            self.used = self.peak = 0

        def malloc_postprocess(self, **kwargs: Any) -> None:
            self.used += kwargs["mem_size"]
            self.peak = max(self.peak, self.used)

        def free_postprocess(self, **kwargs: Any) -> None:
            self.used -= kwargs["mem_size"]

    return PeakHook()


def _reset_device_peak(lib: str) -> None:
    try:
        if lib == "torch":
            torch = importlib.import_module("torch")
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        elif lib == "cupy":
            hook = _cupy_peak_hook()
            hook.__enter__()
            _CUPY_PEAK[:] = [hook]
    except Exception:  # pragma: no cover - depends on the library version
        pass


def _device_peak_bytes(lib: str) -> int | None:
    """Peak device memory in use by library ``lib`` in this process (None on CPU or if
    unknown): ``torch.cuda.max_memory_allocated``, the CuPy hook's peak, JAX's
    ``peak_bytes_in_use``."""
    try:
        if lib == "torch":
            torch = importlib.import_module("torch")
            return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        if lib == "cupy":
            return _CUPY_PEAK[0].peak if _CUPY_PEAK else None
        if lib == "jax":
            stats = importlib.import_module("jax").devices()[0].memory_stats()
            return None if not stats else stats.get("peak_bytes_in_use")
    except Exception:  # pragma: no cover - depends on the library version
        return None
    return None


def _import_libraries(engine: Engine) -> None:
    """Import what the engine needs before the RSS baseline is read."""
    if engine.requires.startswith("module:"):
        importlib.import_module(engine.requires.split(":", 1)[1])
    else:
        _backend.default_device(engine.requires)
    if engine.name.endswith("-fit"):
        importlib.import_module("backendnn.estimators")
    if engine.name == "sklearn":
        importlib.import_module("sklearn.neural_network")


# --------------------------------------------------------------------------- running


def _median_ms(times: Sequence[float]) -> float:
    return statistics.median(times) * 1e3


def _row(name: str, p: Problem) -> dict[str, Any]:
    return {"engine": name, "network": p.network_name, "batch": p.batch}


def measure(
    names: Sequence[str], p: Problem, memory: bool = False, cooldown: float = 0.25
) -> list[dict[str, Any]]:
    """Prepare (warm up) every engine, then time them in ``p.repeats`` interleaved rounds,
    one block per engine per round, the order rotated each round: load from elsewhere
    on the machine then falls on every engine alike. ``cooldown`` seconds pass, untimed,
    before each block. One result row per engine (an ``error`` key for an engine that
    could not run). With ``memory``, run one engine per process (peaks are per process)."""
    rows = {name: _row(name, p) for name in names}
    runners: dict[str, Runner] = {}
    rss_before: int | None = None
    for name in names:
        engine = ENGINES[name]
        why = unavailable(engine)
        if why is not None:
            rows[name]["error"] = f"unavailable: {why}"
            continue
        try:
            if memory:
                _import_libraries(engine)
                rss_before = _rss_bytes()
                _reset_device_peak(engine.lib)
            runners[name] = engine.prepare(p)
        except Exception as exc:  # one failing engine must not stop the others
            rows[name]["error"] = f"{type(exc).__name__}: {exc}"
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    order = list(runners)
    for r in range(p.repeats if order else 0):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            if name not in runners:
                continue
            try:
                # let the previous engine's worker threads stop spinning (OpenBLAS's spin
                # for ~0.1 s after a call): they would otherwise steal this block's cores
                time.sleep(cooldown)
                wall, used = runners[name].block()
                times[name].append(wall)
                cpu[name].append(used)
            except Exception as exc:
                rows[name]["error"] = f"{type(exc).__name__}: {exc}"
                del runners[name]
    flops = step_flops(p.sizes, p.batch)
    for name, run in runners.items():
        ms = _median_ms(times[name])
        fit = name.endswith("-fit") or name == "sklearn"
        try:
            loss = run.loss()
        except Exception:  # pragma: no cover - a sanity figure only
            loss = None
        rows[name].update(
            steps=p.n_batches * len(times[name]) if fit else p.steps_per_block * len(times[name]),
            ms_per_step=ms,
            ms_per_step_rounds=[t * 1e3 for t in times[name]],
            cpu_ms_per_step=_median_ms(cpu[name]),
            samples_per_s=p.batch / (ms * 1e-3),
            tflops=flops / (ms * 1e-3) / 1e12,
            precision=run.precision,
            device=run.device,
            loss=loss,
        )
        if run.epoch_times:
            rows[name]["epoch_ms_per_step"] = _median_ms(run.epoch_times)
        if memory:
            lib = ENGINES[name].lib
            peak = _peak_rss_bytes()
            rows[name]["peak_rss_mb"] = None if peak is None else peak / 2**20
            if peak is not None and rss_before is not None:
                rows[name]["rss_rise_mb"] = max(0, peak - rss_before) / 2**20
            dev_peak = _device_peak_bytes(lib) if run.device == "gpu" else None
            rows[name]["device_peak_mb"] = None if dev_peak is None else dev_peak / 2**20
    return [rows[name] for name in names]


def _run_in_subprocess(name: str, args: argparse.Namespace, p: Problem) -> dict[str, Any]:
    """Run one engine in a fresh interpreter (for --memory), return its row."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "row.json")
        cmd = [sys.executable, "-m", "backendnn.bench", "--sizes", ",".join(map(str, p.sizes))]
        cmd += ["--batch", str(p.batch), "--steps", str(p.steps), "--warmup", str(p.warmup)]
        cmd += ["--repeats", str(p.repeats), "--lr", repr(p.lr), "--seed", str(p.seed)]
        cmd += ["--cooldown", repr(args.cooldown)]
        cmd += ["--engines", name, "--memory", "--json", out, "--child"]
        if args.precision:
            cmd += ["--precision", args.precision]
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not os.path.exists(out):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            row = _row(name, p)
            row["error"] = f"subprocess exited {proc.returncode}: {' | '.join(tail)}"
            return row
        with open(out) as f:
            return json.load(f)["results"][0]


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    versions = {}
    for mod in ("numpy", "array_api_compat", "array_api_strict", "jax", "torch", "cupy", "sklearn"):
        if mod in sys.modules:
            versions[mod] = getattr(sys.modules[mod], "__version__", "?")
    info["versions"] = versions
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
    if "gpu" not in info and "cupy" in sys.modules:
        try:
            props = sys.modules["cupy"].cuda.runtime.getDeviceProperties(0)
            info["gpu"] = props["name"].decode()
        except Exception:  # pragma: no cover - depends on the machine
            pass
    if "gpu" not in info and "jax" in sys.modules:
        dev = sys.modules["jax"].devices()[0]
        if dev.platform != "cpu":
            info["gpu"] = dev.device_kind
    return info


def _derived(rows: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Ratios of interest: fit overhead, JAX against hand-written JAX and against eager,
    NumPy against the NumPy ceiling."""
    ms = {name: r["ms_per_step"] for name, r in rows.items() if "ms_per_step" in r}
    out: dict[str, float] = {}
    for b in _backend.BACKENDS:
        bare, fit = ms.get(f"backendnn-{b}"), ms.get(f"backendnn-{b}-fit")
        if bare and fit:
            out[f"backendnn-{b}-fit / backendnn-{b} (fit vs bare step loop)"] = fit / bare
            epoch = rows[f"backendnn-{b}-fit"].get("epoch_ms_per_step")
            if epoch:
                out[f"backendnn-{b}-fit epoch only / backendnn-{b}"] = epoch / bare
    if ms.get("backendnn-jax") and ms.get("jax-grad"):
        out["backendnn-jax / jax-grad (compiled step vs hand-written)"] = (
            ms["backendnn-jax"] / ms["jax-grad"]
        )
    if ms.get("backendnn-jax") and ms.get("backendnn-jax-eager"):
        out["backendnn-jax-eager / backendnn-jax (compiled speed-up)"] = (
            ms["backendnn-jax-eager"] / ms["backendnn-jax"]
        )
    if ms.get("backendnn-numpy") and ms.get("numpy-matmuls"):
        out["backendnn-numpy / numpy-matmuls (step against its matrix products alone)"] = (
            ms["backendnn-numpy"] / ms["numpy-matmuls"]
        )
    return out


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(doc: dict[str, Any]) -> str:
    """The results of :func:`main` as a plain-text table."""
    rows, baseline = doc["results"], doc["config"]["baseline"]
    memory = any("peak_rss_mb" in r for r in rows)
    head = [
        "engine",
        "network",
        "batch",
        "ms/step",
        "samples/s",
        "TFLOP/s",
        f"x {baseline}",
        "precision",
        "device",
        "CPU ms/step",
    ]
    if memory:
        head += ["peak RSS MB", "RSS rise MB", "device MB"]
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([r["engine"], r["network"], str(r["batch"]), r["error"]])
            continue
        line = [
            r["engine"],
            r["network"],
            str(r["batch"]),
            f"{r['ms_per_step']:.3f}",
            f"{r['samples_per_s']:,.0f}",
            f"{r['tflops']:.4f}" if r["tflops"] < 1 else f"{r['tflops']:.2f}",
            _fmt(r.get("ratio"), ".2f"),
            r["precision"],
            r["device"],
            _fmt(r.get("cpu_ms_per_step"), ".3f"),
        ]
        if memory:
            line += [
                _fmt(r.get("peak_rss_mb"), ".0f"),
                _fmt(r.get("rss_rise_mb"), ".0f"),
                _fmt(r.get("device_peak_mb"), ".0f"),
            ]
        lines.append(line)
    widths = [
        max([len(head[i])] + [len(ln[i]) for ln in lines if len(ln) == len(head)])
        for i in range(len(head))
    ]
    text = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    text.append("  ".join("-" * w for w in widths))
    for ln in lines:
        if len(ln) != len(head):
            text.append("  ".join(c.ljust(w) for c, w in zip(ln[:3], widths)) + "  " + ln[3])
        else:
            text.append("  ".join(c.ljust(w) for c, w in zip(ln, widths)))
    return "\n".join(text)


def _describe(doc: dict[str, Any]) -> str:
    c, m = doc["config"], doc["machine"]
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    threads = f", torch threads {m['torch_threads']}" if "torch_threads" in m else ""
    load = ""
    if m.get("load_average_before") and m.get("load_average"):
        before, after = m["load_average_before"][0], m["load_average"][0]
        load = f"; load average {before:.2f} before, {after:.2f} after"
    versions = " ".join(f"{k} {v}" for k, v in m["versions"].items())
    return (
        f"backendnn.bench: {c['network']} batch {c['batch']}, {c['repeats']} interleaved "
        f"rounds (median), each {c['steps_per_block']} steps per step engine "
        f"({c['warmup']} warm-up steps first) or one 1-epoch fit of {c['n_batches']} batches "
        "(one untimed first); "
        f"lr {c['lr']}, seed {c['seed']}; matmul precision "
        f"{c['precision'] or 'library defaults'}\n"
        f"machine: {m['processor']}, {m['cpu_count']} CPUs{gpu}{threads}{load}; python "
        f"{m['python']}; {versions}\n"
        f"counted {c['flops_per_step']:,} FLOP/step (matmuls only: 2mnk forward, dW, dx "
        f"except layer 1); x {c['baseline']} = baseline ms / engine ms"
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m backendnn.bench",
        description="Train the same ReLU MLP with softmax cross-entropy and plain SGD on "
        "backendnn's backends, scikit-learn, PyTorch and JAX; print ms/step, samples/s, "
        "TFLOP/s and the ratio to a baseline.",
        epilog="Engines: " + ", ".join(ENGINES),
    )
    parser.add_argument("--sizes", default="784,512,512,10", help="layer widths, input first")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per step engine, over all rounds (default: ~4e11 FLOPs, 50-500)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (default 5)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=7,
        help="interleaved timing rounds (default 7); fit engines fit once per round",
    )
    parser.add_argument(
        "--cooldown",
        type=float,
        default=0.25,
        help="untimed pause in seconds before each block, so that the thread pools of the "
        "engine before have gone idle (default 0.25)",
    )
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", default=None, help="comma-separated (default: all here)")
    parser.add_argument(
        "--baseline",
        default=None,
        help="engine the ratio column compares to (default: sklearn on CPU, torch-eager on GPU)",
    )
    parser.add_argument(
        "--precision",
        choices=("highest", "tf32"),
        default=None,
        help="float32 matmul precision for every engine, through "
        "backendnn.set_matmul_precision (default: each library's own)",
    )
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument(
        "--memory", action="store_true", help="peak memory; each engine in a subprocess"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.sizes = tuple(int(s) for s in args.sizes.split(","))
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if args.engines is not None:
        args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        unknown = [e for e in args.engines if e not in ENGINES]
        if unknown:
            parser.error(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
        if len(set(args.engines)) != len(args.engines):
            parser.error(f"an engine is named twice in --engines {','.join(args.engines)}")
    if args.baseline is not None and args.baseline not in ENGINES:
        parser.error(f"unknown baseline {args.baseline!r}; choose from {', '.join(ENGINES)}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (command-line arguments ``argv``); print the table, return the
    JSON document ``{"config", "machine", "results", "derived"}``."""
    args = _parse(argv)
    if "jax" not in sys.modules:
        # several GPU libraries share the device here: JAX must not claim 75 % of it upfront
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.precision:
        _backend.set_matmul_precision(args.precision)
    steps = args.steps if args.steps is not None else auto_steps(args.sizes, args.batch)
    try:
        p = make_problem(
            args.sizes, args.batch, steps, args.warmup, args.repeats, args.lr, args.seed
        )
    except ValueError as exc:
        raise SystemExit(f"backendnn.bench: {exc}") from exc
    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    gpu = False if args.child else _gpu_available()
    names = args.engines if args.engines is not None else default_engines(gpu)
    baseline = args.baseline or ("torch-eager" if gpu else "sklearn")
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
    machine = _machine()
    machine["load_average_before"] = load_before
    doc: dict[str, Any] = {
        "config": {
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
            "flops_per_step": step_flops(p.sizes, p.batch),
            "memory": args.memory,
            "cooldown": args.cooldown,
            "command": "python -m backendnn.bench "
            + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        "machine": machine,
        "results": results,
        "derived": _derived(by_name),
    }
    if not args.quiet and not args.child:
        print(_describe(doc))
        print(format_table(doc))
        for key, value in doc["derived"].items():
            print(f"{key}: {value:.2f}x")
        if base is None:
            print(f"(no ratio column: baseline {baseline} did not run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2, default=str)
    return doc


if __name__ == "__main__":
    main()
