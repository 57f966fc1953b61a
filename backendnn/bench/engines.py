"""The engine table: :data:`ENGINES` (name -> :class:`Engine`, with the models each trains),
backendnn's own engines (its training step, the step with the native convolutions
switched off, a whole ``MLPClassifier.fit``, and the same fit on a dask array), which
engines can run here (:func:`unavailable`, :func:`default_engines`, :func:`gpu_available`)
and what each imports before its memory baseline is read (:func:`import_libraries`).

Imports: :mod:`.problem`, :mod:`.runner`, :mod:`.peers`, and from the library
``_backend``, ``optim.SGD``, ``train.make_step`` and the top-level ``MLPClassifier``.
Array libraries only through ``_backend`` (or ``importlib`` by the name in the table;
``dask.array`` inside the dask engine).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from .. import MLPClassifier, _backend
from .._random import new_key
from ..optim import SGD
from ..train import LayerState, make_step
from .peers import jax_grad, numpy_matmuls, sklearn_fit, torch_eager
from .problem import CNNS, MODELS, RESNETS, Problem, mlp_settings
from .runner import Runner, device_info, fit_runner, step_runner

_NATIVE_CONV = ("native_conv2d", "native_conv2d_input_grad", "native_conv2d_weight_grad")


@contextlib.contextmanager
def portable_conv() -> Any:
    """Inside the block every convolution takes the portable im2col path: the
    ``_backend.native_conv2d*`` fast paths answer None, as on NumPy."""
    saved = {name: getattr(_backend, name) for name in _NATIVE_CONV}
    for name in _NATIVE_CONV:
        setattr(_backend, name, lambda *args: None)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(_backend, name, fn)


def _flat(params: Any) -> list:
    return [a for layer in params for a in layer]


def _backendnn_step(p: Problem, name: str, eager: bool = False, im2col: bool = False) -> Runner:
    """backendnn's step (``make_step`` with momentum-free SGD) over pre-sliced batches;
    ``eager``: the JAX step op by op under ``jax.disable_jit()``; ``im2col``: every step
    inside :func:`portable_conv` (on JAX the step is ``make_step``'s plain function, got
    from NumPy's namespace, compiled apart so that it shares no cache with the native one)."""
    xp = _backend.namespace(name)
    dev = _backend.default_device(name)
    net = p.network()
    params = net.init(p.seed, xp=xp, device=dev, dtype=xp.float32)
    sgd = SGD(momentum=0.0, nesterov=False)
    state: Any = sgd.init(params)
    if net.has_state or net.is_random:  # batch norm, dropout: (optimiser, buffers, key)
        buffers = net.init_state(xp=xp, device=dev, dtype=xp.float32) if net.has_state else None
        key = new_key(p.seed, 0, xp, dev) if net.is_random else None
        state = LayerState(buffers, key).carried(state)
    if im2col and name == "jax":
        plain = make_step(net, "softmax_cross_entropy", 0.0, sgd, _backend.namespace("numpy"))
        step = _backend.jit(plain, xp)
    else:
        step = make_step(net, "softmax_cross_entropy", 0.0, sgd, xp)
    X = _backend.from_numpy(p.X, xp=xp, device=dev)
    Y = _backend.from_numpy(p.Y, xp=xp, device=dev)
    B = p.batch
    batches = [
        (X[i * B : (i + 1) * B, ...], Y[i * B : (i + 1) * B, ...]) for i in range(p.n_batches)
    ]
    carry = [params, state, None]
    lr = _backend.step_scalar(p.lr, X)  # as ``fit`` passes it: a device scalar on JAX

    def one(i: int) -> None:
        Xb, Yb = batches[i]
        carry[0], carry[1], carry[2] = step(carry[0], carry[1], Xb, Yb, lr)

    def sync() -> None:
        _backend.synchronize(_flat(carry[0]) + ([carry[2]] if carry[2] is not None else []))

    context: Callable[[], Any] = contextlib.nullcontext
    if eager:
        context = importlib.import_module("jax").disable_jit
    elif im2col:
        context = portable_conv
    block = step_runner(one, sync, p, context)
    label, precision = device_info(name, dev)
    return Runner(block, precision, label, lambda: float(_backend.to_numpy(carry[2])) / B)


def _backendnn_fit(p: Problem, name: str) -> Runner:
    """A whole one-epoch :class:`backendnn.MLPClassifier` ``fit`` over the same batches."""
    xp = _backend.namespace(name)
    dev = _backend.default_device(name)
    X = _backend.from_numpy(p.X, xp=xp, device=dev)
    y = _backend.from_numpy(p.y, xp=xp, device=dev)
    last: list[Any] = [None]

    def fit(n_batches: int) -> float:
        n = n_batches * p.batch
        records: list[dict] = []
        model = MLPClassifier(**mlp_settings(p))
        model.fit(X[:n, ...], y[:n], callbacks=[records.append])
        _backend.synchronize(list(model.coefs_))
        last[0] = model
        return records[-1]["seconds"]

    epochs: list[float] = []
    block = fit_runner(fit, p, epochs)
    label, precision = device_info(name, dev)
    return Runner(block, precision, label, lambda: float(last[0].loss_), epochs)


#: row chunks of the ``-dask-fit`` engines' dask array (issue 16: 10 chunks)
DASK_CHUNKS = 10


def _backendnn_dask_fit(p: Problem, name: str) -> Runner:
    """The ``-fit`` engine's ``fit`` on a dask array of the same host rows in
    :data:`DASK_CHUNKS` row chunks (``dask.array.from_array``), trained on backend ``name``:
    each chunk computed once, moved to the device while the batches before train."""
    da = importlib.import_module("dask.array")
    dev = _backend.default_device(name)
    last: list[Any] = [None]

    def fit(n_batches: int) -> float:
        n = n_batches * p.batch
        X = da.from_array(p.X[:n], chunks=(-(-n // DASK_CHUNKS),) + p.X.shape[1:])
        records: list[dict] = []
        model = MLPClassifier(**mlp_settings(p), backend=None if name == "numpy" else name)
        model.fit(X, p.y[:n], callbacks=[records.append])
        _backend.synchronize(list(model.coefs_))
        last[0] = model
        return records[-1]["seconds"]

    epochs: list[float] = []
    block = fit_runner(fit, p, epochs)
    label, precision = device_info(name, dev)
    return Runner(block, precision, label, lambda: float(last[0].loss_), epochs)


@dataclass(frozen=True)
class Engine:
    name: str
    lib: str  # library whose device memory --memory reads
    prepare: Callable[[Problem], Runner]
    requires: str  # backend name, or a module to find
    models: tuple[str, ...] = MODELS  # the --model values it trains


_MLP, _RESNET = ("mlp",), ("resnet",)


def _plain(prepare: Callable[[Problem], Runner]) -> Callable[[Problem], Runner]:
    """``prepare`` run on ``--model resnet-plain``'s problem (the same data, no batch norm,
    no dropout): beside the ``resnet`` engines in one run, the layers' share of a step."""
    return lambda p: prepare(dataclasses.replace(p, model="resnet-plain"))


def _engines() -> dict[str, Engine]:
    table: dict[str, Engine] = {}
    for b in _backend.BACKENDS:
        table[f"backendnn-{b}"] = Engine(f"backendnn-{b}", b, partial(_backendnn_step, name=b), b)
    table["backendnn-jax-eager"] = Engine(
        "backendnn-jax-eager", "jax", lambda p: _backendnn_step(p, "jax", eager=True), "jax"
    )
    for b in ("jax", "torch"):  # the backends with a native convolution
        prepare = partial(_backendnn_step, name=b, im2col=True)
        table[f"backendnn-{b}-im2col"] = Engine(f"backendnn-{b}-im2col", b, prepare, b, CNNS)
    for b in _backend.BACKENDS:
        table[f"backendnn-{b}-fit"] = Engine(
            f"backendnn-{b}-fit", b, partial(_backendnn_fit, name=b), b, _MLP
        )
    for b in ("numpy", "cupy", "jax", "torch"):
        table[f"backendnn-{b}-dask-fit"] = Engine(
            f"backendnn-{b}-dask-fit", b, partial(_backendnn_dask_fit, name=b), "module:dask", _MLP
        )
    table["sklearn"] = Engine("sklearn", "numpy", sklearn_fit, "module:sklearn", _MLP)
    table["torch-eager"] = Engine("torch-eager", "torch", torch_eager, "module:torch")
    table["jax-grad"] = Engine("jax-grad", "jax", jax_grad, "module:jax")
    for b in ("numpy", "jax", "torch"):
        name = f"backendnn-{b}-plain"
        table[name] = Engine(name, b, _plain(partial(_backendnn_step, name=b)), b, _RESNET)
    table["torch-eager-plain"] = Engine(
        "torch-eager-plain", "torch", _plain(torch_eager), "module:torch", _RESNET
    )
    table["jax-grad-plain"] = Engine(
        "jax-grad-plain", "jax", _plain(jax_grad), "module:jax", _RESNET
    )
    table["numpy-matmuls"] = Engine("numpy-matmuls", "numpy", numpy_matmuls, "numpy", _MLP)
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


def gpu_available() -> bool:
    """A CUDA device seen by torch or CuPy (JAX is not asked: that would claim GPU memory)."""
    if importlib.util.find_spec("torch"):
        if importlib.import_module("torch").cuda.is_available():
            return True
    return unavailable(ENGINES["backendnn-cupy"]) is None


def default_engines(gpu: bool, model: str = "mlp") -> list[str]:
    """Every engine that can run here: for the MLP a fit row for NumPy (and CuPy on a GPU),
    and on a CPU scikit-learn and the NumPy matmul floor; for the CNN the im2col rows of
    JAX and torch instead (``backendnn-jax-eager`` runs there only when named)."""
    names = [f"backendnn-{b}" for b in _backend.BACKENDS]
    if model == "lenet":
        names += ["backendnn-jax-im2col", "backendnn-torch-im2col", "torch-eager", "jax-grad"]
    elif model in RESNETS:
        names += ["torch-eager", "jax-grad"]
        if model == "resnet":  # the step without batch norm and dropout, beside it
            names += ["backendnn-torch-plain", "torch-eager-plain"]
    else:
        names += ["backendnn-jax-eager", "backendnn-numpy-fit"]
        names += ["backendnn-cupy-fit"] if gpu else []
        names += ["torch-eager", "jax-grad"] + ([] if gpu else ["sklearn", "numpy-matmuls"])
    return [n for n in names if unavailable(ENGINES[n]) is None]


def import_libraries(engine: Engine) -> None:
    """Import what the engine needs before the RSS baseline is read."""
    if engine.requires.startswith("module:"):
        importlib.import_module(engine.requires.split(":", 1)[1])
    else:
        _backend.default_device(engine.requires)
    if engine.name == "sklearn":
        importlib.import_module("sklearn.neural_network")
