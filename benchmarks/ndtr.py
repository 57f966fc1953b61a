"""Portable vs native normal CDF (ndtr), alone and inside exact GELU, side by side.

    python benchmarks/ndtr.py [--repeats 7] [--engines numpy,jax-eager,jax-jit,torch]
                              [--torch-threads N]

What decides ``backendnn._backend._NDTR_FAST_PATH`` (benchmarks/NOTES.md, "Native ndtr
fast path"). Two tables, printed as Markdown:

Speed: per engine, dtype and shape, the median over ``--repeats`` interleaved blocks
(each ~20 ms of calls, then a device sync) of the time of one call of

- ``ndtr cody``: ``backendnn.special.ndtr_cody(z)``, the portable path;
- ``ndtr native``: ``backendnn._backend.native_ndtr(xp)(z)``, the library's own;
- ``gelu cody`` / ``gelu native``: ``y = gelu.forward(z); gelu.derivative(z, y)`` with
  ``gelu = backendnn.activations.get("gelu")`` and Phi taken from each path (the bench
  swaps the ``ndtr`` that ``activations`` imported; the library itself has no switch).

``jax-jit`` times ``jax.jit`` of each function, ``jax-eager`` the op-by-op calls. The
input is N(0, 2^2). "speed-up" is cody time / native time (above 1: native faster).
``--torch-threads 1``: on the shared 2-core dev machine, under load, torch's default two
intra-op threads made every element-wise op ~40x slower (Cody at 256x512: 880 ms, 18 ms
with one thread).

Accuracy: max relative error |f(z) - Phi(z)| / Phi(z) over z in [-38, 10] (step 1/200,
plus 2,000 uniform draws in [-30, -20]), against a float64 reference from ``math.erfc``
with the rounding of its argument -z/sqrt 2 corrected to first order (as the reference
of tests/_references.py: a plain ``0.5*math.erfc(-z/math.sqrt(2))`` is itself off by
~z^2 ulp, 1.6e-13 at z = -30). Float32 inputs are the float32-rounded grid, compared with
Phi at the same (exact) points; errors are only counted where Phi(z) is a normal number
of the dtype (z > -37.5 in float64, z > -13.2 in float32). The bar the tests hold exact
GELU to is 1e-13 relative on [-30, 30] in float64.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import time
from decimal import Decimal, localcontext

os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 on JAX; before jax is imported

import numpy as np

from backendnn import _backend, activations, special

SHAPES = ((256, 512), (32, 64))
DTYPES = ("float32", "float64")
ENGINES = ("numpy", "jax-eager", "jax-jit", "torch", "cupy")


@contextlib.contextmanager
def _gelu_phi(fn):
    """Exact GELU with Phi = ``fn`` inside the block (the name activations imported)."""
    saved = activations.ndtr
    activations.ndtr = fn
    try:
        yield
    finally:
        activations.ndtr = saved


def _gelu_forward_backward(phi):
    gelu = activations.get("gelu")

    def run(z):
        with _gelu_phi(phi):
            y = gelu.forward(z)
            return y, gelu.derivative(z, y)

    return run


def _functions(engine, xp):
    """name -> callable of one array, for one engine (None where it has no native ndtr)."""
    native = _backend.native_ndtr(xp)
    if native is None:
        return None
    fns = {
        "ndtr cody": lambda z: special.ndtr_cody(z),
        "ndtr native": lambda z: native(z),
        "gelu cody": _gelu_forward_backward(special.ndtr_cody),
        "gelu native": _gelu_forward_backward(native),
    }
    if engine == "jax-jit":
        fns = {k: _backend.jit(f, xp) for k, f in fns.items()}
    return fns


def _time(fns, z, repeats, block_s=0.02):
    """Median seconds per call of each function, blocks interleaved in rotating order."""
    counts = {}
    for name, f in fns.items():
        for _ in range(3):  # warm-up, compilation
            _backend.synchronize(list(_as_tuple(f(z))))
        t0 = time.perf_counter()
        _backend.synchronize(list(_as_tuple(f(z))))
        one = max(time.perf_counter() - t0, 1e-7)
        counts[name] = max(1, int(block_s / one))
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            f, n = fns[name], counts[name]
            t0 = time.perf_counter()
            for _ in range(n):
                out = f(z)
            _backend.synchronize(list(_as_tuple(out)))
            times[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(t) for name, t in times.items()}


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _library(engine):
    return engine.split("-")[0]


def _available(engines):
    out = []
    for engine in engines:
        try:
            xp = _backend.namespace(_library(engine))
        except ImportError as exc:
            print(f"skipping {engine}: {exc}")
            continue
        if _backend.native_ndtr(xp) is None:
            print(f"skipping {engine}: no native ndtr")
            continue
        out.append((engine, xp, _backend.default_device(_library(engine))))
    return out


# --------------------------------------------------------------------------- accuracy


def phi_reference(z: float) -> float:
    """Phi(z) = erfc(-z/sqrt 2)/2 in float64 to a few ulp, the argument's rounding error
    (measured with ``decimal``) corrected to first order: erfc(y + dy) = erfc(y) -
    2/sqrt(pi) exp(-y^2) dy."""
    y = -z / math.sqrt(2.0)
    with localcontext() as ctx:
        ctx.prec = 50
        dy = float(Decimal(-z) / Decimal(2).sqrt() - Decimal(y))
    e = math.erfc(y)
    return 0.5 * (e - 2.0 / math.sqrt(math.pi) * math.exp(-y * y) * dy) if e else 0.0


def accuracy_grid() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([np.linspace(-38.0, 10.0, 9601), rng.uniform(-30.0, -20.0, 2000)])


def relative_errors(values: np.ndarray, ref: np.ndarray, dtype: str) -> np.ndarray:
    """|values - ref| / ref where ref is a normal number of ``dtype``, else NaN."""
    normal = ref >= np.finfo(dtype).tiny
    return np.where(normal, np.abs(values - ref) / np.where(normal, ref, 1.0), np.nan)


def _max(a):
    return float(np.nanmax(a)) if np.any(~np.isnan(a)) else float("nan")


def _accuracy(engine, xp, device, refs):
    rows = []
    native = _backend.native_ndtr(xp)
    fns = {"cody": special.ndtr_cody, "native": native}
    if engine == "jax-jit":
        fns = {k: _backend.jit(f, xp) for k, f in fns.items()}
    for dtype in DTYPES:
        z, ref = refs[dtype]
        zx = _backend.from_numpy(z, xp=xp, device=device)
        row = {"engine": engine, "dtype": dtype}
        for name, f in fns.items():
            out = _backend.to_numpy(f(zx)).astype(np.float64)
            rel = relative_errors(out, ref, dtype)
            row[name + " [-30,10]"] = _max(np.where(z >= -30.0, rel, np.nan))
            row[name + " [-38,-30)"] = _max(np.where(z < -30.0, rel, np.nan))
            row[name + " zeros"] = int(np.sum((out == 0.0) & (ref >= np.finfo(dtype).tiny)))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- main


def _fmt(x):
    return "-" if math.isnan(x) else f"{x:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.torch_threads:
        try:
            import torch
        except ImportError:
            pass
        else:
            torch.set_num_threads(args.torch_threads)
    engines = _available([e.strip() for e in args.engines.split(",") if e.strip()])
    print(f"load average {os.getloadavg()[0]:.2f}; devices:", {e: str(d) for e, _, d in engines})

    print("\n| engine | dtype | shape | ndtr cody us | ndtr native us | speed-up |", end="")
    print(" gelu f+f' cody us | gelu f+f' native us | speed-up |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for engine, xp, device in engines:
        fns = _functions(engine, xp)
        for dtype in DTYPES:
            for shape in SHAPES:
                z = _backend.from_numpy(
                    rng.normal(scale=2.0, size=shape).astype(dtype), xp=xp, device=device
                )
                t = {k: v * 1e6 for k, v in _time(fns, z, args.repeats).items()}
                print(
                    f"| {engine} | {dtype} | {shape[0]}x{shape[1]} "
                    f"| {t['ndtr cody']:.1f} | {t['ndtr native']:.1f} "
                    f"| {t['ndtr cody'] / t['ndtr native']:.2f} "
                    f"| {t['gelu cody']:.1f} | {t['gelu native']:.1f} "
                    f"| {t['gelu cody'] / t['gelu native']:.2f} |",
                    flush=True,
                )

    print("\nMax relative error against Phi (float64 reference); zeros: Phi(z) normal, f = 0\n")
    head = "| engine | dtype | native [-30,10] | cody [-30,10] | native [-38,-30) "
    print(head + "| cody [-38,-30) | native zeros | cody zeros |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    grid = accuracy_grid()
    refs = {}
    for dtype in DTYPES:
        z = grid.astype(dtype)
        refs[dtype] = z, np.array([phi_reference(float(v)) for v in z])
    for engine, xp, device in engines:
        if engine == "jax-eager":
            engine = "jax"
        for r in _accuracy(engine, xp, device, refs):
            print(
                f"| {r['engine']} | {r['dtype']} | {_fmt(r['native [-30,10]'])} "
                f"| {_fmt(r['cody [-30,10]'])} | {_fmt(r['native [-38,-30)'])} "
                f"| {_fmt(r['cody [-38,-30)'])} | {r['native zeros']} | {r['cody zeros']} |",
                flush=True,
            )
    print(f"\nload average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
