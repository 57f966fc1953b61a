"""Where training batches come from: the data sources the training loop iterates.

A data source holds a data set (inputs X, encoded targets Y, optional sample weights W)
and offers what the loop asks of it:

- ``xp``: the compute namespace; ``n_samples``;
- ``subset(rows)``: the samples ``rows`` (host indices) as a new source (the
  early-stopping split);
- ``permutation(rng, previous=None)``: a random order of the rows from the host ``rng``
  (with ``previous``, that order permuted again: scikit-learn's epoch reshuffle);
- ``epoch(step, params, state, rates, batch_size, order)``: one pass of the compiled
  ``step(params, state, Xb, Yb, lr, Wb)`` over the batches, returning
  (params, state, summed loss as a device scalar);
- for L-BFGS, either ``X``, ``Y``, ``W`` (the whole set on the device) or
  ``objective(make, alpha)``: the penalised loss and flat gradient of the whole set as a
  function of the parameter vector, from ``make(a)``, the objective of one batch at
  penalty ``a`` (a source that sums over blocks of rows).

:class:`ArrayData` (``arrays.py``) holds arrays in the compute device's memory;
:class:`SparseData` (``sparse.py``) keeps a scipy.sparse X on the host and densifies one
batch of rows at a time on the device; :class:`ShardedData` holds JAX arrays sharded
along their rows over a mesh (``sharded.py``: data parallelism, one or many processes);
``dask.py``'s ``DaskData`` streams a dask array chunk by chunk (imported only when a dask
array comes in, by :mod:`backendnn.estimators._dask`: dask is optional).
A new kind of data is one more class with these members, recognised by
:func:`as_source`, so the estimators need no change: an input object with an
``as_source(Y, W)`` method names its own source.

Imports :mod:`backendnn._backend` (its ``sharding``) and the modules of this package.
"""

from __future__ import annotations

from typing import Any, Protocol

from .._backend import sharding
from .arrays import ArrayData, compiled_epoch
from .sharded import ShardedData
from .sparse import SparseData, SparseRows

__all__ = [
    "ArrayData", "DataSource", "ShardedData", "SparseData", "as_source", "compiled_epoch",
]  # fmt: skip


class DataSource(Protocol):
    """What the training loop asks of a data source (see the module docstring)."""

    xp: Any

    @property
    def X(self) -> Any: ...  # noqa: N802 - the data's own name

    @property
    def Y(self) -> Any: ...  # noqa: N802

    @property
    def W(self) -> Any: ...  # noqa: N802

    @property
    def n_samples(self) -> int: ...

    def subset(self, rows: Any) -> Any: ...

    def permutation(self, rng: Any, previous: Any = None) -> Any: ...

    def epoch(
        self, step: Any, params: Any, state: Any, rates: Any, batch_size: int, order: Any = None
    ) -> tuple[Any, Any, Any]: ...


def as_source(X: Any, Y: Any, W: Any = None) -> DataSource:
    """The data source that trains on inputs ``X``, encoded targets ``Y`` and sample
    weights ``W`` (None: unweighted): a checked sparse X (:class:`SparseRows`) becomes a
    :class:`SparseData`; an input that names its own source (``X.as_source``, e.g. a
    checked dask array) gets it; a JAX array split along its rows over several devices a
    :class:`ShardedData`; other arrays in the compute library's memory an
    :class:`ArrayData`."""
    if isinstance(X, SparseRows):
        return SparseData(X, Y, W)
    own = getattr(X, "as_source", None)
    if own is not None:
        return own(Y, W)
    if sharding.is_split(X):
        return ShardedData(X, Y, W, n_samples=int(Y.shape[0]))
    return ArrayData(X, Y, W)
