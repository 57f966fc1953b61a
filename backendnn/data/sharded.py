"""Data sharded along its rows over a JAX mesh: :class:`ShardedData`.

Data parallelism as JAX does it: X (and the encoded targets Y and sample weights W) are
split along the rows over the devices of a ``jax.sharding.Mesh``, the weights are
replicated, and one compiled epoch runs on every device (SPMD). Each batch holds the rows
the single-device fit's batch holds (the same host permutation), each device gets an
equal share of it without X ever being gathered, and XLA all-reduces the gradients; the
gather is :func:`backendnn._backend.sharding.make_row_gather` (its docstring says why it
is built that way). Under ``jax.distributed`` the same code runs in every process: the
permutation comes from the same seeded host generator in each, so all draw the same
batches and end with the same (replicated) weights.

The full-batch consumers read the arrays directly: L-BFGS's objective and the
early-stopping score run on the sharded X with replicated weights, partitioned by XLA
along the rows. Rows added so every shard is equal (after :meth:`ShardedData.subset`)
carry sample weight 0, so ``W`` is set whenever such rows exist.

A data source (see :mod:`backendnn.data`): host NumPy index arrays here, everything that
names JAX behind :mod:`backendnn._backend.sharding`. Imports :mod:`backendnn._backend`,
:mod:`backendnn._cache` and :mod:`backendnn.params` (types only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend import array_namespace, jit, sharding
from .._cache import CompiledCache
from ..params import Params

_EPOCHS = CompiledCache()


class ShardedData:
    """A data set sharded along its rows over a JAX mesh.

    Parameters
    ----------
    X : jax.Array of shape (n_rows, ...)
        Inputs sharded along the rows (``NamedSharding(mesh, PartitionSpec('batch'))``).
    Y : jax.Array of shape (n_rows or n_samples, n_outputs)
        Encoded targets on the same mesh (any partitioning: they are placed as X).
    W : jax.Array of shape (n_rows or n_samples,), optional
        Sample weights, as Y (None: every sample weighs 1).
    n_samples : int, optional
        The real rows: the first ``n_samples`` of X; the rest pad X to a multiple of the
        shard count and weigh 0 (default: every row is real).
    """

    def __init__(self, X: Any, Y: Any, W: Any = None, n_samples: int | None = None):
        self.mesh, self.axes, self.n_shards = sharding.row_layout(X)
        n_rows = int(X.shape[0])
        self._n = n_rows if n_samples is None else int(n_samples)
        self.weighted = W is not None  # the caller's weights (not only the padding's)
        xp = array_namespace(X)
        if Y.shape[0] < n_rows:  # targets (and weights) of the real rows only: pad them
            Y, W = _pad(xp, Y, n_rows), None if W is None else _pad(xp, W, n_rows)
        if W is None and self._n < n_rows:  # padding rows weigh 0, the others 1
            W = sharding.put_replicated((np.arange(n_rows) < self._n).astype(X.dtype), X)
        self.X, self.Y = X, sharding.on_rows(Y, X)
        self.W = None if W is None else sharding.on_rows(W, X)
        self.xp = array_namespace(self.X, self.Y) if W is None else array_namespace(X, Y, W)

    @property
    def n_samples(self) -> int:
        return self._n

    def subset(self, rows: Sequence[int]) -> ShardedData:
        """The samples ``rows`` (host indices) as a new data set on the same mesh, each
        shard given an equal share (zero-weight padding) without gathering X."""
        idx = sharding.padded_rows(np.asarray(rows, dtype=np.int32), self.n_shards)
        gather = _GATHERS.get((self.mesh, self.axes), lambda: (self._gather(), True))
        arrays = (self.X, self.Y) if self.W is None else (self.X, self.Y, self.W)
        got = gather(arrays, sharding.put_replicated(idx, self.X))
        W = got[2] if len(got) > 2 else None
        data = ShardedData(got[0], got[1], W, n_samples=len(rows))
        data.weighted = self.weighted
        return data

    def _gather(self) -> Callable:
        return jit(sharding.make_row_gather(self.mesh, self.axes, ones=False), self.xp)

    def permutation(self, rng: Any, previous: Any = None) -> np.ndarray:
        """A random order of the rows, drawn on the host from ``rng`` (the same in every
        process when they share the seed); with ``previous``, that order permuted again
        (the draws of :meth:`ArrayData.permutation`)."""
        perm = rng.permutation(self._n)
        return perm if previous is None else np.asarray(previous)[perm]

    def epoch(
        self,
        step: Callable,
        params: Params,
        state: Any,
        rates: Sequence[float],
        batch_size: int,
        order: Any = None,
    ) -> tuple[Params, Any, Any]:
        """One pass over the batches of ``batch_size`` rows in ``order`` (host row ids;
        None: the stored order), batch i at learning rate ``rates[i]``, the last batch
        possibly smaller: the batches of the single-device fit, each split equally over
        the shards. Returns (params, state, summed loss) with the loss left on the mesh."""
        n, b = self._n, batch_size
        order = np.arange(n) if order is None else np.asarray(order)
        order = order.astype(np.int32)
        n_full, rest = divmod(n, b)
        weights = next(a for layer in params for a in layer)
        dtype = np.result_type(np.dtype(self.X.dtype), np.dtype(weights.dtype))
        total = sharding.put_replicated(np.zeros((), dtype), self.X)
        groups = []
        if n_full:
            groups.append((order[: n_full * b].reshape(n_full, b), rates[:n_full]))
        if rest:  # the last, smaller batch: a loop of one (compiled for its own shape)
            groups.append((order[n_full * b :].reshape(1, rest), rates[-1:]))
        for rows, batch_rates in groups:
            size = rows.shape[1]
            ids = sharding.padded_rows(rows, self.n_shards)
            fn = self._compiled(step, padded=ids.shape[1] != size)
            params, state, total = fn(
                params,
                state,
                self.X,
                self.Y,
                self.W if self.weighted else None,
                sharding.put_replicated(ids, self.X),
                sharding.put_replicated(np.full(len(rows), size, dtype), self.X),
                sharding.put_replicated(np.asarray(batch_rates, self.X.dtype), self.X),
                total,
            )
        return params, state, total

    def _compiled(self, step: Callable, padded: bool) -> Callable:
        """The compiled epoch of ``step``: with the caller's weights if any; ``padded``:
        the batches hold padding rows (then weighted, ones for the real rows)."""
        key = (step, self.mesh, self.axes, self.weighted, padded)

        def build() -> tuple[Callable, bool]:
            fn = sharding.make_row_epoch(step, self.mesh, self.axes, self.weighted, padded)
            return fn, True

        return _EPOCHS.get(key, build)


_GATHERS = CompiledCache()


def _pad(xp: Any, a: Any, n_rows: int) -> Any:
    """``a`` with zero rows appended up to ``n_rows`` rows."""
    zeros = np.zeros((n_rows - a.shape[0],) + tuple(a.shape[1:]), dtype=np.dtype(a.dtype))
    return xp.concat([a, sharding.put_replicated(zeros, a)], axis=0)
