"""Array-library calls per training step, and the compiled JAX programs, of ``fit``.

    PYTHONPATH=. JAX_ENABLE_X64=1 python benchmarks/step_profile.py [--json FILE] [--out DIR]
        [--problems mlp-sgd-f64,...] [--backends numpy,torch,...] [--no-programs]
    python benchmarks/step_profile.py --compare BEFORE.json AFTER.json

(All problems and backends: about 8 minutes on a 2-core machine at load 2-3.)

A check that a change of the estimators' internals costs nothing per training step: it
measures through the public estimator API only (``est.fit(X, y)``), so the same script
runs unchanged before and after such a change. Two figures per problem:

1. **Array-library calls per training step** (backends numpy, torch, array_api_strict,
   and jax for its host-side dispatch). Each counted ``fit`` runs under
   ``sys.setprofile``; a call counts if it goes into an array library: a Python
   function whose module belongs to numpy, torch, array_api_strict, array_api_compat,
   jax or jaxlib (``call`` events), or a C function or C method of one (``c_call``
   events: ``torch.matmul``, ``ndarray.reshape``, ``RandomState.permutation``).
   ``entries`` counts the calls made from outside the libraries (by backendnn, the
   estimator or this script): one per library call the code makes. ``total`` also counts
   the calls the libraries make inside themselves. NumPy's ``*_dispatcher`` argument
   relays are skipped. Two things ``sys.setprofile`` cannot see are added by probes:

   - NumPy's ufuncs (``xp.exp``, ``xp.matmul``, ``xp.maximum``: C objects, no event). While
     counting, every ufunc attribute of ``array_api_compat.numpy`` (the namespace
     backendnn computes with) is replaced by a one-line Python relay that counts as one
     numpy entry. (Operators on ``ndarray``s, ``a * b``, ``x @ W``, remain invisible on
     numpy; array_api_strict sees them: its operators are Python methods.)
   - torch's operators and methods: a ``TorchFunctionMode`` counts every torch-level call
     (``torch_function``: ``Tensor.__mul__``, ``torch.matmul``, ...) and a
     ``TorchDispatchMode`` every ATen kernel call (``aten``), in separate fits.

   A fit of E epochs and a fit of E+1 epochs are counted (each twice, after an untimed
   warm-up fit: the two must agree, ``repeatable``), with the same number of batches per
   epoch; their difference is one steady-state epoch (per-fit setup cancels, and so does
   the first epoch, which differs). That difference divided by the batches of the epoch
   is "per batch". With a second sample count (twice the rows, about twice the batches)
   the epoch splits exactly into per step and per epoch:
   d(n) = fixed + batches(n) * step.

2. **The compiled JAX programs** (JAX with ``JAX_ENABLE_X64=1``). ``jax.jit`` is wrapped
   before any fit, so every function backendnn compiles records each argument signature
   it is called with during the fit: at the top level (a compiled program that ran: the
   epoch's ``lax.scan`` loop, the step of the last smaller batch) or inside another
   function's trace ("nested": the step inside the epoch loop). After the fit each is
   lowered again with the same arguments: ``Lowered.as_text()`` (StableHLO, what JAX
   emits) and ``Lowered.compile().as_text()`` (XLA's optimised HLO, what runs). Both are
   normalised (no source locations, ``metadata={...}`` or HLO stack-frame tables; no
   module, function, instruction or parameter names: symbols, ``%names`` and computation
   parameters renumbered by first appearance or position; no
   ``jax.arg_info``/``jax.result_info`` Python parameter names) and hashed (SHA-256); the
   op count is the number of instructions. ``--out DIR`` keeps the normalised texts
   (``diff -r`` two such folders to see what changed).

Problems (3 classes, 512 samples, random labels: nothing stops a fit early):

- ``mlp-{sgd,adam}-{f64,f32}``: ``MLPClassifier((64, 64), solver=..., batch_size=48)`` on
  512 x 20 features (10 batches of 48 and one of 32 per epoch; 1024 rows: 21 + 1).
- ``cnn-adam-f32``: ``NeuralNetClassifier([Conv2d(1, 4, 3, padding=1), ReLU,
  MaxPool2d(2), Flatten()], solver="adam", batch_size=48)`` on (512, 1, 8, 8) images.
- ``perceptron-gd-f64``: ``Perceptron(solver="gd", tol=None)``, full batch (one step per
  epoch, so no per-step split).

``--compare BEFORE.json AFTER.json`` prints the two side by side and exits 1 if any
per-epoch or per-step call count or any program hash differs, or a count was not
repeatable (2 if a problem or backend is missing from one of them). The figures depend
on the library versions (the JSON records them): compare runs made in one environment.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JAX_ENABLE_X64", "1")  # the float64 problems need it on JAX

import numpy as np

LIBRARIES = frozenset({"numpy", "torch", "array_api_strict", "array_api_compat", "jax", "jaxlib"})
COUNT_BACKENDS = ("numpy", "torch", "array_api_strict", "jax")
EPOCHS = 3  # fits of EPOCHS and EPOCHS + 1 epochs: from the third epoch on, all are alike
N_SAMPLES = 512
N_FEATURES = 20
N_CLASSES = 3
BATCH = 48
SEED = 0


# ---------------------------------------------------------------------- the problems


@dataclass(frozen=True)
class Problem:
    name: str
    build: Callable[[str, int], Any]  # (backend, max_iter) -> unfitted estimator
    data: Callable[[int], tuple[np.ndarray, np.ndarray]]  # n -> (X, y) on the host
    batches: Callable[[int], int]  # n -> batches per epoch
    sizes: tuple[int, ...]  # sample counts counted (two: per step and per epoch apart)


def _mlp_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return rng.normal(size=(n, N_FEATURES)), rng.integers(0, N_CLASSES, size=n)


def _image_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return rng.normal(size=(n, 1, 8, 8)), rng.integers(0, N_CLASSES, size=n)


def _minibatches(n: int) -> int:
    return -(-n // BATCH)


def _mlp(solver: str, dtype: str) -> Callable[[str, int], Any]:
    def build(backend: str, max_iter: int) -> Any:
        from backendnn import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=(64, 64),
            solver=solver,
            batch_size=BATCH,
            learning_rate_init=0.01 if solver == "sgd" else 0.001,
            max_iter=max_iter,
            random_state=SEED,
            backend=backend,
            dtype=dtype,
        )

    return build


def _cnn(backend: str, max_iter: int) -> Any:
    from backendnn import NeuralNetClassifier
    from backendnn.layers import Activation, Conv2d, Flatten, MaxPool2d

    layers = [Conv2d(1, 4, 3, padding=1), Activation("relu"), MaxPool2d(2), Flatten()]
    return NeuralNetClassifier(
        layers,
        solver="adam",
        batch_size=BATCH,
        max_iter=max_iter,
        random_state=SEED,
        backend=backend,
        dtype="float32",
    )


def _perceptron(backend: str, max_iter: int) -> Any:
    from backendnn import Perceptron

    return Perceptron(
        solver="gd", tol=None, max_iter=max_iter, random_state=SEED, backend=backend,
        dtype="float64",
    )  # fmt: skip


PROBLEMS = [
    *(
        Problem(
            f"mlp-{solver}-{dt}",
            _mlp(solver, dtype),
            _mlp_data,
            _minibatches,
            (N_SAMPLES, 2 * N_SAMPLES),
        )  # fmt: skip
        for solver in ("sgd", "adam")
        for dt, dtype in (("f64", "float64"), ("f32", "float32"))
    ),
    Problem("cnn-adam-f32", _cnn, _image_data, _minibatches, (N_SAMPLES, 2 * N_SAMPLES)),
    Problem("perceptron-gd-f64", _perceptron, _mlp_data, lambda n: 1, (N_SAMPLES,)),
]


def _fit(problem: Problem, backend: str, epochs: int, n: int) -> Any:
    X, y = problem.data(n)
    est = problem.build(backend, epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: the point here
        est.fit(X, y)
    if est.n_iter_ != epochs:
        raise RuntimeError(f"{problem.name} on {backend} stopped after {est.n_iter_} epochs")
    return est


# ---------------------------------------------------------------------- counting calls


def _library(module: Any) -> str | None:
    if not isinstance(module, str):
        return None
    top = module.partition(".")[0]
    return top if top in LIBRARIES else None


class ProfileCounter:
    """``sys.setprofile`` hook: calls into the array libraries (see the docstring)."""

    def __init__(self) -> None:
        self.entries: Counter[str] = Counter()  # "lib:qualified name" -> calls from outside
        self.total: Counter[str] = Counter()  # lib -> all calls into or inside it

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            lib = _library(frame.f_globals.get("__name__"))
            if lib is None:
                return
            code = frame.f_code
            if lib == "numpy" and code.co_name.endswith("_dispatcher"):
                return  # __array_function__'s argument relay; the implementation follows
            self.total[lib] += 1
            back = frame.f_back
            if back is None or _library(back.f_globals.get("__name__")) is None:
                qualname = getattr(code, "co_qualname", code.co_name)  # Python 3.11+
                name = f"{frame.f_globals.get('__name__')}.{qualname}"
                self.entries[f"{lib}:{name}"] += 1
        elif event == "c_call":
            module = getattr(arg, "__module__", None)
            if module is None:
                module = type(getattr(arg, "__self__", None)).__module__
            lib = _library(module)
            if lib is None:
                return
            self.total[lib] += 1
            if _library(frame.f_globals.get("__name__")) is None:
                name = f"{module}.{getattr(arg, '__qualname__', getattr(arg, '__name__', '?'))}"
                self.entries[f"{lib}:{name}"] += 1


_PROBE_SOURCE = """
def make_probe(ufunc):
    def probe(*args, **kwargs):
        return ufunc(*args, **kwargs)
    probe.__name__ = probe.__qualname__ = ufunc.__name__
    return probe
"""


@contextlib.contextmanager
def ufunc_probes() -> Iterator[None]:
    """NumPy's ufuncs in ``array_api_compat.numpy`` relayed by Python functions whose module
    is a NumPy one, so that ``sys.setprofile`` sees each call (once, as a numpy entry)."""
    import array_api_compat.numpy as namespace

    scope: dict[str, Any] = {"__name__": "numpy.step_profile_ufunc_probe"}
    exec(_PROBE_SOURCE, scope)
    saved = {
        name: obj
        for name in dir(namespace)
        if isinstance(obj := getattr(namespace, name), np.ufunc)
    }
    for name, obj in saved.items():
        setattr(namespace, name, scope["make_probe"](obj))
    try:
        yield
    finally:
        for name, obj in saved.items():
            setattr(namespace, name, obj)


def _count_profile(run: Callable[[], Any]) -> dict[str, Any]:
    counter = ProfileCounter()
    gc.collect()
    gc.disable()
    sys.setprofile(counter)
    try:
        run()
    finally:
        sys.setprofile(None)
        gc.enable()
    by_lib: Counter[str] = Counter()
    for key, n in counter.entries.items():
        by_lib[key.partition(":")[0]] += n
    return {
        "entries": sum(counter.entries.values()),
        "total": sum(counter.total.values()),
        "entries_by_library": dict(sorted(by_lib.items())),
        "total_by_library": dict(sorted(counter.total.items())),
        "histogram": dict(sorted(counter.entries.items())),
    }


def _count_torch(run: Callable[[], Any]) -> dict[str, Any]:
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    class FunctionCounter(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.calls: Counter[str] = Counter()

        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            self.calls[getattr(func, "__qualname__", None) or str(func)] += 1
            return func(*args, **(kwargs or {}))

    class DispatchCounter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.calls: Counter[str] = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            self.calls[str(func)] += 1
            return func(*args, **(kwargs or {}))

    out: dict[str, Any] = {}
    for metric, mode_type in (("torch_function", FunctionCounter), ("aten", DispatchCounter)):
        gc.collect()
        gc.disable()
        try:
            with mode_type() as mode:
                run()
        finally:
            gc.enable()
        out[metric] = sum(mode.calls.values())
        out[f"{metric}_histogram"] = dict(sorted(mode.calls.items()))
    return out


def count_fit(problem: Problem, backend: str, epochs: int, n: int) -> dict[str, Any]:
    """The counts of one fit: profile-based everywhere, torch's modes on torch."""

    def run() -> None:
        _fit(problem, backend, epochs, n)

    probes = ufunc_probes() if backend == "numpy" else contextlib.nullcontext()
    with probes:
        counts = _count_profile(run)
    if backend == "torch":
        counts.update(_count_torch(run))
    return counts


METRICS = ("entries", "total", "torch_function", "aten")


def _difference(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    keys = sorted(set(a) | set(b))
    return {k: b.get(k, 0) - a.get(k, 0) for k in keys if b.get(k, 0) != a.get(k, 0)}


def profile_calls(problem: Problem, backend: str) -> dict[str, Any]:
    """Per-epoch, per-batch and (with two sizes) per-step call counts of ``problem``."""
    for n in problem.sizes:  # untimed warm-up: imports, caches, JAX's compilations
        _fit(problem, backend, EPOCHS, n)
        _fit(problem, backend, EPOCHS + 1, n)
    result: dict[str, Any] = {"batches_per_epoch": {}, "epochs": [EPOCHS, EPOCHS + 1]}
    repeatable = True
    deltas: dict[int, dict[str, int]] = {}
    for n in problem.sizes:
        fits = {}
        for epochs in (EPOCHS, EPOCHS + 1):
            first = count_fit(problem, backend, epochs, n)
            second = count_fit(problem, backend, epochs, n)
            repeatable &= first == second
            fits[epochs] = first
        lo, hi = fits[EPOCHS], fits[EPOCHS + 1]
        deltas[n] = {m: hi[m] - lo[m] for m in METRICS if m in lo}
        result["batches_per_epoch"][str(n)] = problem.batches(n)
        result.setdefault("fit_calls", {})[str(n)] = {
            str(e): {m: f[m] for m in METRICS if m in f} for e, f in fits.items()
        }
        result.setdefault("epoch_calls", {})[str(n)] = deltas[n]
        # which calls one epoch adds: for finding what changed
        result.setdefault("epoch_histogram", {})[str(n)] = {
            m: _difference(lo[h], hi[h])
            for m, h in (
                ("entries", "histogram"),
                ("torch_function", "torch_function_histogram"),
                ("aten", "aten_histogram"),
            )
            if h in lo
        }
    n1 = problem.sizes[0]
    b1 = problem.batches(n1)
    result["per_batch"] = {m: d / b1 for m, d in deltas[n1].items()}
    if len(problem.sizes) > 1:
        n2 = problem.sizes[1]
        b2 = problem.batches(n2)
        per_step, fixed = {}, {}
        for m in deltas[n1]:
            step = (deltas[n2][m] - deltas[n1][m]) / (b2 - b1)
            per_step[m] = int(step) if step == int(step) else step
            f = deltas[n1][m] - b1 * step
            fixed[m] = int(f) if f == int(f) else f
        result["per_step"], result["per_epoch_fixed"] = per_step, fixed
    result["repeatable"] = repeatable
    return result


# ---------------------------------------------------------------------- JAX programs


class ProgramRecorder:
    """Wraps ``jax.jit``: every compiled function notes the argument signatures it is
    called with while :attr:`active` (a list) is set."""

    def __init__(self) -> None:
        self.active: list | None = None
        self._installed = False

    def install(self) -> None:
        import jax

        if self._installed:
            return
        original = jax.jit
        recorder = self

        class Tracked:
            def __init__(self, jitted: Any, fun: Any):
                self._jitted, self._fun = jitted, fun
                functools.update_wrapper(self, fun)

            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                if recorder.active is not None:
                    recorder.note(self, args, kwargs)
                return self._jitted(*args, **kwargs)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._jitted, name)

            def __get__(self, obj: Any, objtype: Any = None) -> Any:
                return self if obj is None else functools.partial(self, obj)

        @functools.wraps(original)
        def jit(fun: Any = None, *args: Any, **kwargs: Any) -> Any:
            if fun is None:
                return functools.partial(jit, *args, **kwargs)
            return Tracked(original(fun, *args, **kwargs), fun)

        jax.jit = jit
        self._installed = True

    def note(self, tracked: Any, args: tuple, kwargs: dict) -> None:
        import jax

        leaves, tree = jax.tree_util.tree_flatten((args, kwargs))
        nested = any(isinstance(x, jax.core.Tracer) for x in leaves)
        specs, signature = [], []
        for x in leaves:
            if isinstance(x, jax.core.Tracer) or isinstance(x, jax.Array):
                aval = x.aval
                weak = bool(getattr(aval, "weak_type", False))
                specs.append(jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=weak))
                signature.append(f"{aval.dtype}{list(aval.shape)}{'~' if weak else ''}")
            else:
                specs.append(x)
                signature.append(
                    f"{type(x).__name__}:{x!r}" if np.isscalar(x) else type(x).__name__
                )
        key = (id(tracked), str(tree), tuple(signature))
        active = self.active
        assert active is not None
        if any(k == key for k, *_ in active):
            return
        spec_args, spec_kwargs = jax.tree_util.tree_unflatten(tree, specs)
        active.append((key, tracked, nested, spec_args, spec_kwargs, signature))


def _balanced_strip(text: str, opener: str, open_char: str, close_char: str) -> str:
    """``text`` without each ``opener`` ... up to its balanced closing character."""
    out, i = [], 0
    while True:
        j = text.find(opener, i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        depth, k = 0, j + len(opener) - 1
        while k < len(text):
            if text[k] == open_char:
                depth += 1
            elif text[k] == close_char:
                depth -= 1
                if depth == 0:
                    break
            elif text[k] == '"':  # skip strings
                k = text.index('"', k + 1)
                while text[k - 1] == "\\":
                    k = text.index('"', k + 1)
            k += 1
        i = k + 1


def _renumber(text: str, pattern: str, prefix: str) -> str:
    names: dict[str, str] = {}

    def sub(m: re.Match) -> str:
        return names.setdefault(m.group(0), f"{prefix}{len(names)}")

    return re.sub(pattern, sub, text)


def normalise_stablehlo(text: str) -> str:
    text = "\n".join(line for line in text.splitlines() if not line.startswith("#loc"))
    text = _balanced_strip(text, " loc(", "(", ")")
    text = re.sub(r'\s*jax\.(arg|result)_info = "(?:[^"\\]|\\.)*",?', "", text)
    text = re.sub(r"\{\s*\}", "{}", text)
    text = re.sub(r",\s*\}", "}", text)
    text = re.sub(r" \{\}(?=[,)\s])", "", text)  # attribute dicts left empty
    return _renumber(text, r"@[\w.$\-]+", "@f") + "\n"


_HLO_TABLES = ("FileNames", "FunctionNames", "FileLocations", "StackFrames")


def normalise_hlo(text: str) -> str:
    lines, skipping = [], False
    for line in text.splitlines():  # the source-location tables, each up to a blank line
        if line.strip() in _HLO_TABLES:
            skipping = True
        elif skipping and not line.strip():
            skipping = False
        elif not skipping:
            if re.match(r"(ENTRY )?%\S+ \(", line):  # a computation's parameter names
                line = re.sub(r"(?<=[(\s/])[A-Za-z_][\w.\-]*(?=: )", "p", line)
            lines.append(line)
    text = "\n".join(lines)
    text = _balanced_strip(text, ", metadata={", "{", "}")
    text = _balanced_strip(text, "metadata={", "{", "}")
    text = re.sub(r"^HloModule [^\s,]+", "HloModule m", text, flags=re.M)
    return _renumber(text, r"%[\w.\-]+", "%v") + "\n"


def stablehlo_ops(text: str) -> Counter[str]:
    ops: Counter[str] = Counter()
    for line in text.splitlines():
        m = re.match(r'\s*(?:%[\w#:, %]+ = )?"?([a-z_]+\.[a-z_.]+)', line)
        if m and not m.group(1).startswith("func.func"):
            ops[m.group(1)] += 1
    return ops


def hlo_ops(text: str) -> Counter[str]:
    ops: Counter[str] = Counter()
    for line in text.splitlines():
        m = re.match(r"\s*(?:ROOT )?%\S+ = .*?\s([a-z][\w\-]*)\(", line)
        if m:
            ops[m.group(1)] += 1
    return ops


def capture_programs(
    recorder: ProgramRecorder, problem: Problem, out: Path | None
) -> list[dict[str, Any]]:
    """The programs one JAX fit of ``problem`` compiles (and the nested ones it traces)."""
    recorder.active = []
    try:
        _fit(problem, "jax", EPOCHS, problem.sizes[0])
        noted = recorder.active
    finally:
        recorder.active = None
    programs = []
    for index, (_, tracked, nested, args, kwargs, signature) in enumerate(noted):
        lowered = tracked._jitted.lower(*args, **kwargs)
        texts = {
            "stablehlo": normalise_stablehlo(lowered.as_text()),
            "hlo": normalise_hlo(lowered.compile().as_text()),
        }
        name = getattr(tracked._fun, "__name__", "fn")
        record: dict[str, Any] = {
            "index": index,
            "function": name,
            "kind": "nested" if nested else "compiled",
            "signature": signature,
        }
        for kind, text in texts.items():
            ops = stablehlo_ops(text) if kind == "stablehlo" else hlo_ops(text)
            record[f"{kind}_sha256"] = hashlib.sha256(text.encode()).hexdigest()
            record[f"{kind}_ops"] = sum(ops.values())
            record[f"{kind}_op_histogram"] = dict(sorted(ops.items()))
            if out is not None:
                folder = out / problem.name
                folder.mkdir(parents=True, exist_ok=True)
                # named by position and kind only, so that two runs diff file by file
                (folder / f"{index}-{record['kind']}.{kind}.txt").write_text(text)
        programs.append(record)
    return programs


# ---------------------------------------------------------------------- output


def _versions() -> dict[str, Any]:
    import importlib.metadata as md

    versions: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for package in ("numpy", "torch", "jax", "jaxlib", "array-api-strict", "array-api-compat"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return versions


def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "backendnn")),
    }


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))
    return str(x)


def print_calls(calls: dict[str, Any], file: Any = sys.stdout) -> None:
    print(
        f"Array-library calls of one steady-state epoch (fit of {EPOCHS + 1} minus fit of "
        f"{EPOCHS} epochs), per batch, and split into per step + per epoch",
        file=file,
    )
    header = (
        f"{'problem':<18} {'backend':<17} {'metric':<15} {'batches':>7} {'epoch':>7} "
        f"{'/batch':>8} {'step':>6} {'+epoch':>7}  repeatable"
    )
    print(header, file=file)
    print("-" * len(header), file=file)
    for key, r in calls.items():
        problem, backend = key.split("/")
        n1 = next(iter(r["epoch_calls"]))
        for metric, value in r["epoch_calls"][n1].items():
            print(
                f"{problem:<18} {backend:<17} {metric:<15} {r['batches_per_epoch'][n1]:>7} "
                f"{value:>7} {_fmt(r['per_batch'][metric]):>8} "
                f"{_fmt(r.get('per_step', {}).get(metric)):>6} "
                f"{_fmt(r.get('per_epoch_fixed', {}).get(metric)):>7}  {r['repeatable']}",
                file=file,
            )


def print_programs(programs: dict[str, Any], file: Any = sys.stdout) -> None:
    print("\nJAX programs of one fit (normalised; SHA-256 prefix and instruction count)", file=file)
    header = (
        f"{'problem':<18} {'#':>1} {'function':<9} {'kind':<8} {'StableHLO sha256':<16} "
        f"{'ops':>5} {'HLO sha256':<16} {'ops':>5}  arguments"
    )
    print(header, file=file)
    print("-" * len(header), file=file)
    for problem, records in programs.items():
        for r in records:
            shapes = ", ".join(s for s in r["signature"] if "[" in s)
            if len(shapes) > 60:
                shapes = shapes[:57] + "..."
            print(
                f"{problem:<18} {r['index']:>1} {r['function'][:9]:<9} {r['kind']:<8} "
                f"{r['stablehlo_sha256'][:16]} {r['stablehlo_ops']:>5} "
                f"{r['hlo_sha256'][:16]} {r['hlo_ops']:>5}  {shapes}",
                file=file,
            )


# ---------------------------------------------------------------------- compare


def compare(before_path: str, after_path: str) -> int:
    before = json.loads(Path(before_path).read_text())
    after = json.loads(Path(after_path).read_text())
    status = 0
    for side in ("versions",):
        if before["meta"][side] != after["meta"][side]:
            print(f"warning: the {side} differ: {before['meta'][side]} -> {after['meta'][side]}")
    print(f"before: {before_path} (commit {before['meta']['git']['commit'][:10]})")
    print(f"after:  {after_path} (commit {after['meta']['git']['commit'][:10]})\n")

    header = (
        f"{'problem':<18} {'backend':<17} {'metric':<15} {'epoch':>15} {'/batch':>13} "
        f"{'step':>11} {'+epoch':>11}"
    )
    print("Array-library calls (before -> after)")
    print(header)
    print("-" * len(header))
    for key in sorted(set(before["calls"]) | set(after["calls"])):
        b, a = before["calls"].get(key), after["calls"].get(key)
        if b is None or a is None:
            print(f"{key}: only in {'after' if b is None else 'before'}")
            status = max(status, 2)
            continue
        problem, backend = key.split("/")
        n1 = next(iter(b["epoch_calls"]))
        metrics = sorted(
            set(b["epoch_calls"][n1]) | set(a["epoch_calls"].get(n1, {})), key=METRICS.index
        )
        for m in metrics:
            cells, same = [], True
            for field, width in (
                ("epoch", 15),
                ("per_batch", 13),
                ("per_step", 11),
                ("per_epoch_fixed", 11),
            ):
                if field == "epoch":
                    vb = [b["epoch_calls"][n].get(m) for n in b["epoch_calls"]]
                    va = [a["epoch_calls"].get(n, {}).get(m) for n in b["epoch_calls"]]
                    same &= vb == va
                    vb, va = vb[0], va[0]
                else:
                    vb, va = b.get(field, {}).get(m), a.get(field, {}).get(m)
                    same &= vb == va
                cells.append(f"{_fmt(vb) + ' -> ' + _fmt(va) if vb != va else _fmt(vb):>{width}}")
            step_same = b.get("per_step", b["per_batch"]).get(m) == a.get(
                "per_step", a["per_batch"]
            ).get(m)
            repeatable = b["repeatable"] and a["repeatable"]
            flag = ""
            if not repeatable:
                flag = "   NOT REPEATABLE"
            elif not step_same:
                flag = "   DIFFERS per step"
            elif not same:
                flag = "   DIFFERS (per-epoch part only)"
            status = max(status, 0 if same and repeatable else 1)
            print(f"{problem:<18} {backend:<17} {m:<15} {' '.join(cells)}{flag}")

    print("\nJAX programs (SHA-256 prefix, instruction count; before -> after)")
    for problem in sorted(set(before["programs"]) | set(after["programs"])):
        b, a = before["programs"].get(problem), after["programs"].get(problem)
        if b is None or a is None:
            print(f"{problem}: only in {'after' if b is None else 'before'}")
            status = max(status, 2)
            continue
        for kind in ("stablehlo", "hlo"):
            hb = sorted((r["kind"], r[f"{kind}_sha256"]) for r in b)
            ha = sorted((r["kind"], r[f"{kind}_sha256"]) for r in a)
            same = hb == ha
            status = max(status, 0 if same else 1)
            print(f"{problem:<18} {kind:<9} {'same' if same else 'DIFFERS'}")
            for i in range(max(len(b), len(a))):
                rb = b[i] if i < len(b) else None
                ra = a[i] if i < len(a) else None

                def cell(r: Any, kind: str = kind) -> str:
                    if r is None:
                        return "(none)"
                    digest, ops = r[f"{kind}_sha256"][:16], r[f"{kind}_ops"]
                    return f"{r['function'][:9]}/{r['kind']} {digest} {ops:>5}"

                mark = (
                    "" if (rb and ra and rb[f"{kind}_sha256"] == ra[f"{kind}_sha256"]) else "  <-"
                )
                print(f"    {cell(rb):<44} -> {cell(ra)}{mark}")
    print(f"\n{'no difference' if status == 0 else 'DIFFERENCES FOUND'} (exit {status})")
    return status


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument("--out", help="folder for the normalised JAX programs (for diff -r)")
    parser.add_argument(
        "--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two JSON files"
    )
    parser.add_argument("--backends", default=",".join(COUNT_BACKENDS), help="call-count backends")
    parser.add_argument(
        "--problems", default=None, help="comma-separated problem names (default: all)"
    )
    parser.add_argument("--no-programs", action="store_true", help="skip the JAX programs")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)

    problems = PROBLEMS
    if args.problems:
        wanted = args.problems.split(",")
        problems = [p for p in PROBLEMS if p.name in wanted]
        if len(problems) != len(wanted):
            parser.error(f"unknown problem in {wanted}; choose from {[p.name for p in PROBLEMS]}")
    backends = [b for b in args.backends.split(",") if b]
    out = Path(args.out) if args.out else None

    recorder = ProgramRecorder()
    programs: dict[str, Any] = {}
    if not args.no_programs:
        import jax

        if not jax.config.jax_enable_x64:  # type: ignore[attr-defined]
            parser.error("JAX_ENABLE_X64 must be 1 (the float64 problems)")
        # first, before any JAX fit: the capture must see the first trace of each function
        recorder.install()
        for problem in problems:
            programs[problem.name] = capture_programs(recorder, problem, out)

    calls: dict[str, Any] = {}
    for problem in problems:
        for backend in backends:
            calls[f"{problem.name}/{backend}"] = profile_calls(problem, backend)
            print(f"counted {problem.name} on {backend}", file=sys.stderr)

    result = {
        "meta": {
            "script": "benchmarks/step_profile.py",
            "versions": _versions(),
            "git": _git(),
            "jax_enable_x64": os.environ.get("JAX_ENABLE_X64"),
            "settings": {
                "epochs": [EPOCHS, EPOCHS + 1],
                "samples": N_SAMPLES,
                "features": N_FEATURES,
                "classes": N_CLASSES,
                "batch_size": BATCH,
                "seed": SEED,
            },
        },
        "calls": calls,
        "programs": programs,
    }
    print_calls(calls)
    if programs:
        print_programs(programs)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
