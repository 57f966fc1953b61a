"""Sparse inputs: scipy.sparse matrices and arrays, trained on and predicted from
without ever densifying the whole matrix.

X stays on the host as one CSR matrix (any other format is converted once, which keeps
only the stored entries). Each batch's rows are sliced there, densified -- those rows
only -- and moved to the compute device, where the targets and sample weights live as in
:class:`backendnn.data.ArrayData`. Batches are made from the same row order as
ArrayData's, so a sparse fit equals the dense fit from the same seed.

- :func:`is_sparse`, :func:`sparse_input`: recognise and check a scipy.sparse X and
  decide where it computes (a :class:`SparseRows`);
- :class:`SparseData`: the data source the training loop iterates (see
  :mod:`backendnn.data`), with :meth:`SparseData.objective` for L-BFGS, which sums the
  loss and gradient over row blocks;
- :meth:`SparseRows.map_blocks`: prediction, one block of rows densified at a time.

scipy is never imported: a sparse matrix is recognised by its module name and used
through its own methods (``tocsr``, row slicing, ``toarray``).

Imports NumPy (host row indices), :mod:`backendnn._backend`, :mod:`backendnn._validation`
and :mod:`backendnn.params` (types only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .._backend import (
    array_namespace,
    default_device,
    from_numpy,
    index_dtype,
    namespace,
    step_scalar,
)
from .._validation import check_finite, dtype_name, float_dtype
from ..params import Params
from .blocked import blocked_objective

#: the most bytes of dense rows made at once for prediction and L-BFGS (64 MiB)
BLOCK_BYTES = 1 << 26


def is_sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy.sparse matrix or array."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")


def sparse_input(X: Any, backend: str | None, requested: Any, name: str = "X") -> SparseRows:
    """Check a scipy.sparse ``X`` as ``check_X`` checks dense input (same errors) and
    say where it computes: on backend ``backend``'s default device, or on the host with
    NumPy when None (scipy's arrays are host NumPy). The dtype: ``requested``
    ("float32"/"float64"), else float64 for float64 data and float32 otherwise."""
    kind = X.dtype.kind
    if kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {X.dtype}; pass real numbers"
        )
    if kind not in "biuf":
        raise TypeError(f"{name} must hold numbers; got an array of dtype {X.dtype}")
    if len(X.shape) != 2:  # pragma: no cover - scipy's n-d COO arrays
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {X.shape}")
    n, d = X.shape
    if n < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a minimum of 1 is "
            f"required: {name} is empty"
        )
    if d < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is "
            f"required: {name} has no features"
        )
    lib = backend or "numpy"
    xp, dev = namespace(lib), default_device(lib)
    if requested is None:
        requested = "float64" if X.dtype.name == "float64" else "float32"
    dtype = float_dtype(xp, requested, None)
    csr = X.tocsr()  # CSR slices rows cheaply; a no-op (no copy) for CSR input
    source = csr.data
    csr = csr.astype(dtype_name(dtype), copy=False)
    if not np.isfinite(np.sum(csr.data)) and not np.all(np.isfinite(csr.data)):
        check_finite(source, namespace("numpy"), dtype, name)
    return SparseRows(csr, xp, dev, dtype)


class SparseRows:
    """A checked sparse X: a host CSR matrix of the compute dtype, with the namespace
    ``xp``, ``device`` and ``dtype`` its dense rows are made in. It stands for X where the
    estimators read only its ``shape``, ``ndim`` and ``dtype``."""

    ndim = 2

    def __init__(self, csr: Any, xp: Any, device: Any, dtype: Any):
        self.csr, self.xp, self.device, self.dtype = csr, xp, device, dtype

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.csr.shape[0]), int(self.csr.shape[1]))

    def take(self, rows: Any) -> SparseRows:
        """The rows ``rows`` (host indices or a slice), still sparse."""
        return SparseRows(self.csr[rows], self.xp, self.device, self.dtype)

    def dense(self, rows: Any = slice(None)) -> Any:
        """The rows ``rows`` (host indices or a slice) densified on the compute device."""
        block = self.csr[rows].toarray()  # a new host array, of the compute dtype
        # nothing else holds the block: NumPy (and torch on the CPU) use it without a copy
        return from_numpy(block, xp=self.xp, device=self.device, dtype=self.dtype, copy=None)

    def block_rows(self) -> int:
        """How many dense rows fit in :data:`BLOCK_BYTES`."""
        itemsize = self.csr.dtype.itemsize
        return max(1, BLOCK_BYTES // (self.shape[1] * itemsize))

    def blocks(self, rows: int | None = None) -> Iterator[slice]:
        """Slices of at most ``rows`` rows (fewer if :meth:`block_rows` is fewer)."""
        n, size = self.shape[0], min(self.block_rows(), rows or self.block_rows())
        return (slice(i, min(i + size, n)) for i in range(0, n, size))

    def map_blocks(self, fn: Callable[[Any], Any], rows: int | None = None) -> Any:
        """``fn`` (dense rows -> array of one row per sample) applied to one block of (at
        most ``rows``) rows at a time, the results concatenated: the whole matrix is never
        dense at once."""
        outs = [fn(self.dense(block)) for block in self.blocks(rows)]
        return outs[0] if len(outs) == 1 else array_namespace(outs[0]).concat(outs, axis=0)


class SparseData:
    """The data source of a sparse X (see :mod:`backendnn.data`): X on the host as
    :class:`SparseRows`, encoded targets Y and sample weights W (or None) on the device.

    ``X`` -- every row densified on the device, made on first use and kept -- is for
    whole-set evaluations of small sets (the early-stopping validation rows; the
    Perceptron's stopping rule); the training loop and L-BFGS never read it.
    """

    def __init__(self, rows: SparseRows, Y: Any, W: Any = None):
        self.rows, self.Y, self.W = rows, Y, W
        self.xp = array_namespace(Y) if W is None else array_namespace(Y, W)
        self._dense: Any = None

    @property
    def n_samples(self) -> int:
        return self.rows.shape[0]

    @property
    def X(self) -> Any:
        if self._dense is None:
            self._dense = self.rows.dense()
        return self._dense

    def subset(self, rows: Sequence[int]) -> SparseData:
        """The samples ``rows`` (host indices), X still sparse."""
        host = np.asarray(list(rows), dtype=np.int64)
        idx = self._on_device(host)
        W = None if self.W is None else self.xp.take(self.W, idx, axis=0)
        return SparseData(self.rows.take(host), self.xp.take(self.Y, idx, axis=0), W)

    def permutation(self, rng: Any, previous: Any = None) -> Any:
        """A random order of the rows drawn on the host from ``rng`` (kept on the host:
        X's rows are sliced there); with ``previous``, that order permuted again (the
        draws of :meth:`ArrayData.permutation`)."""
        perm = rng.permutation(self.n_samples)
        return perm if previous is None else previous[perm]

    def _on_device(self, host_rows: Any) -> Any:
        return from_numpy(
            host_rows, xp=self.xp, device=self.rows.device, dtype=index_dtype(self.xp)
        )

    def epoch(
        self,
        step: Callable,
        params: Params,
        state: Any,
        rates: Sequence[float],
        batch_size: int,
        order: Any = None,
    ) -> tuple[Params, Any, Any]:
        """One pass over the batches of ``batch_size`` rows in ``order`` (host row indices;
        None: the stored order), as :meth:`ArrayData.epoch`: batch i is rows
        ``order[i*batch_size : (i+1)*batch_size]``, densified on the device and trained at
        ``rates[i]``. Returns (params, state, summed loss) with the loss on the device."""
        xp, Y, W, n = self.xp, self.Y, self.W, self.n_samples
        on_device: Any = None if order is None else self._on_device(order)  # one transfer
        weights = next(a for layer in params for a in layer)
        dtype = xp.result_type(self.rows.dtype, weights.dtype)
        zero = xp.zeros((), dtype=dtype, device=self.rows.device)
        total = None
        for i, start in enumerate(range(0, n, batch_size)):
            stop = min(start + batch_size, n)
            if order is None:
                host: Any = slice(start, stop)
                Yb, Wb = Y[start:stop, ...], None if W is None else W[start:stop]
            else:
                host, idx = order[start:stop], on_device[start:stop]
                Yb = xp.take(Y, idx, axis=0)
                Wb = None if W is None else xp.take(W, idx, axis=0)
            Xb = self.rows.dense(host)
            params, state, value = step(params, state, Xb, Yb, step_scalar(rates[i], Xb), Wb)
            total = (zero if total is None else total) + value
        return params, state, total

    def objective(self, make: Callable[[float], Callable], alpha: float) -> Callable:
        """The penalised loss over all samples and its flat gradient, as a function of
        the parameter vector, for L-BFGS: ``make(a)`` is the objective ``(vector, X, Y,
        W) -> (value, gradient)`` of one batch with penalty ``a``.

        Summed over blocks of rows (each :data:`BLOCK_BYTES` dense at most, densified
        when evaluated) by :func:`backendnn.data.blocked.blocked_objective`. One block is
        the plain objective of the densified rows, made once and kept."""
        blocks = list(self.rows.blocks())
        if len(blocks) == 1:
            f, X = make(alpha), self.X
            return lambda v: f(v, X, self.Y, self.W)
        xp, Y, W = self.xp, self.Y, self.W
        sizes = [float(s.stop - s.start) if W is None else float(xp.sum(W[s])) for s in blocks]

        def dense_blocks(used: list[bool]) -> Iterator[tuple[Any, Any, Any]]:
            for rows, use in zip(blocks, used):
                if use:
                    yield self.rows.dense(rows), Y[rows, ...], None if W is None else W[rows]

        return blocked_objective(make, alpha, sizes, dense_blocks)
