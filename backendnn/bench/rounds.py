"""Timing every engine: :func:`measure` prepares the engines, times them in interleaved
rounds and returns one result row per engine (``blank_row`` starts one).

Imports: :mod:`.problem`, :mod:`.runner`, :mod:`.engines` and :mod:`.memory`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from .engines import ENGINES, import_libraries, unavailable
from .memory import device_peak_bytes, peak_rss_bytes, reset_device_peak, rss_bytes
from .problem import Problem
from .runner import Runner


def _median_ms(times: Sequence[float]) -> float:
    return statistics.median(times) * 1e3


def blank_row(name: str, p: Problem) -> dict[str, Any]:
    """The first keys of engine ``name``'s result row, before anything is measured."""
    return {"engine": name, "network": p.network_name, "batch": p.batch}


def measure(
    names: Sequence[str], p: Problem, memory: bool = False, cooldown: float = 0.25
) -> list[dict[str, Any]]:
    """Prepare (warm up) every engine, then time them in ``p.repeats`` interleaved rounds,
    one block per engine per round, the order rotated each round: load from elsewhere
    on the machine then falls on every engine alike. ``cooldown`` seconds pass, untimed,
    before each block. One result row per engine (an ``error`` key for an engine that
    could not run). With ``memory``, run one engine per process (peaks are per process)."""
    rows = {name: blank_row(name, p) for name in names}
    runners: dict[str, Runner] = {}
    rss_before: int | None = None
    for name in names:
        engine = ENGINES[name]
        why = unavailable(engine)
        if why is None and p.model not in engine.models:
            why = f"trains --model {'/'.join(engine.models)} only"
        if why is not None:
            rows[name]["error"] = f"unavailable: {why}"
            continue
        try:
            if memory:
                import_libraries(engine)
                rss_before = rss_bytes()
                reset_device_peak(engine.lib)
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
    flops = p.flops
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
            peak = peak_rss_bytes()
            rows[name]["peak_rss_mb"] = None if peak is None else peak / 2**20
            if peak is not None and rss_before is not None:
                rows[name]["rss_rise_mb"] = max(0, peak - rss_before) / 2**20
            dev_peak = device_peak_bytes(lib) if run.device == "gpu" else None
            rows[name]["device_peak_mb"] = None if dev_peak is None else dev_peak / 2**20
    return [rows[name] for name in names]
