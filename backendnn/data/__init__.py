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

:class:`ArrayData` (``arrays.py``) holds arrays in the compute device's memory. A new
kind of data (sharded over devices, streamed from host chunks) is one more class with
these members, recognised by :func:`as_source`, so the estimators need no change.
:class:`SparseData` (``sparse.py``) keeps a scipy.sparse X on the host and densifies one
batch of rows at a time on the device.

Imports the modules of this package only.
"""

from __future__ import annotations

from typing import Any

from .arrays import ArrayData, compiled_epoch
from .sparse import SparseData, SparseRows

__all__ = ["ArrayData", "SparseData", "as_source", "compiled_epoch"]


def as_source(X: Any, Y: Any, W: Any = None) -> Any:
    """The data source that trains on inputs ``X``, encoded targets ``Y`` and sample
    weights ``W`` (None: unweighted): arrays in the compute library's memory become an
    :class:`ArrayData`; a checked sparse X (:class:`SparseRows`) a :class:`SparseData`."""
    if isinstance(X, SparseRows):
        return SparseData(X, Y, W)
    return ArrayData(X, Y, W)
