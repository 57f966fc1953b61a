"""Peak memory for ``--memory``: the process's resident set size (current, and its peak
since the last reset) and the peak of device bytes in use by torch, CuPy or JAX.

Imports: the standard library only. The device libraries are looked up through
``importlib`` when asked about them, so this module imports no array library.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


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


def rss_bytes() -> int | None:
    """Current resident set size, after resetting the peak where Linux allows it
    (``/proc/self/clear_refs``), so the peak read later covers the engine alone."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _proc_status_bytes("VmRSS")


def peak_rss_bytes() -> int | None:
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


def reset_device_peak(lib: str) -> None:
    """Count library ``lib``'s device peak from now on (torch, CuPy; JAX's counts from the
    start of the process)."""
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


def device_peak_bytes(lib: str) -> int | None:
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
