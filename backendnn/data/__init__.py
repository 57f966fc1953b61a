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
``dask.py``'s ``DaskData`` streams a dask array chunk by chunk (imported only when a
dask array comes in: dask is optional). A new kind of data (sharded over devices,
streamed from host chunks) is one more class with these members, recognised by
:func:`as_source`, so the estimators need no change: an input object with an
``as_source(Y, W)`` method names its own source.

Imports the modules of this package only.
"""

from __future__ import annotations

from typing import Any

from .arrays import ArrayData, compiled_epoch

__all__ = ["ArrayData", "as_source", "compiled_epoch", "dask_fit_input", "dask_predict", "is_dask"]


def is_dask(x: Any) -> bool:
    """Whether ``x`` is a dask array (recognised by its module, without importing dask)."""
    return type(x).__module__.startswith("dask.") and hasattr(x, "map_blocks")


def dask_fit_input(est: Any, X: Any) -> tuple[Any, Any, Any, Any]:
    """``backendnn.data.dask.fit_input`` (imported on first use: dask is optional)."""
    from .dask import fit_input

    return fit_input(est, X)


def dask_predict(est: Any, X: Any) -> tuple[Any, Any]:
    """``backendnn.data.dask.predict_blocks`` (imported on first use)."""
    from .dask import predict_blocks

    return predict_blocks(est, X)


def as_source(X: Any, Y: Any, W: Any = None) -> ArrayData:
    """The data source that trains on inputs ``X``, encoded targets ``Y`` and sample
    weights ``W`` (None: unweighted): an input that names its own source (``X.as_source``,
    e.g. a checked dask array) gets it; arrays in the compute library's memory become an
    :class:`ArrayData`."""
    own = getattr(X, "as_source", None)
    if own is not None:
        return own(Y, W)
    return ArrayData(X, Y, W)
