"""The estimators' side of dask arrays: a dask X checked for training (the data source
itself, which streams chunk by chunk, is :class:`backendnn.data.dask.DaskData`), and
lazy prediction, block by block.

Prediction (:func:`dask_predict`) is ``X.map_blocks`` of the fitted network, the weights
moved to the compute library once per worker, each block's outputs a NumPy array;
``score`` computes it. dask is optional: it is imported only when a dask array comes in
(recognised by its module).

Imports :mod:`backendnn._backend`, ``_validation``, ``params`` (types)
and, on first use, :mod:`backendnn.data.dask`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import array_namespace, default_device, from_numpy, has_64bit, namespace, to_numpy
from .._validation import check_X, float_dtype
from ..optim import OPTIMIZERS
from ..params import Params

# optimiser objects stream too; L-BFGS streams every chunk at each evaluation
# (:meth:`DaskData.objective`); "gd" (one batch of every row) and the Perceptron (every
# row at once) would hold the whole array
_STREAMING_SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "lbfgs")


def is_dask(x: Any) -> bool:
    """Whether ``x`` is a dask array (recognised by its module, without importing dask)."""
    return type(x).__module__.startswith("dask.") and hasattr(x, "map_blocks")


@dataclass
class DaskInput:
    """A dask array checked for training: what the estimator's ``fit`` reads of an input
    (``shape``, ``ndim``, ``dtype``, the latter in the compute library) and the data
    source it trains from (:meth:`as_source`)."""

    array: Any  # the dask array, chunked along rows only
    xp: Any  # the compute namespace
    device: Any
    dtype: Any  # the compute dtype, of xp

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def ndim(self) -> int:
        return int(self.array.ndim)

    def as_source(self, Y: Any, W: Any = None) -> Any:
        from ..data.dask import DaskData

        return DaskData(self.array, Y, W, xp=self.xp, device=self.device, dtype=self.dtype)


def _by_rows(X: Any, name: str = "X") -> Any:
    """``X`` checked (known chunk sizes, real numbers, 2 or 4 dimensions, not empty)
    and chunked along rows only (a lazy rechunk of the other axes)."""
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes (e.g. from a dask DataFrame): call "
            f"{name}.compute_chunk_sizes() first, or to_dask_array(lengths=True)"
        )
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}")
    if X.dtype.kind not in "iufb":
        raise TypeError(f"{name} must hold numbers; got a dask array of dtype {X.dtype}")
    if X.ndim not in (2, 4):
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features) or 4-D (N, C, H, W) images; got "
            f"{X.ndim}-D with shape {tuple(X.shape)}"
        )
    if X.shape[0] < 1 or any(d == 0 for d in X.shape[1:]):
        raise ValueError(f"{name} is empty: shape {tuple(X.shape)}")
    if any(len(c) > 1 for c in X.chunks[1:]):
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    return X


def dask_fit_input(est: Any, X: Any) -> tuple[Any, Any, DaskInput, DaskInput]:
    """(xp, device, X as given, X as the network takes it) for a dask array ``X``, X as
    :class:`DaskInput` proxies. The compute library is the estimator's ``backend`` or
    NumPy. ``ValueError`` for a solver that needs the whole training set at once."""
    solver = getattr(est, "solver", None)
    if not (isinstance(solver, OPTIMIZERS) or solver in _STREAMING_SOLVERS):
        kind = type(est).__name__
        hint = (
            "use solver='sgd', 'adam' or 'lbfgs', or " if hasattr(est, "learning_rate_init") else ""
        )
        raise ValueError(
            f"{kind}(solver={solver!r}) reads the whole training set at once, and a dask "
            f"array is streamed chunk by chunk: {hint}pass X.compute() if it fits in memory"
        )
    X = _by_rows(X)
    name = getattr(est, "backend", None) or "numpy"
    xp, dev = namespace(name), default_device(name)
    probe = from_numpy(np.zeros((0,), dtype=X.dtype), xp=xp, device=dev)
    dtype = float_dtype(xp, getattr(est, "dtype", None), probe)
    given = DaskInput(X, xp, dev, dtype)
    if X.ndim == 4 and est._flatten_input:
        flat = X.reshape((X.shape[0], math.prod(X.shape[1:])))
        return xp, dev, given, DaskInput(flat, xp, dev, dtype)
    return xp, dev, given, given


class _BlockForward:
    """The fitted network's output for one block of rows, computed in the compute
    library; the host weights are moved there once per process (and not pickled)."""

    def __init__(
        self, network: Any, params: Params, buffers: list | None, backend: str, dtype: str,
        batch_size: int | None = None,
    ):  # fmt: skip
        self.network, self.backend, self.dtype = network, backend, dtype
        self.batch_size = batch_size
        self.arrays, self.n_params = [*params, *(buffers or [])], len(params)
        self._moved: Params | None = None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _moved=None)

    def __call__(self, block: Any) -> Any:
        xp = namespace(self.backend)
        dev, dtype = default_device(self.backend), getattr(xp, self.dtype)
        X = from_numpy(np.asarray(block), xp=xp, device=dev)
        X = check_X(X, xp, dtype) if X.shape[0] else xp.astype(X, dtype)
        if self._moved is None:
            self._moved = [
                tuple(from_numpy(a, xp=xp, device=dev, dtype=dtype) for a in p) for p in self.arrays
            ]
        n = self.n_params
        buffers = self._moved[n:] if self.network.has_state else None
        h = self.network.forward(self._moved[:n], X, buffers, batch_size=self.batch_size)
        return np.asarray(to_numpy(h))


def dask_predict(est: Any, X: Any, batch_size: Any = None) -> tuple[Any, Any]:
    """(the dask namespace, the network's outputs as a lazy dask array, one block per row
    chunk) for a dask array ``X``, each chunk run in blocks of ``batch_size`` rows (None:
    that fit in the memory budget). The weights are those of the call (later changes to
    the model do not reach it)."""
    est._check_fitted()
    X = _by_rows(X)
    est._check_shape(X)
    if X.ndim == 4 and est._flatten_input:
        X = X.reshape((X.shape[0], math.prod(X.shape[1:])))
    backend = getattr(est, "backend", None) or "numpy"
    name = est._dtype_name if has_64bit(namespace(backend)) else "float32"
    params = [tuple(to_numpy(a) for a in p) for p in est._params]
    buffers = est._buffers
    buffers = None if buffers is None else [tuple(to_numpy(a) for a in s) for s in buffers]
    forward = _BlockForward(est._network(), params, buffers, backend, name, batch_size)
    n_out = forward(np.zeros((1, *X.shape[1:]), dtype=name)).shape[1]
    chunks = (X.chunks[0], (n_out,))
    meta = np.empty((0, 0), dtype=name)  # given: no call on an empty block to infer it
    if X.ndim == 4:
        outputs = X.map_blocks(forward, chunks=chunks, drop_axis=(2, 3), meta=meta)
    else:
        outputs = X.map_blocks(forward, chunks=chunks, meta=meta)
    return array_namespace(outputs), outputs
