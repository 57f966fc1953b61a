"""What a run reports besides its rows: the machine it ran on (:func:`machine`), the
ratios of interest between engines (:func:`derived`), a warning when thread pools
oversubscribe the cores (:func:`oversubscription`), and the printed header
(:func:`describe`) and table (:func:`format_table`).

Every ratio reads one way, as a speed-up: reference ms / engine ms, > 1 when the engine
is faster (the table's ``x BASELINE`` column, and each derived ``A / B``: B's speed-up
over A), printed to three significant figures (:func:`significant`).

Imports: backendnn's ``_backend`` (for ``BACKENDS``), :mod:`.runner` and the standard
library. Library versions and devices are read from the modules already in
``sys.modules`` (thread pools through ``threadpoolctl``): reporting loads no array library.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Mapping
from typing import Any

from .. import _backend
from .runner import available_cores, thread_pools

#: a load average (1 minute) of at least this share of the available cores counts as busy
BUSY_LOAD = 0.5


def machine() -> dict[str, Any]:
    """Python, platform, CPUs, load average, versions of the libraries loaded, and the GPU."""
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
    info["cores_available"] = available_cores()
    info["thread_pools"] = thread_pools()
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


def derived(rows: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Speed-ups of interest, each ``"A / B (...)"`` = A's ms / B's ms (B's speed-up over A):
    the fit against the bare step loop, dask against the in-memory fit, the compiled JAX step
    against hand-written ``jax.grad`` and against eager, the native convolution against
    im2col, each backend against PyTorch eager, NumPy against its matrix products alone."""
    ms = {name: r["ms_per_step"] for name, r in rows.items() if "ms_per_step" in r}
    out: dict[str, float] = {}
    for b in _backend.BACKENDS:
        bare, fit = ms.get(f"backendnn-{b}"), ms.get(f"backendnn-{b}-fit")
        if bare and fit:
            out[f"backendnn-{b} / backendnn-{b}-fit (the whole fit against the bare step loop)"] = (
                bare / fit
            )
            epoch = rows[f"backendnn-{b}-fit"].get("epoch_ms_per_step")
            if epoch:
                out[f"backendnn-{b} / backendnn-{b}-fit epoch only"] = bare / epoch
        dask = rows.get(f"backendnn-{b}-dask-fit", {})
        if fit and dask.get("ms_per_step"):
            out[f"backendnn-{b}-fit / backendnn-{b}-dask-fit (dask throughput, in-memory = 1)"] = (
                fit / dask["ms_per_step"]
            )
            epochs = rows[f"backendnn-{b}-fit"].get("epoch_ms_per_step")
            if epochs and dask.get("epoch_ms_per_step"):
                out[f"backendnn-{b}-fit / backendnn-{b}-dask-fit epochs only"] = (
                    epochs / dask["epoch_ms_per_step"]
                )
    if ms.get("backendnn-jax") and ms.get("jax-grad"):
        out["jax-grad / backendnn-jax (compiled step against hand-written jax.grad)"] = (
            ms["jax-grad"] / ms["backendnn-jax"]
        )
    if ms.get("backendnn-jax") and ms.get("backendnn-jax-eager"):
        out["backendnn-jax-eager / backendnn-jax (what compiling buys)"] = (
            ms["backendnn-jax-eager"] / ms["backendnn-jax"]
        )
    for b in ("jax", "torch"):
        native, im2col = ms.get(f"backendnn-{b}"), ms.get(f"backendnn-{b}-im2col")
        if native and im2col:
            out[f"backendnn-{b}-im2col / backendnn-{b} (what the native convolution buys)"] = (
                im2col / native
            )
    if ms.get("torch-eager"):
        for b in _backend.BACKENDS:
            if ms.get(f"backendnn-{b}"):
                out[f"torch-eager / backendnn-{b}"] = ms["torch-eager"] / ms[f"backendnn-{b}"]
    # the residual CNN's batch norm and dropout: the step with them (``X``) against the step
    # without them (``X-plain``) in the same run; their share of the step is 1 - 1 / ratio
    for name in ("torch-eager", "backendnn-torch", "backendnn-numpy", "backendnn-jax", "jax-grad"):
        full, plain = ms.get(name), ms.get(f"{name}-plain")
        if full and plain:
            out[
                f"{name} / {name}-plain (batch norm + dropout; their share of the step = 1 - 1/x)"
            ] = full / plain
    if ms.get("torch-eager-plain") and ms.get("backendnn-torch-plain"):
        out["torch-eager-plain / backendnn-torch-plain (the step without batch norm, dropout)"] = (
            ms["torch-eager-plain"] / ms["backendnn-torch-plain"]
        )
    if ms.get("backendnn-numpy") and ms.get("numpy-matmuls"):
        out["numpy-matmuls / backendnn-numpy (the step against its matrix products alone)"] = (
            ms["numpy-matmuls"] / ms["backendnn-numpy"]
        )
    return out


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, without an exponent: 0.00120, 2.50, 118
    (a fixed number of decimals printed a ratio of 0.0012 as 0.00)."""
    if not math.isfinite(value) or value <= 0:
        return format(value, "g")
    decimals = max(0, digits - 1 - math.floor(math.log10(value)))
    return f"{value:.{decimals}f}"


def oversubscription(pools: Mapping[str, int], cores: int, load: float | None) -> str | None:
    """A warning when multi-threaded pools (``pools``: threads by library) compete for the
    ``cores`` this process may use: a pool with more threads than cores, or a busy machine
    (1-minute ``load`` average of at least ``BUSY_LOAD * cores``); None otherwise, or when no
    pool has more than one thread (``--threads 1`` is all that could be suggested)."""
    threaded = {name: n for name, n in pools.items() if n > 1}
    if not threaded:
        return None
    reasons = [f"{name} {n} threads on {cores} cores" for name, n in threaded.items() if n > cores]
    if load is not None and load >= BUSY_LOAD * cores:
        reasons.append(f"load average {load:.1f} on {cores} cores")
    if not reasons:
        return None
    return (
        f"warning: {'; '.join(reasons)}: threads wait for cores and the timings measure the "
        "contention (torch-eager took 26 ms a step on a busy 2-core machine, 0.22 ms with "
        "--threads 1); rerun with --threads 1"
    )


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _sig(value: float | None) -> str:
    return "-" if value is None else significant(value)


def format_table(doc: dict[str, Any]) -> str:
    """The results of :func:`backendnn.bench.main` as a plain-text table."""
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
            significant(r["ms_per_step"]),
            f"{r['samples_per_s']:,.0f}",
            significant(r["tflops"]),
            _sig(r.get("ratio")),
            r["precision"],
            r["device"],
            _sig(r.get("cpu_ms_per_step")),
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


def describe(doc: dict[str, Any]) -> str:
    """The header lines printed above the table: the run, the machine, the count and how
    ratios read, and a warning when thread pools oversubscribe the cores."""
    c, m = doc["config"], doc["machine"]
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    threads = f", torch threads {m['torch_threads']}" if "torch_threads" in m else ""
    load = ""
    if m.get("load_average_before") and m.get("load_average"):
        before, after = m["load_average_before"][0], m["load_average"][0]
        load = f"; load average {before:.2f} before, {after:.2f} after"
    versions = " ".join(f"{k} {v}" for k, v in m["versions"].items())
    counted = "matmuls only: 2mnk forward, dW, dx except layer 1"
    if c.get("model") in ("lenet", "resnet", "resnet-plain"):
        counted = "convolutions 2*N*Cout*Hout*Wout*Cin*k*k and the dense matmul: forward, dW, dx "
        counted += "except layer 1"
        if c.get("model") == "resnet":
            counted += "; batch norm and dropout not counted (nor in the -plain rows' steps)"
    if c.get("threads"):
        threads += f", --threads {c['threads']}"
    load_now = (m.get("load_average_before") or m.get("load_average") or [None])[0]
    warning = oversubscription(m.get("thread_pools", {}), m.get("cores_available", 1), load_now)
    return (
        f"backendnn.bench: {c['network']} batch {c['batch']}, {c['repeats']} interleaved "
        f"rounds (median), each {c['steps_per_block']} steps per step engine "
        f"({c['warmup']} warm-up steps first) or one 1-epoch fit of {c['n_batches']} batches "
        "(one untimed first); "
        f"lr {c['lr']}, seed {c['seed']}; matmul precision "
        f"{c['precision'] or 'library defaults'}\n"
        f"machine: {m['processor']}, {m['cpu_count']} CPUs{gpu}{threads}{load}; python "
        f"{m['python']}; {versions}\n"
        f"counted {c['flops_per_step']:,} FLOP/step ({counted})\n"
        f"every ratio is a speed-up, > 1 = faster than the reference: x {c['baseline']} = "
        f"{c['baseline']} ms / engine ms; A / B = A's ms / B's ms"
        + (f"\n{warning}" if warning else "")
    )
