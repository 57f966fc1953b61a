"""What a run reports besides its rows: the machine it ran on (:func:`machine`), the
ratios of interest between engines (:func:`derived`), and the printed header
(:func:`describe`) and table (:func:`format_table`).

Imports: backendnn's ``_backend`` (for ``BACKENDS``) and the standard library. Library
versions and devices are read from the modules already in ``sys.modules``: reporting
imports nothing new.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from .. import _backend


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
    """Ratios of interest: fit overhead, JAX against hand-written JAX and against eager,
    NumPy against the NumPy ceiling, each backend against PyTorch eager, and what the
    native convolution buys (im2col step against the native one)."""
    ms = {name: r["ms_per_step"] for name, r in rows.items() if "ms_per_step" in r}
    out: dict[str, float] = {}
    for b in _backend.BACKENDS:
        bare, fit = ms.get(f"backendnn-{b}"), ms.get(f"backendnn-{b}-fit")
        if bare and fit:
            out[f"backendnn-{b}-fit / backendnn-{b} (fit vs bare step loop)"] = fit / bare
            epoch = rows[f"backendnn-{b}-fit"].get("epoch_ms_per_step")
            if epoch:
                out[f"backendnn-{b}-fit epoch only / backendnn-{b}"] = epoch / bare
        dask = rows.get(f"backendnn-{b}-dask-fit", {})
        if fit and dask.get("ms_per_step"):
            out[f"backendnn-{b}-fit / backendnn-{b}-dask-fit (dask throughput, in-memory = 1)"] = (
                fit / dask["ms_per_step"]
            )
            epochs = rows[f"backendnn-{b}-fit"].get("epoch_ms_per_step")
            if epochs and dask.get("epoch_ms_per_step"):
                out[f"backendnn-{b}-dask-fit epoch only (throughput, in-memory = 1)"] = (
                    epochs / dask["epoch_ms_per_step"]
                )
    if ms.get("backendnn-jax") and ms.get("jax-grad"):
        out["backendnn-jax / jax-grad (compiled step vs hand-written)"] = (
            ms["backendnn-jax"] / ms["jax-grad"]
        )
    if ms.get("backendnn-jax") and ms.get("backendnn-jax-eager"):
        out["backendnn-jax-eager / backendnn-jax (compiled speed-up)"] = (
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
                out[f"backendnn-{b} / torch-eager (time; > 1 is slower)"] = (
                    ms[f"backendnn-{b}"] / ms["torch-eager"]
                )
    if ms.get("backendnn-numpy") and ms.get("numpy-matmuls"):
        out["backendnn-numpy / numpy-matmuls (step against its matrix products alone)"] = (
            ms["backendnn-numpy"] / ms["numpy-matmuls"]
        )
    return out


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


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


def describe(doc: dict[str, Any]) -> str:
    """The three header lines printed above the table: the run, the machine, the count."""
    c, m = doc["config"], doc["machine"]
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    threads = f", torch threads {m['torch_threads']}" if "torch_threads" in m else ""
    load = ""
    if m.get("load_average_before") and m.get("load_average"):
        before, after = m["load_average_before"][0], m["load_average"][0]
        load = f"; load average {before:.2f} before, {after:.2f} after"
    versions = " ".join(f"{k} {v}" for k, v in m["versions"].items())
    counted = "matmuls only: 2mnk forward, dW, dx except layer 1"
    if c.get("model") == "lenet":
        counted = "convolutions 2*N*Cout*Hout*Wout*Cin*k*k and the dense matmul: forward, dW, dx "
        counted += "except layer 1"
    if c.get("threads"):
        threads += f", --threads {c['threads']}"
    return (
        f"backendnn.bench: {c['network']} batch {c['batch']}, {c['repeats']} interleaved "
        f"rounds (median), each {c['steps_per_block']} steps per step engine "
        f"({c['warmup']} warm-up steps first) or one 1-epoch fit of {c['n_batches']} batches "
        "(one untimed first); "
        f"lr {c['lr']}, seed {c['seed']}; matmul precision "
        f"{c['precision'] or 'library defaults'}\n"
        f"machine: {m['processor']}, {m['cpu_count']} CPUs{gpu}{threads}{load}; python "
        f"{m['python']}; {versions}\n"
        f"counted {c['flops_per_step']:,} FLOP/step ({counted}); "
        f"x {c['baseline']} = baseline ms / engine ms"
    )
