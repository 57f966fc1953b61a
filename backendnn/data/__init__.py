"""Where training batches come from: the data sources the training loop iterates.

A data source holds a data set (inputs X, encoded targets Y, optional sample weights W)
and offers what the loop asks of it:

- ``xp``: the compute namespace; ``n_samples``;
- ``subset(rows)``: the samples ``rows`` (host indices) as a new source (the
  early-stopping split);
- ``permutation(rng)``: a random order of the rows from the host ``rng``;
- ``epoch(step, params, state, rates, batch_size, order)``: one pass of the compiled
  ``step(params, state, Xb, Yb, lr, Wb)`` over the batches, returning
  (params, state, summed loss as a device scalar).

:class:`ArrayData` (``arrays.py``) holds arrays in the compute device's memory;
:class:`ShardedData` (``sharded.py``) JAX arrays sharded along their rows over a mesh
(data parallelism, one or many processes). A new kind of data (streamed from host
chunks) is one more class with these members, recognised by :func:`as_source`, so the
estimators need no change.

Imports the modules of this package only.
"""

from __future__ import annotations

from typing import Any, Protocol

from .._backend import sharding
from .arrays import ArrayData, compiled_epoch
from .sharded import ShardedData

__all__ = ["ArrayData", "DataSource", "ShardedData", "as_source", "compiled_epoch"]


class DataSource(Protocol):
    """What the training loop asks of a data source (see the module docstring)."""

    xp: Any
    X: Any
    Y: Any
    W: Any

    @property
    def n_samples(self) -> int: ...

    def subset(self, rows: Any) -> Any: ...

    def permutation(self, rng: Any) -> Any: ...

    def epoch(
        self, step: Any, params: Any, state: Any, rates: Any, batch_size: int, order: Any = None
    ) -> tuple[Any, Any, Any]: ...


def as_source(X: Any, Y: Any, W: Any = None) -> DataSource:
    """The data source that trains on inputs ``X``, encoded targets ``Y`` and sample
    weights ``W`` (None: unweighted): a JAX array split along its rows over several
    devices becomes a :class:`ShardedData`; other arrays in the compute library's memory
    an :class:`ArrayData`."""
    if sharding.spans_devices(X) and not X.sharding.is_fully_replicated:
        return ShardedData(X, Y, W, n_samples=int(Y.shape[0]))
    return ArrayData(X, Y, W)
