"""Out-of-core data: dask arrays streamed chunk by chunk to the compute device.

Training (:class:`DaskData`, a data source; see :mod:`backendnn.data`) never computes the
whole array. An epoch visits the row chunks in a random order, a *window* of ``window``
chunks at a time: each chunk is computed once (by the dask scheduler in use, a
``dask.distributed`` client's cluster included), the window's rows are shuffled together,
cut into batches and moved to the compute device in one transfer. A background thread
prepares the next window (compute, shuffle, cast, finiteness check, transfer) while the
current one trains: about four windows' worth of rows are in memory at once (the
one training, the one ready, the chunks and rows of the one being prepared). The batches are
consecutive slices of one global row order (:meth:`DaskData.permutation` returns it),
so a fit equals the in-memory fit given the same order; within a window the batches run
in the in-memory source's compiled loop (one ``lax.scan`` per window on JAX).

The compute library is NumPy, or the estimator's ``backend`` (CuPy, JAX, torch); the
fitted weights are its arrays. Targets and sample weights are small (one row per sample)
and stay on the host, sliced with each window.

The estimator's side (checking a dask X, lazy prediction) is
:mod:`backendnn.estimators._dask`.

Imports ``dask``, NumPy (the host-side row bookkeeping and staging buffers),
:mod:`backendnn._backend`, ``_validation``, ``params`` (types) and this package's
``arrays``, ``blocked`` and ``prefetch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from .._backend import (
    index_dtype,
    namespace,
    step_scalar,
    step_scalars,
    to_numpy,
)
from .._validation import check_X, dtype_name
from ..params import Params
from .arrays import ArrayData, compiled_epoch
from .blocked import blocked_objective
from .prefetch import Prefetch

#: chunks whose rows are shuffled together (and held in memory at once) in an epoch
WINDOW = 2


# ---------------------------------------------------------------------- training


@dataclass
class EpochOrder:
    """One epoch's plan: the chunks of each window, in order, and the order of the
    window's rows (indices into the window's rows, chunk after chunk; None: as stored)."""

    windows: list[tuple[int, ...]]
    shuffles: list[Any]
    offsets: Any  # first row number of each chunk (rows numbered 0..n_samples-1)
    counts: Any  # rows of each chunk

    @property
    def rows(self) -> Any:
        """The epoch's global row order: row numbers 0..n_samples-1 as the source stores
        them (the order an in-memory fit is given to train on the same batches)."""
        parts = []
        for chunks, shuffle in zip(self.windows, self.shuffles):
            rows = np.concatenate([self.offsets[c] + np.arange(self.counts[c]) for c in chunks])
            parts.append(rows if shuffle is None else rows[shuffle])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class DaskData:
    """Training data in a dask array, streamed chunk by chunk (see the module docstring).

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features), chunked along rows
    Y : array of shape (n_samples, n_outputs)
        Encoded targets (any library; kept on the host).
    W : array of shape (n_samples,), optional
        Sample weights (kept on the host).
    xp, device, dtype :
        The compute namespace, its device and the compute dtype.
    rows : list of host index arrays or None, optional
        The rows of each chunk this source holds (None: all; :meth:`subset`).
    window : int
        Chunks shuffled together and held in memory at once.
    """

    def __init__(
        self,
        X: Any,
        Y: Any,
        W: Any = None,
        *,
        xp: Any,
        device: Any,
        dtype: Any,
        rows: list | None = None,
        window: int = WINDOW,
    ):
        self.array, self.xp, self.device, self.dtype = X, xp, device, dtype
        self.host_Y = to_numpy(Y)
        self.host_W = None if W is None else to_numpy(W)
        self.window = max(1, int(window))
        sizes = [int(c) for c in X.chunks[0]]
        self.chunk_rows = rows if rows is not None else [None] * len(sizes)
        self.counts = np.array(
            [s if r is None else len(r) for s, r in zip(sizes, self.chunk_rows)], dtype=np.int64
        )
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        # one task graph per chunk, cut once (cheaper to compute than X.blocks[i])
        self.blocks = list(X.to_delayed().ravel())
        self._held: ArrayData | None = None

    @property
    def n_samples(self) -> int:
        return int(self.counts.sum())

    def _positions(self, chunk: int) -> Any:
        """Row numbers (0..n_samples-1) of the rows chunk ``chunk`` contributes."""
        return self.offsets[chunk] + np.arange(self.counts[chunk])

    # -------------------------------------------------------------- the loop's protocol

    def subset(self, rows: Sequence[int]) -> DaskData:
        """The samples ``rows`` (row numbers 0..n_samples-1) as a new source over the same
        chunks (the early-stopping split); its :attr:`X`, :attr:`Y`, :attr:`W` hold them in
        memory when read (the held-out rows that early stopping scores)."""
        wanted = np.zeros(self.n_samples, dtype=bool)
        wanted[np.asarray(rows, dtype=np.int64)] = True
        keep = []
        for c, local in enumerate(self.chunk_rows):
            mask = wanted[self._positions(c)]
            base = np.arange(self.counts[c]) if local is None else np.asarray(local)
            keep.append(base[mask])
        positions = np.flatnonzero(wanted)
        Y = self.host_Y[positions]
        W = None if self.host_W is None else self.host_W[positions]
        return DaskData(
            self.array, Y, W, xp=self.xp, device=self.device, dtype=self.dtype,
            rows=keep, window=self.window,
        )  # fmt: skip

    def permutation(self, rng: Any, previous: Any = None) -> EpochOrder:
        """A random epoch from the host ``rng``: the chunks in a random order, taken
        ``window`` at a time, each window's rows in a random order. ``previous`` is not
        used: a streamed epoch draws a fresh order (scikit-learn's reshuffle of the
        previous order would visit rows across all chunks at once)."""
        order = [int(c) for c in rng.permutation(len(self.blocks)) if self.counts[c] > 0]
        windows = [tuple(order[i : i + self.window]) for i in range(0, len(order), self.window)]
        shuffles = [rng.permutation(int(sum(self.counts[c] for c in w))) for w in windows]
        return EpochOrder(windows, shuffles, self.offsets, self.counts)

    def sequential(self) -> EpochOrder:
        """The epoch in the stored order (no shuffling)."""
        order = [c for c in range(len(self.blocks)) if self.counts[c] > 0]
        windows = [tuple(order[i : i + self.window]) for i in range(0, len(order), self.window)]
        return EpochOrder(windows, [None] * len(windows), self.offsets, self.counts)

    def epoch(
        self,
        step: Callable,
        params: Params,
        state: Any,
        rates: Sequence[float],
        batch_size: int,
        order: EpochOrder | None = None,
    ) -> tuple[Params, Any, Any]:
        """One pass over the batches of ``batch_size`` consecutive rows of ``order``
        (None: the stored order), batch i at learning rate ``rates[i]``; returns (params,
        state, summed loss) with the loss on the device. Each window's full batches run
        in :func:`backendnn.data.compiled_epoch` while the next window is prepared."""
        xp = self.xp
        weights = next(a for layer in params for a in layer)
        total = xp.zeros((), dtype=xp.result_type(self.dtype, weights.dtype), device=self.device)
        done = 0  # batches trained
        with Prefetch(self._windows(order or self.sequential(), batch_size)) as windows:
            for X, Y, W, n_full in windows:
                if n_full:
                    rows = xp.reshape(
                        xp.arange(n_full * batch_size, dtype=index_dtype(xp), device=self.device),
                        (n_full, batch_size),
                    )
                    lr = step_scalars(rates[done : done + n_full], X)
                    params, state, total = compiled_epoch(step, xp)(
                        params, state, X, Y, W, rows, lr, total
                    )
                    done += n_full
                else:  # the last, smaller batch
                    lr = step_scalar(rates[done], X)
                    params, state, value = step(params, state, X, Y, lr, W)
                    total, done = total + value, done + 1
        return params, state, total

    def objective(self, make: Callable[[float], Callable], alpha: float) -> Callable:
        """The penalised loss over all samples and its flat gradient, as a function of the
        parameter vector, for L-BFGS: each evaluation streams the windows of the stored
        order (computing every chunk once, the next window prepared while one is
        evaluated) and sums their results with
        :func:`backendnn.data.blocked.blocked_objective`, a window a block."""
        order = self.sequential()
        sizes = []
        for chunks in order.windows:
            if self.host_W is None:
                sizes.append(float(sum(int(self.counts[c]) for c in chunks)))
            else:
                positions = np.concatenate([self._positions(c) for c in chunks])
                sizes.append(float(self.host_W[positions].sum()))

        def streamed(used: list[bool]) -> Iterator[tuple[Any, Any, Any]]:
            with Prefetch(self._windows(order, 1)) as windows:
                for (X, Y, W, _), use in zip(windows, used):
                    if use:
                        yield X, Y, W

        return blocked_objective(make, alpha, sizes, streamed)

    def _windows(self, order: EpochOrder, batch_size: int) -> Iterator[tuple]:
        """The epoch's device arrays, window by window: (X, Y, W, full batches) holding
        whole batches only (rows left over start the next window), then the last smaller
        batch as (X, Y, W, 0). Runs in the prefetch thread."""
        held: tuple = (None, None, None)  # host rows carried into the next window
        for chunks, shuffle in zip(order.windows, order.shuffles):
            X, Y, W = self._window_rows(chunks, shuffle, held)
            cut = X.shape[0] // batch_size * batch_size
            held = tuple(None if a is None else a[cut:].copy() for a in (X, Y, W))
            if cut:
                yield (*self._to_device(X[:cut], Y[:cut], None if W is None else W[:cut]),
                       cut // batch_size)  # fmt: skip
        if held[0] is not None and held[0].shape[0]:
            yield (*self._to_device(*held), 0)

    def _window_rows(
        self, chunks: tuple[int, ...], shuffle: Any, held: tuple = (None, None, None)
    ) -> tuple[Any, Any, Any]:
        """The host rows (X, Y, W) of ``chunks`` in the window's order after the rows
        ``held`` over from the window before: the chunks computed together, each once,
        and written (shuffled, cast, checked finite) into one new array."""
        computed = dask.compute(*(self.blocks[c] for c in chunks))
        parts = [
            np.asarray(a if self.chunk_rows[c] is None else a[self.chunk_rows[c]])
            for c, a in zip(chunks, computed)
        ]
        del computed
        positions = np.concatenate([self._positions(c) for c in chunks])
        h = 0 if held[0] is None else held[0].shape[0]
        n = positions.shape[0]
        dtype = getattr(np, dtype_name(self.dtype))
        X = np.empty((h + n, *self.array.shape[1:]), dtype=dtype)
        if h:
            X[:h] = held[0]
        # row j of the chunks goes to window row h + where[j] (the shuffle's inverse)
        where = np.arange(n) if shuffle is None else np.argsort(shuffle)
        start = 0
        for part in parts:
            stop = start + part.shape[0]
            if shuffle is None:
                X[h + start : h + stop] = part
            else:
                X[h + where[start:stop]] = part
            start = stop
        if not np.isfinite(X[h:].sum()):
            for part in parts:  # the error that says why (NaN, or too large for dtype)
                check_X(part, namespace("numpy"), dtype)
        del parts
        if shuffle is not None:
            positions = positions[shuffle]
        Y = self.host_Y[positions]
        W = None if self.host_W is None else self.host_W[positions]
        if h:
            Y = np.concatenate([held[1], Y])
            W = None if W is None else np.concatenate([held[2], W])
        return X, Y, W

    def _to_device(self, X: Any, Y: Any, W: Any) -> tuple[Any, Any, Any]:
        """Host rows on the compute device (NumPy: the same arrays, no copy)."""
        xp, dev, dtype = self.xp, self.device, self.dtype
        return tuple(  # type: ignore[return-value]
            None if a is None else xp.asarray(a, dtype=dtype, device=dev) for a in (X, Y, W)
        )

    # -------------------------------------------------------------- rows held in memory

    def _in_memory(self) -> ArrayData:
        """Every row of this source on the device (computed chunk by chunk, once)."""
        if self._held is None:
            parts = [self._window_rows((c,), None) for c, n in enumerate(self.counts) if n]
            X, Y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            W = None if self.host_W is None else np.concatenate([p[2] for p in parts])
            self._held = ArrayData(*self._to_device(X, Y, W))
        return self._held

    @property
    def X(self) -> Any:
        return self._in_memory().X

    @property
    def Y(self) -> Any:
        return self._in_memory().Y

    @property
    def W(self) -> Any:
        return self._in_memory().W
